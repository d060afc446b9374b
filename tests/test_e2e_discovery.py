"""Models are discovered from the repository while the service runs (Triton's poll mode).

Against a real server process: a new model of an existing kind, a new version of the
regression model, and folders that must be refused without disturbing the others.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.server import run_server
from training.publish import commit, staging

pytestmark = pytest.mark.e2e

POLL_S = 0.2


def server_env(model_repo: Path) -> dict[str, str]:
    return {
        "DIGITPASS_MODEL_REPOSITORY": str(model_repo),
        "DIGITPASS_RELOAD_INTERVAL_S": str(POLL_S),
    }


def newest_dir(root: Path, name: str) -> Path:
    return max((p for p in (root / name).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def publish_as(root: Path, name: str, source: Path, **changes: object) -> int:
    """Publish the files of ``source`` as the next version of model ``name``."""
    metadata = {**json.loads((source / "metadata.json").read_text()), "name": name, **changes}
    with staging(root, name) as stage:
        for item in source.iterdir():
            if item.name != "metadata.json":
                shutil.copy2(item, stage / item.name)
        return int(commit(stage, metadata).name)


def wait_for(url: str, predicate: object, timeout: float = 30) -> dict:
    """Poll ``GET url`` until ``predicate(json)`` holds; return that JSON."""
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(url, timeout=5).json()
        if predicate(body):  # type: ignore[operator]
            return body
        assert time.monotonic() < deadline, f"not reached before the deadline: {body}"
        time.sleep(POLL_S / 4)  # polling interval, not synchronisation


def served(body: dict) -> dict[str, int]:
    return {m["name"]: m["version"] for m in body["models"]}


def test_a_new_model_of_an_existing_kind_is_served_without_a_restart(model_repo, mnist_pngs):
    png, label = mnist_pngs[0]
    with run_server(server_env(model_repo)) as server:
        assert httpx.post(server.url + "/predict/digit-b", content=png).status_code == 404
        publish_as(model_repo, "digit-b", newest_dir(model_repo, "digit"))
        body = wait_for(server.url + "/models", lambda b: "digit-b" in served(b))
        assert served(body)["digit-b"] == 1
        files = {"image": ("d.png", png, "image/png")}
        original = httpx.post(server.url + "/predict/digit", files=files).json()
        copy = httpx.post(server.url + "/predict/digit-b", files=files).json()
        assert copy["model"] == {"name": "digit-b", "version": 1}
        assert copy["digit"] == original["digit"] == label
        assert copy["probabilities"] == original["probabilities"]
        many = httpx.post(
            server.url + "/predict/digit-bs", files=[("images", ("a.png", png, "image/png"))]
        )
        assert many.status_code == 200 and many.json()["predictions"][0]["digit"] == label
        assert httpx.get(server.url + "/readyz").json()["models"]["digit-b"] == 1
        paths = httpx.get(server.url + "/openapi.json").json()["paths"]
        assert {"/predict/digit-b", "/predict/digit-bs"} <= set(paths)
        metrics = httpx.get(server.url + "/metrics").text
        assert 'digitpass_model_version{model="digit-b"} 1.0' in metrics
        assert 'route="/predict/digit-b",status="200"' in metrics


def test_points_is_served_and_a_new_version_is_picked_up(model_repo):
    with run_server(server_env(model_repo)) as server:
        first = httpx.get(server.url + "/predict/points", params={"hours": 4}).json()
        assert first["points"] == pytest.approx(8.0, abs=0.05)
        old = first["model"]["version"]
        new = publish_as(model_repo, "points", newest_dir(model_repo, "points"))
        wait_for(server.url + "/readyz", lambda b: b["models"]["points"] == new)
        again = httpx.get(server.url + "/predict/points", params={"hours": 4}).json()
        assert again["model"] == {"name": "points", "version": old + 1}
        assert again["points"] == first["points"]
        batch = httpx.post(server.url + "/predict/points", json={"hours": [1, 2, 3]}).json()
        assert [round(p["points"], 3) for p in batch["predictions"]] == [2.0, 4.0, 6.0]


def test_bad_folders_are_refused_with_their_reason_and_break_nothing(model_repo, mnist_pngs):
    with run_server(server_env(model_repo)) as server:
        (model_repo / "Bad_Name" / "1").mkdir(parents=True)
        (model_repo / "later").mkdir()
        # A model named "digits" would take the batch route of "digit".
        publish_as(model_repo, "digits", newest_dir(model_repo, "digit"))
        # A scan during the publish sees "digits" with no version folder yet: wait for
        # the scan after it.
        body = wait_for(
            server.url + "/models",
            lambda b: (
                {u["name"]: u["reason"] for u in b["unavailable"]}.get("digits", "no").startswith(
                    "route"
                )
                and {u["name"] for u in b["unavailable"]} >= {"Bad_Name", "later"}
            ),
        )
        reasons = {u["name"]: u["reason"] for u in body["unavailable"]}
        assert "lowercase" in reasons["Bad_Name"]
        assert reasons["later"] == "no version folder"
        assert reasons["digits"] == "route /predict/digits is already served for model 'digit'"
        assert "digits" not in served(body)
        assert httpx.get(server.url + "/readyz").status_code == 200
        files = [("images", ("a.png", mnist_pngs[0][0], "image/png"))]
        answer = httpx.post(server.url + "/predict/digits", files=files).json()
        assert answer["model"]["name"] == "digit"
        assert httpx.get(server.url + "/predict/later?hours=1").status_code == 503
        assert "model_refused" in server.log()
