"""The read-only guard on its own (no database): what it allows, what it refuses, and why.

The attacks against real servers are in test_read_only_attacks.py; these tests pin the guard's
decisions and messages, and stay fast enough to run on every change.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from anatomy_vlm.exceptions import ReadOnlyQueryError
from anatomy_vlm.kg import cypher_guard, queries
from anatomy_vlm.kg.cypher_guard import MAX_NESTING, MAX_QUERY_CHARS, MAX_TOKENS, check_read_only

REPO = Path(__file__).resolve().parents[2]

# Every statement in kg/queries.py that only reads (the rest write, and must be refused).
PROJECT_READS = {
    name: getattr(queries, name) for name in (
        "READ_CONCEPTS", "READ_RELATIONS", "COUNT_VARIANT_ELEMENTS", "GET_VARIANT", "LIST_VARIANTS",
        "FIND_CONCEPTS", "RESOLVE_TERMS", "NEIGHBOURHOOD", "READ_IMAGE", "READ_ROIS", "READ_PREDICTIONS",
        "EXPLAIN_PREDICTION",
    )
}
PROJECT_WRITES = {
    "DELETE_CONCEPTS": queries.DELETE_CONCEPTS, "UPDATE_CONCEPTS": queries.UPDATE_CONCEPTS,
    "UPSERT_VARIANT": queries.UPSERT_VARIANT, "DELETE_VARIANT_CONCEPTS": queries.DELETE_VARIANT_CONCEPTS,
    "DELETE_VARIANT": queries.DELETE_VARIANT, "WRITE_IMAGE": queries.WRITE_IMAGE, "WRITE_ROIS": queries.WRITE_ROIS,
    "WRITE_PREDICTIONS": queries.WRITE_PREDICTIONS, "WRITE_EVIDENCE": queries.WRITE_EVIDENCE,
    "WRITE_ATTENTION": queries.WRITE_ATTENTION, "DELETE_RUN": queries.DELETE_RUN,
    "create_concepts": queries.create_concepts("Anatomy"), "relabel_concepts": queries.relabel_concepts("Finding"),
    "create_relations": queries.create_relations("PART_OF"), "delete_relations": queries.delete_relations("PART_OF"),
    **{f"schema_{i}": s for i, s in enumerate(queries.schema_statements())},
}


def makefile_demo_query() -> str:
    """The query `make demo` runs through `anatomy-vlm kg query`, read from the Makefile itself."""
    match = re.search(r'kg query "([^"]+)"', (REPO / "Makefile").read_text())
    assert match, "the Makefile no longer runs a demo kg query"
    return match.group(1)


def viewer_default_query() -> str:
    """The query the viewer's Cypher tab opens with."""
    html = (REPO / "api" / "static" / "index.html").read_text()
    match = re.search(r'<textarea id="cypher-query"[^>]*>(.*?)</textarea>', html, re.DOTALL)
    assert match
    return match.group(1)


READS = [
    "MATCH (n:Concept {name: 'DELETE me'}) RETURN n",
    'MATCH (n) WHERE n.definition CONTAINS "set of cells" RETURN n.id',
    "MATCH (n) // CREATE nothing\nRETURN count(n)",
    "MATCH (n) // CREATE nothing\r\nRETURN count(n)",  # Windows line ends are fine
    "MATCH (n) /* MERGE */ RETURN n.`create`",
    "MATCH (n) /* a comment\nover lines */ RETURN n",
    "MATCH (n) RETURN n.`set` AS `DETACH DELETE`",
    "RETURN 1 AS `a``b`",  # a doubled backtick inside a name
    r"RETURN 'it\'s' AS s, 'back\\' AS b, " + '"say \\"hi\\"" AS q',  # escapes inside strings
    "RETURN 'CALL { CREATE (n) } IN TRANSACTIONS' AS s",
    "RETURN 'Ünïcödé // not a comment' AS s  // ünïcode in a comment",
    "CALL db.labels() YIELD label RETURN label",
    "CALL db.labels()",
    "CALL DB.RELATIONSHIPTYPES()",  # procedure names are case-insensitive
    "CALL db.schema.visualization()",
    "match (n) return n.settings, n.created_at, n.removed limit 3",
    "MATCH (n) CALL { WITH n MATCH (n)-->(m) RETURN count(m) AS degree } RETURN n.id, degree",
    "MATCH (n) RETURN n UNION ALL MATCH (n) RETURN n",
    "MATCH (n) RETURN n.id AS id UNION MATCH (m) RETURN m.id AS id",
    "OPTIONAL MATCH (n:Nothing) RETURN n",
    "MATCH (n) WHERE EXISTS { MATCH (n)-->() } RETURN COUNT { (n)<--() } AS c ORDER BY c DESC SKIP 1 LIMIT 5",
    "UNWIND range(1, 10) AS i WITH i WHERE i % 2 = 0 RETURN collect(i) AS even, sum(i), avg(i), max(i), min(i)",
    "MATCH p = (a)-[:PART_OF*1..3]->(b) RETURN nodes(p), relationships(p), length(p), startNode(last(relationships(p)))",
    "MATCH (n) RETURN n {.id, .name} AS m, labels(n), keys(n), properties(n), elementId(n), id(n)",
    "RETURN toLower('A'), toUpper('a'), toString(1), toInteger('1'), toFloat('1.5'), round(1.5), abs(-1), "
    "head([1]), tail([1, 2]), reverse([1, 2]), split('a,b', ','), substring('abc', 1), trim(' a '), "
    "replace('a', 'a', 'b'), left('ab', 1), right('ab', 1), coalesce(null, 1), size([1])",
    "RETURN date('2020-01-01') AS d, datetime() AS t, duration.between(date('2020-01-01'), date()) AS g",
    "MATCH (n) RETURN percentileCont(n.weight, 0.5), percentileDisc(n.weight, 0.5), stDev(n.weight)",
    "RETURN reduce(s = 0, x IN [1, 2, 3] | s + x) AS total, [x IN [1, 2] WHERE x > 1 | x * 2] AS l",
    "MATCH (n) WHERE all(s IN n.synonyms WHERE s <> '') AND n.name =~ '(?i)heart.*' RETURN n",
    "RETURN $param AS p, CASE WHEN $x IS NULL THEN 'none' ELSE 'some' END AS c",
    "RETURN range(1, 100000) AS ok",
]


@pytest.mark.parametrize("cypher", READS)
def test_reads_pass(cypher):
    assert check_read_only(cypher).text == cypher
    assert queries.ensure_read_only(cypher) == cypher


@pytest.mark.parametrize("name", sorted(PROJECT_READS))
def test_every_read_query_of_the_project_passes(name):
    check_read_only(PROJECT_READS[name])


def test_the_demo_and_viewer_queries_pass():
    check_read_only(makefile_demo_query())
    check_read_only(viewer_default_query())
    explained = check_read_only(queries.EXPLAIN_PREDICTION)
    assert explained.clauses.count("Match") == 4 and explained.clauses[-1] == "Return"


@pytest.mark.parametrize("name", sorted(PROJECT_WRITES))
def test_every_write_query_of_the_project_is_refused(name):
    with pytest.raises(ReadOnlyQueryError, match="read-only queries may not use"):
        check_read_only(PROJECT_WRITES[name])


@pytest.mark.parametrize("cypher, named", [
    ("MATCH (n) DETACH DELETE n", "DETACH DELETE"),
    ("match (n) set n.x = 1 return n", "SET"),
    ("CREATE (n)", "CREATE"),
    ("UNWIND [1] AS x MERGE (n {id: x}) RETURN n", "MERGE"),
    ("LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row", "LOAD CSV"),
    ("LOAD CSV WITH HEADERS FROM 'http://127.0.0.1:9/x' AS row RETURN row", "LOAD CSV"),
    ("MATCH (n) FOREACH (x IN [1] | REMOVE n.name)", "FOREACH"),
    ("MATCH (n) REMOVE n:Concept RETURN n", "REMOVE"),
    ("DROP CONSTRAINT concept_key", "DROP"),
    ("DROP INDEX concept_name", "DROP"),
    ("CREATE INDEX x FOR (n:Concept) ON (n.x)", "CREATE"),
    ("CREATE CONSTRAINT x FOR (n:X) REQUIRE n.id IS UNIQUE", "CREATE"),
    ("USE system SHOW USERS", "USE"),
    ("SHOW TRANSACTIONS", "SHOW"),
    ("SHOW USERS", "SHOW"),
    ("SHOW SETTINGS", "SHOW"),
    ("SHOW CONSTRAINTS", "SHOW"),
    ("TERMINATE TRANSACTIONS 'neo4j-transaction-42'", "TERMINATE"),
    ("EXPLAIN MATCH (n) RETURN n", "EXPLAIN"),
    ("PROFILE MATCH (n) RETURN n", "PROFILE"),
    ("GRANT ROLE admin TO reader", "GRANT"),
    ("ALTER USER neo4j SET PASSWORD 'x'", "ALTER"),
    ("CALL dbms.security.createUser('a', 'b')", "dbms.security.createUser"),
    ("CALL dbms.listConfig() YIELD name RETURN name", "dbms.listConfig"),
    ("CALL dbms.listConnections()", "dbms.listConnections"),
    ("CALL dbms.killConnections(['bolt-1'])", "dbms.killConnections"),
    ("CALL db.clearQueryCaches()", "db.clearQueryCaches"),
    ("CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DELETE n', {})", "apoc.periodic.iterate"),
    ("CALL apoc.util.sleep(60000)", "apoc.util.sleep"),
    ("CALL apoc.merge.node(['X'], {id: 1}) YIELD node RETURN node", "MERGE"),
    ("RETURN sql.version()", r"sql\.version\(\)"),
    ("RETURN sql.eval('select 1') AS x", r"sql\.eval\(\)"),
    ("RETURN apoc.util.sleep(60000) AS x", r"apoc\.util\.sleep\(\)"),
    ("RETURN db.nameFromElementId('4:x:1') AS x", r"db\.nameFromElementId\(\)"),
    ("MATCH (n) CALL { WITH n SET n.x = 1 } IN TRANSACTIONS RETURN 1", "IN TRANSACTIONS"),
    ("MATCH (n) CALL { WITH n MATCH (n)-->(m) RETURN m } IN TRANSACTIONS OF 10 ROWS RETURN m", "IN TRANSACTIONS"),
    ("MATCH (n) CALL { WITH n DETACH DELETE n } RETURN 1", "DETACH DELETE"),
    ("MATCH (n) CALL { WITH n RETURN n AS m } RETURN m, n.x AS set", "SET"),  # the backstop
    ("OPTIONAL CALL { CREATE (n) RETURN n } RETURN n", "CREATE"),
    ("CALL { MATCH (n) RETURN n } RETURN 1 UNION CALL { CREATE (m) RETURN m } RETURN 1", "CREATE"),
    ("MATCH (n) WHERE EXISTS { MATCH (n) SET n.x = 1 RETURN n } RETURN n", "SET"),
    ("CYPHER 5 MATCH (n) RETURN n", "CYPHER"),
    ("RETURN range(1, 3000000) AS r", r"range\(\) would build 3,000,000"),
    ("RETURN range(0, 1000 * 1000 * 1000) AS r", r"range\(\) would build"),
    ("RETURN 1; CREATE (n)", "';'"),
    ("MATCH (n) WITH n", "must end in RETURN"),
    ("MATCH (n) CALL { WITH n MATCH (n)-->(m) } RETURN n", "CALL { } subquery must end in RETURN"),
])
def test_writes_admin_and_outside_calls_are_refused_naming_them(cypher, named):
    with pytest.raises(ReadOnlyQueryError, match=named):
        check_read_only(cypher)


# -- the lexical traps: each hides a write from a guard that lexes differently from the server --
LINE_TERMINATORS = ["\r", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1e"]


@pytest.mark.parametrize("terminator", LINE_TERMINATORS, ids=lambda t: f"U+{ord(t):04X}")
def test_comments_ended_by_odd_line_terminators_are_refused(terminator):
    cypher = f"MATCH (n:Concept) WITH count(n) AS c //x{terminator}CALL {{ CREATE (:Pwned) }} IN TRANSACTIONS RETURN c"
    with pytest.raises(ReadOnlyQueryError, match=r"carriage return|U\+"):
        check_read_only(cypher)


@pytest.mark.parametrize("cypher", [
    "MATCH (n) RETURN count(n) AS c //x\\u000aCREATE (:Pwned)",  # Neo4j decodes \u escapes before lexing
    "RETURN 'a\\u0027 + 'b' AS x",  # on Neo4j this string ends at the escaped quote
    "RETURN 1 AS x \\u0043REATE (:Pwned)",
    "RETURN 'a\\U00000027' AS x",
])
def test_unicode_escapes_are_refused_everywhere(cypher):
    with pytest.raises(ReadOnlyQueryError, match="unicode escape"):
        check_read_only(cypher)


@pytest.mark.parametrize("cypher, problem", [
    ("RETURN 1 AS a\u200b", r"U\+200B"),  # zero-width space: Neo4j reads it inside the name
    ("RE\u00adTURN 1", r"U\+00AD"),  # soft hyphen
    ("RETURN 1 AS \u017fet", "outside a string"),  # long s: Python upper-cases it to 'SET'
    ("RETURN\u00a01", "outside a string"),  # no-break space is whitespace to the servers only
    ("RETURN 'a\x00b' AS x", r"U\+0000"),
    ("RETURN `a\\` AS x", "backslash inside the `name`"),
    ("RETURN 'open", "unterminated string"),
    ("RETURN 1 /* open", "unterminated /\\* comment"),
    ("RETURN `open", "unterminated `name`"),
])
def test_ambiguous_characters_are_refused(cypher, problem):
    with pytest.raises(ReadOnlyQueryError, match=problem):
        check_read_only(cypher)


def test_block_comments_do_not_nest_on_the_servers_and_here_neither():
    # Both servers end a block comment at the first */ (probed), so the CREATE here is code.
    with pytest.raises(ReadOnlyQueryError, match="CREATE"):
        check_read_only("MATCH (n) /* /* */ CREATE (:Pwned) /* */ RETURN n")


def test_parse_failures_are_refused_as_not_valid_cypher():
    with pytest.raises(ReadOnlyQueryError, match="not valid Cypher in the supported read-only subset") as caught:
        check_read_only("MATCH (n RETURN n")
    assert "line 1, column" in str(caught.value)


def test_empty_and_non_text_queries_are_refused():
    for cypher in ("", "  \n", "// only a comment\n"):
        with pytest.raises(ReadOnlyQueryError):
            check_read_only(cypher)
    with pytest.raises(ReadOnlyQueryError, match="text"):
        check_read_only(None)  # type: ignore[arg-type]


# -- bounded work ------------------------------------------------------------------------------
def test_the_parenthesis_bomb_is_refused_fast_without_recursion_errors():
    bomb = "RETURN " + "(" * 6000 + "1" + ")" * 6000
    started = time.perf_counter()
    with pytest.raises(ReadOnlyQueryError, match=f"more than {MAX_NESTING} deep"):
        check_read_only(bomb)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("bomb", [
    "RETURN " + "NOT " * 3000 + "true",  # deep without brackets: the parser's depth guard
    "RETURN " + "- " * 4000 + "1",
    "RETURN " + "[" * MAX_NESTING + "1" + "]" * MAX_NESTING + " AS x",  # at the limit: parses
])
def test_deep_expressions_without_many_brackets_are_handled(bomb):
    started = time.perf_counter()
    try:
        check_read_only(bomb)
    except ReadOnlyQueryError:
        pass  # refused cleanly: no RecursionError escapes
    assert time.perf_counter() - started < 2


def test_long_flat_expressions_are_walked_without_recursion():
    check_read_only("RETURN " + " + ".join(["1"] * 1990) + " AS x")


def test_query_length_is_capped():
    long = "RETURN '" + "x" * MAX_QUERY_CHARS + "' AS s"
    with pytest.raises(ReadOnlyQueryError, match="at most 20,000"):
        check_read_only(long)


def test_token_count_is_capped_before_parsing():
    started = time.perf_counter()
    with pytest.raises(ReadOnlyQueryError, match=f"at most {MAX_TOKENS:,}"):
        check_read_only("RETURN [" + ",".join(["1"] * 5000) + "] AS x")
    assert time.perf_counter() - started < 0.5


def test_guard_is_fast_on_a_long_legitimate_query():
    query = "MATCH (n:Concept) WHERE n.id IN [" + ", ".join(f"'c{i}'" for i in range(1900)) + "] RETURN n.id"
    assert len(query) < MAX_QUERY_CHARS
    started = time.perf_counter()
    check_read_only(query)
    assert time.perf_counter() - started < 1.0


def test_allow_lists_are_named_and_closed():
    assert "apoc.merge.node" not in cypher_guard.READ_PROCEDURES
    assert not any(f.startswith(("apoc.", "sql.", "dbms.", "db.")) for f in cypher_guard.READ_FUNCTIONS)
    assert queries.READ_PROCEDURES is cypher_guard.READ_PROCEDURES


@pytest.mark.parametrize("scanned, parsed", [
    ("RETURN 'CREATE' AS x", "RETURN  CREATE   AS x"),  # the parser sees code inside the scan's string
    ("RETURN 1 AS x, y", "RETURN 'AS x, y'"),  # the parser's string swallows the scan's code
])
def test_a_disagreement_between_scan_and_parser_is_refused(scanned, parsed):
    from cypherast.parser import Parser

    with pytest.raises(ReadOnlyQueryError, match="differently"):
        cypher_guard._agree(scanned, cypher_guard._scan(scanned), Parser(parsed, dialect="neo4j25"))
