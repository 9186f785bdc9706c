from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Query

from anatomy_vlm.api import schemas
from anatomy_vlm.api.deps import Curator, Reader, RuntimeDep
from anatomy_vlm.api.errors import error_responses
from anatomy_vlm.api.services import curation

router = APIRouter(tags=["curation"])
_WRITE_ERRORS = error_responses(401, 403, 404, 409, 422, 500, 503)
_VERSION = r"^[0-9a-fA-F]{8,64}$"


@router.post("/relations", response_model=schemas.CurationOut, status_code=201, summary="Add a relation (curator)",
             responses=_WRITE_ERRORS)
def add_relation(body: schemas.RelationIn, runtime: RuntimeDep, principal: Curator) -> schemas.CurationOut:
    return curation.add_relation(runtime, principal, body)


@router.delete("/relations", response_model=schemas.CurationOut, summary="Remove a relation (curator)",
               responses=_WRITE_ERRORS)
def remove_relation(body: schemas.RelationKeyIn, runtime: RuntimeDep, principal: Curator) -> schemas.CurationOut:
    return curation.remove_relation(runtime, principal, body)


@router.get("/history", response_model=list[schemas.AuditOut], summary="The curation audit log, newest first",
            responses=error_responses(401, 403, 500))
def get_history(
    runtime: RuntimeDep, _: Reader,
    concept_id: Annotated[Optional[str], Query(max_length=200, description="only changes touching this concept")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[schemas.AuditOut]:
    return curation.history(runtime, concept_id, limit)


@router.get("/versions/diff", response_model=schemas.VersionDiffOut,
            summary="What changed between two curated versions (content hashes from /history)",
            responses=error_responses(401, 403, 404, 422, 503))
def diff_versions(
    runtime: RuntimeDep, _: Reader,
    old: Annotated[str, Query(pattern=_VERSION, description="content hash or a prefix of 8+ hex digits")],
    new: Annotated[str, Query(pattern=_VERSION, description="content hash or a prefix of 8+ hex digits")],
) -> schemas.VersionDiffOut:
    return curation.diff_versions(runtime, old, new)
