"""Rendering errors in the envelope of the retired service (docs/wire-contract.md#error-envelope)."""
from __future__ import annotations

from fastapi.responses import JSONResponse

from loupe.errors import ServiceError

UNAUTHORIZED_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)


def error_response(error: ServiceError) -> JSONResponse:
    headers = {"x-ms-error-code": error.code, **error.headers}
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def unauthorized() -> ServiceError:
    return ServiceError(
        401,
        "401",
        UNAUTHORIZED_MESSAGE,
        headers={
            "WWW-Authenticate": 'AzureApiManagementKey realm="loupe",name="Ocp-Apim-Subscription-Key",type="header"'
        },
    )
