"""The server-side half of the read-only guarantee, and the bounds on a read-only query's work.

Every statement here is sent past the text guard (``queries.ensure_read_only``), straight to the
read session ``GraphStore.run_read_query`` uses, as a parser bug would let it through: the
server itself must refuse it, and the graph's content and schema must be unchanged afterwards.
docs/security/server.md states what each backend guarantees; these tests are its evidence.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

import neo4j
import pytest
from neo4j.exceptions import Neo4jError

from anatomy_vlm.exceptions import GraphStoreError, QueryTimeoutError, ReadOnlyQueryError
from anatomy_vlm.kg import EmbeddedConfig, EmbeddedGraphServer, GraphConfig, GraphConnection, GraphStore
from anatomy_vlm.kg import store as store_module
from anatomy_vlm.kg.embedded import EMBEDDED_READ_USER
from tests.conftest import snapshot

GRACE_S = 3.0  # what a timed-out query may take beyond its timeout on this shared, loaded machine


@pytest.fixture(scope="session")
def embedded_read_driver(embedded_server):
    driver = neo4j.GraphDatabase.driver(embedded_server.uri, auth=embedded_server.read_credentials())
    yield driver
    driver.close()


@pytest.fixture
def guarded(store, request) -> GraphStore:
    """The ``store`` fixture's graph (seeded) seen as ``GraphConnection`` sets it up: on the
    embedded engine user queries go through its read-only user; Neo4j Community has no such
    user, so there they run as the admin user in READ mode."""
    read_driver = request.getfixturevalue("embedded_read_driver") if store.dialect.name == "arcadedb" else None
    guarded = GraphStore(store.driver, database=store.database, dialect=store.dialect, read_driver=read_driver)
    guarded.sync(request.getfixturevalue("seed"))
    return guarded


def state(store: GraphStore) -> tuple[str, tuple]:
    """A content hash of every node and relationship, and the schema (labels, types, indexes, constraints)."""
    nodes, relationships = snapshot(store)
    content = hashlib.sha256(repr((sorted(nodes.items()), sorted(relationships.items()))).encode()).hexdigest()
    with store.driver.session(database=store.database) as session:
        schema = tuple(
            tuple(sorted(session.run(query).single()[0]))
            for query in (
                "CALL db.labels() YIELD label RETURN collect(label)",
                "CALL db.relationshipTypes() YIELD relationshipType RETURN collect(relationshipType)",
                "SHOW INDEXES YIELD name RETURN collect(name)",
                "SHOW CONSTRAINTS YIELD name RETURN collect(name)",
            )
        )
    return content, schema


# Writes and schema changes, the way R1 of issue 14 committed them on the embedded engine.
FORBIDDEN = [
    "CREATE (:Pwned {id: 'x'})",
    "MATCH (h:Concept {id: 'heart'}) SET h.name = 'PWNED'",
    "MATCH (h:Concept {id: 'heart'}) CALL { WITH h SET h.name = 'PWNED' } IN TRANSACTIONS RETURN 1",
    "MATCH (c:Concept {id: 'pleural_effusion'}) CALL { WITH c DETACH DELETE c } IN TRANSACTIONS RETURN 1",
    "CALL { CREATE (:Pwned) } IN TRANSACTIONS RETURN 1",
    "MERGE (:Pwned {id: 'y'})",
    "MATCH (n:Concept) DETACH DELETE n",
    "MATCH (:Concept {id: 'heart'})-[r]-() DELETE r",
    "CREATE INDEX pwned_index IF NOT EXISTS FOR (c:Concept) ON (c.pwned)",
    "CREATE CONSTRAINT pwned_key IF NOT EXISTS FOR (p:PwnedLabel) REQUIRE p.id IS UNIQUE",
    "DROP CONSTRAINT concept_key",
    "DROP INDEX concept_name",
    "CALL apoc.merge.node(['PwnedLabel'], {id: 'z'}) YIELD node RETURN node",
    "CALL apoc.create.node(['PwnedLabel'], {id: 'z'}) YIELD node RETURN node",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "LOAD CSV FROM 'http://127.0.0.1:9/x.csv' AS row RETURN row",
]


@pytest.mark.parametrize("how", ["explicit", "autocommit"])
def test_server_refuses_writes_schema_and_files_from_the_read_session(guarded, how):
    before = state(guarded)
    driver = guarded.read_driver or guarded.driver
    outcomes = {}
    for statement in FORBIDDEN:
        with driver.session(database=guarded.database, default_access_mode=neo4j.READ_ACCESS) as session:
            try:
                if how == "explicit":
                    with session.begin_transaction(timeout=30) as tx:
                        tx.run(statement).consume()
                        tx.commit()
                else:
                    session.run(statement).consume()  # CALL { } IN TRANSACTIONS needs an implicit transaction
                outcomes[statement] = "accepted"
            except Neo4jError as error:
                outcomes[statement] = error.code
    assert [s for s, outcome in outcomes.items() if outcome == "accepted"] == []
    assert state(guarded) == before


def test_a_guard_bug_becomes_a_refusal_not_a_write(guarded, monkeypatch):
    """With the text guard switched off, ``run_read_query`` still writes nothing. A statement
    that needs a new label, type or index is refused at once (``ReadOnlyQueryError``); a record
    write is refused by Neo4j at once and by ArcadeDB at commit, which the read path never does
    (it rolls back), so there it is undone."""
    before = state(guarded)
    monkeypatch.setattr(store_module.queries, "ensure_read_only", lambda cypher: cypher)
    for statement in ("CREATE (:Pwned) RETURN 1", "CREATE INDEX pwned_index IF NOT EXISTS FOR (c:Concept) ON (c.pwned)",
                      "MATCH (c:Concept {id: 'heart'}) CALL { WITH c SET c.name = 'PWNED' } IN TRANSACTIONS RETURN 1"):
        with pytest.raises(ReadOnlyQueryError, match="refused the query"):
            guarded.run_read_query(statement, timeout_s=30)
    for statement in ("MATCH (h:Concept {id: 'heart'}) SET h.name = 'PWNED' RETURN h.name",
                      "MATCH (c:Concept {id: 'pleural_effusion'}) DETACH DELETE c RETURN 1"):
        try:
            guarded.run_read_query(statement, timeout_s=30)
        except ReadOnlyQueryError:
            pass
    assert state(guarded) == before
    assert guarded.run_read_query("MATCH (c:Concept {id: 'heart'}) RETURN c.name AS name").rows == [{"name": "heart"}]


@pytest.mark.embedded
def test_embedded_reader_is_a_separate_user_with_private_credentials(embedded_server):
    user, password = embedded_server.read_credentials()
    root_user, root_password = embedded_server.credentials()
    assert user == EMBEDDED_READ_USER and user != root_user and password != root_password
    credentials = embedded_server.path / "credentials.json"
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    assert json.loads(credentials.read_text())["read_password"] == password


def test_credentials_written_before_the_read_only_user_keep_the_root_password(tmp_path):
    """A data folder from before the read-only user existed: its root password is kept (the
    engine's databases use it) and a read-only password is added, still 0600."""
    (tmp_path / "credentials.json").write_text(json.dumps({"user": "root", "password": "old-root-password"}))
    server = EmbeddedGraphServer(EmbeddedConfig(path=tmp_path))
    assert server.credentials() == ("root", "old-root-password")
    user, password = server.read_credentials()
    assert user == EMBEDDED_READ_USER and len(password) >= 24
    assert server.read_credentials() == (user, password)  # generated once
    assert stat.S_IMODE(os.stat(tmp_path / "credentials.json").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.json"]


@pytest.mark.embedded
def test_embedded_connection_uses_the_read_only_user(embedded_server, monkeypatch):
    """``GraphConnection`` over the embedded engine sends user queries as the read-only user."""
    monkeypatch.setattr(store_module.queries, "ensure_read_only", lambda cypher: cypher)
    with GraphConnection(GraphConfig(embedded_path=embedded_server.path)) as graph:
        assert graph.read_driver is not None
        assert graph.store.read_driver is graph.read_driver
        with pytest.raises(ReadOnlyQueryError):
            graph.store.run_read_query("CREATE (:Pwned) RETURN 1")
        assert graph.store.run_read_query("MATCH (p:Pwned) RETURN count(p) AS n").rows == [{"n": 0}]


@pytest.mark.embedded
def test_embedded_engine_caps_range_and_refuses_load_csv(embedded_read_driver, embedded_server):
    with embedded_read_driver.session(database=embedded_server.config.database,
                                      default_access_mode=neo4j.READ_ACCESS) as session:
        with pytest.raises(Neo4jError):
            session.run("RETURN size(range(1, 3000000)) AS n").consume()
        assert session.run("RETURN size(range(1, 1000)) AS n").single()["n"] == 1000


def test_read_credentials_without_a_user_are_refused():
    with pytest.raises(GraphStoreError, match="read user"):
        GraphConnection(GraphConfig(uri="bolt://127.0.0.1:9", password="x", read_password="y")).open()


# -- bounded work -------------------------------------------------------------------------------
def test_byte_cap_truncates_while_streaming(guarded):
    query = "UNWIND range(1, 2000) AS i RETURN i, $pad AS pad"
    pad = "x" * 1000
    whole = guarded.run_read_query(query, {"pad": pad}, limit=5000)
    assert len(whole.rows) == 2000 and not whole.truncated
    capped = guarded.run_read_query(query, {"pad": pad}, limit=5000, max_bytes=20_000)
    assert capped.truncated
    assert 10 <= len(capped.rows) < 20
    assert sum(len(json.dumps(row)) for row in capped.rows) <= 20_000
    assert capped.rows == whole.rows[:len(capped.rows)]
    with pytest.raises(ValueError):
        guarded.run_read_query("RETURN 1", max_bytes=0)


def test_a_single_oversized_row_is_not_returned(guarded):
    """Refused before it is converted: converting a 3,000,000-element row alone took 25 s. The bound is
    a parameter, which the guard cannot bound (a constant one it refuses): the byte cap must."""
    started = time.monotonic()
    result = guarded.run_read_query("RETURN range(1, $n) AS r", {"n": 900_000}, max_bytes=100_000)
    assert result.truncated and result.rows == []
    assert time.monotonic() - started < 10


def test_byte_cap_counts_nodes_relationships_and_paths(guarded):
    query = "MATCH p = (a:Concept)-[r]->(b:Concept) RETURN a, r, b, p, $text AS s LIMIT 40"
    text = {"text": 'a "quoted"\tname, déjà vu'}
    whole = guarded.run_read_query(query, text)
    assert len(whole.rows) == 40 and not whole.truncated
    def size(rows):
        return sum(len(json.dumps(row, default=str, ensure_ascii=False).encode()) for row in rows)

    cap = size(whole.rows[:10])
    capped = guarded.run_read_query(query, text, max_bytes=cap)
    assert capped.truncated and 0 < len(capped.rows) <= 10
    assert size(capped.rows) <= cap


@pytest.mark.neo4j
@pytest.mark.parametrize("store", ["neo4j"], indirect=True)
def test_neo4j_cancels_a_long_query_at_its_timeout(store):
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError) as caught:
        # the bound is a parameter: the guard refuses a constant range this long, the server must stop this one
        store.run_read_query("UNWIND range(1, $n) AS x WITH x WHERE x % 7 = 123 RETURN count(*) AS n", {"n": 2_000_000_000},
                             timeout_s=2)
    assert time.monotonic() - started < 2 + GRACE_S
    assert caught.value.timeout_s == 2
    assert "connection closed" not in str(caught.value)  # the server's own cancellation, not the watchdog
    # Nothing of it is left running.
    with store.driver.session(database=store.database) as session:
        running = [r["currentQuery"] for r in session.run("SHOW TRANSACTIONS YIELD currentQuery")]
    assert not [q for q in running if "range(1, $n)" in q]


@pytest.mark.neo4j
@pytest.mark.timeout(60)  # without the watchdog this would wait for ever
@pytest.mark.parametrize("store", ["neo4j"], indirect=True)
def test_watchdog_cuts_a_query_the_server_never_answers(store, monkeypatch):
    """6,000 nested parentheses overflow Neo4j's parser, which then never answers (issue 14, R3):
    the transaction timeout cannot apply, the watchdog closes the connection. The guard refuses such
    a query long before; it is sent past it here, as a guard bug would."""
    monkeypatch.setattr(store_module.queries, "ensure_read_only", lambda cypher: cypher)
    deep = "RETURN " + "(" * 6000 + "1" + ")" * 6000 + " AS x"
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="connection closed"):
        store.run_read_query(deep, timeout_s=2)
    assert time.monotonic() - started < 2 + store_module.WATCHDOG_GRACE_S + GRACE_S
    assert store.run_read_query("RETURN 1 AS one").rows == [{"one": 1}]  # the pool is fine


@pytest.fixture(scope="module")
def short_engine(tmp_path_factory):
    """An embedded engine whose statements are aborted after 3 s, with 1,500 concepts."""
    server = EmbeddedGraphServer(EmbeddedConfig(path=tmp_path_factory.mktemp("short-engine"), heap="1g",
                                                statement_timeout_s=3))
    server.start()
    writer = neo4j.GraphDatabase.driver(server.uri, auth=server.credentials())
    reader = neo4j.GraphDatabase.driver(server.uri, auth=server.read_credentials())
    with writer.session(database=server.config.database) as session:
        for start in range(0, 1500, 250):  # small batches: each statement is bounded too
            session.run("UNWIND range($start, $start + 249) AS i CREATE (:Concept {id: 'c' + i, name: 'n' + i})",
                        start=start).consume()
    from anatomy_vlm.kg import ARCADEDB

    yield server, GraphStore(writer, database=server.config.database, dialect=ARCADEDB, read_driver=reader)
    reader.close()
    writer.close()
    server.stop()


def _engine_aborts(server: EmbeddedGraphServer) -> int:
    log = (server.path / "server.log").read_text(errors="replace")
    return log.count("exceeded the arcadedb.command.timeout")


@pytest.mark.embedded
@pytest.mark.slow
def test_embedded_engine_stops_a_long_query(short_engine):
    """ArcadeDB ignores the transaction timeout and keeps running a query whose connection was
    closed (measured > 90 s for this cartesian product); the engine's statement timeout stops it."""
    server, store = short_engine
    aborts = _engine_aborts(server)
    heavy = "MATCH (a:Concept), (b:Concept), (c:Concept) WHERE a.name + b.name + c.name = 'none' RETURN count(*) AS n"
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError) as caught:
        store.run_read_query(heavy, timeout_s=10)
    answered = time.monotonic() - started
    assert "connection closed" not in str(caught.value)  # the engine's own error, not the watchdog
    # The engine's own abort (3 s) comes before the 10 s timeout: it is the engine that stopped it.
    assert answered < 3 + GRACE_S
    deadline = time.monotonic() + 5
    while _engine_aborts(server) == aborts and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _engine_aborts(server) == aborts + 1


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_embedded_watchdog_answers_at_the_callers_timeout(short_engine):
    """A caller's timeout shorter than the engine's: the caller hears back at its own timeout
    (the watchdog closes the connection), and the engine still stops the statement at its own."""
    server, store = short_engine
    aborts = _engine_aborts(server)
    heavy = "MATCH (a:Concept), (b:Concept), (c:Concept) WHERE a.id + b.id + c.id = 'none' RETURN count(*) AS n"
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="connection closed"):
        store.run_read_query(heavy, timeout_s=0.5)
    assert time.monotonic() - started < 0.5 + store_module.WATCHDOG_GRACE_S + GRACE_S
    deadline = time.monotonic() + 3 + GRACE_S
    while _engine_aborts(server) == aborts and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _engine_aborts(server) == aborts + 1
    assert store.run_read_query("MATCH (c:Concept) RETURN count(c) AS n").rows == [{"n": 1500}]


@pytest.mark.neo4j
def test_neo4j_read_credentials_open_a_second_driver(neo4j_server, monkeypatch):
    """``read_user``/``read_password`` (NEO4J_READ_USER/NEO4J_READ_PASSWORD) are used for user
    queries on a server. Community has no roles, so the user is created here only to show which
    user runs them; on Enterprise/Aura it is one with the ``reader`` role."""
    from anatomy_vlm.api.settings import Settings

    uri, user, password = neo4j_server
    admin = neo4j.GraphDatabase.driver(uri, auth=(user, password))
    try:
        admin.execute_query("CREATE USER graph_reader IF NOT EXISTS SET PASSWORD 'reader-password-1' "
                            "CHANGE NOT REQUIRED", database_="system")
        config = Settings(neo4j_uri=uri, neo4j_user=user, neo4j_password=password,
                          neo4j_read_user="graph_reader", neo4j_read_password="reader-password-1").graph_config()
        assert (config.read_user, config.read_password) == ("graph_reader", "reader-password-1")
        monkeypatch.setattr(store_module.queries, "ensure_read_only", lambda cypher: cypher)
        with GraphConnection(config) as graph:
            assert graph.read_driver is not None and graph.store.read_driver is graph.read_driver
            who = graph.store.run_read_query("CALL dbms.showCurrentUser() YIELD username RETURN username")
            assert who.rows == [{"username": "graph_reader"}]
        with GraphConnection(GraphConfig(uri=uri, password=password)) as graph:  # none given: the main user
            assert graph.read_driver is None
            who = graph.store.run_read_query("CALL dbms.showCurrentUser() YIELD username RETURN username")
            assert who.rows == [{"username": user}]
        with pytest.raises(GraphStoreError, match="graph_reader.*read-only user"):
            GraphConnection(GraphConfig(uri=uri, password=password, read_user="graph_reader",
                                        read_password="wrong-password")).open()
    finally:
        admin.execute_query("DROP USER graph_reader IF EXISTS", database_="system")
        admin.close()
