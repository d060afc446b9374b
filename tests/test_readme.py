"""Every curl example in README.md runs, as written, against a live server, and answers
exactly what the README shows.

Each line that starts with ``curl`` in a ```sh or ```bash block is run with curl
itself (``localhost:8000`` pointed at the test server's free port), from the
repository root so that ``@docs/examples/...`` paths resolve. The server has a private
copy of the newest committed models, so ``POST /admin/reload`` sees nothing change
under it. Each response must be a 2xx of the endpoint's shape, and equal, value for
value, to the response block the README shows after it (``loaded_at`` aside). After a
retrain, ``make readme`` rewrites those blocks (``tests/readme_examples.py``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from service.imaging.confidence import UNCERTAIN_BELOW
from service.models.repository import list_versions
from tests.readme_examples import (
    README,
    README_SERVER_ENV,
    Example,
    Reply,
    client_examples,
    newest_models_copy,
    readme_examples,
    run_client_example,
    run_curl,
    shown_metrics,
    without_volatile,
)
from tests.server import ServerHandle, run_server

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAMES = sorted(p.name for p in (REPO_ROOT / "models").iterdir() if p.is_dir())
EXAMPLES = readme_examples(README.read_text())


# --- the live server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """The service with default settings, on a private copy of the newest models."""
    assert shutil.which("curl"), "the README examples need curl"
    repository = newest_models_copy(tmp_path_factory.mktemp("readme") / "models")
    with pytest.MonkeyPatch.context() as patch:
        for variable in [v for v in os.environ if v.startswith("DIGITPASS_")]:
            patch.delenv(variable)  # the defaults the README documents, not the shell's
        with run_server(
            README_SERVER_ENV | {"DIGITPASS_MODEL_REPOSITORY": str(repository)}
        ) as handle:
            yield handle


# --- what each endpoint must answer ------------------------------------------------------


def check_model_ref(ref: dict[str, Any], name: str) -> None:
    assert ref["name"] == name
    assert ref["version"] in list_versions(REPO_ROOT / "models" / name)


def check_pass_row(row: dict[str, Any], hours: float) -> None:
    assert set(row) == {"hours", "probability", "passed"}
    assert row["hours"] == hours
    assert 0 <= row["probability"] <= 1
    assert row["passed"] == (row["probability"] >= 0.5)


def check_digit_row(row: dict[str, Any], expected: int | None) -> None:
    assert set(row) == {"digit", "confidence", "uncertain", "probabilities"}
    probabilities = row["probabilities"]
    assert len(probabilities) == 10 and math.isclose(sum(probabilities), 1, abs_tol=1e-4)
    assert row["digit"] == probabilities.index(max(probabilities))
    assert row["confidence"] == max(probabilities)
    assert row["uncertain"] is (row["confidence"] < UNCERTAIN_BELOW)
    if expected is not None:  # docs/examples/7.png holds a 7
        assert row["digit"] == expected


def uploaded_digits(example: Example) -> list[int | None]:
    """What the uploaded example images show, from their names (7.png is a 7)."""
    files = [v.split("=", 1)[-1] for v in example.option_values("-F", "--form", "--data-binary")]
    names = [Path(f.removeprefix("@")).stem for f in files if f.startswith("@")]
    return [int(n) if n.isdigit() else None for n in names]


def check_pass_one(example: Example, reply: Reply) -> None:
    body = reply.json()
    hours = float(parse_qs(urlsplit(example.url).query)["hours"][0])
    check_pass_row({k: v for k, v in body.items() if k != "model"}, hours)
    check_model_ref(body["model"], "pass")


def check_pass_many(example: Example, reply: Reply) -> None:
    body = reply.json()
    (data,) = example.option_values("-d", "--data", "--data-raw")
    hours = json.loads(data)["hours"]
    assert set(body) == {"predictions", "model"}
    assert len(body["predictions"]) == len(hours) >= 1
    for row, value in zip(body["predictions"], hours, strict=True):
        check_pass_row(row, value)
    check_model_ref(body["model"], "pass")


def check_digit(example: Example, reply: Reply) -> None:
    body = reply.json()
    (expected,) = uploaded_digits(example)
    check_digit_row({k: v for k, v in body.items() if k != "model"}, expected)
    check_model_ref(body["model"], "digit")


def check_digits(example: Example, reply: Reply) -> None:
    body = reply.json()
    expected = uploaded_digits(example)
    assert set(body) == {"predictions", "model"}
    assert len(body["predictions"]) == len(expected) >= 2
    for row, digit in zip(body["predictions"], expected, strict=True):
        check_digit_row(row, digit)
    check_model_ref(body["model"], "digit")


def check_healthz(example: Example, reply: Reply) -> None:
    assert reply.json() == {"status": "ok"}


def check_readyz(example: Example, reply: Reply) -> None:
    body = reply.json()
    assert body["status"] == "ready" and sorted(body["models"]) == MODEL_NAMES
    for name, version in body["models"].items():
        assert version in list_versions(REPO_ROOT / "models" / name)


MODEL_INFO = {
    "name",
    "version",
    "task",
    "backend",
    "device",
    "providers",
    "metrics",
    "labels",
    "created_at",
    "loaded_at",
}


def check_models_list(models: list[dict[str, Any]]) -> None:
    assert sorted(m["name"] for m in models) == MODEL_NAMES
    for model in models:
        assert set(model) == MODEL_INFO
        assert model["backend"] == "onnx" and model["device"] in ("cpu", "cuda")
        assert model["providers"][-1] == "CPUExecutionProvider"
    labels = {m["name"]: m["labels"] for m in models}
    assert labels == {"pass": ["fail", "pass"], "digit": [str(d) for d in range(10)], "points": []}


def check_models(example: Example, reply: Reply) -> None:
    body = reply.json()
    assert set(body) == {"models", "unavailable"} and body["unavailable"] == []
    check_models_list(body["models"])


def check_reload(example: Example, reply: Reply) -> None:
    body = reply.json()
    assert set(body) == {"models", "unavailable", "failures"}
    check_models_list(body["models"])
    assert body["failures"] == [] and body["unavailable"] == []


def check_metrics(example: Example, reply: Reply) -> None:
    assert reply.content_type == "text/plain"
    text = reply.body.decode()
    for family in (
        "digitpass_http_requests_total",
        "digitpass_inference_batch_size",
        "digitpass_queue_depth",
        "digitpass_model_version",
        "digitpass_model_reloads_total",
    ):
        assert f"# TYPE {family} " in text, family
    assert re.search(r'^digitpass_model_version\{model="digit"\} [1-9]', text, re.MULTILINE)


def check_points_one(example: Example, reply: Reply) -> None:
    body = reply.json()
    hours = float(parse_qs(urlsplit(example.url).query)["hours"][0])
    assert set(body) == {"hours", "points", "model"} and body["hours"] == hours
    assert math.isclose(body["points"], 2 * hours, abs_tol=0.05)  # the lectures' y = 2x
    check_model_ref(body["model"], "points")


def check_points_many(example: Example, reply: Reply) -> None:
    body = reply.json()
    (data,) = example.option_values("-d", "--data", "--data-raw")
    hours = json.loads(data)["hours"]
    assert [p["hours"] for p in body["predictions"]] == hours
    for row in body["predictions"]:
        assert math.isclose(row["points"], 2 * row["hours"], abs_tol=0.05)
    check_model_ref(body["model"], "points")


def check_model_files(example: Example, reply: Reply) -> None:
    files = reply.json()["files"]
    assert files and all(name.endswith(".png") for name in files)


def check_v2_infer(example: Example, reply: Reply) -> None:
    body = reply.json()
    (data,) = example.option_values("-d", "--data", "--data-raw")
    (tensor,) = json.loads(data)["inputs"]
    (output,) = body["outputs"]
    assert body["model_name"] == "pass" and output["name"] == "probability"
    assert output["shape"] == tensor["shape"] and len(output["data"]) == len(tensor["data"])
    for hours, probability in zip(tensor["data"], output["data"], strict=True):
        assert (probability >= 0.5) == (hours >= 2.5)


def check_v2_server(example: Example, reply: Reply) -> None:
    body = reply.json()
    assert body["name"] == "digitpass" and "binary_tensor_data" in body["extensions"]


CHECKS: dict[tuple[str, str], Callable[[Example, Reply], None]] = {
    ("GET", "/predict/pass"): check_pass_one,
    ("POST", "/predict/pass"): check_pass_many,
    ("GET", "/predict/points"): check_points_one,
    ("POST", "/predict/points"): check_points_many,
    ("GET", "/models/{name}/{version}/files"): check_model_files,
    ("POST", "/predict/digit"): check_digit,
    ("POST", "/predict/digits"): check_digits,
    ("GET", "/healthz"): check_healthz,
    ("GET", "/readyz"): check_readyz,
    ("GET", "/models"): check_models,
    ("POST", "/admin/reload"): check_reload,
    ("GET", "/metrics"): check_metrics,
    ("POST", "/v2/models/pass/infer"): check_v2_infer,
    ("GET", "/v2"): check_v2_server,
}


# --- the tests ---------------------------------------------------------------------------


def endpoint_of(example: Example) -> tuple[str, str]:
    """The example's method and route template (a model-file path names its model)."""
    method, path = example.endpoint
    parts = path.split("/")
    if len(parts) == 5 and parts[1] == "models" and parts[4] == "files":
        return method, "/models/{name}/{version}/files"
    return method, path


def test_readme_has_a_curl_example_for_every_endpoint():
    assert {endpoint_of(e) for e in EXAMPLES} == set(CHECKS)
    digit = [e for e in EXAMPLES if e.endpoint == ("POST", "/predict/digit")]
    assert any("-F" in e.args for e in digit), "a multipart /predict/digit example"
    assert any("--data-binary" in e.args for e in digit), "a raw-body /predict/digit example"
    assert all(e.args[0] == "curl" for e in EXAMPLES)


RUN: list[Example] = []  # the examples run so far against the module's server, in order


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.line for e in EXAMPLES])
def test_readme_curl_example_runs_and_answers_what_it_shows(example, server, tmp_path):
    reply = run_curl(example, server.url, tmp_path)
    RUN.append(example)
    assert 200 <= reply.status < 300, reply.body[:500]
    CHECKS[endpoint_of(example)](example, reply)
    if example.response is None:
        return
    if example.response_fence == "json":
        documented = json.loads(example.response)
        assert without_volatile(reply.json()) == without_volatile(documented), (
            "the README shows another response: run `make readme` after a retrain"
        )
        return
    live = shown_metrics(reply.body.decode()).splitlines()
    shown = example.response.splitlines()
    if EXAMPLES[: len(RUN)] != RUN:  # a subset ran: the counts differ, the rest holds
        stable = ("#", "digitpass_model_version", "digitpass_model_reloads")
        live = [line for line in live if line.startswith(stable)]
        shown = [line for line in shown if line.startswith(stable)]
    assert live == shown, "the README shows other metrics: run `make readme`"


def test_readme_tritonclient_example_runs_and_prints_what_it_shows(server):
    """The ``tritonclient`` example, as written (ports pointed at the test server)."""
    (example,) = client_examples(README.read_text())
    assert example.output is not None, "the example shows its output in a ```text block"
    printed = run_client_example(example, server.url, server.grpc_url)
    assert printed == example.output, "the README shows other output: run `make readme`"
