"""Dependencies of the routes, as ``Annotated`` aliases: the runtime and the caller's role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from anatomy_vlm.api.auth import KeyFileError, Principal, Role
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.api.services.runtime import Runtime

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                        description="an API key from `anatomy-vlm api-key create --role reader|curator|admin`")


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ServiceError(503, "the service is starting or stopping")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_principal(runtime: RuntimeDep, key: Annotated[str | None, Security(_api_key)]) -> Principal:
    if not key:
        raise ServiceError(401, f"missing API key: send it in the {API_KEY_HEADER} header")
    try:
        principal = runtime.keys.authenticate(key)
    except KeyFileError as error:
        raise ServiceError(503, str(error)) from error
    if principal is None:
        raise ServiceError(401, "unknown or revoked API key")
    return principal


def require(role: Role):
    """A dependency that lets through keys of ``role`` or higher (403 otherwise)."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise ServiceError(403, f"this needs a {role.value} key; key {principal.key_id!r} "
                                    f"({principal.name}) is a {principal.role.value} key")
        return principal

    return check


Reader = Annotated[Principal, Depends(require(Role.READER))]
Curator = Annotated[Principal, Depends(require(Role.CURATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
