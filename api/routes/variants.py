from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from anatomy_vlm.api import schemas
from anatomy_vlm.api.deps import Admin, Curator, Reader, RuntimeDep
from anatomy_vlm.api.errors import error_responses
from anatomy_vlm.api.services import graph as service

router = APIRouter(prefix="/variants", tags=["variants"])


@router.get("", response_model=list[schemas.VariantOut], summary="Knowledge variants with versions and sizes",
            responses=error_responses(401, 403, 503))
def list_variants(runtime: RuntimeDep, _: Reader) -> list[schemas.VariantOut]:
    return service.list_variants(runtime)


@router.post("", response_model=schemas.VariantCreatedOut, status_code=201,
             summary="Create a variant from a base by recipes (curator)",
             responses=error_responses(401, 403, 404, 409, 422, 503))
def create_variant(body: schemas.VariantIn, runtime: RuntimeDep, _: Curator) -> schemas.VariantCreatedOut:
    return service.create_variant(runtime, body)


@router.get("/diff", response_model=schemas.VariantDiffOut, summary="Compare two variants",
            responses=error_responses(401, 403, 404, 422, 503))
def diff_variants(
    runtime: RuntimeDep, _: Reader,
    a: Annotated[str, Query(min_length=1, max_length=100)],
    b: Annotated[str, Query(min_length=1, max_length=100)],
) -> schemas.VariantDiffOut:
    return service.diff_variants(runtime, a, b)


@router.delete("/{name}", response_model=schemas.VariantOut, summary="Delete a variant (admin)",
               responses=error_responses(401, 403, 404, 409, 503))
def delete_variant(name: str, runtime: RuntimeDep, _: Admin) -> schemas.VariantOut:
    return service.delete_variant(runtime, name)
