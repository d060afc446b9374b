"""deploy/: the Serve config file and the KubeRay RayService manifest are valid: YAML
that parses, the manifest's required fields, and configs that Ray's own schema accepts
and that name this code's application and deployment."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from service.rayserve.deployment import DEPLOYMENT_NAME
from service.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def serve_config() -> dict:
    return yaml.safe_load((DEPLOY / "serve-config.yaml").read_text())


def manifest() -> dict:
    return yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())


def check_application(config: dict) -> None:
    schema = ServeDeploySchema.model_validate(config)
    (app,) = schema.applications
    module, _, attribute = app.import_path.partition(":")
    builder = getattr(importlib.import_module(module), attribute)
    assert callable(builder)
    assert [d.name for d in app.deployments] == [DEPLOYMENT_NAME]
    Settings(**app.args)  # every arg is a digitpass setting with a valid value
    deployment = app.deployments[0]
    autoscaling = deployment.autoscaling_config
    assert autoscaling["min_replicas"] >= 1
    assert autoscaling["max_replicas"] > autoscaling["min_replicas"]
    assert autoscaling["target_ongoing_requests"] > 0
    assert deployment.max_ongoing_requests >= autoscaling["target_ongoing_requests"]
    assert deployment.ray_actor_options.num_cpus > 0
    assert deployment.ray_actor_options.num_gpus is not None
    assert app.route_prefix == "/"


def test_serve_config_is_accepted_by_ray_and_names_this_application():
    check_application(serve_config())


def test_rayservice_has_the_required_fields():
    document = manifest()
    assert document["apiVersion"] == "ray.io/v1"
    assert document["kind"] == "RayService"
    assert document["metadata"]["name"]
    spec = document["spec"]
    assert isinstance(spec["serveConfigV2"], str)
    cluster = spec["rayClusterConfig"]
    head = cluster["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    groups = [head["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert isinstance(group["rayStartParams"], dict)
    repository = yaml.safe_load(spec["serveConfigV2"])["applications"][0]["args"]
    for template in groups:
        (container,) = template["spec"]["containers"]
        assert container["image"] and container["name"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        # the shared repository is mounted where the replicas look for it, read-only
        assert mounts[repository["model_repository"]]["readOnly"] is True
        volumes = {v["name"] for v in template["spec"]["volumes"]}
        assert {m["name"] for m in container["volumeMounts"]} <= volumes
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["RAY_USAGE_STATS_ENABLED"] == "0"


def test_rayservice_serve_config_is_accepted_by_ray_and_is_the_config_file():
    embedded = yaml.safe_load(manifest()["spec"]["serveConfigV2"])
    check_application(embedded)
    assert embedded == serve_config()


def test_ray_address_on_loopback():
    from service.rayserve.__main__ import on_loopback

    assert on_loopback("127.0.0.1:6379") and on_loopback("ray://localhost:10001")
    assert on_loopback("[::1]:6379")
    assert not on_loopback("10.0.0.5:6379") and not on_loopback("ray://head.svc:10001")


def test_command_line_deployment_options():
    from service.rayserve.__main__ import build_parser, deployment_options

    default = deployment_options(build_parser().parse_args([]), cores=4)
    assert default["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 0}
    assert default["autoscaling_config"]["min_replicas"] == 1
    assert default["autoscaling_config"]["max_replicas"] == 4  # one replica per core
    args = build_parser().parse_args(
        ["--num-gpus", "1", "--num-cpus", "2", "--min-replicas", "2", "--max-replicas", "6"]
    )
    options = deployment_options(args, cores=16)
    assert options["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 1}
    assert options["autoscaling_config"]["max_replicas"] == 6


def test_admin_is_open_without_a_token_only_behind_a_loopback_proxy_that_we_started():
    from service.rayserve.__main__ import replica_args
    from service.rayserve.deployment import replica_settings

    def loopback_only(host: str, existing: str | None) -> bool:
        return replica_settings(replica_args(host, existing), None).listens_on_loopback_only()

    assert loopback_only("127.0.0.1", None)  # make serve-ray: our own loopback cluster
    assert not loopback_only("0.0.0.0", None)
    # RAY_ADDRESS: that cluster's proxy may already listen anywhere, whatever --host says.
    assert not loopback_only("127.0.0.1", "10.0.0.5:6379")
    assert not loopback_only("127.0.0.1", "127.0.0.1:6379")


def test_replica_settings_are_one_process_and_follow_the_cpus_ray_gave():
    from service.rayserve.deployment import replica_settings

    settings = replica_settings({"model_repository": "/mnt/models"}, assigned_cpus=4.0)
    assert settings.resolved_workers() == 1 and settings.run_dir is None
    assert settings.resolved_intra_op_threads() == 4
    assert replica_settings({"intra_op_threads": 2}, 4.0).resolved_intra_op_threads() == 2
    assert replica_settings({}, None).workers == 1
    # No gRPC port per replica, and admin needs a token unless the proxy is on loopback.
    assert replica_settings({}, None).grpc_port == 0
    assert not replica_settings({}, None).listens_on_loopback_only()
    assert replica_settings({"host": "127.0.0.1"}, None).listens_on_loopback_only()


def test_the_metrics_export_mirrors_every_sample_with_the_replica_tag(monkeypatch):
    from types import SimpleNamespace

    from service.metrics import ServiceMetrics
    from service.rayserve import metrics_export

    recorded: dict[tuple, float] = {}

    class FakeGauge:  # ray.util.metrics.Gauge, at the boundary with Ray's agent
        def __init__(self, name, description, tag_keys):
            self.name, self.tag_keys = name, tag_keys

        def set(self, value, tags):
            assert set(tags) == set(self.tag_keys)
            recorded[(self.name, tuple(sorted(tags.items())))] = value

    monkeypatch.setattr("ray.util.metrics.Gauge", FakeGauge)
    metrics = ServiceMetrics()
    metrics.observe_request("/predict/digit", "POST", 200, 0.01)
    metrics.batch_size.labels("digit").observe(3)
    export = metrics_export.RayMetricsExport(
        SimpleNamespace(runtime=SimpleNamespace(metrics=metrics))
    )
    assert export.export_once() > 0
    tags = (("method", "POST"), ("replica", ""), ("route", "/predict/digit"), ("status", "200"))
    assert recorded[("digitpass_http_requests_total", tags)] == 1
    assert (
        recorded[("digitpass_inference_batch_size_sum", (("model", "digit"), ("replica", "")))] == 3
    )
    assert not any(name.endswith("_created") for name, _ in recorded)
