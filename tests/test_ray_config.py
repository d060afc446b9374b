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
