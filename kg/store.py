"""``GraphStore``: the ontology, its knowledge variants and the provenance of predictions in a graph DB.

The store takes an open ``neo4j`` driver (see ``kg.backends.GraphConnection`` for how one is
opened on either backend) and runs only the named statements of ``kg.queries``.

Every write is one transaction: a sync, a variant's creation or deletion, one image's
provenance. A failure anywhere inside (a validation error, a row that matched nothing, a
constraint the database enforces) rolls the whole transaction back, so the graph is exactly as
it was before the call. The one exception, a sync that changes a concept's kind on ArcadeDB,
takes two journalled transactions that a failure or a crash undoes together (see
``GraphStore._sync_with_kind_changes``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Iterator, Sequence

import neo4j
from neo4j.exceptions import ConstraintError, DriverError, Neo4jError, ServiceUnavailable, SessionExpired

from anatomy_vlm.exceptions import (
    GraphStoreError,
    GraphUnavailableError,
    QueryTimeoutError,
    ReadOnlyQueryError,
    UnknownConceptError,
    VariantError,
)
from anatomy_vlm.kg import queries
from anatomy_vlm.kg.backends import NEO4J, Dialect
from anatomy_vlm.kg.provenance import PredictionRecord, ProvenanceRecord, RegionOfInterest
from anatomy_vlm.kg.types import (
    DEFAULT_VARIANT,
    Ancestor,
    LocatedFinding,
    Neighbourhood,
    QueryResult,
    SyncReport,
    VariantInfo,
)
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType

_KIND_BY_LABEL = {kind.value: kind for kind in ConceptKind}

MAX_RESULT_BYTES = 8 * 1024 * 1024  # default cap on a read-only query's rows, as JSON, while streaming
# The watchdog severs a read-only query's connection this long after its transaction timeout:
# late enough that a server which honours the timeout answers first with its own error (Neo4j
# checks timeouts every db.transaction.monitor.check.interval, 2 s by default).
WATCHDOG_GRACE_S = 2.5
_READ_FETCH_SIZE = 256  # records per PULL: the byte cap then stops fetching within one batch
# Server error codes of a statement refused as a write or an administration in a READ session
# (Neo4j's access mode) or for a user without the privilege (ArcadeDB's read-only group).
_REFUSED_CODES = ("Neo.ClientError.Statement.AccessMode", "Neo.ClientError.Security.Forbidden")


def _batches(rows: Sequence[dict], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield list(rows[start:start + size])


def _surface_unreachable(method):
    """Report a lost or unreachable server as ``GraphUnavailableError`` (the driver's own errors leak otherwise)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (ServiceUnavailable, SessionExpired) as error:
            raise GraphUnavailableError(f"graph database unreachable during {method.__name__}: {error}") from error

    return wrapper


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- kind-change sync journals (see GraphStore._sync_with_kind_changes) --------------------------
# Variant names cannot hold NUL (create_variant allows letters, digits, "-", "_", "."), so no
# variant's reads ever match a retired key space.
_RETIRED_MARK = "\u0000retired\u0000"
# Journals of the syncs running in this process, which a recovery here must leave alone.
_ACTIVE_JOURNALS: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _journal_is_live(journal: dict) -> bool:
    """Is the sync that wrote ``journal`` still running: here, or in a live process on this host?"""
    with _ACTIVE_LOCK:
        if journal.get("id") in _ACTIVE_JOURNALS:
            return True
    host, _, pid = str(journal.get("owner", "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        # Another host cannot be asked; its sync, if alive, fails cleanly at commit once its
        # journal is gone. Our own pid without the journal in _ACTIVE_JOURNALS: a dead predecessor.
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _expect(tx: neo4j.Transaction, statement: str, expected: int, what: str, **params: object) -> None:
    written = tx.run(statement, params).single()["written"]
    if written != expected:
        raise GraphStoreError(f"{written} of {expected} {what}; was the variant changed concurrently?")


class GraphStore:
    """Ontology sync, knowledge variants, exports, neighbourhoods and provenance over one database."""

    def __init__(
        self,
        driver: neo4j.Driver,
        *,
        database: str | None = None,
        dialect: Dialect = NEO4J,
        batch_size: int = 5000,
        read_driver: neo4j.Driver | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.driver = driver
        # User-supplied queries (``run_read_query``) go through this one: a read-only database
        # user where the backend has one (see ``kg.backends.GraphConnection``).
        self.read_driver = read_driver
        self.database = database
        self.dialect = dialect
        self.batch_size = batch_size
        self._schema_ready = False

    # -- sessions ------------------------------------------------------------------------------
    def _session(self, access_mode: str = neo4j.WRITE_ACCESS) -> neo4j.Session:
        return self.driver.session(database=self.database, default_access_mode=access_mode)

    def _read(self, query: str, **params: object) -> list[neo4j.Record]:
        with self._session(neo4j.READ_ACCESS) as session:
            return list(session.run(query, params))

    # -- schema --------------------------------------------------------------------------------
    @_surface_unreachable
    def ensure_schema(self) -> None:
        """Create the constraints and indexes of the schema if missing, and wait until they are online."""
        if self._schema_ready:
            return
        with self._session() as session:
            # Schema statements run one per transaction: Neo4j refuses to mix them with writes.
            for statement in queries.schema_statements():
                session.run(statement).consume()
            if self.dialect.await_indexes:
                session.run(self.dialect.await_indexes).consume()
        self._schema_ready = True

    @_surface_unreachable
    def constraint_names(self) -> set[str]:
        return {record["name"] for record in self._read(queries.SHOW_CONSTRAINTS)}

    # -- reading a variant back ----------------------------------------------------------------
    def _concept_state(self, tx: neo4j.ManagedTransaction | neo4j.Transaction, variant: str) -> dict[str, tuple[str, dict]]:
        state: dict[str, tuple[str, dict]] = {}
        for record in tx.run(queries.READ_CONCEPTS, variant=variant):
            kinds = sorted(k for k in record["kinds"] if k in _KIND_BY_LABEL)
            props = dict(record["props"])
            props.pop("variant", None)
            # A node edited by hand to hold no kind label, or two, differs from every concept,
            # so a sync rewrites it; reading it back as an ontology names it (see ``_concept``).
            state[record["id"]] = (kinds[0] if len(kinds) == 1 else "|".join(kinds), props)
        return state

    def _relation_state(self, tx: neo4j.ManagedTransaction | neo4j.Transaction, variant: str) -> dict[tuple, dict]:
        state: dict[tuple, dict] = {}
        for record in tx.run(queries.READ_RELATIONS, variant=variant):
            if record["type"] not in queries.RELATION_TYPES:
                continue  # provenance edges (ATTENDED...) are not part of the ontology
            props = dict(record["props"])
            state[(record["type"], record["start"], record["end"], props.get("source", ""))] = props
        return state

    @_surface_unreachable
    def read_ontology(self, variant: str = DEFAULT_VARIANT) -> Ontology:
        """The ontology held in a variant, exactly as ``sync`` wrote it."""
        self.require_variant(variant)
        with self._session(neo4j.READ_ACCESS) as session:
            concept_state = session.execute_read(self._concept_state, variant)
            relation_state = session.execute_read(self._relation_state, variant)
        return self._ontology_from_state(concept_state, relation_state, variant)

    @staticmethod
    def _ontology_from_state(concept_state: dict, relation_state: dict, variant: str) -> Ontology:
        concepts = [_concept(concept_id, kind, props) for concept_id, (kind, props) in concept_state.items()]
        relations = [
            Relation(
                type=RelationType(key[0]), start=key[1], end=key[2], source=key[3],
                weight=props.get("weight"), count=props.get("count"),
            )
            for key, props in relation_state.items()
        ]
        return Ontology(concepts=tuple(concepts), relations=tuple(relations), name=variant)

    # -- sync ----------------------------------------------------------------------------------
    @_surface_unreachable
    def sync(
        self,
        ontology: Ontology,
        variant: str = DEFAULT_VARIANT,
        *,
        validate: bool = True,
        parent: str | None = None,
        recipe: str | None = None,
    ) -> SyncReport:
        """Make ``variant`` hold exactly ``ontology``: all of it or, after any failure, none of it.

        The variant's current content is read and diffed against ``ontology``; new concepts and
        relations are created and changed ones updated in batches of ``batch_size`` rows
        (``UNWIND``), those no longer in the ontology are removed, and unchanged ones are not
        touched, so a rerun writes nothing. The variant records the ontology's content hash as
        its version. This is one transaction, except for a kind change where labels cannot
        change in place (ArcadeDB): see ``_sync_with_kind_changes``.
        """
        started = time.perf_counter()
        if validate:
            ontology.validate()
        self.ensure_schema()
        # A kind-change sync of this variant that a crash interrupted is undone before diffing.
        self.recover_interrupted_syncs(variant)
        version = ontology.content_hash()
        known = {c.id for c in ontology.concepts}
        with self._session() as session:
            current_concepts = session.execute_read(self._concept_state, variant)
            current_relations = session.execute_read(self._relation_state, variant)
            plan = _SyncPlan.build(
                ontology, current_concepts, current_relations, relabel_in_place=self.dialect.relabels_in_place
            )

            def write_all(tx: neo4j.Transaction) -> None:
                self._apply(tx, plan, variant, known)
                self._record_variant(tx, variant, ontology, version, plan.changed, parent, recipe)

            if not plan.recreated:
                self._write(session, variant, write_all)
            else:
                self._sync_with_kind_changes(session, variant, plan, version, write_all)
        return plan.report(variant, version, time.perf_counter() - started)

    def _sync_with_kind_changes(self, session: neo4j.Session, variant: str, plan: "_SyncPlan", version: str, write_all) -> None:
        """Sync a plan with concepts to recreate under a new kind label, recoverably.

        Why not one transaction: ArcadeDB keeps a node's labels as its record type, and its unique
        index refuses, within one transaction, a (variant, id) key that leaves one record type
        (deleted, or moved to another key) and is added to another (measured on 26.10: "Duplicated
        key ... on index 'Concept[variant,id]'" at commit, even with the old node renamed first).
        A deleted-then-recreated key is accepted only across transactions. So:

        1. one transaction writes a ``:SyncJournal`` (the variant, its retired key space, the
           concept ids, the old and the intended version) and moves the concepts whose kind
           changed into the retired key space (``variant`` + NUL + "retired" + NUL + journal id;
           variant names cannot hold NUL), keeping their properties, relations and provenance
           edges. No read of ``variant`` sees them, and the variant's version is unchanged;
        2. one transaction writes the whole plan (the new-kind nodes and every relation touching
           them included), copies provenance edges onto the new nodes, deletes the retired nodes,
           records the new version and deletes the journal. It commits only if the journal is
           still there (a recovery elsewhere may have undone it).

        If the second fails the first is undone here; if this process or the engine dies in
        between, ``recover_interrupted_syncs`` (run by ``GraphConnection.open`` and by every
        sync) undoes it: the retired nodes move back, so the variant is all-old again, with its
        provenance edges, and its version still names that content. A crash therefore leaves
        every variant all-old or all-new once the store is opened again.
        """
        journal_id = uuid.uuid4().hex
        retired = f"{variant}{_RETIRED_MARK}{journal_id}"
        existing = session.execute_read(lambda tx: tx.run(queries.GET_VARIANT, name=variant).single())
        journal = {
            "id": journal_id, "variant": variant, "retired": retired, "concepts": list(plan.recreated),
            "version": version, "prior_version": existing["props"].get("version", "") if existing else "",
            "owner": _owner(), "started_at": _now(),
        }

        def retire(tx: neo4j.Transaction) -> None:
            tx.run(queries.BEGIN_SYNC_JOURNAL, props=journal).consume()
            _expect(tx, queries.RETIRE_CONCEPTS, len(plan.recreated), f"concepts retired from {variant!r}",
                    rows=plan.recreated, variant=variant, retired=retired)

        def finish(tx: neo4j.Transaction) -> None:
            write_all(tx)
            for rel_type in queries.PROVENANCE_EDGE_TYPES:
                tx.run(queries.move_provenance_edges(rel_type), rows=plan.recreated, variant=variant, retired=retired).consume()
            # the retired key space is a variant name of its own: the ordinary deletion serves
            _expect(tx, queries.DELETE_CONCEPTS, len(plan.recreated), f"retired concepts of {variant!r} deleted",
                    rows=plan.recreated, variant=retired)
            if tx.run(queries.END_SYNC_JOURNAL, id=journal_id).single()["written"] != 1:
                raise GraphStoreError(
                    f"the sync of variant {variant!r} was undone by a recovery elsewhere while it ran; nothing was written"
                )

        with _ACTIVE_LOCK:
            _ACTIVE_JOURNALS.add(journal_id)
        try:
            self._write(session, variant, retire)
            try:
                self._write(session, variant, finish)
            except BaseException as error:
                try:
                    self._undo_sync(session, journal)
                except Exception as undo_error:  # e.g. the engine is gone: the journal stays for recovery
                    error.add_note(f"undoing the first step failed too ({undo_error}); the next open or sync undoes it")
                raise
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE_JOURNALS.discard(journal_id)

    @_surface_unreachable
    def recover_interrupted_syncs(self, variant: str | None = None) -> list[str]:
        """Undo every kind-change sync (of ``variant``, or of all) that a crash left half done.

        Returns the variants restored. A journal whose sync is still running (in this process, or
        in a live process on this host) is left alone; for ``variant`` it is refused, since a
        second sync of one variant cannot run beside it.
        """
        restored: list[str] = []
        if self.dialect.relabels_in_place:
            return restored  # such a backend changes kinds in the sync's one transaction: no journals
        for record in self._read(queries.LIST_SYNC_JOURNALS):
            journal = dict(record["props"])
            if variant is not None and journal.get("variant") != variant:
                continue
            if _journal_is_live(journal):
                if variant is not None:
                    raise GraphStoreError(
                        f"a sync of variant {variant!r} that changes concept kinds is running "
                        f"(process {journal.get('owner')}, since {journal.get('started_at')}); wait for it to finish"
                    )
                continue
            with self._session() as session:
                self._undo_sync(session, journal)
            restored.append(journal["variant"])
        return restored

    def _undo_sync(self, session: neo4j.Session, journal: dict) -> None:
        """Move a journal's retired concepts back into their variant and drop the journal, in one transaction."""
        variant = journal["variant"]

        def undo(tx: neo4j.Transaction) -> None:
            # Nothing to undo if the journal is gone: the sync committed, or another recovery ran.
            if tx.run(queries.END_SYNC_JOURNAL, id=journal["id"]).single()["written"] == 1:
                tx.run(queries.RESTORE_RETIRED_CONCEPTS, retired=journal["retired"], variant=variant).consume()

        self._write(session, variant, undo)

    @staticmethod
    def _write(session: neo4j.Session, variant: str, work) -> None:
        """Run ``work(tx)`` in one explicit transaction: committed whole, or rolled back whole."""
        tx = session.begin_transaction()
        try:
            work(tx)
            tx.commit()
        except ConstraintError as error:
            raise GraphStoreError(f"sync of variant {variant!r} broke a constraint, nothing was written: {error.message}") from error
        except Neo4jError as error:
            raise GraphStoreError(f"sync of variant {variant!r} failed, nothing was written: {error.message}") from error
        finally:
            if not tx.closed():
                try:
                    tx.rollback()
                except (Neo4jError, DriverError):
                    pass  # the connection is gone, and with it the transaction; keep the first error

    def _apply(self, tx: neo4j.Transaction, plan: "_SyncPlan", variant: str, known: set[str]) -> None:
        """Write a plan: removals first, then relabels, then concepts, then relations."""

        def run(statement: str, rows: list, what: str) -> None:
            for batch in _batches(rows, self.batch_size):
                written = tx.run(statement, rows=batch, variant=variant).single()["written"]
                if written != len(batch):
                    # A row that matched nothing: for relations, an end missing from the variant.
                    ends = {r[end] for r in batch if isinstance(r, dict) for end in ("start", "end") if end in r}
                    missing = sorted(ends - known)
                    if missing:
                        raise UnknownConceptError(missing, variant)
                    raise GraphStoreError(f"wrote {written} of {len(batch)} {what} in {variant!r}; was it changed concurrently?")

        for rel_type, rows in sorted(plan.removed_relations.items()):
            run(queries.delete_relations(rel_type), rows, f"{rel_type} deletions")
        run(queries.DELETE_CONCEPTS, plan.removed_concepts, "concept deletions")
        for kind, ids in sorted(plan.relabelled.items()):
            run(queries.relabel_concepts(kind), ids, f"{kind} relabels")
        for kind, concepts in sorted(plan.new_concepts.items()):
            run(queries.create_concepts(kind), [_concept_row(c, variant) for c in concepts], f"new {kind} concepts")
        for kind, concepts in sorted(plan.changed_concepts.items()):
            run(queries.UPDATE_CONCEPTS, [_concept_row(c, variant) for c in concepts], f"changed {kind} concepts")
        for rel_type, relations in sorted(plan.new_relations.items()):
            run(queries.create_relations(rel_type), [_relation_row(r) for r in relations], f"new {rel_type} relations")
        for rel_type, relations in sorted(plan.changed_relations.items()):
            run(queries.update_relations(rel_type), [_relation_row(r) for r in relations], f"changed {rel_type} relations")

    @staticmethod
    def _record_variant(
        tx: neo4j.Transaction,
        variant: str,
        ontology: Ontology,
        version: str,
        changed: bool,
        parent: str | None,
        recipe: str | None,
    ) -> None:
        """Record the variant's version, size and sync time, unless nothing changed."""
        existing = tx.run(queries.GET_VARIANT, name=variant).single()
        if not changed and existing is not None and existing["props"].get("version") == version:
            return
        props: dict[str, object] = {
            "version": version,
            "concepts": len(ontology.concepts),
            "relations": len(ontology.relations),
            "synced_at": _now(),
        }
        if existing is None:
            props["created_at"] = props["synced_at"]
        if parent is not None:
            props["parent"] = parent
        if recipe is not None:
            props["recipe"] = recipe
        tx.run(queries.UPSERT_VARIANT, name=variant, props=props).consume()

    # -- variants ------------------------------------------------------------------------------
    @_surface_unreachable
    def variant(self, name: str) -> VariantInfo | None:
        records = self._read(queries.GET_VARIANT, name=name)
        return _variant_info(records[0]["props"]) if records else None

    def require_variant(self, name: str) -> VariantInfo:
        info = self.variant(name)
        if info is None:
            known = ", ".join(v.name for v in self.list_variants()) or "none"
            raise VariantError(f"no knowledge variant named {name!r} (known: {known})")
        return info

    def version(self, variant: str = DEFAULT_VARIANT) -> str | None:
        """The content hash recorded for a variant, or ``None`` if it was never synced."""
        info = self.variant(variant)
        return info.version if info else None

    @_surface_unreachable
    def list_variants(self) -> list[VariantInfo]:
        return [_variant_info(record["props"]) for record in self._read(queries.LIST_VARIANTS)]

    @_surface_unreachable
    def create_variant(
        self,
        name: str,
        *,
        base: str = DEFAULT_VARIANT,
        ontology: Ontology | None = None,
        recipe: str | None = None,
    ) -> SyncReport:
        """Create a variant beside the others: a copy of ``base``, or ``ontology`` when given.

        ``recipe`` records how it was derived (the ontology issue's recipes produce ``ontology``).
        """
        if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
            raise VariantError(f"variant name {name!r} must be letters, digits, '-', '_' or '.'")
        if self.variant(name) is not None:
            raise VariantError(f"knowledge variant {name!r} already exists; delete it first")
        if ontology is None:
            ontology = self.read_ontology(base)
        return self.sync(ontology, name, parent=base, recipe=recipe or f"copy of {base}")

    @_surface_unreachable
    def delete_variant(self, name: str) -> int:
        """Remove a variant's concepts, relations and record, in one transaction; returns concepts removed."""
        self.require_variant(name)
        deleted = 0
        with self._session() as session:
            with session.begin_transaction() as tx:
                while True:
                    batch = tx.run(queries.DELETE_VARIANT_CONCEPTS, variant=name, batch_size=self.batch_size).single()["deleted"]
                    deleted += batch
                    if batch < self.batch_size:
                        break
                tx.run(queries.DELETE_VARIANT, name=name).consume()
                tx.commit()
        return deleted

    # -- exports -------------------------------------------------------------------------------
    def export_networkx(self, variant: str = DEFAULT_VARIANT):
        from anatomy_vlm.kg.export import to_networkx

        return to_networkx(self.read_ontology(variant))

    def export_hetero(self, variant: str = DEFAULT_VARIANT):
        """``(HeteroData, GraphIndex)`` of a variant; the index maps ids to rows and back, stably."""
        from anatomy_vlm.kg.export import to_hetero_data

        return to_hetero_data(self.read_ontology(variant))

    # -- look-ups ------------------------------------------------------------------------------
    @_surface_unreachable
    def missing_concepts(self, ids: Iterable[str], variant: str = DEFAULT_VARIANT) -> list[str]:
        ids = list(dict.fromkeys(ids))
        found = {record["id"] for record in self._read(queries.FIND_CONCEPTS, ids=ids, variant=variant)}
        return [i for i in ids if i not in found]

    @_surface_unreachable
    def resolve(self, terms: Sequence[str], variant: str = DEFAULT_VARIANT, kind: ConceptKind | None = None) -> dict[str, str]:
        """Map each term (an id, a name or a synonym, any case) to exactly one concept id."""
        matches: dict[str, set[str]] = {term: set() for term in terms}
        for record in self._read(queries.RESOLVE_TERMS, terms=list(terms), variant=variant):
            if kind is None or record["kind"] == ConceptKind(kind).value:
                matches[record["term"]].add(record["id"])
        unknown = [term for term, ids in matches.items() if not ids]
        if unknown:
            raise UnknownConceptError(unknown, variant)
        ambiguous = {term: sorted(ids) for term, ids in matches.items() if len(ids) > 1}
        if ambiguous:
            detail = "; ".join(f"{term!r} matches {', '.join(ids)}" for term, ids in ambiguous.items())
            raise GraphStoreError(f"ambiguous term(s) in variant {variant!r}: {detail}")
        return {term: next(iter(ids)) for term, ids in matches.items()}

    @_surface_unreachable
    def neighbourhood(self, anatomy_ids: Sequence[str], variant: str = DEFAULT_VARIANT) -> dict[str, Neighbourhood]:
        """For every anatomy id, in one query: the node, its PART_OF ancestors, the findings located there."""
        ids = list(dict.fromkeys(anatomy_ids))
        records = self._read(queries.NEIGHBOURHOOD, ids=ids, variant=variant)
        found: dict[str, Neighbourhood] = {}
        for record in records:
            ancestors = sorted(
                (Ancestor(id=a["id"], name=a["name"], depth=int(a["depth"])) for a in record["ancestors"] if a),
                key=lambda a: (a.depth, a.id),
            )
            findings = sorted(
                {
                    LocatedFinding(
                        id=f["id"], name=f["name"], site=f["site"], source=f["source"],
                        weight=f.get("weight"), count=f.get("count"),
                    )
                    for f in record["findings"] if f
                },
                key=lambda f: (f.id, f.site, f.source),
            )
            found[record["id"]] = Neighbourhood(
                id=record["id"], name=record["name"], ancestors=tuple(ancestors), findings=tuple(findings)
            )
        missing = [i for i in ids if i not in found]
        if missing:
            raise UnknownConceptError(missing, variant)
        return {i: found[i] for i in ids}

    # -- read-only user queries ----------------------------------------------------------------
    @_surface_unreachable
    def run_read_query(
        self,
        cypher: str,
        parameters: dict[str, object] | None = None,
        *,
        limit: int = 1000,
        timeout_s: float = 30.0,
        max_bytes: int = MAX_RESULT_BYTES,
    ) -> QueryResult:
        """Run a user's Cypher read-only, bounded in time, rows and bytes.

        Clauses that write or administer are refused before the query reaches the server
        (``queries.ensure_read_only``). The query then runs in a READ transaction as the store's
        read-only user (``read_driver``) when there is one, so a query the text check let
        through still cannot write where the server enforces that (docs/security/server.md).

        Rows are streamed: fetching stops after ``limit`` rows or once the rows taken, as JSON,
        would pass ``max_bytes``; either sets ``truncated``. The transaction carries
        ``timeout_s`` (Neo4j cancels it then); a watchdog severs the connection if no answer has
        come ``WATCHDOG_GRACE_S`` later (ArcadeDB ignores the timeout and stops a statement only
        at its own ``statement_timeout_s``; a parse that never ends on Neo4j is cut the same
        way). Either raises ``QueryTimeoutError``. A statement the server refuses as a write or
        an administration raises ``ReadOnlyQueryError``.
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        queries.ensure_read_only(cypher)
        driver = self.read_driver or self.driver
        rows: list[dict[str, object]] = []
        truncated = False
        watchdog = _Watchdog(timeout_s + WATCHDOG_GRACE_S)
        try:
            with driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS,
                                fetch_size=min(limit + 1, _READ_FETCH_SIZE)) as session:
                with watchdog.guarding(session):
                    tx = session.begin_transaction(timeout=timeout_s)
                    try:
                        result = tx.run(cypher, parameters or {})
                        columns = list(result.keys())
                        size = 0
                        for record in result:
                            if len(rows) == limit:
                                truncated = True
                                break
                            size += _json_size(dict(zip(record.keys(), record.values())), max_bytes - size)
                            if size > max_bytes:
                                truncated = True
                                break
                            rows.append(record.data())
                    finally:
                        # Rolls back, and discards what the server still holds of a truncated
                        # result; on a severed connection there is nothing left to close.
                        with contextlib.suppress(Neo4jError, DriverError, OSError):
                            tx.close()
        except (Neo4jError, DriverError, OSError) as error:
            if watchdog.fired:
                raise QueryTimeoutError(timeout_s, "no answer, connection closed") from error
            if isinstance(error, Neo4jError):
                code = error.code or ""
                if "TimedOut" in code or "Timeout" in code:
                    raise QueryTimeoutError(timeout_s, error.message or code) from error
                if code in _REFUSED_CODES:
                    raise ReadOnlyQueryError(
                        f"the graph server refused the query as a write or an administration ({code})"
                    ) from error
                raise GraphStoreError(f"query failed: {error.message}") from error
            raise  # the server went away: _surface_unreachable reports it
        return QueryResult(columns=columns, rows=rows, truncated=truncated)

    # -- provenance ----------------------------------------------------------------------------
    @_surface_unreachable
    def write_provenance(self, record: ProvenanceRecord) -> None:
        """Write one image's ROIs, predictions, evidence and attention, in one transaction.

        Writing the same run again replaces it. Every anatomy, finding and attended concept must
        exist in the record's variant; otherwise nothing is written and ``UnknownConceptError``
        names the missing ids.
        """
        referenced = [roi.anatomy_id for roi in record.rois]
        referenced += [p.finding_id for p in record.predictions]
        referenced += [concept for roi in record.rois for concept, _ in roi.attention]
        self.ensure_schema()
        with self._session() as session:
            tx = session.begin_transaction()
            try:
                complete = self._write_provenance_in(tx, record)
                if complete:
                    tx.commit()
            except Neo4jError as error:
                raise GraphStoreError(f"provenance of image {record.image_id!r} not written: {error.message}") from error
            finally:
                if not tx.closed():
                    tx.rollback()
        if not complete:
            missing = self.missing_concepts(referenced, record.variant)
            if missing:
                raise UnknownConceptError(missing, record.variant)
            raise GraphStoreError(f"provenance of image {record.image_id!r} not written: a write matched fewer rows than given")

    def _write_provenance_in(self, tx: neo4j.Transaction, record: ProvenanceRecord) -> bool:
        """Run the writes; ``False`` when one matched fewer rows than given (the caller rolls back)."""
        image = {"id": record.image_id, "sha256": record.image_sha256, "width": record.width, "height": record.height}
        tx.run(queries.WRITE_IMAGE, image=image).consume()
        tx.run(queries.DELETE_RUN, image_id=record.image_id, run_id=record.run_id).consume()
        run = {"run_id": record.run_id, "image_id": record.image_id}
        roi_rows = [
            {
                "id": record.roi_id(roi.region),
                "anatomy_id": roi.anatomy_id,
                "props": {**run, "id": record.roi_id(roi.region), "region": roi.region,
                          "box": list(roi.box), "score": float(roi.score)},
            }
            for roi in record.rois
        ]
        prediction_rows = [
            {
                "id": record.prediction_id(p.finding_id),
                "finding_id": p.finding_id,
                "props": {**run, "id": record.prediction_id(p.finding_id), "finding_id": p.finding_id,
                          "score": float(p.score), "model": record.model,
                          "graph_version": record.graph_version, "variant": record.variant},
            }
            for p in record.predictions
        ]
        evidence_rows = [
            {"prediction_id": record.prediction_id(p.finding_id), "roi_id": record.roi_id(region), "weight": weight}
            for p in record.predictions for region, weight in p.evidence
        ]
        attention_rows = [
            {"roi_id": record.roi_id(roi.region), "concept_id": concept, "weight": weight}
            for roi in record.rois for concept, weight in roi.attention
        ]
        checks = (
            (queries.WRITE_ROIS, roi_rows, {"image_id": record.image_id}),
            (queries.WRITE_PREDICTIONS, prediction_rows, {"image_id": record.image_id}),
            (queries.WRITE_EVIDENCE, evidence_rows, {}),
            (queries.WRITE_ATTENTION, attention_rows, {}),
        )
        for statement, rows, extra in checks:
            if not rows:
                continue
            written = tx.run(statement, rows=rows, variant=record.variant, **extra).single()["written"]
            if written != len(rows):
                return False
        return True

    @_surface_unreachable
    def read_provenance(self, image_id: str) -> list[ProvenanceRecord]:
        """Every run recorded for an image, rebuilt as ``ProvenanceRecord`` objects."""
        images = self._read(queries.READ_IMAGE, image_id=image_id)
        if not images:
            return []
        image = images[0]["props"]
        rois_by_run: dict[str, list[RegionOfInterest]] = defaultdict(list)
        region_of: dict[str, str] = {}
        for row in self._read(queries.READ_ROIS, image_id=image_id):
            props = row["props"]
            region_of[props["id"]] = props["region"]
            rois_by_run[props["run_id"]].append(RegionOfInterest(
                region=props["region"], anatomy_id=row["anatomy_id"], box=tuple(props["box"]),
                score=props["score"],
                attention=tuple((a["concept_id"], a["weight"]) for a in row["attention"] if a),
            ))
        runs: dict[str, dict] = {}
        predictions_by_run: dict[str, list[PredictionRecord]] = defaultdict(list)
        for row in self._read(queries.READ_PREDICTIONS, image_id=image_id):
            props = row["props"]
            runs[props["run_id"]] = props
            predictions_by_run[props["run_id"]].append(PredictionRecord(
                finding_id=row["finding_id"], score=props["score"],
                evidence=tuple((region_of[e["roi_id"]], e["weight"]) for e in row["evidence"] if e),
            ))
        records = []
        for run_id in sorted(set(rois_by_run) | set(runs)):
            props = runs.get(run_id, {})
            model, _, variant = run_id.rpartition("@")
            records.append(ProvenanceRecord(
                image_id=image_id, image_sha256=image.get("sha256", ""),
                width=int(image.get("width") or 0), height=int(image.get("height") or 0),
                model=props.get("model", model), graph_version=props.get("graph_version", ""),
                variant=props.get("variant", variant or DEFAULT_VARIANT),
                rois=tuple(rois_by_run.get(run_id, ())), predictions=tuple(predictions_by_run.get(run_id, ())),
                run_id=run_id,
            ))
        return records

    @_surface_unreachable
    def explain(self, prediction_id: str) -> QueryResult:
        """The explanation rows of one prediction (``queries.EXPLAIN_PREDICTION``)."""
        with self._session(neo4j.READ_ACCESS) as session:
            result = session.run(queries.EXPLAIN_PREDICTION, prediction_id=prediction_id)
            columns = list(result.keys())
            rows = [record.data() for record in result]
        if not rows:
            raise GraphStoreError(f"no prediction with id {prediction_id!r}")
        return QueryResult(columns=columns, rows=rows)


def _json_size(value: object, budget: int) -> int:
    """At least the bytes ``value`` takes as UTF-8 JSON (as ``record.data()`` gives it, and the
    API sends it), counted without building it; counting stops as soon as ``budget`` is passed.

    Measured before ``record.data()``: converting a 3,000,000-element list took longer than the
    query's timeout, so a row over the cap must be refused before it is converted.
    """
    size = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, (int, float)):
            size += len(repr(item))
        elif isinstance(item, str):  # with its quotes and escapes
            size += len(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        elif isinstance(item, (bytes, bytearray)):
            size += 2 * len(item) + 2  # shown as hex
        elif isinstance(item, dict):
            size += 2 + sum(len(str(key)) + 6 for key in item)
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            size += 2 + 2 * len(item)  # brackets, separators
            if size <= budget:
                pending.extend(item)
        elif isinstance(item, neo4j.graph.Node):
            pending.append(dict(item.items()))
        elif isinstance(item, neo4j.graph.Relationship):
            pending.append([dict(item.start_node.items()) if item.start_node else {}, item.type,
                            dict(item.end_node.items()) if item.end_node else {}])
        elif isinstance(item, neo4j.graph.Path):
            pending.append(list(item.nodes) + list(item.relationships))
        else:  # temporal and spatial values are shown as text
            size += len(str(item)) + 2
        if size > budget:
            return size
    return size


class _Watchdog:
    """Severs one session's connection if the work guarded by ``guarding`` outlives ``seconds``.

    Closing a whole driver would also cut every other query sharing its pool, and the driver has
    no public way to abort one connection, so the session's own socket is shut down: the
    blocked read in the caller's thread then fails at once and the connection is discarded.
    ``tests/kg/test_read_only_server.py`` checks that this still works on both backends.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._done = False

    @contextlib.contextmanager
    def guarding(self, session: neo4j.Session) -> Iterator[None]:
        timer = threading.Timer(self.seconds, self._fire, args=(session,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            with self._lock:
                self._done = True
            timer.cancel()

    def _fire(self, session: neo4j.Session) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            raw = getattr(getattr(getattr(session, "_connection", None), "socket", None), "_socket", None)
            if raw is not None:
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_RDWR)


def _concept(concept_id: str, kind: str, props: dict) -> Concept:
    if kind not in _KIND_BY_LABEL:
        raise GraphStoreError(f"concept {concept_id!r} has kind label(s) {kind or 'none'!r}; expected exactly one of {', '.join(_KIND_BY_LABEL)}")
    return Concept(
        id=concept_id,
        kind=_KIND_BY_LABEL[kind],
        name=props.get("name", ""),
        synonyms=tuple(props.get("synonyms") or ()),
        definition=props.get("definition", ""),
        codes=tuple(props.get("codes") or ()),
        source=props.get("source", ""),
    )


def _concept_row(concept: Concept, variant: str) -> dict:
    return {"id": concept.id, "props": {**concept.properties(), "variant": variant}}


def _relation_row(relation: Relation) -> dict:
    return {"start": relation.start, "end": relation.end, "source": relation.source, "props": relation.properties()}


@dataclass
class _SyncPlan:
    """The difference between a variant's content and the ontology to sync, as rows to write."""

    removed_concepts: list[str] = field(default_factory=list)
    removed_relations: dict[str, list[dict]] = field(default_factory=dict)  # type -> key rows
    new_concepts: dict[str, list[Concept]] = field(default_factory=dict)  # kind -> concepts to create
    changed_concepts: dict[str, list[Concept]] = field(default_factory=dict)  # kind -> properties to replace
    relabelled: dict[str, list[str]] = field(default_factory=dict)  # new kind -> ids relabelled in place
    recreated: list[str] = field(default_factory=list)  # kind changed where labels cannot change in place
    new_relations: dict[str, list[Relation]] = field(default_factory=dict)
    changed_relations: dict[str, list[Relation]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls, ontology: Ontology, current_concepts: dict, current_relations: dict, *, relabel_in_place: bool
    ) -> "_SyncPlan":
        """Diff ``ontology`` against the stored state. A concept whose kind changed is relabelled
        (``relabel_in_place``) or, where that is impossible, deleted and created again together
        with every relation touching it."""
        plan = cls()
        counts: dict[str, int] = defaultdict(int)
        new_concepts: dict[str, list[Concept]] = defaultdict(list)
        changed_concepts: dict[str, list[Concept]] = defaultdict(list)
        relabelled: dict[str, list[str]] = defaultdict(list)
        for concept in ontology.concepts:
            stored = current_concepts.get(concept.id)
            kind = concept.kind.value
            if stored is None:
                counts["concepts_added"] += 1
                new_concepts[kind].append(concept)
            elif stored[0] != kind:
                counts["concepts_updated"] += 1
                if relabel_in_place:
                    relabelled[kind].append(concept.id)
                    changed_concepts[kind].append(concept)
                else:
                    plan.recreated.append(concept.id)
                    new_concepts[kind].append(concept)
            elif stored[1] != concept.properties():
                counts["concepts_updated"] += 1
                changed_concepts[kind].append(concept)
        wanted_ids = {c.id for c in ontology.concepts}
        plan.removed_concepts = sorted(set(current_concepts) - wanted_ids)
        recreated = set(plan.recreated)

        removed: dict[str, list[dict]] = defaultdict(list)
        for key in sorted(set(current_relations) - {r.key for r in ontology.relations}):
            counts["relations_removed"] += 1
            if not recreated.intersection(key[1:3]):  # a recreated end takes its relations with it
                removed[key[0]].append({"start": key[1], "end": key[2], "source": key[3]})
        new_relations: dict[str, list[Relation]] = defaultdict(list)
        changed_relations: dict[str, list[Relation]] = defaultdict(list)
        for relation in ontology.relations:
            stored = current_relations.get(relation.key)
            if stored is None:
                counts["relations_added"] += 1
            elif stored != relation.properties():
                counts["relations_updated"] += 1
            if recreated.intersection((relation.start, relation.end)):
                new_relations[relation.type.value].append(relation)  # its old copy went with the node
            elif stored is None:
                new_relations[relation.type.value].append(relation)
            elif stored != relation.properties():
                changed_relations[relation.type.value].append(relation)

        counts["concepts_removed"] = len(plan.removed_concepts)
        plan.removed_relations = dict(removed)
        plan.new_concepts, plan.changed_concepts = dict(new_concepts), dict(changed_concepts)
        plan.relabelled = dict(relabelled)
        plan.new_relations, plan.changed_relations = dict(new_relations), dict(changed_relations)
        plan.counts = dict(counts)
        return plan

    @property
    def changed(self) -> bool:
        return any(self.counts.values())

    def report(self, variant: str, version: str, seconds: float) -> SyncReport:
        return SyncReport(variant=variant, version=version, seconds=seconds, **self.counts)


def _variant_info(props: dict) -> VariantInfo:
    return VariantInfo(
        name=props["name"],
        version=props.get("version", ""),
        concepts=int(props.get("concepts", 0)),
        relations=int(props.get("relations", 0)),
        parent=props.get("parent"),
        recipe=props.get("recipe"),
        created_at=props.get("created_at"),
        synced_at=props.get("synced_at"),
    )
