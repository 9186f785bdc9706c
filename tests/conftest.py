"""Shared fixtures: the graph-store backends every store test runs against.

``store`` is parametrised over the real Neo4j server and the embedded ArcadeDB engine, so one
suite covers both. Neo4j is taken from ``NEO4J_URI``/``NEO4J_PASSWORD`` when set (``make test``
starts it); otherwise this session starts it with ``services/neo4j/neo4jctl.py`` and stops it at
the end. If it cannot be had the Neo4j tests fail rather than skip: deselect them explicitly with
``-m "not neo4j"`` if that is what you want. Each test starts from an empty database (constraints
and indexes kept), like neo4j-graphrag's e2e fixtures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import neo4j
import pytest

from anatomy_vlm.kg import ARCADEDB, NEO4J, EmbeddedConfig, EmbeddedGraphServer, GraphStore, dialect_of_driver
from anatomy_vlm.ontology.seed import seed_ontology

REPO = Path(__file__).resolve().parents[1]
NEO4JCTL = REPO / "services" / "neo4j" / "neo4jctl.py"
BACKENDS = [pytest.param("neo4j", marks=pytest.mark.neo4j), pytest.param("embedded", marks=pytest.mark.embedded)]


# -- servers (one per test session) ------------------------------------------------------------
@pytest.fixture(scope="session")
def neo4j_server():
    """(uri, user, password) of the real Neo4j server."""
    started_here = False
    if not os.environ.get("NEO4J_URI"):
        # A server someone else started (e.g. `make neo4j-start`) is reused and left running.
        status = subprocess.run([sys.executable, str(NEO4JCTL), "status"], capture_output=True)
        already_running = status.returncode == 0
        result = subprocess.run(
            [sys.executable, str(NEO4JCTL), "start", "--quiet"], capture_output=True, text=True, timeout=900
        )
        if result.returncode != 0:
            pytest.fail(f"could not start Neo4j with {NEO4JCTL}:\n{result.stdout}\n{result.stderr}", pytrace=False)
        for name, value in re.findall(r"export (\w+)=(\S+)", result.stdout):
            os.environ[name] = value.strip("'\"")
        started_here = not already_running
    yield os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"), os.environ["NEO4J_PASSWORD"]
    if started_here:
        subprocess.run([sys.executable, str(NEO4JCTL), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    server = EmbeddedGraphServer(EmbeddedConfig(path=tmp_path_factory.mktemp("embedded-graph"), heap="1g"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_server):
    uri, user, password = neo4j_server
    driver = neo4j.GraphDatabase.driver(uri, auth=(user, password))
    yield driver, "neo4j"
    driver.close()


@pytest.fixture(scope="session")
def embedded_driver(embedded_server):
    # Closed before the engine stops (fixture teardown is last-in, first-out): ArcadeDB's stop
    # waits on open Bolt connections.
    driver = neo4j.GraphDatabase.driver(embedded_server.uri, auth=embedded_server.credentials())
    yield driver, embedded_server.config.database
    driver.close()


@pytest.fixture(scope="session")
def drivers(request):
    """``drivers(backend) -> (driver, database)``, each server started only when first asked for."""
    return lambda backend: request.getfixturevalue(f"{backend}_driver")


def wipe(driver: neo4j.Driver, database: str | None) -> None:
    with driver.session(database=database) as session:
        session.run("MATCH (n) DETACH DELETE n").consume()


@pytest.fixture(params=BACKENDS)
def store(request, drivers) -> GraphStore:
    """An empty graph store on each backend."""
    driver, database = drivers(request.param)
    wipe(driver, database)
    dialect = dialect_of_driver(driver)
    assert dialect is (NEO4J if request.param == "neo4j" else ARCADEDB)
    store = GraphStore(driver, database=database, dialect=dialect, batch_size=16)
    store.ensure_schema()
    return store


@pytest.fixture
def graph_args(store, request) -> list[str]:
    """Options that point the CLI at the backend the ``store`` fixture just emptied."""
    if store.dialect.name == "neo4j":
        uri, user, password = request.getfixturevalue("neo4j_server")
        return ["--uri", uri, "--user", user, "--password", password]
    # The CLI joins the session's running engine through the server.json in its folder.
    return ["--graph-path", str(request.getfixturevalue("embedded_server").path)]


@pytest.fixture(scope="session")
def seed():
    return seed_ontology()


def snapshot(store: GraphStore) -> tuple[Counter, Counter]:
    """Every node (labels + properties) and relationship (type, ends, properties) as comparable multisets."""
    with store.driver.session(database=store.database) as session:
        nodes = Counter(
            (tuple(sorted(r["labels"])), repr(sorted(r["props"].items())))
            for r in session.run("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
        )
        relationships = Counter(
            (r["type"], r["a"], r["b"], repr(sorted(r["props"].items())))
            for r in session.run(
                "MATCH (a)-[r]->(b) RETURN type(r) AS type, coalesce(a.variant, '') + '/' + a.id AS a, "
                "coalesce(b.variant, '') + '/' + b.id AS b, properties(r) AS props"
            )
        )
    return nodes, relationships


# -- a visible count of what ran on each backend ----------------------------------------------
_outcomes: dict[str, Counter] = {"neo4j": Counter(), "embedded": Counter()}


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    for backend, counter in _outcomes.items():
        if backend in report.keywords:  # the backend's marker, set by the store parameter or by hand
            counter[report.outcome] += 1


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("graph backends")
    names = {"neo4j": "the real Neo4j server", "embedded": "the embedded ArcadeDB engine"}
    for backend, counter in _outcomes.items():
        total = sum(counter.values())
        terminalreporter.write_line(
            f"tests run against {names[backend]}: {total} "
            f"(passed {counter['passed']}, failed {counter['failed']}, skipped {counter['skipped']})"
        )
