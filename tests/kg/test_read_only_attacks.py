"""Every read-only-path attack of issue 14 (R1-R3), run through ``store.run_read_query`` on both real
backends: each must be refused, and the graph's content and schema must be exactly as before.

The graph is the seed ontology, synced once per backend for the module (a refused query never
reaches the server, so the attacks cannot disturb each other; the fingerprint check would say if
one did). A property-based fuzz then mutates allowed queries the way the attacks do.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anatomy_vlm.exceptions import GraphStoreError, ReadOnlyQueryError
from anatomy_vlm.kg import GraphStore, dialect_of_driver, queries
from anatomy_vlm.kg.cypher_guard import check_read_only
from tests.conftest import BACKENDS, snapshot, wipe

# -- the corpus ---------------------------------------------------------------------------------
# Statements that continue a read (after "MATCH (n:Concept) WITH count(n) AS c"), as in R1 and R2.
CONTINUATIONS = {
    "create_in_transactions": "CALL { CREATE (:Pwned) } IN TRANSACTIONS RETURN c",
    "set_in_transactions": "MATCH (h:Concept {id: 'heart'}) CALL { WITH h SET h.name = 'PWNED' } IN TRANSACTIONS RETURN c",
    "detach_delete_in_transactions":
        "MATCH (h:Concept {id: 'pleural_effusion'}) CALL { WITH h DETACH DELETE h } IN TRANSACTIONS RETURN c",
    "create_subquery": "CALL { CREATE (p:Pwned) RETURN p } RETURN c",
    "merge": "MERGE (:Pwned {id: 1}) RETURN c",
    "set": "MATCH (h:Concept {id: 'heart'}) SET h.name = 'PWNED' RETURN c",
    "set_label": "MATCH (h:Concept {id: 'heart'}) SET h:Pwned RETURN c",
    "remove": "MATCH (h:Concept {id: 'heart'}) REMOVE h.name RETURN c",
    "foreach": "MATCH (h:Concept {id: 'heart'}) FOREACH (x IN [1] | SET h.name = 'PWNED') RETURN c",
    "apoc_merge_node": "CALL apoc.merge.node(['Pwned'], {id: 1}) YIELD node RETURN c",
    "apoc_create_node": "CALL apoc.create.node(['Pwned'], {}) YIELD node RETURN c",
    "sql_version": "RETURN c, sql.version() AS v",
    "sql_eval": "RETURN c, sql.eval('CREATE VERTEX TYPE Pwned') AS v",
    "load_csv_http": "LOAD CSV FROM 'http://127.0.0.1:9/internal' AS row RETURN c, row",
    "load_csv_file": "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN c, row",
    "dbms_list_config": "CALL dbms.listConfig() YIELD name RETURN c, name",
    "dbms_list_connections": "CALL dbms.listConnections() YIELD connectionId RETURN c, connectionId",
    "dbms_kill_connections": "CALL dbms.killConnections(['bolt-1']) YIELD connectionId RETURN c",
    "db_clear_query_caches": "CALL db.clearQueryCaches() YIELD value RETURN c",
    "apoc_sleep": "RETURN c, apoc.util.sleep(60000) AS s",
    "range_3m": "RETURN c, range(1, 3000000) AS r",
}
# Whole statements, as in R1-R3.
STATEMENTS = {
    "drop_constraint": "DROP CONSTRAINT concept_key",
    "drop_index": "DROP INDEX concept_name",
    "create_index": "CREATE INDEX pwned FOR (n:Concept) ON (n.pwned)",
    "create_constraint": "CREATE CONSTRAINT pwned FOR (n:Pwned) REQUIRE n.id IS UNIQUE",
    "terminate_transactions": "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "show_transactions": "SHOW TRANSACTIONS",
    "show_users": "SHOW USERS",
    "show_settings": "SHOW SETTINGS",
    "show_databases": "SHOW DATABASES",
    "use_system": "USE system SHOW USERS",
    "create_user": "CREATE USER eve SET PASSWORD 'pw12345678'",
    "grant": "GRANT ROLE admin TO reader",
    "explain": "EXPLAIN MATCH (n) RETURN n",
    "profile": "PROFILE MATCH (n) RETURN n",
    "create": "CREATE (:Pwned)",
    "detach_delete_all": "MATCH (n) DETACH DELETE n",
    "dbms_create_user": "CALL dbms.security.createUser('eve', 'pw', false)",
    "standalone_sleep": "CALL apoc.util.sleep(60000)",
    "semicolon_chain": "MATCH (n) RETURN count(n); CREATE (:Pwned)",
    "nested_parentheses": "RETURN " + "(" * 6000 + "1" + ")" * 6000 + " AS x",
    "unicode_escaped_keyword": "RETURN 1 AS x \\u0043REATE (:Pwned)",
    "long_query": "RETURN '" + "x" * 25_000 + "' AS s",
}
# How R1 hid a continuation from the old guard: a comment the servers end earlier than the guard.
TRICKS = {
    "plain": "MATCH (n:Concept) WITH count(n) AS c {}",
    "cr_comment": "MATCH (n:Concept) WITH count(n) AS c //x\r{}",
    "u2028_comment": "MATCH (n:Concept) WITH count(n) AS c //x\u2028{}",
    "u0085_comment": "MATCH (n:Concept) WITH count(n) AS c //x\u0085{}",
    "unicode_escape_comment": "MATCH (n:Concept) WITH count(n) AS c //x\\u000a{}",
    "block_comment": "MATCH (n:Concept) WITH count(n) AS c /* x */ {}",
}
CORPUS = {f"{trick}-{name}": template.format(payload)
          for trick, template in TRICKS.items() for name, payload in CONTINUATIONS.items()}
CORPUS.update({f"plain-{name}": cypher for name, cypher in STATEMENTS.items()})
CORPUS.update({f"cr_comment-{name}": f"RETURN 1 AS c //x\r{cypher}" for name, cypher in STATEMENTS.items()})


# -- the graph and its fingerprint --------------------------------------------------------------
def fingerprint(store: GraphStore) -> str:
    """A hash of every node, relationship and property, plus constraints, indexes, labels and types."""
    nodes, relationships = snapshot(store)
    with store.driver.session(database=store.database) as session:
        constraints = sorted(
            json.dumps([r["name"], r["type"], r["labelsOrTypes"], r["properties"]])
            for r in session.run("SHOW CONSTRAINTS")
        )
        indexes = sorted(
            json.dumps([r["name"], r["type"], r["labelsOrTypes"], r["properties"]])
            for r in session.run("SHOW INDEXES")
        )
        labels = sorted(r["label"] for r in session.run("CALL db.labels() YIELD label RETURN label"))
        types = sorted(r["relationshipType"] for r in session.run(
            "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType"))
    content = json.dumps([sorted(map(repr, nodes.items())), sorted(map(repr, relationships.items())),
                          constraints, indexes, labels, types])
    return hashlib.sha256(content.encode()).hexdigest()


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request, drivers, seed):
    """(store, fingerprint) of the seed ontology on one backend, synced once for this module."""
    driver, database = drivers(request.param)
    wipe(driver, database)
    store = GraphStore(driver, database=database, dialect=dialect_of_driver(driver), batch_size=500)
    store.ensure_schema()
    store.sync(seed)
    return store, fingerprint(store)


@pytest.mark.parametrize("cypher", list(CORPUS.values()), ids=list(CORPUS))
def test_attack_is_refused_and_the_graph_is_unchanged(seeded, cypher):
    store, before = seeded
    with pytest.raises(ReadOnlyQueryError):
        store.run_read_query(cypher)
    assert fingerprint(store) == before


def test_the_graph_really_is_readable_and_hashed(seeded):
    """The corpus proves nothing if reads fail or the hash ignores writes: check both."""
    store, before = seeded
    rows = store.run_read_query("MATCH (n:Concept {id: 'heart'}) RETURN n.name AS name").rows
    assert rows and rows[0]["name"]
    # A legitimate write (through the write path) changes the fingerprint; undo it afterwards.
    with store.driver.session(database=store.database) as session:
        session.run("MATCH (h:Concept {id: 'heart'}) SET h.probe = 1").consume()
        changed = fingerprint(store)
        session.run("MATCH (h:Concept {id: 'heart'}) REMOVE h.probe").consume()
    assert changed != before
    assert fingerprint(store) == before


# -- property-based fuzz ------------------------------------------------------------------------
SEEDS = [
    ("MATCH (n:Anatomy {variant: $variant}) RETURN n.id AS id ORDER BY id LIMIT 5", {"variant": "canonical"}),
    (queries.NEIGHBOURHOOD, {"variant": "canonical", "ids": ["heart"]}),
    (queries.RESOLVE_TERMS, {"variant": "canonical", "terms": ["heart"]}),
    (queries.EXPLAIN_PREDICTION, {"prediction_id": "none"}),
    ("MATCH (f:Finding {variant: 'canonical'})-[r:LOCATED_IN]->(a:Anatomy) RETURN f.name AS finding, "
     "a.name AS region ORDER BY finding LIMIT 3", {}),
    ("CALL db.labels() YIELD label RETURN label", {}),
]
TERMINATORS = ["\n", "\r\n", "\r", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\\u000a", "\\u000d"]
WRITES = [
    " CREATE (:Pwned)", " SET n.pwned = 1", " DETACH DELETE n", " MERGE (:Pwned)",
    " WITH 1 AS x CALL { CREATE (:Pwned) } IN TRANSACTIONS RETURN x", "; CREATE (:Pwned)",
    " CALL apoc.create.node(['Pwned'], {}) YIELD node RETURN node", " RETURN sql.eval('select 1') AS s",
    " LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row", " UNION MATCH (n) SET n.pwned = 1 RETURN n",
]


@st.composite
def mutated_queries(draw):
    base, parameters = draw(st.sampled_from(SEEDS))
    text = base
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["comment", "case", "space", "write", "hidden_write"]))
        spaces = [i for i, ch in enumerate(text) if ch == " "] or [len(text)]
        at = draw(st.sampled_from(spaces))
        if kind == "comment":
            body = draw(st.text(alphabet="ab /*'`\"", max_size=6))
            comment = draw(st.sampled_from([f"//{body}{draw(st.sampled_from(TERMINATORS))}", f"/*{body.replace('*/', '')}*/"]))
            text = text[:at] + " " + comment + " " + text[at:]
        elif kind == "case":
            flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
            text = "".join(ch.swapcase() if flip else ch for ch, flip in zip(text, flips))
        elif kind == "space":
            text = text[:at] + draw(st.sampled_from(["\t", "\n", "   ", "\r\n", "\u00a0"])) + text[at:]
        elif kind == "write":
            text = text + draw(st.sampled_from(WRITES))
        else:
            text = text[:at] + f" //x{draw(st.sampled_from(TERMINATORS))}{draw(st.sampled_from(WRITES))}\n" + text[at:]
    return text, parameters


@pytest.mark.slow  # ~20 s per backend: 200 examples, most of them run on the server
@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated_queries())
def test_fuzzed_queries_are_refused_or_read_only(seeded, case):
    store, before = seeded
    text, parameters = case
    try:
        checked = check_read_only(text)
    except ReadOnlyQueryError:
        return
    assert not {"Create", "Merge", "Set", "Delete", "Remove", "Foreach", "LoadCsv"} & set(checked.clauses)
    try:
        store.run_read_query(text, parameters, limit=10, timeout_s=10)
    except ReadOnlyQueryError:
        raise  # the store's guard must agree with the one just asked (it is a GraphStoreError too)
    except GraphStoreError:
        pass  # a read the server rejects (a flipped-case name, say) is still a read
    marked = store.run_read_query("MATCH (n) WHERE n.pwned IS NOT NULL OR 'Pwned' IN labels(n) RETURN count(n) AS n")
    assert marked.rows[0]["n"] == 0


def test_fuzz_left_the_graph_unchanged(seeded):
    """Runs after the fuzz (same module, same backend): the fingerprint is the one taken at sync."""
    store, before = seeded
    assert fingerprint(store) == before


# -- the guard and the servers read accepted text alike ------------------------------------------
# Each query passes the guard and hides something in a place where lexers could disagree; the
# server must return exactly the columns the guard's parse tree has.
AGREEMENT = [
    "RETURN 1 AS a // c\r\n, 2 AS b",
    "RETURN 1 AS a // c\n, 2 AS b",
    "RETURN 1 AS a /* /* */, 2 AS b",
    "RETURN 1 AS a /* // */, 2 AS b",
    "RETURN '//' AS a, 2 AS b",
    "RETURN 'it\\'s // x' AS a, 2 AS b",
    "RETURN 'back\\\\' AS a, 2 AS b",
    "RETURN \"d'q // \\\" \" AS a, '\"' AS b",
    "RETURN 1 AS `a``b // c`, 2 AS b",
    "RETURN 'a\\qb' AS a, 2 AS b",
    "RETURN 'ü // ö' AS a, 2 AS b // ünïcode\n",
    "RETURN 'multi\nline // x' AS a, 2 AS b",
]


def guard_columns(cypher: str) -> list[str]:
    from cypherast import ast
    from cypherast.parser import Parser

    check_read_only(cypher)
    final = Parser(cypher, dialect="neo4j25").parse().args["this"].args["clauses"][-1]
    return [item.args["alias"].args["this"] for item in final.args["expressions"] if isinstance(item, ast.Alias)]


@pytest.mark.parametrize("cypher", AGREEMENT)
def test_servers_read_accepted_text_as_the_guard_does(seeded, cypher):
    store, _ = seeded
    assert store.run_read_query(cypher).columns == guard_columns(cypher)


# -- what users run still runs ------------------------------------------------------------------
def _project_queries():
    from tests.kg.test_cypher_guard import makefile_demo_query, viewer_default_query

    return {
        "make_demo": (makefile_demo_query(), {}),
        "viewer_default": (viewer_default_query(), {}),
        "explain_prediction": (queries.EXPLAIN_PREDICTION, {"prediction_id": "img/run/prediction/cardiomegaly"}),
        "neighbourhood": (queries.NEIGHBOURHOOD, {"variant": "canonical", "ids": ["right_costophrenic_angle"]}),
        "labels": ("CALL db.labels() YIELD label RETURN label ORDER BY label", {}),
    }


@pytest.mark.parametrize("name", sorted(_project_queries()))
def test_the_queries_users_run_pass_the_guard_and_run(seeded, name):
    store, _ = seeded
    cypher, parameters = _project_queries()[name]
    result = store.run_read_query(cypher, parameters, limit=50)
    # The seed has no PadChest edges (make demo syncs the built ontology) and no predictions.
    if name not in ("make_demo", "explain_prediction"):
        assert result.rows, name
