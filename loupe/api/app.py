"""The HTTP API: one FastAPI app, served by uvicorn locally and by ``func.AsgiFunctionApp`` on Azure."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from loupe import __version__
from loupe.api.body import errors_to_bad_request
from loupe.api.errors import error_response
from loupe.api.middleware import (
    CUSTOM_VISION_PREFIX,
    ApiKeyMiddleware,
    ApiVersionMiddleware,
    CollapseSlashesMiddleware,
    CustomVisionPathMiddleware,
)
from loupe.api.openapi import install as install_openapi
from loupe.api.routes import analyze, datasets, evaluations, exports, models
from loupe.api.routes.customvision import images as cv_images
from loupe.api.routes.customvision import iterations as cv_iterations
from loupe.api.routes.customvision import prediction_api as cv_prediction_api
from loupe.api.routes.customvision import predictions as cv_predictions
from loupe.api.routes.customvision import projects as cv_projects
from loupe.api.routes.customvision import transfer as cv_transfer
from loupe.api.studio import router as studio_router
from loupe.customvision.errors import CustomVisionError
from loupe.errors import ServiceError, shown
from loupe.services import Services

log = logging.getLogger(__name__)

_STATUS_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType"}


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves on this path. FastAPI has one route per method, and Starlette's
    405 names only the first route that matched the path; RFC 9110 wants them all in ``Allow``.
    Each method is tried against the routes through ``matches``, which sees into included routers."""
    routes = request.app.router.routes
    allowed = [method for method in _METHODS
               if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)]
    return ", ".join(allowed)


def create_app(services: Services | None = None) -> FastAPI:
    services = services or Services()
    app = FastAPI(
        title="Loupe",
        version=__version__,
        summary="Azure AI Vision model customization API, self-hosted: datasets, models, evaluations, analyze.",
    )
    app.state.services = services
    install_openapi(app)
    app.include_router(datasets.router)
    app.include_router(models.router)
    app.include_router(evaluations.router)
    app.include_router(exports.router)
    app.include_router(analyze.router)
    for router in (cv_projects.router, cv_images.router, cv_iterations.router, cv_predictions.router,
                   cv_transfer.router, cv_prediction_api.router, studio_router):
        app.include_router(router)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    def respond(request: Request, error: ServiceError) -> JSONResponse:
        # Custom Vision callers read a top-level {"code", "message"} (docs/customvision.md#errors)
        if request.url.path.startswith(CUSTOM_VISION_PREFIX) and not isinstance(error, CustomVisionError):
            error = CustomVisionError(error.status, error.code, error.message, headers=error.headers)
        return error_response(error)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(request, errors_to_bad_request(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, str(exc.status_code))
        message = "Resource not found." if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            message = f"The method {shown(request.method, 20)} is not allowed on {shown(request.url.path)}."
            headers["Allow"] = allowed_methods(request)
        return respond(request, ServiceError(exc.status_code, code, message, headers=headers))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return respond(request, ServiceError(500, "InternalServerError",
                                             "An unexpected error occurred; it has been logged."))

    # Middleware runs outermost-last-added: slashes collapse before the key and version checks.
    app.add_middleware(ApiVersionMiddleware)
    app.add_middleware(ApiKeyMiddleware, keys=services.settings.accepted_api_keys)
    app.add_middleware(CustomVisionPathMiddleware)
    app.add_middleware(CollapseSlashesMiddleware)
    return app
