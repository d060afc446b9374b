"""``python -m service.rayserve`` (``make serve-ray``): digitpass on Ray Serve.

Without ``RAY_ADDRESS`` it starts a one-node Ray cluster on loopback (see
``service.rayserve.cluster``), starts Serve's proxy on ``--host``/``--port`` and
deploys; SIGTERM or Ctrl-C deletes the application, stops Serve and the cluster it
started, and exits 0. With ``RAY_ADDRESS`` it deploys to that cluster instead, and
on SIGTERM deletes only its application, leaving the cluster (and Serve) running.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.rayserve.cluster import LOOPBACK, apply_local_environment, start_local

APP_NAME = "digitpass"
TEARDOWN_S = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.rayserve",
        description="Serve digitpass on Ray Serve (a local loopback cluster unless "
        "RAY_ADDRESS names one). Other settings: DIGITPASS_* variables.",
    )
    parser.add_argument("--host", default=os.environ.get("DIGITPASS_HOST", LOOPBACK))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DIGITPASS_PORT", "8000")))
    parser.add_argument("--num-cpus", type=float, default=1, help="CPUs per replica")
    parser.add_argument("--num-gpus", type=float, default=0, help="GPUs per replica")
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--max-replicas", type=int, default=None, help="default: cores")
    parser.add_argument(
        "--target-ongoing-requests", type=float, default=64, help="autoscaling target"
    )
    return parser


def deployment_options(args: argparse.Namespace, cores: int) -> dict[str, Any]:
    """``Deployment.options`` from the command line."""
    from service.rayserve.deployment import AUTOSCALING

    maximum = args.max_replicas or max(args.min_replicas, int(cores // max(args.num_cpus, 1)))
    return {
        "ray_actor_options": {"num_cpus": args.num_cpus, "num_gpus": args.num_gpus},
        "autoscaling_config": {
            **AUTOSCALING,
            "min_replicas": args.min_replicas,
            "max_replicas": max(maximum, args.min_replicas),
            "target_ongoing_requests": args.target_ongoing_requests,
        },
    }


def replica_args(host: str, existing: str | None = None) -> dict[str, Any]:
    """digitpass settings for the replicas: the repository as an absolute path, so that
    it means the same folder wherever a replica runs, and the proxy's address (whether
    ``/admin/reload`` may go without a token depends on it).

    On an existing cluster (``existing``: its ``RAY_ADDRESS``) Serve's proxy may be
    running already, bound where that cluster's operator chose (``serve.start`` does not
    move it), and other nodes run proxies of their own: the replicas count as reachable
    from anywhere, so ``/admin/reload`` needs ``DIGITPASS_ADMIN_TOKEN`` there.
    """
    repository = os.environ.get("DIGITPASS_MODEL_REPOSITORY", "models")
    reach = host if existing is None else "0.0.0.0"
    return {"model_repository": str(Path(repository).resolve()), "host": reach}


def on_loopback(address: str) -> bool:
    """Whether a ``RAY_ADDRESS`` (``host:port`` or ``ray://host:port``) is on loopback."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def main(args: argparse.Namespace) -> int:
    existing = os.environ.get("RAY_ADDRESS")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not existing or on_loopback(existing):
        # Before Ray is imported (it reads these then). A cluster on this machine's
        # loopback is reached on loopback too: Ray would otherwise swap 127.0.0.1 for
        # the machine's external address, where that cluster does not listen.
        apply_local_environment()
    stop = threading.Event()

    def request_stop(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)  # until Ray is up, too
    signal.signal(signal.SIGINT, request_stop)
    import ray
    from ray import serve

    from service.rayserve.deployment import DigitpassDeployment

    if existing:
        ray.init(address=existing, configure_logging=False)
    else:
        start_local()
    # ray.init installs handlers of its own: ours again, so a signal stops us cleanly.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        serve.start(
            http_options={"host": args.host, "port": args.port},
            logging_config={"enable_access_log": False},
        )
        cores = int(ray.cluster_resources().get("CPU", 1))
        app = DigitpassDeployment.options(**deployment_options(args, cores)).bind(
            replica_args(args.host, existing)
        )
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        print(
            f"digitpass-serve-ray: serving on http://{args.host}:{args.port} "
            f"({'cluster ' + existing if existing else 'local loopback cluster'})",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
    finally:
        # Ctrl-C in a terminal reaches the local cluster's processes too, and they may be
        # gone already: the application's teardown gets a deadline, then the cluster goes.
        teardown = threading.Thread(target=_delete_app, args=(serve, existing), daemon=True)
        teardown.start()
        teardown.join(TEARDOWN_S)
        ray.shutdown()
    return 0


def _delete_app(serve: Any, existing: str | None) -> None:
    try:
        serve.delete(APP_NAME)
        if not existing:
            serve.shutdown()
    except Exception as exc:  # the cluster is going away anyway
        print(f"digitpass-serve-ray: teardown: {exc!r}", file=sys.stderr, flush=True)


def run(argv: Sequence[str] | None = None) -> None:
    sys.exit(main(build_parser().parse_args(argv)))


if __name__ == "__main__":
    run()
