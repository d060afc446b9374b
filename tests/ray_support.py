"""A real two-node Ray cluster on this machine (loopback only), with digitpass deployed
on Ray Serve: one replica on each node, Serve's proxy on a free loopback port."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.rayserve.cluster import LOOPBACK, OBJECT_STORE_BYTES, apply_local_environment
from tests.server import free_port

OBJECT_STORE = OBJECT_STORE_BYTES // 2  # per node: 100 MB
METRICS_REPORT_MS = 500  # how often each worker hands its metrics to the node's agent


@dataclass
class RayServeHandle:
    url: str
    cluster: Any
    metrics_ports: list[int]

    def replicas(self) -> list[dict[str, Any]]:
        """The digitpass replica actors that are alive: pid, node, name."""
        from ray.util.state import list_actors

        actors = list_actors(
            filters=[("state", "=", "ALIVE")],
            detail=True,
            limit=1000,
            raise_on_missing_output=False,
        )
        return [
            {"pid": a.pid, "node_id": a.node_id, "name": a.name, "id": a.actor_id}
            for a in actors
            if (a.class_name or "").startswith("ServeReplica:digitpass")
        ]

    def exported_metrics(self) -> str:
        """Every node's metrics export, concatenated (Prometheus text)."""
        texts = []
        for port in self.metrics_ports:
            try:
                texts.append(httpx.get(f"http://{LOOPBACK}:{port}/metrics", timeout=5).text)
            except httpx.TransportError:
                continue
        return "\n".join(texts)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(interval)  # polling interval


@contextmanager
def ray_serve_cluster(repository: Path, **settings: object) -> Iterator[RayServeHandle]:
    """Head + one worker node, each with 1 CPU; digitpass with one replica per node."""
    previous = dict(os.environ)
    apply_local_environment()
    # The proxy (on the head) would send everything to the replica on its own node
    # until that one is full; spread requests over both nodes instead.
    os.environ["RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING"] = "0"
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from service.rayserve.deployment import DigitpassDeployment

    metrics_ports = [free_port(), free_port()]
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "node_ip_address": LOOPBACK,
            "include_dashboard": True,
            "dashboard_host": LOOPBACK,
            "dashboard_port": free_port(),
            "object_store_memory": OBJECT_STORE,
            "metrics_export_port": metrics_ports[0],
            "_system_config": {"metrics_report_interval_ms": METRICS_REPORT_MS},
        },
    )
    try:
        cluster.add_node(
            num_cpus=1,
            node_ip_address=LOOPBACK,
            object_store_memory=OBJECT_STORE,
            metrics_export_port=metrics_ports[1],
        )
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
        port = free_port()
        serve.start(proxy_location="HeadOnly", http_options={"host": LOOPBACK, "port": port})
        args = {"model_repository": str(repository), **settings}
        app = DigitpassDeployment.options(
            num_replicas=2,
            autoscaling_config=None,
            max_replicas_per_node=1,
            ray_actor_options={"num_cpus": 1, "num_gpus": 0},
        ).bind(args)
        serve.run(app, name="digitpass", route_prefix="/")
        yield RayServeHandle(f"http://{LOOPBACK}:{port}", cluster, metrics_ports)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()
            os.environ.clear()
            os.environ.update(previous)
