from __future__ import annotations

from fastapi import APIRouter

from anatomy_vlm.api import schemas
from anatomy_vlm.api.deps import Reader, RuntimeDep
from anatomy_vlm.api.errors import error_responses
from anatomy_vlm.api.services import graph as service

router = APIRouter(prefix="/predictions", tags=["predictions"])


@router.get("/{prediction_id:path}/explanation", response_model=schemas.ExplanationOut,
            summary="The Cypher explanation of a stored prediction and the subgraph it returns",
            responses=error_responses(401, 403, 404, 503))
def get_explanation(prediction_id: str, runtime: RuntimeDep, _: Reader) -> schemas.ExplanationOut:
    return service.explain_prediction(runtime, prediction_id)


@router.get("/{prediction_id:path}", response_model=schemas.PredictionRecordOut, summary="A stored prediction",
            responses=error_responses(401, 403, 404, 503))
def get_prediction(prediction_id: str, runtime: RuntimeDep, _: Reader) -> schemas.PredictionRecordOut:
    return service.get_prediction(runtime, prediction_id)
