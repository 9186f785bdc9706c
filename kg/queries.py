"""Every Cypher statement the graph store runs, named and parameterised, in one place.

Values always travel as ``$parameters``. Labels and relationship types cannot be parameters in
Cypher, so the few builders below take them only from the closed sets of the schema
(``ConceptKind``, ``RelationType``), check them against an identifier pattern and backtick them.
Statements are written in the subset that Neo4j 5.26 and ArcadeDB's openCypher both run; where
the two differ the difference lives in ``kg.backends.Dialect``, not here.

Variants: every concept node carries ``variant`` (the knowledge variant it belongs to), and the
key of a concept is ``(variant, id)``; relationships join nodes of one variant only.
"""

from __future__ import annotations

import re

from anatomy_vlm.kg import cypher_guard
from anatomy_vlm.ontology.model import ConceptKind, RelationType

CONCEPT = "Concept"
KIND_LABELS: tuple[str, ...] = tuple(kind.value for kind in ConceptKind)
RELATION_TYPES: tuple[str, ...] = tuple(rel.value for rel in RelationType)
PROVENANCE_LABELS = ("Image", "ROI", "Prediction")
VARIANT_LABEL = "KnowledgeVariant"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def identifier(name: str, allowed: tuple[str, ...]) -> str:
    """Backtick a label or relationship type after checking it is one the schema knows."""
    if name not in allowed or not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not one of {', '.join(allowed)}")
    return f"`{name}`"


# --- schema ------------------------------------------------------------------------------------


def schema_statements() -> list[str]:
    """Constraints and indexes, each idempotent (``IF NOT EXISTS``)."""
    statements = [
        # (variant, id) is the concept key: one node per concept per knowledge variant.
        f"CREATE CONSTRAINT concept_key IF NOT EXISTS FOR (n:{CONCEPT}) REQUIRE (n.variant, n.id) IS UNIQUE",
    ]
    for kind in KIND_LABELS:
        statements.append(
            f"CREATE CONSTRAINT {kind.lower()}_key IF NOT EXISTS "
            f"FOR (n:{identifier(kind, KIND_LABELS)}) REQUIRE (n.variant, n.id) IS UNIQUE"
        )
    for label in PROVENANCE_LABELS:
        statements.append(
            f"CREATE CONSTRAINT {label.lower()}_id IF NOT EXISTS FOR (n:{label}) REQUIRE n.id IS UNIQUE"
        )
    statements += [
        f"CREATE CONSTRAINT variant_name IF NOT EXISTS FOR (n:{VARIANT_LABEL}) REQUIRE n.name IS UNIQUE",
        # Name look-ups (CLI region names, curation search) filter on the name.
        f"CREATE INDEX concept_name IF NOT EXISTS FOR (n:{CONCEPT}) ON (n.name)",
    ]
    return statements


SHOW_CONSTRAINTS = "SHOW CONSTRAINTS YIELD name RETURN name"

# --- concepts and relations of one variant -----------------------------------------------------

# Variant-wide scans say "n.id IS NOT NULL" so that Neo4j seeks the composite (variant, id) index
# by its prefix instead of scanning every concept of every variant.
READ_CONCEPTS = f"""
MATCH (n:{CONCEPT}) WHERE n.variant = $variant AND n.id IS NOT NULL
RETURN n.id AS id, [label IN labels(n) WHERE label <> '{CONCEPT}'] AS kinds, properties(n) AS props
"""

READ_RELATIONS = f"""
MATCH (a:{CONCEPT}) WHERE a.variant = $variant AND a.id IS NOT NULL
MATCH (a)-[r]->(b:{CONCEPT} {{variant: $variant}})
RETURN type(r) AS type, a.id AS start, b.id AS end, properties(r) AS props
"""

COUNT_VARIANT_ELEMENTS = f"""
MATCH (n:{CONCEPT}) WHERE n.variant = $variant AND n.id IS NOT NULL
OPTIONAL MATCH (n)-[r]->(:{CONCEPT} {{variant: $variant}})
RETURN count(DISTINCT n) AS concepts, count(r) AS relations
"""

DELETE_CONCEPTS = f"""
UNWIND $rows AS concept_id
MATCH (n:{CONCEPT} {{variant: $variant, id: concept_id}})
DETACH DELETE n
RETURN count(*) AS written
"""


def relabel_concepts(kind: str) -> str:
    """Give concepts whose kind changed their new kind label (keeps their provenance edges)."""
    removed = ":".join(identifier(k, KIND_LABELS) for k in KIND_LABELS)
    return f"""
UNWIND $rows AS concept_id
MATCH (n:{CONCEPT} {{variant: $variant, id: concept_id}})
REMOVE n:{removed}
SET n:{identifier(kind, KIND_LABELS)}
RETURN count(n) AS written
"""


# --- kind changes where a label cannot change in place (ArcadeDB) ------------------------------
# ArcadeDB keeps a node's labels as its record type and its unique index refuses, inside one
# transaction, a key removed from one record type and added to another. So a kind change there
# takes two transactions: the first records a :SyncJournal and moves the old nodes out of the
# key space into a "retired" variant (edges kept); the second creates the new-kind nodes, moves
# provenance edges over, deletes the retired nodes and the journal. A crash in between leaves a
# journal that ``GraphStore.recover_interrupted_syncs`` undoes by moving the retired nodes back.
SYNC_JOURNAL_LABEL = "SyncJournal"
# Edges from provenance nodes (ROI, Prediction) into a concept: moved to the concept's new node.
PROVENANCE_EDGE_TYPES: tuple[str, ...] = ("DEPICTS", "PREDICTS", "ATTENDED")

BEGIN_SYNC_JOURNAL = f"""
CREATE (j:{SYNC_JOURNAL_LABEL})
SET j = $props
RETURN count(j) AS written
"""

LIST_SYNC_JOURNALS = f"MATCH (j:{SYNC_JOURNAL_LABEL}) RETURN properties(j) AS props ORDER BY j.started_at, j.id"

END_SYNC_JOURNAL = f"""
MATCH (j:{SYNC_JOURNAL_LABEL} {{id: $id}})
DELETE j
RETURN count(*) AS written
"""

RETIRE_CONCEPTS = f"""
UNWIND $rows AS concept_id
MATCH (n:{CONCEPT} {{variant: $variant, id: concept_id}})
SET n.variant = $retired
RETURN count(n) AS written
"""

RESTORE_RETIRED_CONCEPTS = f"""
MATCH (n:{CONCEPT}) WHERE n.variant = $retired AND n.id IS NOT NULL
SET n.variant = $variant
RETURN count(n) AS written
"""


def move_provenance_edges(rel_type: str) -> str:
    """Copy the provenance edges of one type from retired concepts onto their new-kind nodes."""
    name = identifier(rel_type, PROVENANCE_EDGE_TYPES)
    return f"""
UNWIND $rows AS concept_id
MATCH (old:{CONCEPT} {{variant: $retired, id: concept_id}})<-[r:{name}]-(source)
MATCH (new:{CONCEPT} {{variant: $variant, id: concept_id}})
CREATE (source)-[moved:{name}]->(new)
SET moved = properties(r)
RETURN count(moved) AS written
"""


def create_concepts(kind: str) -> str:
    """Create concepts of one kind (the sync knows they are new); returns how many were written.

    CREATE rather than MERGE: the sync has already diffed, and ArcadeDB cannot look up a MERGE
    pattern with two labels through the index (it scans), which made a 50k-concept sync crawl.
    """
    return f"""
UNWIND $rows AS row
CREATE (n:{CONCEPT}:{identifier(kind, KIND_LABELS)})
SET n = row.props
RETURN count(n) AS written
"""


UPDATE_CONCEPTS = f"""
UNWIND $rows AS row
MATCH (n:{CONCEPT} {{variant: $variant, id: row.id}})
SET n = row.props
RETURN count(n) AS written
"""


def create_relations(rel_type: str) -> str:
    """Create relations of one type between concepts of the variant; returns the count written."""
    return f"""
UNWIND $rows AS row
MATCH (a:{CONCEPT} {{variant: $variant, id: row.start}})
MATCH (b:{CONCEPT} {{variant: $variant, id: row.end}})
CREATE (a)-[r:{identifier(rel_type, RELATION_TYPES)}]->(b)
SET r = row.props
RETURN count(r) AS written
"""


def update_relations(rel_type: str) -> str:
    """Replace the properties of relations of one type, found by their (start, end, source) key."""
    return f"""
UNWIND $rows AS row
MATCH (a:{CONCEPT} {{variant: $variant, id: row.start}})
      -[r:{identifier(rel_type, RELATION_TYPES)} {{source: row.source}}]->
      (b:{CONCEPT} {{variant: $variant, id: row.end}})
SET r = row.props
RETURN count(r) AS written
"""


def delete_relations(rel_type: str) -> str:
    """Delete relations of one type by their (start, end, source) key; returns the count deleted."""
    return f"""
UNWIND $rows AS row
MATCH (a:{CONCEPT} {{variant: $variant, id: row.start}})
      -[r:{identifier(rel_type, RELATION_TYPES)} {{source: row.source}}]->
      (b:{CONCEPT} {{variant: $variant, id: row.end}})
DELETE r
RETURN count(*) AS written
"""


# One statement per row: the baseline the sync benchmark compares the batched path against.
def create_one_concept(kind: str) -> str:
    return f"""
CREATE (n:{CONCEPT}:{identifier(kind, KIND_LABELS)})
SET n = $props
"""


def create_one_relation(rel_type: str) -> str:
    return f"""
MATCH (a:{CONCEPT} {{variant: $variant, id: $start}})
MATCH (b:{CONCEPT} {{variant: $variant, id: $end}})
CREATE (a)-[r:{identifier(rel_type, RELATION_TYPES)}]->(b)
SET r = $props
"""


# --- knowledge variants ------------------------------------------------------------------------

UPSERT_VARIANT = f"""
MERGE (v:{VARIANT_LABEL} {{name: $name}})
SET v += $props
"""

GET_VARIANT = f"MATCH (v:{VARIANT_LABEL} {{name: $name}}) RETURN properties(v) AS props"

LIST_VARIANTS = f"MATCH (v:{VARIANT_LABEL}) RETURN properties(v) AS props ORDER BY v.name"

DELETE_VARIANT_CONCEPTS = f"""
MATCH (n:{CONCEPT}) WHERE n.variant = $variant AND n.id IS NOT NULL
WITH n LIMIT $batch_size
DETACH DELETE n
RETURN count(*) AS deleted
"""

DELETE_VARIANT = f"MATCH (v:{VARIANT_LABEL} {{name: $name}}) DELETE v"

# --- look-ups ----------------------------------------------------------------------------------

FIND_CONCEPTS = f"""
UNWIND $ids AS concept_id
MATCH (n:{CONCEPT} {{variant: $variant, id: concept_id}})
RETURN n.id AS id
"""

# A term matches a concept by id, by name or by synonym, ignoring case.
RESOLVE_TERMS = f"""
UNWIND $terms AS term
MATCH (n:{CONCEPT}) WHERE n.variant = $variant AND n.id IS NOT NULL
  AND (n.id = term OR toLower(n.name) = toLower(term)
       OR any(s IN n.synonyms WHERE toLower(s) = toLower(term)))
RETURN term, n.id AS id, [label IN labels(n) WHERE label <> '{CONCEPT}'][0] AS kind
"""

# The knowledge neighbourhood of each anatomy node, for every id in one round trip: the node, its
# PART_OF ancestors with their distance, and the findings LOCATED_IN it or in any ancestor, with
# the site they are asserted at and the edge's weight, count and source. The keys of per-ROI
# enrichment are built from exactly this set.
NEIGHBOURHOOD = f"""
UNWIND $ids AS anatomy_id
MATCH (a:Anatomy {{variant: $variant, id: anatomy_id}})
OPTIONAL MATCH path = (a)-[:PART_OF*1..]->(ancestor:Anatomy)
WITH a, ancestor, min(length(path)) AS depth
WITH a, collect(CASE WHEN ancestor IS NULL THEN NULL
                     ELSE {{id: ancestor.id, name: ancestor.name, depth: depth}} END) AS ancestors,
     collect(ancestor) AS ancestor_nodes
// Findings are matched once per distinct site: following every PART_OF path up instead returns
// a finding once per path, which explodes on a graph with many paths to the root.
UNWIND [a] + ancestor_nodes AS site
OPTIONAL MATCH (site)<-[r:LOCATED_IN]-(finding:{CONCEPT})
WITH a, ancestors, collect(CASE WHEN finding IS NULL THEN NULL
                                ELSE {{id: finding.id, name: finding.name, site: site.id,
                                      weight: r.weight, count: r.count, source: r.source}} END) AS findings
RETURN a.id AS id, a.name AS name, ancestors, findings
"""

# --- provenance --------------------------------------------------------------------------------
# One transaction per image writes these in order; each write returns a count that the store
# checks, so a reference to a concept missing from the variant rolls the whole image back.

WRITE_IMAGE = """
MERGE (img:Image {id: $image.id})
SET img += $image
"""

WRITE_ROIS = f"""
MATCH (img:Image {{id: $image_id}})
UNWIND $rows AS row
MATCH (anatomy:Anatomy {{variant: $variant, id: row.anatomy_id}})
MERGE (roi:ROI {{id: row.id}})
SET roi = row.props
MERGE (img)-[:HAS_ROI]->(roi)
MERGE (roi)-[:DEPICTS]->(anatomy)
RETURN count(roi) AS written
"""

WRITE_PREDICTIONS = f"""
MATCH (img:Image {{id: $image_id}})
UNWIND $rows AS row
MATCH (finding:{CONCEPT} {{variant: $variant, id: row.finding_id}})
MERGE (p:Prediction {{id: row.id}})
SET p = row.props
MERGE (p)-[:FOR_IMAGE]->(img)
MERGE (p)-[:PREDICTS]->(finding)
RETURN count(p) AS written
"""

WRITE_EVIDENCE = """
UNWIND $rows AS row
MATCH (p:Prediction {id: row.prediction_id})
MATCH (roi:ROI {id: row.roi_id})
MERGE (p)-[e:EVIDENCE]->(roi)
SET e.weight = row.weight
RETURN count(e) AS written
"""

WRITE_ATTENTION = f"""
UNWIND $rows AS row
MATCH (roi:ROI {{id: row.roi_id}})
MATCH (c:{CONCEPT} {{variant: $variant, id: row.concept_id}})
MERGE (roi)-[a:ATTENDED]->(c)
SET a.weight = row.weight
RETURN count(a) AS written
"""

# Replacing a run's record: drop the ROIs and predictions it wrote before, keep the image.
DELETE_RUN = """
MATCH (n)
WHERE (n:ROI OR n:Prediction) AND n.image_id = $image_id AND n.run_id = $run_id
DETACH DELETE n
"""

READ_IMAGE = "MATCH (img:Image {id: $image_id}) RETURN properties(img) AS props"

READ_ROIS = """
MATCH (:Image {id: $image_id})-[:HAS_ROI]->(roi:ROI)-[:DEPICTS]->(anatomy:Anatomy)
OPTIONAL MATCH (roi)-[a:ATTENDED]->(c:Concept)
WITH roi, anatomy, collect(CASE WHEN c IS NULL THEN NULL ELSE {concept_id: c.id, weight: a.weight} END) AS attention
RETURN properties(roi) AS props, anatomy.id AS anatomy_id, attention
ORDER BY roi.id
"""

READ_PREDICTIONS = """
MATCH (p:Prediction)-[:FOR_IMAGE]->(:Image {id: $image_id})
MATCH (p)-[:PREDICTS]->(finding:Concept)
OPTIONAL MATCH (p)-[e:EVIDENCE]->(roi:ROI)
WITH p, finding, collect(CASE WHEN roi IS NULL THEN NULL ELSE {roi_id: roi.id, weight: e.weight} END) AS evidence
RETURN properties(p) AS props, finding.id AS finding_id, evidence
ORDER BY p.id
"""

# The explanation of one prediction as a path set: prediction -> evidence ROIs -> the anatomy each
# depicts, and the concepts each ROI attended to. This is the query users copy to explain a score.
EXPLAIN_PREDICTION = """
MATCH (p:Prediction {id: $prediction_id})-[:PREDICTS]->(finding:Concept)
MATCH (p)-[:FOR_IMAGE]->(img:Image)
OPTIONAL MATCH (p)-[e:EVIDENCE]->(roi:ROI)-[:DEPICTS]->(anatomy:Anatomy)
OPTIONAL MATCH (roi)-[att:ATTENDED]->(c:Concept)
RETURN p.id AS prediction, p.score AS score, finding.id AS finding, img.id AS image,
       roi.id AS roi, roi.region AS region, e.weight AS evidence_weight, anatomy.id AS anatomy,
       c.id AS attended, att.weight AS attention_weight
ORDER BY evidence_weight DESC, attention_weight DESC
"""

# --- read-only user queries --------------------------------------------------------------------

# The guard parses the query and allows only reading clauses, the read procedures and the
# functions it lists (kg/cypher_guard.py says how and why); these names stay here for callers.
READ_PROCEDURES = cypher_guard.READ_PROCEDURES
READ_FUNCTIONS = cypher_guard.READ_FUNCTIONS


def ensure_read_only(cypher: str) -> str:
    """Return ``cypher`` unchanged if it only reads; raise ``ReadOnlyQueryError`` naming what is refused."""
    cypher_guard.check_read_only(cypher)
    return cypher
