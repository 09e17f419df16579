"""The OpenAPI document, true to the server: what a client generated from /openapi.json must send
and what it gets back.

Request bodies are parsed by hand (case-insensitive keys, errors in the service's envelope), so
their schemas are attached to the operations explicitly. What the middleware enforces before
routing (the key, ``api-version``) is added to every /computervision operation by ``install``;
FastAPI's default 422 never happens (validation errors are 400s) and is replaced by the real
error responses in the envelope of docs/wire-contract.md#error-envelope.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from loupe.api.middleware import API_PREFIX, SUPPORTED_API_VERSIONS
from loupe.datasets.requests import NAME_MAX_LENGTH, NAME_PATTERN

# docs/wire-contract.md#resource-names: the schema of name_problem's rule. The server checks names
# itself (check_name, one rule for API and drops) so its 400 says which rule was broken.
NAME_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": NAME_MAX_LENGTH,
                               "pattern": NAME_PATTERN.pattern}


def resource_name(what: str) -> Any:
    """A ``{name}`` path parameter, documented with the name rule (validated by check_name)."""
    return Path(description=f"The {what} name (docs/wire-contract.md#resource-names).",
                json_schema_extra={"minLength": 1, "maxLength": NAME_MAX_LENGTH, "pattern": NAME_PATTERN.pattern})


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str
    target: str | None = None


class InnerError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str
    target: str | None = None
    details: list[ErrorDetail] | None = None
    innererror: InnerError | None = None


class ErrorResponse(BaseModel):
    """docs/wire-contract.md#error-envelope; the code is repeated in ``x-ms-error-code``."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorBody


_ERROR_DESCRIPTIONS = {
    400: "InvalidRequest (inner code BadArgument, ...), MissingApiVersionParameter, UnsupportedApiVersionValue, "
         "or a domain code such as DatasetNotFound",
    401: "Access denied: missing or wrong Ocp-Apim-Subscription-Key (code \"401\")",
    404: "NotFound",
    409: "ModelAlreadyExists, DatasetAlreadyExists, EvaluationAlreadyExists, ExportAlreadyInProgress or Conflict",
    412: "PreconditionFailed: If-Match does not match the eTag",
    413: "The body is larger than the route's documented limit",
    415: "The body's Content-Type is not JSON (for a zip import: not application/zip)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the error envelope."""
    return {status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]} for status in statuses}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, defs)}},
        }
    }


def query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def header(name: str, description: str) -> dict[str, Any]:
    # printable ASCII: uvicorn refuses control characters in header values before the app sees them
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string", "pattern": "^[ -~]*$"},
            "description": description}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace local $refs by their definitions (the app's components don't hold these models)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return _inline(defs[ref.rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


API_VERSION_PARAMETER = query(
    "api-version", {"type": "string", "enum": list(SUPPORTED_API_VERSIONS)},
    "Required on every call (docs/wire-contract.md#api-versions); checked before routing.", required=True)
SECURITY_SCHEME = {"type": "apiKey", "in": "header", "name": "Ocp-Apim-Subscription-Key",
                   "description": "One of the keys in LOUPE_API_KEYS (docs/wire-contract.md#authentication)."}
_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def _api_operation(operation: dict[str, Any]) -> None:
    """What the middleware adds to every /computervision operation: the key and api-version."""
    operation["parameters"] = [API_VERSION_PARAMETER, *operation.get("parameters", [])]
    operation["security"] = [{"apiKey": []}]
    responses = operation["responses"]
    for status in (400, 401):
        responses.setdefault(str(status), {"description": _ERROR_DESCRIPTIONS[status],
                                           "content": {"application/json": {"schema": _ENVELOPE_REF}}})


def build(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            operation["responses"].pop("422", None)  # validation errors are 400s (app.py)
            if path.startswith(API_PREFIX):
                _api_operation(operation)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for model in (ErrorResponse,):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    components["securitySchemes"] = {"apiKey": SECURITY_SCHEME}
    return document


def install(app: FastAPI) -> None:
    """Serve ``build``'s document (computed once) as the app's /openapi.json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
