"""The curl examples of README.md: found, run against a live server, and regenerated.

Each line that starts with ``curl`` in a ```sh or ```bash block is an example; the
```json (or ```text, for ``/metrics``) block right after it shows its response.
``python -m tests.readme_examples`` (``make readme``) starts the service on a copy of
the committed models, runs every example in order with curl, and writes the real
responses into those blocks; ``tests/test_readme.py`` requires them to match.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
DOCUMENTED_HOST = "localhost:8000"
DATA_OPTIONS = {"-d", "--data", "--data-binary", "--data-raw", "-F", "--form"}
RESPONSE_FENCES = ("json", "text")
VOLATILE_KEYS = frozenset({"loaded_at"})  # differs on every start; shown, not compared
# In /metrics, what timing decides (latency sums and buckets, creation times, and how
# often /readyz was polled before the server was ready): not shown.
HIDDEN_METRIC_SUFFIXES = ("_bucket", "_created", "_sum")
HIDDEN_LABELS = 'route="/readyz"'


@dataclass(frozen=True)
class Example:
    line: str
    response: str | None  # the response block that follows it, if any
    response_lines: tuple[int, int] | None = None  # [start, end) of that block's body
    response_fence: str | None = None

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
    """The curl lines of ```sh/```bash blocks, each with the response block after it."""
    examples: list[Example] = []
    fence: str | None = None
    start = 0
    block: list[str] = []
    waiting = False  # the last example has no response block yet
    for number, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence, block, start = stripped[3:].strip(), [], number + 1
        elif fence is not None and stripped == "```":
            if fence in ("sh", "bash"):
                commands = [c.strip() for c in block if c.strip().startswith("curl")]
                examples.extend(Example(command, None) for command in commands)
                waiting = bool(commands)
            elif fence in RESPONSE_FENCES and waiting:
                last = examples[-1]
                examples[-1] = Example(last.line, "\n".join(block), (start, number), fence)
                waiting = False
            fence = None
        elif fence is not None:
            block.append(line)
    assert fence is None, "README.md ends inside a code block"
    return examples


@dataclass(frozen=True)
class ClientExample:
    """A ```python block that uses ``tritonclient``, and the ```text block of its output."""

    code: str
    output: str | None
    output_lines: tuple[int, int] | None


def client_examples(text: str) -> list[ClientExample]:
    found: list[ClientExample] = []
    fence: str | None = None
    start = 0
    block: list[str] = []
    for number, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence, block, start = stripped[3:].strip(), [], number + 1
        elif fence is not None and stripped == "```":
            code = "\n".join(block)
            if fence == "python" and "tritonclient" in code:
                found.append(ClientExample(code, None, None))
            elif fence == "text" and found and found[-1].output is None:
                last = found[-1]
                found[-1] = ClientExample(last.code, "\n".join(block), (start, number))
            fence = None
        elif fence is not None:
            block.append(line)
    return found


def run_client_example(example: ClientExample, base_url: str, grpc_url: str) -> str:
    """Its stdout, run from the repository root against ``base_url`` and ``grpc_url``."""
    import sys

    code = example.code.replace(DOCUMENTED_HOST, base_url.removeprefix("http://"))
    code = code.replace("localhost:8001", grpc_url)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.rstrip("\n")


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        assert self.content_type == "application/json", self.content_type
        return json.loads(self.body)


def run_curl(example: Example, base_url: str, workdir: Path) -> Reply:
    body = workdir / "body"
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


def without_volatile(value: Any) -> Any:
    """``value`` with every key in ``VOLATILE_KEYS`` replaced by a marker."""
    if isinstance(value, dict):
        return {
            k: "<volatile>" if k in VOLATILE_KEYS else without_volatile(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    return value


def shown_metrics(text: str) -> str:
    """What the README shows of a /metrics page: every line but the order-dependent ones."""
    kept = []
    for line in text.splitlines():
        words = line.split(" ")
        name = (words[2] if line.startswith("#") and len(words) > 2 else words[0]).split("{")[0]
        if name.endswith(HIDDEN_METRIC_SUFFIXES) or HIDDEN_LABELS in line:
            continue
        kept.append(line)
    return "\n".join(kept)


def documented_text(example: Example, reply: Reply) -> str:
    """The block body the README should show for ``reply``."""
    if example.response_fence == "text":
        return shown_metrics(reply.body.decode())
    return reply.body.decode()


def newest_models_copy(target: Path) -> Path:
    """A private copy of the newest version of every committed model."""
    from service.models.repository import list_models, list_versions

    for name in list_models(REPO_ROOT / "models"):
        versions = list_versions(REPO_ROOT / "models" / name)
        if versions:
            newest = str(versions[-1])
            shutil.copytree(REPO_ROOT / "models" / name / newest, target / name / newest)
    return target


def regenerate(text: str, base_url: str, workdir: Path, grpc_url: str = "") -> str:
    """``text`` with every example's response block replaced by the live response (and
    every ``tritonclient`` example's output block by what it prints)."""
    lines = text.splitlines()
    replacements = []
    for example in readme_examples(text):
        reply = run_curl(example, base_url, workdir)
        assert 200 <= reply.status < 300, f"{example.line}: {reply.status} {reply.body[:300]!r}"
        if example.response_lines is not None:
            replacements.append((example.response_lines, documented_text(example, reply)))
    for client in client_examples(text) if grpc_url else []:
        if client.output_lines is not None:
            replacements.append(
                (client.output_lines, run_client_example(client, base_url, grpc_url))
            )
    replacements.sort()
    for (start, end), body in reversed(replacements):
        lines[start:end] = body.splitlines()
    return "\n".join(lines) + "\n"


# One worker, whatever the machine's cores: README's /metrics block shows one process's
# registry (several workers export the same counts in prometheus_client's multiprocess
# layout, which lists only what some worker has observed).
README_SERVER_ENV = {"DIGITPASS_WORKERS": "1"}


def main() -> None:
    from tests.server import run_server

    with tempfile.TemporaryDirectory(prefix="digitpass-readme-") as folder:
        repository = newest_models_copy(Path(folder) / "models")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITPASS_")}
        os.environ.clear()
        os.environ.update(env)  # the defaults the README documents, not the shell's
        with run_server(
            README_SERVER_ENV | {"DIGITPASS_MODEL_REPOSITORY": str(repository)}
        ) as server:
            text = regenerate(README.read_text(), server.url, Path(folder), server.grpc_url)
            README.write_text(text)
    print(f"rewrote the example responses in {README}")


if __name__ == "__main__":
    main()
