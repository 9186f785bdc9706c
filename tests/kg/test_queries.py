"""The Cypher module: identifiers are checked, and ensure_read_only is the parsing guard (tests/kg/test_cypher_guard.py)."""

from __future__ import annotations

import pytest

from anatomy_vlm.exceptions import ReadOnlyQueryError
from anatomy_vlm.kg import queries


def test_identifier_accepts_schema_labels_only():
    assert queries.identifier("Anatomy", queries.KIND_LABELS) == "`Anatomy`"
    with pytest.raises(ValueError, match="Anatomy`\\) DETACH"):
        queries.identifier("Anatomy`) DETACH DELETE (n", queries.KIND_LABELS)
    with pytest.raises(ValueError):
        queries.create_relations("KNOWS")


def test_every_builder_backticks_its_label():
    for kind in queries.KIND_LABELS:
        assert f":`{kind}`" in queries.create_concepts(kind)
    for rel_type in queries.RELATION_TYPES:
        assert f"[r:`{rel_type}`" in queries.create_relations(rel_type)
        assert f"[r:`{rel_type}`" in queries.update_relations(rel_type)


def test_schema_statements_are_idempotent_ddl():
    statements = queries.schema_statements()
    assert all("IF NOT EXISTS" in s for s in statements)
    assert sum("REQUIRE (n.variant, n.id) IS UNIQUE" in s for s in statements) == 1 + len(queries.KIND_LABELS)


@pytest.mark.parametrize("cypher", [
    "MATCH (n:Concept {name: 'DELETE me'}) RETURN n",
    'MATCH (n) WHERE n.definition CONTAINS "set of cells" RETURN n.id',
    "MATCH (n) // CREATE nothing\nRETURN count(n)",
    "MATCH (n) /* MERGE */ RETURN n.`create`",
    "CALL db.labels() YIELD label RETURN label",
    "MATCH (n) RETURN n.settings, n.created_at, n.removed",
    "CALL { MATCH (n) RETURN n } RETURN 1",  # a subquery that only reads
])
def test_reads_pass(cypher):
    assert queries.ensure_read_only(cypher) == cypher


@pytest.mark.parametrize("cypher, clause", [
    ("MATCH (n) DETACH DELETE n", "DETACH"),
    ("match (n) set n.x = 1", "SET"),
    ("CREATE (n)", "CREATE"),
    ("UNWIND [1] AS x MERGE (n {id: x})", "MERGE"),
    ("LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row", "LOAD"),
    ("MATCH (n) FOREACH (x IN [1] | REMOVE n.name)", "FOREACH"),
    ("DROP CONSTRAINT concept_key", "DROP"),
    ("USE system SHOW USERS", "USE"),
    ("CALL dbms.security.createUser('a', 'b')", "CALL"),
    ("CALL { MATCH (n) CREATE (m) RETURN m } RETURN 1", "CREATE"),
    ("MATCH (n) WITH count(n) AS c //x\rCALL { CREATE (:Pwned) } IN TRANSACTIONS RETURN c", "carriage return"),
    ("SHOW CONSTRAINTS", "SHOW"),
    ("CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DELETE n', {})", "CALL"),
])
def test_writes_and_admin_are_refused_naming_the_clause(cypher, clause):
    with pytest.raises(ReadOnlyQueryError, match=clause):
        queries.ensure_read_only(cypher)


def test_empty_query_is_refused():
    with pytest.raises(ReadOnlyQueryError, match="empty"):
        queries.ensure_read_only("  \n")
