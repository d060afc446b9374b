"""The OpenAPI document: FastAPI's (operations) plus every served model's routes.

Model routes are described by their kind (``Route.openapi``, ``Route.response_model``);
this module only lays them out as OpenAPI path items, with the pydantic models'
JSON schemas in ``components``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.models.kinds import Route
from service.models.kinds.schemas import ErrorResponse

COMMON_ERRORS = (400, 404, 413, 422, 500, 503, 504)  # 400/413: unreadable or oversized bodies
VERSION_PARAMETER = {
    "name": "version",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "title": "Version"},
    "description": "A served version of the model (its version policy may serve several); "
    "default: the highest served. 404 when that version is not served",
}
REF = "#/components/schemas/{model}"


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def add_model_routes(document: dict[str, Any], routes: list[tuple[str, Route]]) -> dict[str, Any]:
    """``document`` with a path item for every model route (a new dict; input untouched)."""
    paths = dict(document.get("paths", {}))
    components = dict(document.get("components", {}))
    schemas = dict(components.get("schemas", {}))
    error_ref = _schema_ref(ErrorResponse, schemas)
    for name, route in sorted(routes, key=lambda item: (item[1].path, item[1].method)):
        operation: dict[str, Any] = {
            "tags": ["predict"],
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_{route.path.strip('/').replace('/', '_')}",
        }
        for key, value in route.openapi.items():
            if key == "requestBody":
                value = _with_body_refs(value, schemas)
            operation[key] = value
        operation["parameters"] = [*operation.get("parameters", []), VERSION_PARAMETER]
        responses: dict[str, Any] = {
            "200": {
                "description": f"Answer of model '{name}'",
                "content": _json_content(_schema_ref(route.response_model, schemas)),
            }
        }
        for status in sorted({*COMMON_ERRORS, *route.error_statuses}):
            responses[str(status)] = {"description": "Error", "content": _json_content(error_ref)}
        operation["responses"] = responses
        paths.setdefault(route.path, {})
        paths[route.path] = {**paths[route.path], route.method.lower(): operation}
    components["schemas"] = schemas
    return {**document, "paths": paths, "components": components}


def _with_body_refs(body: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A request body whose JSON schema is a pydantic model class is stored by reference."""
    content = {}
    for media_type, entry in body.get("content", {}).items():
        schema = entry.get("schema")
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            entry = {**entry, "schema": _schema_ref(schema, schemas)}
        content[media_type] = entry
    return {**body, "content": content}
