"""Request and response bodies of the service (the JSON contract in API_CONTRACT.md).

Kept apart from the domain objects (``Prediction``, ``Concept``, ``AuditRecord``...): the service
functions translate, so the wire format can stay put while the library changes.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

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


_WHY = Field(None, min_length=1, max_length=2000, description="reason kept in the audit log (default: the request)")


class ConceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: ConceptKind
    name: str = Field(min_length=1, max_length=500)
    synonyms: list[str] = Field(default_factory=list)
    definition: str = ""
    codes: list[str] = Field(default_factory=list)
    source: str = "curated"
    why: Optional[str] = _WHY


class ConceptPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Optional[str] = Field(None, min_length=1, max_length=500)
    synonyms: Optional[list[str]] = None
    definition: Optional[str] = None
    why: Optional[str] = _WHY


class RelationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(min_length=1)
    type: RelationType
    end: str = Field(min_length=1)
    weight: Optional[float] = Field(None, allow_inf_nan=False)
    count: Optional[int] = Field(None, ge=0)
    source: str = Field("curated", min_length=1)
    why: Optional[str] = _WHY


class RelationKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(min_length=1)
    type: RelationType
    end: str = Field(min_length=1)
    source: str = Field("curated", min_length=1)
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
