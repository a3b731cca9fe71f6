"""deploy/rayservice.yaml is a well-formed KubeRay RayService whose Serve config Ray Serve itself accepts."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "rayservice.yaml"

_CONTAINER = {
    "type": "object", "required": ["name", "image"],
    "properties": {"name": {"type": "string"}, "image": {"type": "string"},
                   "resources": {"type": "object", "properties": {"limits": {"type": "object"},
                                                                 "requests": {"type": "object"}}},
                   "ports": {"type": "array", "items": {"type": "object", "required": ["containerPort"]}}},
}
_TEMPLATE = {"type": "object", "required": ["spec"], "properties": {"spec": {
    "type": "object", "required": ["containers"],
    "properties": {"containers": {"type": "array", "minItems": 1, "items": _CONTAINER}}}}}
_START_PARAMS = {"type": "object", "additionalProperties": {"type": "string"}}
# The RayService fields this manifest uses, as KubeRay's ray.io/v1 CRD types them.
SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayService"},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}}},
        "spec": {"type": "object", "required": ["serveConfigV2", "rayClusterConfig"], "additionalProperties": False,
                 "properties": {
                     "serviceUnhealthySecondThreshold": {"type": "integer", "minimum": 0},
                     "deploymentUnhealthySecondThreshold": {"type": "integer", "minimum": 0},
                     "serveConfigV2": {"type": "string"},
                     "rayClusterConfig": {
                         "type": "object", "required": ["headGroupSpec"], "additionalProperties": False,
                         "properties": {
                             "rayVersion": {"type": "string"},
                             "headGroupSpec": {"type": "object", "required": ["template"],
                                               "properties": {"rayStartParams": _START_PARAMS,
                                                              "template": _TEMPLATE}},
                             "workerGroupSpecs": {"type": "array", "items": {
                                 "type": "object", "required": ["groupName", "template"],
                                 "properties": {"groupName": {"type": "string"},
                                                "replicas": {"type": "integer", "minimum": 0},
                                                "minReplicas": {"type": "integer", "minimum": 0},
                                                "maxReplicas": {"type": "integer", "minimum": 0},
                                                "rayStartParams": _START_PARAMS, "template": _TEMPLATE}}}}}}},
    },
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def test_manifest_matches_the_rayservice_schema(manifest: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(manifest, SCHEMA)
    for group in manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_schema_catches_a_broken_manifest(manifest: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    broken = {**manifest, "spec": {**manifest["spec"], "serveConfigV2": {"applications": []}}}
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        jsonschema.validate(broken, SCHEMA)


def test_serve_config_is_valid_for_ray_serve_and_imports(manifest: dict[str, Any]) -> None:
    schema = pytest.importorskip("ray.serve.schema")
    import ray

    config = schema.ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    assert manifest["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__  # the pinned extra
    (app,) = config.applications
    module, _, name = app.import_path.partition(":")
    builder = getattr(importlib.import_module(module), name)
    bound = builder(app.args)
    assert bound._bound_deployment.num_replicas == int(app.args["replicas"])
    assert app.runtime_env["env_vars"]["TRIAGE_LABELSTUDIO__ENABLED"] == "false"  # no shared outbox yet
