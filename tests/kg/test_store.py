"""The graph store, run against the real Neo4j server and the embedded engine alike (``store`` fixture)."""

from __future__ import annotations

import dataclasses

import neo4j
import pytest
from neo4j.exceptions import ConstraintError

from anatomy_vlm.exceptions import (
    GraphStoreError,
    GraphUnavailableError,
    OntologyValidationError,
    ReadOnlyQueryError,
    UnknownConceptError,
    VariantError,
)
from anatomy_vlm.kg import (
    GraphConfig,
    GraphConnection,
    PredictionRecord,
    ProvenanceRecord,
    RegionOfInterest,
)
from anatomy_vlm.kg.embedded import free_port
from anatomy_vlm.ontology import Concept, ConceptKind, Ontology, Relation, RelationType
from tests.conftest import snapshot


def _replace_concept(ontology: Ontology, concept_id: str, **changes) -> Ontology:
    return ontology.with_changes(
        concepts=[dataclasses.replace(c, **changes) if c.id == concept_id else c for c in ontology.concepts]
    )


# -- schema -------------------------------------------------------------------------------------
def test_schema_has_a_key_constraint_per_kind_label(store):
    names = store.constraint_names()
    assert {"concept_key", "anatomy_key", "finding_key", "disease_key", "attribute_key", "device_key"} <= names
    assert {"image_id", "roi_id", "prediction_id", "variant_name"} <= names
    store._schema_ready = False
    store.ensure_schema()  # idempotent
    assert store.constraint_names() == names


def test_database_refuses_a_second_node_with_the_same_key(store, seed):
    store.sync(seed)
    with pytest.raises(ConstraintError):
        with store.driver.session(database=store.database) as session:
            session.run(
                "CREATE (:Concept:Anatomy {variant: 'canonical', id: 'right_lung', name: 'duplicate'})"
            ).consume()


# -- sync ---------------------------------------------------------------------------------------
def test_sync_writes_the_ontology_and_reads_it_back_equal(store, seed):
    report = store.sync(seed)
    assert report.concepts_added == len(seed.concepts)
    assert report.relations_added == len(seed.relations)
    assert store.read_ontology() == seed
    with store.driver.session(database=store.database) as session:
        labels = session.run(
            "MATCH (n:Concept {variant: 'canonical', id: 'right_upper_lung_zone'}) RETURN labels(n) AS l"
        ).single()["l"]
    assert sorted(labels) == ["Anatomy", "Concept"]


def test_sync_rerun_changes_nothing(store, seed):
    store.sync(seed)
    before = snapshot(store)
    report = store.sync(seed)
    assert not report.changed
    assert snapshot(store) == before  # not even the variant's synced_at moved


def test_sync_removes_updates_and_relabels(store, seed):
    store.sync(seed)
    dropped = seed.relations_of_type(RelationType.LOCATED_IN)[0]
    reweighted = seed.relations_of_type(RelationType.LOCATED_IN)[1]
    removed_concept = next(c for c in seed.of_kind(ConceptKind.FINDING) if c.id != dropped.start and c.id != reweighted.start)
    relations = [
        dataclasses.replace(r, weight=0.25, count=7) if r.key == reweighted.key else r
        for r in seed.relations
        if r.key != dropped.key and removed_concept.id not in (r.start, r.end)
    ]
    concepts = [c for c in seed.concepts if c.id != removed_concept.id]
    changed = seed.with_changes(concepts=concepts, relations=relations)
    changed = _replace_concept(changed, "pneumonia", kind=ConceptKind.FINDING, definition="now a finding")
    changed = changed.with_changes(relations=[r for r in changed.relations if r.end != "pneumonia"])

    report = store.sync(changed)
    assert report.concepts_removed == 1
    assert report.concepts_updated == 1
    assert report.relations_removed >= 1
    assert report.relations_updated == 1
    assert store.read_ontology() == changed
    assert removed_concept.id in store.missing_concepts([removed_concept.id])
    with store.driver.session(database=store.database) as session:
        labels = session.run(
            "MATCH (n:Concept {variant: 'canonical', id: 'pneumonia'}) RETURN labels(n) AS l"
        ).single()["l"]
    assert sorted(labels) == ["Concept", "Finding"]


def test_version_is_the_content_hash(store, seed):
    assert store.version() is None
    report = store.sync(seed)
    assert store.version() == report.version == seed.content_hash()
    edited = _replace_concept(seed, "trachea", definition="the windpipe")
    store.sync(edited)
    assert store.version() == edited.content_hash() != seed.content_hash()


def test_invalid_ontology_is_refused_and_graph_unchanged(store, seed):
    store.sync(seed)
    before = snapshot(store)
    broken = seed.with_changes(relations=[*seed.relations, Relation(RelationType.LOCATED_IN, "cardiomegaly", "no_such_region", "seed")])
    with pytest.raises(OntologyValidationError, match="no_such_region"):
        store.sync(broken)
    assert snapshot(store) == before


def test_failure_mid_transaction_rolls_back_everything(store, seed):
    """Concepts are written before relations; a relation that matches nothing undoes the concepts too."""
    store.sync(seed)
    before = snapshot(store)
    new = Concept("pleural_plaque", ConceptKind.FINDING, "pleural plaque", source="test")
    broken = seed.with_changes(
        concepts=[*seed.concepts, new],
        relations=[*seed.relations, Relation(RelationType.LOCATED_IN, "pleural_plaque", "no_such_region", "test")],
    )
    with pytest.raises(UnknownConceptError, match="no_such_region"):
        store.sync(broken, validate=False)
    assert snapshot(store) == before


def test_failed_sync_with_a_kind_change_leaves_the_graph_as_it_was(store, seed):
    """A kind change takes a path of its own on ArcadeDB (see backends.Dialect); it must not leak."""
    store.sync(seed)
    before = snapshot(store)
    broken = _replace_concept(seed, "pneumonia", kind=ConceptKind.FINDING)
    broken = broken.with_changes(relations=[
        *[r for r in broken.relations if r.end != "pneumonia"],
        Relation(RelationType.LOCATED_IN, "pneumonia", "no_such_region", "test"),
    ])
    with pytest.raises(UnknownConceptError, match="no_such_region"):
        store.sync(broken, validate=False)
    assert snapshot(store) == before
    assert store.read_ontology() == seed


def test_constraint_violation_mid_sync_rolls_back(store, seed):
    """Two kinds claiming one new id pass unvalidated into the database, which refuses the second."""
    store.sync(seed)
    before = snapshot(store)
    clash = seed.with_changes(concepts=[
        *seed.concepts,
        Concept("pleural_plaque", ConceptKind.DISEASE, "pleural plaque"),
        Concept("pleural_plaque", ConceptKind.FINDING, "pleural plaque"),
    ])
    with pytest.raises(GraphStoreError, match="constraint"):
        store.sync(clash, validate=False)
    assert snapshot(store) == before


# -- variants -----------------------------------------------------------------------------------
def test_variants_live_side_by_side(store, seed):
    store.sync(seed)
    store.create_variant("no_located_in", ontology=seed.with_changes(
        relations=[r for r in seed.relations if r.type is not RelationType.LOCATED_IN]), recipe="drop LOCATED_IN")
    store.create_variant("copy")
    variants = {v.name: v for v in store.list_variants()}
    assert set(variants) == {"canonical", "no_located_in", "copy"}
    assert variants["copy"].version == seed.content_hash() and variants["copy"].parent == "canonical"
    assert variants["no_located_in"].recipe == "drop LOCATED_IN"
    assert variants["no_located_in"].relations == len(seed.relations) - len(seed.relations_of_type("LOCATED_IN"))

    # Editing one variant leaves the others alone.
    store.sync(_replace_concept(seed, "trachea", name="windpipe"), "copy")
    assert store.read_ontology("canonical") == seed
    assert store.read_ontology("copy")["trachea"].name == "windpipe"
    assert store.neighbourhood(["cardiac_silhouette"], "no_located_in")["cardiac_silhouette"].findings == ()
    assert store.neighbourhood(["cardiac_silhouette"])["cardiac_silhouette"].findings != ()

    with pytest.raises(VariantError, match="already exists"):
        store.create_variant("copy")
    assert store.delete_variant("copy") == len(seed.concepts)
    assert {v.name for v in store.list_variants()} == {"canonical", "no_located_in"}
    assert store.read_ontology("canonical") == seed
    with pytest.raises(VariantError, match="no knowledge variant named 'copy'"):
        store.read_ontology("copy")


def test_variant_names_are_checked(store, seed):
    store.sync(seed)
    with pytest.raises(VariantError, match="must be letters"):
        store.create_variant("bad name; MATCH (n) DETACH DELETE n")


# -- exports ------------------------------------------------------------------------------------
def test_export_hetero_data_shapes_and_stable_ids(store, seed):
    store.sync(seed)
    data, index = store.export_hetero()
    for kind in ConceptKind:
        members = sorted(c.id for c in seed.of_kind(kind))
        if members:
            assert data[kind.value].num_nodes == len(members)
            assert data[kind.value].node_id == members
    located = data["Finding", "LOCATED_IN", "Anatomy"]
    assert located.edge_index.shape == (2, len([r for r in seed.relations_of_type("LOCATED_IN") if seed[r.start].kind is ConceptKind.FINDING]))
    assert located.edge_weight.shape == (located.edge_index.shape[1],)
    # Every exported edge maps back to a relation of the ontology.
    keys = {(r.type.value, r.start, r.end) for r in seed.relations}
    for (start_type, rel_type, end_type) in data.edge_types:
        for start_row, end_row in data[start_type, rel_type, end_type].edge_index.t().tolist():
            start, end = index.node_id(start_type, start_row), index.node_id(end_type, end_row)
            assert (rel_type, start, end) in keys
    assert index.version == seed.content_hash()
    _, again = store.export_hetero()
    assert again.node_ids == index.node_ids


def test_export_networkx(store, seed):
    store.sync(seed)
    graph = store.export_networkx()
    assert graph.number_of_nodes() == len(seed.concepts)
    assert graph.number_of_edges() == len(seed.relations)
    assert graph.nodes["svc"]["name"] == "svc" and graph.nodes["svc"]["kind"] == "Anatomy"
    assert graph.has_edge("right_upper_lung_zone", "right_lung")


# -- neighbourhood ------------------------------------------------------------------------------
def test_neighbourhood_of_many_regions_in_one_query(store, seed):
    store.sync(seed)
    ids = ["right_upper_lung_zone", "right_costophrenic_angle", "cardiac_silhouette"]
    hoods = store.neighbourhood(ids)
    assert list(hoods) == ids

    upper = hoods["right_upper_lung_zone"]
    parents = {r.end for r in seed.relations_of_type("PART_OF") if r.start == "right_upper_lung_zone"}
    assert {a.id for a in upper.ancestors if a.depth == 1} == parents
    expected_ancestors = _ancestors(seed, "right_upper_lung_zone")
    assert {a.id for a in upper.ancestors} == expected_ancestors
    sites = {"right_upper_lung_zone", *expected_ancestors}
    expected_findings = {(r.start, r.end) for r in seed.relations_of_type("LOCATED_IN") if r.end in sites}
    assert {(f.id, f.site) for f in upper.findings} == expected_findings

    angle = hoods["right_costophrenic_angle"]
    assert "pleural_effusion" in {f.id for f in angle.findings}
    assert angle.node_ids[0] == "right_costophrenic_angle"


def test_neighbourhood_names_unknown_regions(store, seed):
    store.sync(seed)
    with pytest.raises(UnknownConceptError, match="left_knee"):
        store.neighbourhood(["right_lung", "left_knee"])


def test_resolve_by_name_and_synonym(store, seed):
    store.sync(seed)
    resolved = store.resolve(["Right Upper Lung Zone", "superior vena cava", "trachea"], kind=ConceptKind.ANATOMY)
    assert resolved == {"Right Upper Lung Zone": "right_upper_lung_zone", "superior vena cava": "svc", "trachea": "trachea"}
    with pytest.raises(UnknownConceptError, match="spleen"):
        store.resolve(["spleen"])


# -- read-only queries --------------------------------------------------------------------------
def test_read_only_query_returns_rows_and_truncates(store, seed):
    store.sync(seed)
    result = store.run_read_query(
        "MATCH (n:Anatomy {variant: $variant}) RETURN n.id AS id ORDER BY id", {"variant": "canonical"}, limit=5
    )
    assert result.columns == ["id"]
    assert len(result.rows) == 5 and result.truncated
    assert result.rows[0]["id"] == sorted(c.id for c in seed.of_kind("Anatomy"))[0]


@pytest.mark.parametrize("cypher", [
    "MATCH (n) DETACH DELETE n",
    "CREATE (n:Concept {id: 'x'})",
    "MATCH (n:Concept) SET n.name = 'x'",
    "MERGE (n:Concept {id: 'x'})",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "CALL dbms.security.createUser('x', 'y')",
    "match (n) remove n.name",
])
def test_read_only_query_refuses_writes(store, seed, cypher):
    store.sync(seed)
    before = snapshot(store)
    with pytest.raises(ReadOnlyQueryError):
        store.run_read_query(cypher)
    assert snapshot(store) == before


# -- provenance ---------------------------------------------------------------------------------
def _record(store, **overrides) -> ProvenanceRecord:
    fields = dict(
        image_id="mimic/p10/s50/view1.dcm",
        image_sha256="9f" * 32,
        model="tiny-vit@test",
        graph_version=store.version(),
        rois=(
            RegionOfInterest("right costophrenic angle", "right_costophrenic_angle", (10, 200, 60, 250), 0.97,
                             attention=(("right_costophrenic_angle", 0.5), ("pleural_effusion", 0.4), ("right_lung", 0.1))),
            RegionOfInterest("cardiac silhouette", "cardiac_silhouette", (90, 120, 180, 220), 0.99,
                             attention=(("cardiomegaly", 0.8), ("cardiac_silhouette", 0.2))),
        ),
        predictions=(
            PredictionRecord("pleural_effusion", 0.83, evidence=(("right costophrenic angle", 0.9), ("cardiac silhouette", 0.1))),
            PredictionRecord("cardiomegaly", 0.64, evidence=(("cardiac silhouette", 1.0),)),
        ),
    )
    fields.update(overrides)
    return ProvenanceRecord(**fields)


def test_provenance_round_trip_and_explanation(store, seed):
    store.sync(seed)
    record = _record(store)
    store.write_provenance(record)
    assert store.read_provenance(record.image_id) == [record]

    rows = store.explain(record.prediction_id("pleural_effusion")).rows
    assert {row["finding"] for row in rows} == {"pleural_effusion"}
    assert {row["anatomy"] for row in rows} == {"right_costophrenic_angle", "cardiac_silhouette"}
    assert rows[0]["anatomy"] == "right_costophrenic_angle"  # heaviest evidence first
    assert ("right_costophrenic_angle", "pleural_effusion", 0.4) in {
        (row["anatomy"], row["attended"], row["attention_weight"]) for row in rows
    }


def test_provenance_rewrite_replaces_the_run(store, seed):
    store.sync(seed)
    store.write_provenance(_record(store))
    second = _record(store, predictions=(PredictionRecord("cardiomegaly", 0.5, evidence=(("cardiac silhouette", 1.0),)),))
    store.write_provenance(second)
    other_model = _record(store, model="other-model")
    store.write_provenance(other_model)
    assert store.read_provenance(second.image_id) == [other_model, second]
    with store.driver.session(database=store.database) as session:
        assert session.run("MATCH (n:Image) RETURN count(n) AS c").single()["c"] == 1
        assert session.run("MATCH (n:ROI) RETURN count(n) AS c").single()["c"] == 4


def test_provenance_with_unknown_concept_writes_nothing(store, seed):
    store.sync(seed)
    store.write_provenance(_record(store))
    before = snapshot(store)
    bad = _record(store, predictions=(PredictionRecord("dragon_scales", 0.9, evidence=(("cardiac silhouette", 1.0),)),))
    with pytest.raises(UnknownConceptError, match="dragon_scales"):
        store.write_provenance(bad)
    assert snapshot(store) == before


# -- connecting ---------------------------------------------------------------------------------
def test_unreachable_server_names_the_uri():
    uri = f"bolt://127.0.0.1:{free_port()}"
    with pytest.raises(GraphUnavailableError, match=uri.replace(".", r"\.")):
        GraphConnection(GraphConfig(uri=uri, password="x", connect_timeout_s=2)).open()


@pytest.mark.neo4j
def test_wrong_password_is_a_clear_error(neo4j_server):
    uri, user, _ = neo4j_server
    with pytest.raises(GraphUnavailableError, match="refused the credentials"):
        GraphConnection(GraphConfig(uri=uri, user=user, password="not-the-password")).open()


@pytest.mark.neo4j
def test_neo4j_itself_refuses_writes_in_read_transactions(drivers):
    """Defence in depth: below the text check, the Neo4j server enforces the READ access mode."""
    driver, database = drivers("neo4j")
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        with pytest.raises(neo4j.exceptions.ClientError):
            session.execute_read(lambda tx: tx.run("CREATE (:Concept {id: 'sneaky'})").consume())


def _ancestors(ontology: Ontology, concept_id: str) -> set[str]:
    parents = {r.start: set() for r in ontology.relations_of_type("PART_OF")}
    for r in ontology.relations_of_type("PART_OF"):
        parents[r.start].add(r.end)
    found, todo = set(), [concept_id]
    while todo:
        for parent in parents.get(todo.pop(), ()):
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return found


def test_built_ontology_round_trips_owl_graph_export(store, tmp_path):
    """OWL -> graph -> OWL and HeteroData: the real ontology comes back exactly."""
    from anatomy_vlm.kg.export import save_export
    from anatomy_vlm.ontology.build import BUILT_OWL_PATH
    from anatomy_vlm.ontology.owl import load_owl

    built = load_owl(BUILT_OWL_PATH)
    store.sync(built)
    back = store.read_ontology()
    assert back == built and store.version() == built.content_hash()
    assert load_owl(save_export(back, tmp_path / "back.owl")) == built
    data, index = store.export_hetero()
    assert len(index) == len(built.concepts)
    assert sum(data[t].edge_index.shape[1] for t in data.edge_types) == len(built.relations)


def test_store_neighbourhood_equals_the_in_memory_one(store, seed):
    """The model builds its per-region keys in memory; they must match what the graph answers."""
    from anatomy_vlm.knowledge import region_neighbourhoods
    from anatomy_vlm.ontology.seed import REGION_IDS

    store.sync(seed)
    assert store.neighbourhood(REGION_IDS) == region_neighbourhoods(seed, REGION_IDS)
