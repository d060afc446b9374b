"""Versions side by side: the version policy (``<name>/config.json``), every admitted
version loaded with its own batcher and addressable, fallback past a broken version,
and unloading (memory freed) when the policy stops admitting one."""

from __future__ import annotations

import gc
import json
import shutil
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from service.app import create_app
from service.settings import Settings
from tests.conftest import MODELS_DIR
from tests.server import free_port
from tests.test_api import republish
from tests.test_e2e_service import metric


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """digit 1 and 2, pass 1."""
    root = tmp_path / "models"
    for name, version in (("digit", 1), ("digit", 2), ("pass", 1)):
        shutil.copytree(MODELS_DIR / name / str(version), root / name / str(version))
    return root


def set_policy(repo: Path, policy: object) -> None:
    path = repo / "digit" / "config.json"
    path.write_text(policy if isinstance(policy, str) else json.dumps({"version_policy": policy}))


@contextmanager
def serving(repo: Path, grpc_port: int = 0) -> Iterator[TestClient]:
    settings = Settings(model_repository=repo, reload_interval_s=0, grpc_port=grpc_port)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def predict(client: TestClient, png: bytes, version: str | None = None):
    params = {"version": version} if version is not None else {}
    return client.post(
        "/predict/digit", params=params, files={"image": ("d.png", png, "image/png")}
    )


def test_by_default_only_the_highest_version_is_served(repo, mnist_pngs):
    with serving(repo) as client:
        ready = client.get("/readyz").json()
        assert ready["models"]["digit"] == 2 and ready["versions"]["digit"] == [2]
        reply = predict(client, mnist_pngs[0][0], "1")
        assert reply.status_code == 404
        assert reply.json() == {"detail": "model 'digit' has no version 1 served (served: 2)"}


def test_latest_two_serves_both_each_with_its_own_batcher(repo, mnist_pngs):
    set_policy(repo, {"latest": {"num_versions": 2}})
    png = mnist_pngs[0][0]
    with serving(repo) as client:
        ready = client.get("/readyz").json()
        assert ready["models"] == {"digit": 2, "pass": 1}
        assert ready["versions"] == {"digit": [2, 1], "pass": [1]}
        listed = [(m["name"], m["version"]) for m in client.get("/models").json()["models"]]
        assert listed == [("digit", 2), ("digit", 1), ("pass", 1)]
        one, two, default = (predict(client, png, v).json() for v in ("1", "2", None))
        assert (one["model"]["version"], two["model"]["version"]) == (1, 2)
        assert default == two and one["probabilities"] != two["probabilities"]
        assert predict(client, png, "x").status_code == 422
        assert predict(client, png, "0").status_code == 422
        # As the repository names versions, and as /v2/.../versions/01 refuses it.
        assert predict(client, png, "01").status_code == 422
        params = {"hours": 4, "version": "01"}
        assert client.get("/predict/pass", params=params).status_code == 422
        assert client.get("/predict/pass", params={"hours": 4, "version": 1}).status_code == 200
        text = client.get("/metrics").text
        for version in ("1", "2"):
            assert (
                metric(text, "digitpass_model_version_served", model="digit", version=version) == 1
            )
        assert metric(text, "digitpass_model_version", model="digit") == 2
        runtime = client.app.state.runtime
        batchers = {v: s.batcher for v, s in runtime.versions["digit"].items()}
        assert batchers[1] is not batchers[2]


def test_a_broken_version_is_skipped_and_the_next_one_serves_in_its_place(repo, mnist_pngs):
    republish(repo, "digit", 2, 3, corrupt="model.onnx")
    with serving(repo) as client:
        assert client.get("/readyz").json()["versions"]["digit"] == [2]  # latest: 1
    set_policy(repo, {"latest": {"num_versions": 2}})
    with serving(repo) as client:
        assert client.get("/readyz").json()["versions"]["digit"] == [2, 1]
        assert predict(client, mnist_pngs[0][0], "3").status_code == 404
    set_policy(repo, {"specific": {"versions": [3, 1]}})  # specific: no stand-in
    with serving(repo) as client:
        assert client.get("/readyz").json()["versions"]["digit"] == [1]


def test_a_version_no_longer_admitted_is_unloaded_and_its_memory_freed(repo, mnist_pngs):
    set_policy(repo, {"all": {}})
    with serving(repo) as client:
        runtime = client.app.state.runtime
        assert sorted(runtime.versions["digit"]) == [1, 2]
        served = runtime.versions["digit"][2]
        model, batcher = weakref.ref(served.model), served.batcher
        del served
        set_policy(repo, {"specific": {"versions": [1]}})
        reloaded = client.post("/admin/reload").json()
        assert [(m["name"], m["version"]) for m in reloaded["models"]] == [
            ("digit", 1),
            ("pass", 1),
        ]
        assert client.get("/readyz").json()["versions"]["digit"] == [1]
        assert predict(client, mnist_pngs[0][0]).json()["model"]["version"] == 1
        text = client.get("/metrics").text
        assert metric(text, "digitpass_model_version_served", model="digit", version="2") == 0
        assert metric(text, "digitpass_model_version", model="digit") == 1
        assert batcher._closing
        del batcher
        deadline = time.monotonic() + 30
        while model() is not None:  # its batcher stops in the background
            assert time.monotonic() < deadline, "the unloaded version is still in memory"
            gc.collect()
            time.sleep(0.05)  # polling interval, not synchronisation
        set_policy(repo, {"latest": {"num_versions": 2}})
        client.post("/admin/reload")
        assert client.get("/readyz").json()["versions"]["digit"] == [2, 1]


def test_a_bad_config_file_keeps_what_is_served_and_says_why(repo):
    set_policy(repo, "{")
    with serving(repo) as client:
        assert "digit" not in client.get("/readyz").json()["models"]
        unavailable = client.get("/models").json()["unavailable"]
        assert unavailable == [{"name": "digit", "reason": "config.json: not JSON"}]
        set_policy(repo, {"latest": {"num_versions": 1}})
        client.post("/admin/reload")
        assert client.get("/readyz").json()["versions"]["digit"] == [2]
        set_policy(repo, {"latest": {"num_versions": "two"}})
        client.post("/admin/reload")
        assert client.get("/readyz").json()["versions"]["digit"] == [2]  # still served
    set_policy(repo, {"specific": {"versions": [9]}})
    with serving(repo) as client:
        reason = client.get("/models").json()["unavailable"][0]["reason"]
        assert reason == "the version policy admits no published version"


def test_a_config_file_that_breaks_the_json_parser_breaks_no_other_model(repo):
    set_policy(repo, "[" * 60_000)  # RecursionError in json.loads, not a ValueError
    with serving(repo) as client:
        ready = client.get("/readyz").json()
        assert ready["models"] == {"pass": 1}
        unavailable = client.get("/models").json()["unavailable"]
        assert unavailable == [
            {"name": "digit", "reason": "config.json: not JSON (nested too deeply)"}
        ]
        assert client.post("/admin/reload").status_code == 200


def test_grpc_in_the_same_process_follows_reloads_and_versions(repo):
    """The gRPC server shares the runtime: a reload that changes the versions changes
    what gRPC serves, at once."""
    port = free_port()
    set_policy(repo, {"latest": {"num_versions": 2}})
    zeros = grpcclient.InferInput("image", [1, 784], "FP32")
    zeros.set_data_from_numpy(np.zeros((1, 784), np.float32))
    with (
        serving(repo, grpc_port=port) as client,
        grpcclient.InferenceServerClient(f"127.0.0.1:{port}") as rpc,
    ):
        assert rpc.get_model_metadata("digit", as_json=True)["versions"] == ["1", "2"]
        assert rpc.infer("digit", [zeros], model_version="1").get_response().model_version == "1"
        set_policy(repo, {"specific": {"versions": [2]}})
        client.post("/admin/reload")
        assert rpc.get_model_metadata("digit", as_json=True)["versions"] == ["2"]
        assert not rpc.is_model_ready("digit", "1")
        with pytest.raises(InferenceServerException, match="no version 1"):
            rpc.infer("digit", [zeros], model_version="1")
