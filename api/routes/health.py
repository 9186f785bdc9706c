from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from anatomy_vlm.api import schemas
from anatomy_vlm.api.deps import RuntimeDep
from anatomy_vlm.api.services import health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=schemas.HealthOut, summary="The process answers")
def get_health() -> schemas.HealthOut:
    return schemas.HealthOut()


@router.get("/ready", response_model=schemas.ReadyOut, summary="Graph reachable and model loaded",
            responses={503: {"model": schemas.ReadyOut, "description": "graph or model not ready; the body says which"}})
async def get_ready(runtime: RuntimeDep):
    ready = await run_in_threadpool(health.readiness, runtime)
    if ready.graph and ready.model:
        return ready
    return JSONResponse(ready.model_dump(), status_code=503)
