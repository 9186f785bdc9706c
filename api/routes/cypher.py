from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from anatomy_vlm.api import schemas
from anatomy_vlm.api.deps import Reader, RuntimeDep
from anatomy_vlm.api.errors import error_responses
from anatomy_vlm.api.services import graph as service
from anatomy_vlm.api.services.errors import ServiceError

router = APIRouter(tags=["cypher"])


@router.post("/cypher", response_model=schemas.CypherOut,
             summary="Read-only Cypher in a READ transaction with a timeout and a row limit",
             responses=error_responses(400, 401, 403, 422, 503, 504))
async def post_cypher(body: schemas.CypherIn, runtime: RuntimeDep, _: Reader) -> schemas.CypherOut:
    # The server cancels the transaction at cypher_timeout_s (ArcadeDB at its statement timeout) and
    # the store's watchdog closes the query's connection soon after; the grace makes sure the client
    # always hears back.
    timeout = runtime.settings.cypher_timeout_s
    try:
        return await asyncio.wait_for(run_in_threadpool(service.run_cypher, runtime, body),
                                      timeout + runtime.settings.cypher_grace_s)
    except asyncio.TimeoutError:
        raise ServiceError(504, f"query did not finish within {timeout:g} s") from None
