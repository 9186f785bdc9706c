"""Read-side services over the graph: Cypher, stored predictions and their explanations, concepts,
and knowledge variants (list, create, diff)."""

from __future__ import annotations

import math
from typing import Any

from anatomy_vlm.api import schemas
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.api.services.runtime import Runtime
from anatomy_vlm.exceptions import (
    GraphStoreError,
    GraphUnavailableError,
    OntologyValidationError,
    QueryTimeoutError,
    ReadOnlyQueryError,
    VariantError,
)
from anatomy_vlm.kg import queries
from anatomy_vlm.kg.provenance import PredictionId
from anatomy_vlm.ontology.model import ConceptKind, Ontology

_MAX_DEPTH = 32  # nested lists/maps in a Cypher row deeper than this are shown as text


def jsonable(value: Any, depth: int = 0) -> Any:
    """A Cypher value as JSON: temporal, spatial and byte values become text, NaN/inf become text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


# -- cypher -------------------------------------------------------------------------------------
def run_cypher(runtime: Runtime, body: schemas.CypherIn) -> schemas.CypherOut:
    """The user's query in a READ transaction with the server-side timeout and the row limit."""
    store = runtime.graph.store()
    limit = min(body.limit, runtime.settings.cypher_max_rows)
    try:
        result = store.run_read_query(body.query, body.parameters, limit=limit,
                                      timeout_s=runtime.settings.cypher_timeout_s)
    except ReadOnlyQueryError as error:
        raise ServiceError(400, f"refused: {error}; /cypher runs read-only queries only") from error
    except (OverflowError, TypeError) as error:
        # The driver cannot encode a parameter (an integer beyond 64 bits, say): nothing was sent.
        raise ServiceError(400, f"a parameter cannot be sent to the graph database: {error}") from error
    except QueryTimeoutError as error:
        raise ServiceError(504, str(error)) from error
    except GraphUnavailableError as error:
        raise ServiceError(503, str(error)) from error
    except GraphStoreError as error:
        raise ServiceError(400, str(error)) from error
    rows = [{column: jsonable(row.get(column)) for column in result.columns} for row in result.rows]
    return schemas.CypherOut(columns=result.columns, rows=rows, truncated=result.truncated)


# -- stored predictions -------------------------------------------------------------------------
def _parse_prediction_id(prediction_id: str) -> PredictionId:
    """The parts of a prediction id; 404 when it has another form (it cannot name a stored prediction)."""
    try:
        return PredictionId.parse(prediction_id)
    except ValueError as error:
        raise ServiceError(404, f"no prediction with id {prediction_id!r}: {error}") from error


def get_prediction(runtime: Runtime, prediction_id: str) -> schemas.PredictionRecordOut:
    parsed = _parse_prediction_id(prediction_id)
    image_id, finding_id = parsed.image_id, parsed.finding_id
    store = runtime.graph.store()
    for record in store.read_provenance(image_id):
        if record.run_id != parsed.run_id:
            continue
        boxes = {roi.region: list(roi.box) for roi in record.rois}
        for prediction in record.predictions:
            if prediction.finding_id == finding_id:
                return schemas.PredictionRecordOut(
                    prediction_id=prediction_id, image_id=image_id, finding_id=finding_id, score=prediction.score,
                    model=record.model, graph_version=record.graph_version, variant=record.variant,
                    evidence=[schemas.EvidenceOut(region=r, weight=w, box=boxes.get(r, [])) for r, w in prediction.evidence],
                )
    raise ServiceError(404, f"no prediction with id {prediction_id!r}")


def _names(runtime: Runtime, store, variant: str) -> Ontology | None:
    try:
        return runtime.ontologies.get(store, variant)
    except ServiceError:
        return None  # the variant was deleted since: ids are still shown, names fall back to them


def explain_prediction(runtime: Runtime, prediction_id: str) -> schemas.ExplanationOut:
    """The rows of ``queries.EXPLAIN_PREDICTION`` and the subgraph they describe."""
    parsed = _parse_prediction_id(prediction_id)
    store = runtime.graph.store()
    try:
        result = store.explain(prediction_id)
    except GraphUnavailableError as error:
        raise ServiceError(503, str(error)) from error
    except GraphStoreError as error:
        raise ServiceError(404, f"no prediction with id {prediction_id!r}") from error
    variant = parsed.variant or runtime.settings.variant
    ontology = _names(runtime, store, variant)
    nodes: dict[str, schemas.SubgraphNodeOut] = {}
    edges: dict[tuple[str, str, str], schemas.SubgraphEdgeOut] = {}

    def concept_node(concept_id: str, default_label: str) -> None:
        if concept_id in nodes:
            return
        concept = ontology[concept_id] if ontology is not None and concept_id in ontology else None
        kind = concept.kind.value if concept else None
        label = kind if kind in ("Anatomy", "Finding") else default_label
        nodes[concept_id] = schemas.SubgraphNodeOut(id=concept_id, label=label, name=concept.name if concept else concept_id,
                                                    kind=kind)

    def edge(source: str, target: str, kind: str, weight: float | None = None) -> None:
        edges.setdefault((source, target, kind), schemas.SubgraphEdgeOut(source=source, target=target, type=kind,
                                                                           weight=weight))

    for row in result.rows:
        pid, finding, image = row["prediction"], row["finding"], row["image"]
        nodes.setdefault(pid, schemas.SubgraphNodeOut(id=pid, label="Prediction", name=f"{finding} ({row['score']:.3f})"))
        concept_node(finding, "Finding")
        nodes.setdefault(image, schemas.SubgraphNodeOut(id=image, label="Image", name=image))
        edge(pid, finding, "PREDICTS")
        edge(pid, image, "FOR_IMAGE")
        roi = row.get("roi")
        if roi is None:
            continue
        nodes.setdefault(roi, schemas.SubgraphNodeOut(id=roi, label="ROI", name=row.get("region") or roi))
        edge(pid, roi, "EVIDENCE", row.get("evidence_weight"))
        if row.get("anatomy") is not None:
            concept_node(row["anatomy"], "Anatomy")
            edge(roi, row["anatomy"], "DEPICTS")
        if row.get("attended") is not None:
            concept_node(row["attended"], "Concept")
            edge(roi, row["attended"], "ATTENDED", row.get("attention_weight"))
    return schemas.ExplanationOut(
        prediction_id=prediction_id,
        query=schemas.QueryOut(name="EXPLAIN_PREDICTION", text=queries.EXPLAIN_PREDICTION.strip(),
                               parameters={"prediction_id": prediction_id}),
        columns=result.columns,
        rows=[{c: jsonable(row.get(c)) for c in result.columns} for row in result.rows],
        subgraph=schemas.SubgraphOut(nodes=list(nodes.values()), edges=list(edges.values())),
    )


# -- concepts -----------------------------------------------------------------------------------
def concept_out(concept) -> schemas.ConceptOut:
    return schemas.ConceptOut(id=concept.id, name=concept.name, kind=concept.kind, synonyms=list(concept.synonyms),
                              definition=concept.definition, codes=list(concept.codes), source=concept.source)


def search_concepts(runtime: Runtime, q: str, kind: ConceptKind | None, limit: int,
                    variant: str | None) -> list[schemas.ConceptOut]:
    """Concepts whose id, name or a synonym contains ``q`` (any case): exact matches first, then
    prefixes, then the rest, each by name."""
    ontology = runtime.ontologies.get(runtime.graph.store(), variant or runtime.settings.variant)
    needle = q.strip().lower()
    ranked = []
    for concept in ontology.concepts:
        if kind is not None and concept.kind != kind:
            continue
        texts = [concept.id.lower(), concept.name.lower(), *(s.lower() for s in concept.synonyms)]
        if not needle:
            rank = 2
        elif needle in texts:
            rank = 0
        elif any(t.startswith(needle) for t in texts):
            rank = 1
        elif any(needle in t for t in texts):
            rank = 2
        else:
            continue
        ranked.append((rank, concept.name.lower(), concept.id, concept))
    ranked.sort(key=lambda item: item[:3])
    return [concept_out(item[3]) for item in ranked[:limit]]


def get_concept(runtime: Runtime, concept_id: str, variant: str | None) -> schemas.ConceptDetailOut:
    variant = variant or runtime.settings.variant
    ontology = runtime.ontologies.get(runtime.graph.store(), variant)
    if concept_id not in ontology:
        raise ServiceError(404, f"no concept {concept_id!r} in variant {variant!r}")
    edges = [
        schemas.EdgeOut(type=r.type, start=r.start, end=r.end, weight=r.weight, count=r.count, source=r.source)
        for r in ontology.relations if concept_id in (r.start, r.end)
    ]
    return schemas.ConceptDetailOut(concept=concept_out(ontology[concept_id]), edges=edges)


# -- variants -----------------------------------------------------------------------------------
def variant_out(info) -> schemas.VariantOut:
    return schemas.VariantOut(name=info.name, version=info.version, concepts=info.concepts, relations=info.relations,
                              parent=info.parent, recipe=info.recipe, created_at=info.created_at,
                              synced_at=info.synced_at)


def list_variants(runtime: Runtime) -> list[schemas.VariantOut]:
    return [variant_out(v) for v in runtime.graph.store().list_variants()]


# Recipes that read a file on the server: a client must not make the service open paths it names.
SERVER_FILE_RECIPES = frozenset({"add-concepts"})


def create_variant(runtime: Runtime, body: schemas.VariantIn) -> schemas.VariantCreatedOut:
    from anatomy_vlm.ontology.variants import apply_recipes, parse_recipe, split_description

    specs = split_description(body.recipe) if isinstance(body.recipe, str) else [s.strip() for s in body.recipe if s.strip()]
    for spec in specs:  # refuse a bad spec before touching the graph
        try:
            recipe = parse_recipe(spec)
        except ValueError as error:
            raise ServiceError(422, f"recipe {spec!r}: {error}") from error
        if recipe.name in SERVER_FILE_RECIPES:
            raise ServiceError(422, f"recipe {recipe.name!r} reads a file on the server and is not offered over the API; "
                                    "use `anatomy-vlm kg variant create` there")
    store = runtime.graph.store()
    if store.variant(body.name) is not None:
        raise ServiceError(409, f"knowledge variant {body.name!r} already exists")
    start = runtime.ontologies.get(store, body.base)
    try:
        ontology, description = apply_recipes(start, specs) if specs else (start, "")
        origin = f"copy of {body.base}"
        report = store.create_variant(body.name, base=body.base, ontology=ontology,
                                      recipe=f"{origin} | {description}" if description else origin)
    except OntologyValidationError as error:
        raise ServiceError(422, str(error)) from error
    except VariantError as error:
        raise ServiceError(409, str(error)) from error
    except ValueError as error:
        raise ServiceError(422, str(error)) from error
    info = store.variant(body.name)
    return schemas.VariantCreatedOut(variant=variant_out(info), concepts_added=report.concepts_added,
                                     relations_added=report.relations_added, seconds=report.seconds)


def diff_variants(runtime: Runtime, a: str, b: str) -> schemas.VariantDiffOut:
    from anatomy_vlm.ontology.variants import compare_variants

    store = runtime.graph.store()
    comparison = compare_variants(runtime.ontologies.get(store, a), runtime.ontologies.get(store, b))
    return schemas.VariantDiffOut(**comparison)


def delete_variant(runtime: Runtime, name: str) -> schemas.VariantOut:
    if name == runtime.settings.variant:
        raise ServiceError(409, f"variant {name!r} is the one this service serves; it cannot be deleted here")
    store = runtime.graph.store()
    info = store.variant(name)
    if info is None:
        raise ServiceError(404, f"no knowledge variant named {name!r}")
    store.delete_variant(name)
    return variant_out(info)
