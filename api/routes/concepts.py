from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Query

from anatomy_vlm.api import schemas
from anatomy_vlm.api.deps import Curator, Reader, RuntimeDep
from anatomy_vlm.api.errors import error_responses
from anatomy_vlm.api.services import curation, graph
from anatomy_vlm.ontology.model import ConceptKind

router = APIRouter(prefix="/concepts", tags=["concepts"])

_VARIANT = Query(description="knowledge variant (default: the served one)", max_length=100)
_WRITE_ERRORS = error_responses(401, 403, 404, 409, 422, 500, 503)


@router.get("", response_model=list[schemas.ConceptOut], summary="Search concepts by id, name or synonym",
            responses=error_responses(401, 403, 404, 503))
def search(
    runtime: RuntimeDep, _: Reader,
    q: Annotated[str, Query(max_length=200, description="text in the id, name or a synonym (any case)")] = "",
    kind: Optional[ConceptKind] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    variant: Annotated[Optional[str], _VARIANT] = None,
) -> list[schemas.ConceptOut]:
    return graph.search_concepts(runtime, q, kind, limit, variant)


@router.get("/{concept_id}", response_model=schemas.ConceptDetailOut, summary="A concept with its edges",
            responses=error_responses(401, 403, 404, 503))
def get_concept(concept_id: str, runtime: RuntimeDep, _: Reader,
                variant: Annotated[Optional[str], _VARIANT] = None) -> schemas.ConceptDetailOut:
    return graph.get_concept(runtime, concept_id, variant)


@router.post("", response_model=schemas.CurationOut, status_code=201, summary="Add a concept (curator)",
             responses=_WRITE_ERRORS)
def add_concept(body: schemas.ConceptIn, runtime: RuntimeDep, principal: Curator) -> schemas.CurationOut:
    return curation.add_concept(runtime, principal, body)


@router.patch("/{concept_id}", response_model=schemas.CurationOut, summary="Change a concept (curator)",
              responses=_WRITE_ERRORS)
def change_concept(concept_id: str, body: schemas.ConceptPatch, runtime: RuntimeDep,
                   principal: Curator) -> schemas.CurationOut:
    return curation.change_concept(runtime, principal, concept_id, body)


@router.delete("/{concept_id}", response_model=schemas.CurationOut, summary="Remove a concept (curator)",
               responses=_WRITE_ERRORS)
def remove_concept(
    concept_id: str, runtime: RuntimeDep, principal: Curator,
    cascade: Annotated[bool, Query(description="also remove the relations that reference it")] = False,
    why: Annotated[Optional[str], Query(min_length=1, max_length=2000, description="reason for the audit log")] = None,
) -> schemas.CurationOut:
    return curation.remove_concept(runtime, principal, concept_id, cascade, why)
