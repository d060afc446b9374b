"""A Ray cluster bound to the loopback interface, for ``make serve-ray`` and the tests.

Ray takes the machine's external address for its node unless told otherwise, and
even when told ``127.0.0.1`` it swaps that for the external address
(``ray._private.services.resolve_ip_for_localhost``) whenever it believes it may be
part of a multi-node cluster. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is Ray's own
switch for a machine-local cluster: with it, the node's address stays ``127.0.0.1``
and every server of the cluster (GCS, raylet, object manager, workers, dashboard and
its agents, the runtime-env agent) listens on loopback only; the dashboard is bound
to ``127.0.0.1`` too. Several nodes on one machine (``ray.cluster_utils.Cluster``)
work the same way. Only the Serve proxy is bound where ``HOST`` says.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
LOCAL_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep 127.0.0.1 as the node's address
}
OBJECT_STORE_BYTES = 200 * 1024 * 1024  # requests are small; Ray's default takes 30% of memory
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def local_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a loopback cluster: usage statistics off, the node address
    kept on loopback, and this checkout first on the workers' import path (so that
    replicas run this code, not some other installed copy)."""
    env = dict(os.environ if base is None else base)
    env.update(LOCAL_ENV)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    return env


def apply_local_environment() -> None:
    """Set :func:`local_environment` on this process: for the Ray processes it starts,
    and for this one (Ray reads the switch once, at import: set it there too)."""
    os.environ.update(local_environment())
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def node_options(**extra: Any) -> dict[str, Any]:
    """``ray.init`` / ``Cluster.add_node`` options for a loopback node."""
    return {
        "object_store_memory": OBJECT_STORE_BYTES,
        **extra,
    }


def start_local(num_cpus: int | None = None, metrics_export_port: int | None = None) -> Any:
    """Start a one-node loopback cluster in this process (``ray.init``); the context."""
    apply_local_environment()
    import ray

    return ray.init(
        _node_ip_address=LOOPBACK,
        include_dashboard=True,
        dashboard_host=LOOPBACK,
        num_cpus=num_cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        _metrics_export_port=metrics_export_port,
        configure_logging=False,
        log_to_driver=True,
    )
