"""Request and response bodies of the service (the JSON contract in API_CONTRACT.md).

Kept apart from the domain objects (``Prediction``, ``Concept``, ``AuditRecord``...): the service
functions translate, so the wire format can stay put while the library changes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from anatomy_vlm.ontology import limits
from anatomy_vlm.ontology.model import ConceptKind, RelationType

BoxJson = list[float]  # a typing.Box on the wire: [x1, y1, x2, y2] pixels of the uploaded image
JsonValue = Any  # a cell of a Cypher row: null, bool, number, string, list or object


class ErrorOut(BaseModel):
    """Every 4xx/5xx body."""

    detail: str = Field(description="a clear message naming the problem")


# -- health --------------------------------------------------------------------------------------
class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    graph: bool = Field(description="the graph database answers")
    model: bool = Field(description="a model is loaded")
    graph_version: Optional[str] = Field(None, description="content hash of the served variant")
    variant: str
    model_name: Optional[str] = None
    problems: list[str] = Field(default_factory=list, description="why graph or model is false")


# -- predict -------------------------------------------------------------------------------------
# Field for field the prediction record of ``anatomy_vlm.kg.provenance`` (what the CLI prints and
# the graph stores): PredictOut = ProvenanceRecord, RegionOut = RegionOfInterest, FindingOut =
# PredictionRecord; ``name`` fields, ``prediction_id`` and ``persisted`` are added for the reader.
class NodeWeightOut(BaseModel):
    id: str
    name: str
    weight: float


class RegionOut(BaseModel):
    id: str = Field(description="the region (RegionOfInterest.region)")
    name: str
    anatomy_id: str = Field(description="the Anatomy node the ROI depicts")
    box: BoxJson
    presence: float = Field(description="presence / localisation confidence (RegionOfInterest.score)")
    attention: list[NodeWeightOut] = Field(description="the graph nodes this region attended most, strongest first")


class EvidenceWeightOut(BaseModel):
    region: str
    weight: float


class FindingOut(BaseModel):
    finding_id: str
    name: str
    probability: float = Field(description="PredictionRecord.score")
    prediction_id: str = Field(description="graph id of the Prediction node; resolvable once persisted")
    evidence: list[EvidenceWeightOut] = Field(description="the regions whose scores were pooled, heaviest first "
                                                          "(their boxes are in regions)")


class PredictOut(BaseModel):
    image_id: str = Field(description="img-<first 16 hex of the pixels' sha256>: the same in the CLI and the graph")
    image_sha256: str
    width: int
    height: int
    model: str
    run_id: str
    graph_version: str
    variant: str
    persisted: bool
    regions: list[RegionOut]
    findings: list[FindingOut] = Field(description="most probable first")


# -- stored predictions --------------------------------------------------------------------------
class EvidenceOut(BaseModel):
    region: str
    weight: float
    box: BoxJson


class PredictionRecordOut(BaseModel):
    prediction_id: str
    image_id: str
    finding_id: str
    score: float
    model: str
    graph_version: str
    variant: str
    evidence: list[EvidenceOut]


class QueryOut(BaseModel):
    name: str
    text: str
    parameters: dict[str, JsonValue]


SubgraphLabel = Literal["Prediction", "ROI", "Anatomy", "Finding", "Concept", "Image"]
EdgeTypeName = Literal["EVIDENCE", "DEPICTS", "ATTENDED", "PREDICTS", "FOR_IMAGE"]


class SubgraphNodeOut(BaseModel):
    id: str
    label: SubgraphLabel
    name: str
    kind: Optional[str] = Field(None, description="the concept kind (Anatomy, Finding, Disease...) of concept nodes")


class SubgraphEdgeOut(BaseModel):
    source: str
    target: str
    type: EdgeTypeName
    weight: Optional[float] = None


class SubgraphOut(BaseModel):
    nodes: list[SubgraphNodeOut]
    edges: list[SubgraphEdgeOut]


class ExplanationOut(BaseModel):
    prediction_id: str
    query: QueryOut
    columns: list[str]
    rows: list[dict[str, JsonValue]]
    subgraph: SubgraphOut


# -- cypher --------------------------------------------------------------------------------------
class CypherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=20_000, description="read-only Cypher")
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    limit: int = Field(100, ge=1, le=10_000, description="the most rows returned")


class CypherOut(BaseModel):
    columns: list[str]
    rows: list[dict[str, JsonValue]]
    truncated: bool


# -- concepts ------------------------------------------------------------------------------------
class ConceptOut(BaseModel):
    id: str
    name: str
    kind: ConceptKind
    synonyms: list[str]
    definition: str = ""
    codes: list[str] = Field(default_factory=list)
    source: str = ""


class EdgeOut(BaseModel):
    type: RelationType
    start: str
    end: str
    weight: Optional[float] = None
    count: Optional[int] = None
    source: str


class ConceptDetailOut(BaseModel):
    concept: ConceptOut
    edges: list[EdgeOut]


# Curation requests: the field rules of ``ontology.limits`` (the ones the Curator applies too), so a
# value that could not be stored is refused with 422 naming the field before anything is read.
_WHY = Field(None, min_length=1, max_length=limits.MAX_WHY,
             description="reason kept in the audit log (default: the request)")
ConceptId = Annotated[str, Field(min_length=1, max_length=limits.MAX_ID, pattern=limits.ID_PATTERN)]
Synonym = Annotated[str, Field(min_length=1, max_length=limits.MAX_SYNONYM,
                               description="no '|', no control characters")]
Code = Annotated[str, Field(min_length=1, max_length=limits.MAX_CODE, pattern=limits.CODE_PATTERN,
                            description="SYSTEM:CODE, e.g. SNOMED:45653009")]
Weight = Annotated[Optional[float], Field(None, ge=0, le=1, allow_inf_nan=False, description="in [0, 1]")]
Count = Annotated[Optional[int], Field(None, ge=0, le=limits.MAX_COUNT)]


class _CurationIn(BaseModel):
    """A curation request body: no unknown keys, and every text checked by ``ontology.limits``."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _field_rules(cls, value: Any, info: ValidationInfo) -> Any:
        # Sizes and patterns are checked by the Field constraints above; here what they cannot
        # say: control characters, "|" inside list items, blank names.
        field = info.field_name
        if value is None or field is None:
            return value
        if field == "synonyms":
            limits.check_synonyms(value)
        elif field == "codes":
            limits.check_codes(value)
        elif field in ("id", "start", "end"):
            limits.check_id(field, value)
        elif field in limits.TEXT_LIMITS:
            limits.check_text(field, value, required=field == "name")
        return value


class ConceptIn(_CurationIn):
    id: ConceptId
    kind: ConceptKind
    name: str = Field(min_length=1, max_length=limits.MAX_NAME)
    synonyms: list[Synonym] = Field(default_factory=list, max_length=limits.MAX_SYNONYMS)
    definition: str = Field("", max_length=limits.MAX_DEFINITION)
    codes: list[Code] = Field(default_factory=list, max_length=limits.MAX_CODES)
    source: str = Field("curated", max_length=limits.MAX_SOURCE)
    why: Optional[str] = _WHY


class ConceptPatch(_CurationIn):
    name: Optional[str] = Field(None, min_length=1, max_length=limits.MAX_NAME)
    synonyms: Optional[list[Synonym]] = Field(None, max_length=limits.MAX_SYNONYMS)
    definition: Optional[str] = Field(None, max_length=limits.MAX_DEFINITION)
    why: Optional[str] = _WHY


class RelationIn(_CurationIn):
    start: ConceptId
    type: RelationType
    end: ConceptId
    weight: Weight = None
    count: Count = None
    source: str = Field("curated", min_length=1, max_length=limits.MAX_SOURCE)
    why: Optional[str] = _WHY


class RelationKeyIn(_CurationIn):
    start: ConceptId
    type: RelationType
    end: ConceptId
    source: str = Field("curated", min_length=1, max_length=limits.MAX_SOURCE)
    why: Optional[str] = _WHY


class AuditOut(BaseModel):
    when: str
    who: str
    why: str
    action: str
    target: str | list[str]
    before: Optional[dict[str, Any]] = None
    after: Optional[dict[str, Any]] = None
    version_before: str
    version_after: str
    concepts: list[str]


class CurationOut(BaseModel):
    version: str = Field(description="content hash of the curated ontology after the change (see /versions/diff)")
    previous_version: str
    graph_version: Optional[str] = Field(None, description="content hash of the published graph variant")
    changed: bool = Field(description="false when the request changed nothing")
    changes: list[str] = Field(description="one line per change: + added, - removed, ~ changed")
    audit: list[AuditOut] = Field(default_factory=list, description="the audit entries the request wrote")


class VersionDiffOut(BaseModel):
    old: str
    new: str
    counts: dict[str, int]
    changes: list[str]
    diff: dict[str, Any]


# -- variants ------------------------------------------------------------------------------------
class VariantOut(BaseModel):
    name: str
    version: str
    concepts: int
    relations: int
    parent: Optional[str] = None
    recipe: Optional[str] = None
    created_at: Optional[str] = None
    synced_at: Optional[str] = None


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    recipe: str | list[str] = Field(default_factory=list,
                                   description="recipe specs applied in order: a list, or one string joined by ' | '")
    base: str = Field("canonical", min_length=1, description="variant to start from")


class VariantCreatedOut(BaseModel):
    variant: VariantOut
    concepts_added: int
    relations_added: int
    seconds: float


class VariantDiffOut(BaseModel):
    a: dict[str, Any]
    b: dict[str, Any]
    diff: dict[str, Any]
    relations_by_type: dict[str, dict[str, int]]
    located_in: dict[str, float]
