"""A sync that changes concept kinds leaves every variant all-old or all-new, even through kill -9.

On ArcadeDB such a sync takes two journalled transactions (``GraphStore._sync_with_kind_changes``);
on Neo4j it is one. The kill tests SIGKILL the real engine process (the embedded engine's child
process; a Neo4j JVM of the test's own) at fixed points of the sync and at timed delays, start it
again on the same data, open the store through ``GraphConnection`` (which undoes an interrupted
sync) and compare the variant's content hash and recorded version with the old and the new
ontology. The fast tests drive the journal's recovery without a kill.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import neo4j
import pytest

from anatomy_vlm.exceptions import GraphStoreError, GraphUnavailableError
from anatomy_vlm.kg import (
    GraphConfig,
    GraphConnection,
    GraphStore,
    PredictionRecord,
    ProvenanceRecord,
    RegionOfInterest,
    queries,
)
from anatomy_vlm.ontology import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.seed import seed_ontology
from tests.conftest import REPO, snapshot

KIND_CHANGES = 5
NEW_CONCEPTS = 3000
BATCH_SIZE = 250  # many statements in the main transaction: many places for a timed kill to land


# -- the two ontologies --------------------------------------------------------------------------
def _changed_findings(seed: Ontology) -> list[str]:
    """Findings whose only relations are LOCATED_IN, so they stay valid as diseases."""
    touching: dict[str, set[str]] = {}
    for relation in seed.relations:
        for end in (relation.start, relation.end):
            touching.setdefault(end, set()).add(relation.type.value)
    return sorted(c.id for c in seed.of_kind(ConceptKind.FINDING) if touching.get(c.id) == {"LOCATED_IN"})[:KIND_CHANGES]


def _old_and_new() -> tuple[Ontology, Ontology, list[str]]:
    old = seed_ontology()
    changed = _changed_findings(old)
    assert len(changed) == KIND_CHANGES
    anatomy = sorted(c.id for c in old.of_kind(ConceptKind.ANATOMY))
    added = [Concept(f"kill_test_finding_{i:05d}", ConceptKind.FINDING, f"kill test finding {i}", source="test")
             for i in range(NEW_CONCEPTS)]
    new = _kinds_changed(old, changed)
    new = new.with_changes(
        concepts=[*new.concepts, *added],
        relations=[*old.relations, *(Relation(RelationType.LOCATED_IN, c.id, anatomy[i % len(anatomy)], "test")
                                     for i, c in enumerate(added))],
    )
    new.validate()
    return old, new, changed


def _kinds_changed(old: Ontology, changed: list[str]) -> Ontology:
    return old.with_changes(concepts=[dataclasses.replace(c, kind=ConceptKind.DISEASE) if c.id in changed else c
                                      for c in old.concepts])


def _provenance(store: GraphStore, changed: list[str]) -> ProvenanceRecord:
    """A prediction of, and attention to, every concept whose kind will change."""
    return ProvenanceRecord(
        image_id="kill/test.dcm", image_sha256="ab" * 32, model="kill@test", graph_version=store.version() or "",
        rois=(RegionOfInterest("right lung", "right_lung", (0, 0, 10, 10), 0.9,
                               attention=tuple((concept, 0.1) for concept in changed)),),
        predictions=tuple(PredictionRecord(concept, 0.5, evidence=(("right lung", 1.0),)) for concept in changed),
    )


def _retired_and_journals(store: GraphStore) -> tuple[int, int]:
    # Neo4j warns that the SyncJournal label does not exist: it never writes one (it relabels in place).
    with store.driver.session(database=store.database, notifications_min_severity="OFF") as session:
        retired = session.run(
            "MATCH (n:Concept) WHERE n.variant STARTS WITH $prefix RETURN count(n) AS c", prefix="canonical\u0000"
        ).single()["c"]
        journals = session.run(queries.LIST_SYNC_JOURNALS).data()
    return retired, len(journals)


# -- fast: recovery of an interrupted sync, without a kill ----------------------------------------
class _Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing on the way catches it."""


@pytest.mark.embedded
def test_interrupted_kind_change_is_undone_on_recovery(embedded_server, monkeypatch):
    """The first transaction commits, the process 'dies': the variant is incomplete until recovery
    moves the retired nodes back, with their provenance edges; a later sync then completes."""
    old, new, changed = _old_and_new()
    new = _kinds_changed(old, changed)
    with GraphConnection(GraphConfig(embedded_path=embedded_server.path)) as graph:
        store = graph.store
        with store.driver.session(database=store.database) as session:
            session.run("MATCH (n) DETACH DELETE n").consume()
        store.sync(old)
        record = _provenance(store, changed)
        store.write_provenance(record)

        writes = []
        real_write = GraphStore._write

        def crash_after_first(session, variant, work):
            real_write(session, variant, work)
            writes.append(variant)
            raise _Crash  # after the journal and the retirement committed

        monkeypatch.setattr(GraphStore, "_write", staticmethod(crash_after_first))
        with pytest.raises(_Crash):
            store.sync(new)
        monkeypatch.undo()
        assert len(writes) == 1
        # Half done, as the issue measured: the changed concepts are out of the variant, the version is old.
        assert len(store.read_ontology().concepts) == len(old.concepts) - KIND_CHANGES
        assert store.version() == old.content_hash()
        assert _retired_and_journals(store) == (KIND_CHANGES, 1)

    with GraphConnection(GraphConfig(embedded_path=embedded_server.path)) as graph:  # open recovers
        store = graph.store
        assert store.read_ontology() == old
        assert store.version() == old.content_hash()
        assert _retired_and_journals(store) == (0, 0)
        assert store.read_provenance(record.image_id) == [record]
        report = store.sync(new)
        assert report.concepts_updated == KIND_CHANGES
        assert store.read_ontology() == new and store.version() == new.content_hash()
        assert store.read_provenance(record.image_id) == [record]  # edges moved onto the new nodes
        assert _retired_and_journals(store) == (0, 0)


@pytest.mark.embedded
def test_sync_refuses_to_run_beside_a_live_kind_change(embedded_server):
    """A journal whose owner is a live process on this host is a sync in progress: left alone."""
    old, new, changed = _old_and_new()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with GraphConnection(GraphConfig(embedded_path=embedded_server.path)) as graph:
            store = graph.store
            with store.driver.session(database=store.database) as session:
                session.run("MATCH (n) DETACH DELETE n").consume()
            store.sync(old)
            retired = "canonical\u0000retired\u0000live"
            journal = {"id": "live", "variant": "canonical", "retired": retired, "concepts": changed[:1],
                       "version": "v", "prior_version": old.content_hash(), "owner": f"{socket.gethostname()}:{sleeper.pid}",
                       "started_at": "2026-01-01T00:00:00+00:00"}
            with store.driver.session(database=store.database) as session:
                session.run(queries.BEGIN_SYNC_JOURNAL, props=journal).consume()
                session.run(queries.RETIRE_CONCEPTS, rows=changed[:1], variant="canonical", retired=retired).consume()
            assert store.recover_interrupted_syncs() == []
            before = snapshot(store)
            with pytest.raises(GraphStoreError, match=f"running \\(process .*:{sleeper.pid}"):
                store.sync(new)
            assert snapshot(store) == before
        sleeper.kill()
        sleeper.wait()
        with GraphConnection(GraphConfig(embedded_path=embedded_server.path)) as graph:  # its owner is dead now
            assert graph.store.read_ontology() == old
            assert _retired_and_journals(graph.store) == (0, 0)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_kind_change_keeps_provenance_edges(store):
    """Both backends: a prediction and the attention pointing at a concept survive its kind change."""
    old, new, changed = _old_and_new()
    small = _kinds_changed(old, changed)
    store.sync(old)
    record = _provenance(store, changed)
    store.write_provenance(record)
    store.sync(small)
    assert store.read_ontology() == small and store.version() == small.content_hash()
    assert store.read_provenance(record.image_id) == [record]
    store.sync(old)  # and back
    assert store.read_ontology() == old and store.read_provenance(record.image_id) == [record]
    assert _retired_and_journals(store) == (0, 0)


# -- kill -9 of the engine ------------------------------------------------------------------------
class _Pause:
    """Marks the sync thread's progress; stops it at one named point until the engine is killed."""

    def __init__(self, point: str | None, anchor: str | None):
        self.point, self.anchor = point, anchor
        self.reached = threading.Event()  # the thread stands at ``point``
        self.anchored = threading.Event()  # the thread passed ``anchor`` (timed kills count from there)
        self.release = threading.Event()
        self.seen: list[str] = []

    def at(self, name: str) -> None:
        self.seen.append(name)
        if name == self.anchor:
            self.anchored.set()
        if name == self.point:
            self.reached.set()
            self.release.wait(120)


def _hook_transactions(monkeypatch, pause: _Pause) -> None:
    """Name the moments of each sync transaction: "begin-tx1", "in-tx1" (all written, not yet
    committed), "after-tx1" (committed), then "begin-tx2"... (ArcadeDB's kind change has two)."""
    real_write = GraphStore._write
    count = [0]

    def write(session, variant, work):
        count[0] += 1
        n = count[0]
        pause.at(f"begin-tx{n}")

        def paused_work(tx):
            work(tx)
            pause.at(f"in-tx{n}")

        real_write(session, variant, paused_work)
        pause.at(f"after-tx{n}")

    monkeypatch.setattr(GraphStore, "_write", staticmethod(write))


def _kill_during_sync(monkeypatch, store: GraphStore, ontology: Ontology, kill, point: str | None, delay: float | None,
                      anchor: str = "begin-tx1") -> str:
    """Run ``store.sync(ontology)`` in a thread; kill the engine at ``point``, or ``delay`` s after ``anchor``.

    Timed kills count from a transaction's start, not the sync's: a kill while the sync still
    reads only makes the driver retry the read for 30 s. Returns what the sync did
    ("committed", or the name of the error it raised) and where it was killed."""
    pause = _Pause(point, anchor)
    _hook_transactions(monkeypatch, pause)
    outcome: list[str] = []

    def run() -> None:
        try:
            store.sync(ontology)
            outcome.append("committed")
        except (GraphUnavailableError, GraphStoreError) as error:
            outcome.append(type(error).__name__)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if point is not None:
        assert pause.reached.wait(120), f"the sync never reached {point} (saw {pause.seen})"
    else:
        assert pause.anchored.wait(120), f"the sync never reached {anchor} (saw {pause.seen})"
        time.sleep(delay)
    landed = pause.seen[-1]
    kill()
    pause.release.set()
    thread.join(120)
    monkeypatch.undo()
    assert not thread.is_alive()
    return f"{outcome[0] if outcome else 'no outcome'} (killed at/after {landed})"


def _check_all_old_or_all_new(store: GraphStore, old: Ontology, new: Ontology, record: ProvenanceRecord) -> str:
    content = store.read_ontology().content_hash()
    assert content in (old.content_hash(), new.content_hash()), "the variant holds neither the old nor the new ontology"
    assert store.version() == content, "the recorded version does not name the content"
    assert _retired_and_journals(store) == (0, 0)
    assert store.read_provenance(record.image_id) == [record]
    return "new" if content == new.content_hash() else "old"


class _EmbeddedEngine:
    """The embedded engine over one folder, opened through GraphConnection, killed with SIGKILL."""

    def __init__(self, path: Path):
        self.path = path
        self.graph: GraphConnection | None = None

    def open(self) -> GraphStore:
        self.graph = GraphConnection(GraphConfig(embedded_path=self.path)).open()
        self.graph.store.batch_size = BATCH_SIZE
        return self.graph.store

    def kill(self) -> None:
        process = self.graph.embedded._process
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)

    def close(self) -> None:
        if self.graph is not None:
            self.graph.close()
            self.graph = None


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory):
    old, new, changed = _old_and_new()
    engine = _EmbeddedEngine(tmp_path_factory.mktemp("kill-engine"))
    store = engine.open()
    store.sync(old)
    record = _provenance(store, changed)
    store.write_provenance(record)
    yield engine, old, new, record
    engine.close()


# Fixed points, and timed kills into the main transaction (3,000 concepts in batches of 250).
EMBEDDED_KILLS = [
    ("after-tx1", None, "start"),  # the R6 point: retired, main transaction not started
    ("in-tx1", None, "start"),  # journal and retirement written, not committed
    ("in-tx2", None, "start"),  # everything written, not committed
    ("after-tx2", None, "target"),
    (None, 0.3, None),  # 0.3 s and 1.2 s into the main transaction
    (None, 1.2, None),
]


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.parametrize(("point", "delay", "expected"), EMBEDDED_KILLS,
                         ids=[p or f"tx2+{d}s" for p, d, _ in EMBEDDED_KILLS])
def test_kill_mid_sync_embedded(kill_setup, monkeypatch, point, delay, expected):
    """Each kill interrupts a sync from the variant's current ontology to the other one (old to
    new, then new to old: kinds change both ways, 3,000 concepts come or go)."""
    engine, old, new, record = kill_setup
    store = engine.graph.store
    start, target = (old, new) if store.version() == old.content_hash() else (new, old)
    t0 = time.monotonic()
    outcome = _kill_during_sync(monkeypatch, store, target, engine.kill, point, delay, anchor="begin-tx2")
    t1 = time.monotonic()
    engine.close()
    store = engine.open()  # a fresh engine process on the same folder; open undoes what is half done
    t2 = time.monotonic()
    result = _check_all_old_or_all_new(store, old, new, record)
    ended = "target" if result == ("new" if target is new else "old") else "start"
    print(f"embedded kill at {point or f'tx2+{delay}s'} ({'old->new' if target is new else 'new->old'}): "
          f"sync {outcome}, variant all-{result} (the sync's {ended}) [{t1 - t0:.1f}s, restart {t2 - t1:.1f}s]")
    if expected:
        assert ended == expected
    if outcome.startswith("committed"):
        assert ended == "target"  # a commit the client saw is durable


# -- kill -9 of Neo4j -----------------------------------------------------------------------------
def _neo4jctl():
    spec = importlib.util.spec_from_file_location("neo4jctl", REPO / "services" / "neo4j" / "neo4jctl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Neo4jServer:
    """A Neo4j of the test's own (neo4jctl, in a temp work folder), killed and started again on its data.

    ``neo4jctl start`` wipes the server's home on every start, so the restart replays the killed
    JVM's own command line and environment instead: the same data folder, recovered by Neo4j."""

    def __init__(self, workdir: Path):
        self.ctl = _neo4jctl()
        self.workdir = workdir
        default_lib = self.ctl.resolve()  # the jars of the repository's .neo4j, resolved once
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "lib").symlink_to(default_lib, target_is_directory=True)
        self.info = self.ctl.start(workdir=workdir, log=lambda _m: None)
        self.driver: neo4j.Driver | None = None

    def open(self) -> GraphStore:
        self.driver = neo4j.GraphDatabase.driver(self.info.uri, auth=(self.info.user, self.info.password))
        deadline = time.monotonic() + 300  # a JVM start takes 7 s on a quiet machine, a minute on a busy one
        while True:
            try:
                self.driver.verify_connectivity()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        store = GraphStore(self.driver, database="neo4j", batch_size=BATCH_SIZE)
        store.recover_interrupted_syncs()  # what GraphConnection.open does
        return store

    def kill(self) -> None:
        pid = self.info.pid
        self._command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        self._environ = {
            key.decode(): value.decode()
            for key, _, value in (item.partition(b"=") for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
            if key
        }
        self._cwd = os.readlink(f"/proc/{pid}/cwd")
        os.killpg(pid, signal.SIGKILL)  # neo4jctl starts the JVM in a session of its own
        while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
            time.sleep(0.05)

    def restart(self) -> None:
        if self.driver is not None:
            self.driver.close()
            self.driver = None
        home = Path(self._environ["NEO4J_HOME"])
        with open(home / "logs" / "console.log", "ab") as console:
            process = subprocess.Popen(
                self._command, cwd=self._cwd, env=self._environ,
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.info = dataclasses.replace(self.info, pid=process.pid)
        state = home / "state.json"  # so that neo4jctl stop finds the new process
        state.write_text(json.dumps({**json.loads(state.read_text()), "pid": process.pid}))

    def stop(self) -> None:
        if self.driver is not None:
            self.driver.close()
        self.ctl.stop(workdir=self.workdir, log=lambda _m: None)


# Neo4j's sync is one transaction (kinds relabelled in place): killed before and after its commit.
NEO4J_KILLS = [("in-tx1", None, "old"), ("after-tx1", None, "new")]


@pytest.mark.neo4j
@pytest.mark.slow
@pytest.mark.timeout(900)  # three JVM starts: about 25 s in all on a quiet machine, minutes on a loaded one
def test_kill_mid_sync_neo4j(tmp_path, monkeypatch):
    """The same kill test against a Neo4j of its own, restarted on its data after each kill."""
    old, new, changed = _old_and_new()
    server = _Neo4jServer(tmp_path / "neo4j")
    try:
        store = server.open()
        store.sync(old)
        record = _provenance(store, changed)
        store.write_provenance(record)
        for point, delay, expected in NEO4J_KILLS:
            if store.version() != old.content_hash():
                store.sync(old)
            outcome = _kill_during_sync(monkeypatch, store, new, server.kill, point, delay)
            server.restart()
            store = server.open()
            result = _check_all_old_or_all_new(store, old, new, record)
            print(f"neo4j kill at {point or f'tx1+{delay}s'}: sync {outcome}, variant all-{result}")
            if expected:
                assert result == expected
            if outcome.startswith("committed"):
                assert result == "new"
    finally:
        server.stop()
