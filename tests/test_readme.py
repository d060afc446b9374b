"""Every curl example in README.md runs, as written, against a live server.

Each line that starts with ``curl`` in a ```sh or ```bash block is run with curl
itself (``localhost:8000`` pointed at the test server's free port), from the
repository root so that ``@docs/examples/...`` paths resolve. The server has a private
copy of the models, so ``POST /admin/reload`` sees nothing change under it. Each
response must be a 2xx of the endpoint's shape; where the README shows a response as
plain JSON, the live one must have the same shape.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from service.models.repository import list_versions
from tests.server import ServerHandle, run_server

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
DOCUMENTED_HOST = "localhost:8000"
DATA_OPTIONS = {"-d", "--data", "--data-binary", "--data-raw", "-F", "--form"}


@dataclass(frozen=True)
class Example:
    line: str
    documented_response: str | None  # the ```json block that follows it, if any

    @property
    def args(self) -> list[str]:
        return shlex.split(self.line)

    @property
    def method(self) -> str:
        args = self.args
        if "-X" in args:
            return args[args.index("-X") + 1]
        return "POST" if DATA_OPTIONS & set(args) else "GET"

    @property
    def url(self) -> str:
        (url,) = [a for a in self.args if DOCUMENTED_HOST in a]
        return url if "://" in url else f"http://{url}"

    @property
    def endpoint(self) -> tuple[str, str]:
        return self.method, urlsplit(self.url).path

    def option_values(self, *names: str) -> list[str]:
        args = self.args
        return [args[i + 1] for i, a in enumerate(args[:-1]) if a in names]


def readme_examples(text: str) -> list[Example]:
    """The curl lines of ```sh/```bash blocks, each with the ```json block after it."""
    examples: list[Example] = []
    fence: str | None = None
    block: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence, block = stripped[3:].strip(), []
        elif fence is not None and stripped == "```":
            if fence in ("sh", "bash"):
                for command in block:
                    if command.strip().startswith("curl"):
                        examples.append(Example(command.strip(), None))
            elif fence == "json" and examples and examples[-1].documented_response is None:
                examples[-1] = Example(examples[-1].line, "\n".join(block))
            fence = None
        elif fence is not None:
            block.append(line)
    assert fence is None, "README.md ends inside a code block"
    return examples


EXAMPLES = readme_examples(README.read_text())


# --- the live server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """The service with default settings, on a private copy of the newest models."""
    assert shutil.which("curl"), "the README examples need curl"
    repository = tmp_path_factory.mktemp("readme") / "models"
    for name in ("pass", "digit"):
        newest = list_versions(REPO_ROOT / "models" / name)[-1]
        shutil.copytree(REPO_ROOT / "models" / name / str(newest), repository / name / str(newest))
    with pytest.MonkeyPatch.context() as patch:
        for variable in [v for v in os.environ if v.startswith("DIGITPASS_")]:
            patch.delenv(variable)  # the defaults the README documents, not the shell's
        with run_server({"DIGITPASS_MODEL_REPOSITORY": str(repository)}) as handle:
            yield handle


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        assert self.content_type == "application/json", self.content_type
        return json.loads(self.body)


def run_curl(example: Example, base_url: str, tmp_path: Path) -> Reply:
    body = tmp_path / "body"
    authority = urlsplit(base_url).netloc
    args = [a.replace(DOCUMENTED_HOST, authority) for a in example.args]
    result = subprocess.run(
        [*args, "-sS", "--max-time", "30", "-o", str(body), "-w", "%{http_code} %{content_type}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"curl failed: {result.stderr}"
    status, _, content_type = result.stdout.partition(" ")
    return Reply(int(status), content_type.split(";")[0].strip(), body.read_bytes())


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
    assert set(row) == {"digit", "confidence", "probabilities"}
    probabilities = row["probabilities"]
    assert len(probabilities) == 10 and math.isclose(sum(probabilities), 1, abs_tol=1e-4)
    assert row["digit"] == probabilities.index(max(probabilities))
    assert row["confidence"] == max(probabilities)
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
    assert body["status"] == "ready" and set(body["models"]) == {"pass", "digit"}
    for name, version in body["models"].items():
        assert version in list_versions(REPO_ROOT / "models" / name)


MODEL_INFO = {
    "name",
    "version",
    "backend",
    "device",
    "providers",
    "metrics",
    "labels",
    "created_at",
    "loaded_at",
}


def check_models_list(models: list[dict[str, Any]]) -> None:
    assert sorted(m["name"] for m in models) == ["digit", "pass"]
    for model in models:
        assert set(model) == MODEL_INFO
        assert model["backend"] == "onnx" and model["device"] in ("cpu", "cuda")
        assert model["providers"][-1] == "CPUExecutionProvider"
    labels = {m["name"]: m["labels"] for m in models}
    assert labels == {"pass": ["fail", "pass"], "digit": [str(d) for d in range(10)]}


def check_models(example: Example, reply: Reply) -> None:
    body = reply.json()
    assert set(body) == {"models"}
    check_models_list(body["models"])


def check_reload(example: Example, reply: Reply) -> None:
    body = reply.json()
    assert set(body) == {"models", "failures"}
    check_models_list(body["models"])
    assert body["failures"] == []


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


CHECKS: dict[tuple[str, str], Callable[[Example, Reply], None]] = {
    ("GET", "/predict/pass"): check_pass_one,
    ("POST", "/predict/pass"): check_pass_many,
    ("POST", "/predict/digit"): check_digit,
    ("POST", "/predict/digits"): check_digits,
    ("GET", "/healthz"): check_healthz,
    ("GET", "/readyz"): check_readyz,
    ("GET", "/models"): check_models,
    ("POST", "/admin/reload"): check_reload,
    ("GET", "/metrics"): check_metrics,
}


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and element shapes, numbers as one type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


# --- the tests ---------------------------------------------------------------------------


def test_readme_has_a_curl_example_for_every_endpoint():
    assert {e.endpoint for e in EXAMPLES} == set(CHECKS)
    digit = [e for e in EXAMPLES if e.endpoint == ("POST", "/predict/digit")]
    assert any("-F" in e.args for e in digit), "a multipart /predict/digit example"
    assert any("--data-binary" in e.args for e in digit), "a raw-body /predict/digit example"
    assert all(e.args[0] == "curl" for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.line for e in EXAMPLES])
def test_readme_curl_example_runs_and_answers_in_shape(example, server, tmp_path):
    reply = run_curl(example, server.url, tmp_path)
    assert 200 <= reply.status < 300, reply.body[:500]
    CHECKS[example.endpoint](example, reply)
    if example.documented_response is not None:
        try:
            documented = json.loads(example.documented_response)
        except json.JSONDecodeError:
            return  # an abridged response ("..."): the README says so
        assert shape(reply.json()) == shape(documented)
