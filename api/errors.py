"""Every error answered as ``{"detail": "<message>"}``, and the documented error responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from anatomy_vlm.api.schemas import ErrorOut
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.exceptions import GraphUnavailableError

log = logging.getLogger(__name__)

_DESCRIPTIONS = {
    400: "the request was refused (e.g. a Cypher query that writes)",
    401: "missing, unknown or revoked API key",
    403: "the key's role is too low for this",
    404: "not found",
    409: "conflicts with the current state",
    413: "upload or image too large",
    415: "unsupported media type",
    422: "invalid input",
    500: "internal error",
    503: "the graph or the model is unavailable",
    504: "timed out",
}


def error_responses(*codes: int) -> dict[int, dict]:
    """OpenAPI ``responses`` entries for the given status codes, all with the ``ErrorOut`` body."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


def _location(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part not in ("body",)) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    @app.exception_handler(GraphUnavailableError)
    async def graph_unavailable(_: Request, error: GraphUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in error.errors())
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else str(error.detail)
        return JSONResponse({"detail": detail}, status_code=error.status_code, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(error).__name__}): {error}"}, status_code=500)
