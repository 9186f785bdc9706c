from __future__ import annotations

import asyncio
import threading
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from anatomy_vlm.api import schemas
from anatomy_vlm.api.auth import Role
from anatomy_vlm.api.deps import Reader, RuntimeDep
from anatomy_vlm.api.errors import error_responses
from anatomy_vlm.api.services import predict as service
from anatomy_vlm.api.services.errors import ServiceError

router = APIRouter(tags=["predict"])

# The body is read by hand (not as a ``File`` parameter) so that a request that is not
# multipart gets 415 instead of a "field required" 422; this describes it for the OpenAPI schema.
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": ["file"],
                       "properties": {"file": {"type": "string", "format": "binary",
                                               "description": "a PNG, JPEG or DICOM chest radiograph"}}},
        }},
    }
}


@router.post(
    "/predict", response_model=schemas.PredictOut, summary="Regions, findings and their explanations for one image",
    openapi_extra=_UPLOAD_BODY,
    responses=error_responses(401, 403, 409, 413, 415, 422, 503, 504),
)
async def predict(
    request: Request,
    runtime: RuntimeDep,
    principal: Reader,
    persist: Annotated[bool, Query(description="write the provenance to the graph (curator key)")] = False,
    top_k: Annotated[int, Query(ge=1, le=29, description="regions per finding")] = 3,
    min_probability: Annotated[float, Query(ge=0.0, le=1.0, description="leave out less probable findings")] = 0.0,
) -> schemas.PredictOut:
    if persist and not principal.role.allows(Role.CURATOR):
        raise ServiceError(403, f"persist=true writes to the graph and needs a curator key; key {principal.key_id!r} "
                                f"is a {principal.role.value} key")
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ServiceError(415, f"send the image as multipart/form-data with a field 'file', not {content_type or 'no content type'!r}")
    form = await request.form(max_files=1, max_fields=4)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ServiceError(422, "the multipart body has no file field named 'file'")
        cancelled = threading.Event()
        work = run_in_threadpool(service.predict_upload, runtime, upload.file, upload.filename or "upload",
                                 upload.content_type or "", persist=persist, top_k=top_k,
                                 min_probability=min_probability, cancelled=cancelled)
        try:
            return await asyncio.wait_for(work, timeout=runtime.settings.predict_timeout_s)
        except asyncio.TimeoutError:
            cancelled.set()  # the worker checks this before it writes: a timed-out request writes nothing
            raise ServiceError(504, f"prediction took longer than {runtime.settings.predict_timeout_s:g} s") from None
    finally:
        await form.close()
