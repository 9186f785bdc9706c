"""Curate the ontology's sources: every edit validated, written atomically, audited and synced.

The curated ontology lives as two CSV files in one folder (``concepts.csv`` and ``relations.csv``,
read and written by ``ontology.sources_io``). A :class:`Curator` is how an informatician changes
them. Each change

1. checks every value the change brings in against the field rules of ``ontology.limits``
   (sizes, ids, codes, control characters, weights, counts): a :class:`FieldError` (a
   ``CurationError`` and a ``ValueError``) names the field;
2. reads the sources and applies the change in memory (an unknown id, or adding what already
   exists, raises :class:`CurationError` naming it);
3. returns ``False`` and writes nothing when the result equals what was there (a no-op);
4. validates the *whole* resulting ontology with the curator's validator and raises
   ``OntologyValidationError`` on any problem, writing nothing;
5. stages the new sources beside the old ones and reads them back with the real reader
   (``sources_io.stage_sources``), and writes the concepts the change touched as OWL and parses
   that back (``ontology.owl``): a change that would not read back is refused, writing nothing;
6. only then moves the staged sources into place, appends one JSON line to the audit log, and,
   when a graph store is given, syncs the published ontology into its variant (one transaction).
   If the append or the sync fails, the source files get their previous bytes back and the audit
   line is cut off again before the error is re-raised, so the sources, the audit log and the
   graph never disagree. Should the sync fail *after* its transaction committed (the graph's
   version is the one published), all three hold the new state and the change stands.

The audit record says who changed what, when and why, with the before and after values and the
content hash (``Ontology.content_hash()``) of the ontology before and after. Changes to one
folder are serialised with an advisory lock on the folder (POSIX ``flock``), so two curators
cannot interleave their read-modify-write cycles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence, Union

from anatomy_vlm.atomic import write_atomically
from anatomy_vlm.exceptions import CurationError, OntologyError, OntologyValidationError
from anatomy_vlm.ontology import limits
from anatomy_vlm.ontology.diff import OntologyDiff, diff_ontologies
from anatomy_vlm.ontology.limits import FieldError
from anatomy_vlm.ontology.model import Concept, ConceptKind, Ontology, Relation, RelationType
from anatomy_vlm.ontology.sources_io import (
    CONCEPTS_FILE,
    LIST_SEPARATOR,
    RELATIONS_FILE,
    StagedSources,
    UnwritableSourcesError,
    read_sources,
    stage_sources,
)

try:  # POSIX advisory locks; on Windows concurrent curators of one folder are not guarded
    import fcntl
except ImportError:  # pragma: no cover - only on Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from anatomy_vlm.kg.store import GraphStore

__all__ = [
    "ACTIONS",
    "SETTABLE_FIELDS",
    "SOURCE_FILES",
    "AuditRecord",
    "CurationError",
    "Curator",
    "EdgeKey",
    "FieldError",
]

log = logging.getLogger(__name__)

# The files of a sources folder (formats fixed in ``sources_io``); their bytes are what a failed
# audit append or graph sync restores.
SOURCE_FILES: tuple[str, ...] = (CONCEPTS_FILE, RELATIONS_FILE)
AUDIT_FILE = "audit.jsonl"  # default audit log, inside the sources folder
DEFAULT_VARIANT = "canonical"  # the graph variant holding the curated ontology (kg.types.DEFAULT_VARIANT)

# Concept fields ``Curator.set`` may change. The id is not one of them: renaming would have to
# rewrite every relation, which is a remove + add the curator should do deliberately.
SETTABLE_FIELDS: tuple[str, ...] = ("name", "synonyms", "definition", "codes", "source", "kind")
_LIST_FIELDS = frozenset({"synonyms", "codes"})  # given as a list, or joined by LIST_SEPARATOR ("|")

ACTIONS: tuple[str, ...] = ("add_concept", "add_edge", "set", "set_edge", "remove", "remove_edge")

EdgeKey = tuple[str, str, str, str]  # (type, start, end, source): the identity of a relation


class _HasErrors(Protocol):
    """A validation report, e.g. ``ontology.validate.ValidationReport``: only its errors block."""

    @property
    def errors(self) -> Sequence[object]: ...


# A validator maps an ontology to its problems: a list of messages (``Ontology.problems``) or a
# report with ``errors`` (``validate.validate_ontology``); each item is shown with ``str``.
Validator = Callable[[Ontology], Union[Sequence[object], _HasErrors]]


class _Unset:
    """Marks a keyword argument that was not given (``None`` means "clear the value")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log: one applied change."""

    when: str  # ISO-8601 UTC time the change was written, e.g. "2025-06-01T09:30:12.345+00:00"
    who: str  # the curator's user name
    why: str  # the curator's reason, as given
    action: str  # one of ACTIONS
    target: str | EdgeKey  # the concept id, or the relation key (type, start, end, source)
    before: dict[str, Any] | None  # the value(s) before the change; None when it added something
    after: dict[str, Any] | None  # the value(s) after the change; None when it removed something
    version_before: str  # content hash of the curated ontology before the change
    version_after: str  # content hash after it
    concepts: tuple[str, ...] = ()  # every concept id the change touched (edge ends included), for history()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target"] = self.target if isinstance(self.target, str) else list(self.target)
        data["concepts"] = list(self.concepts)
        return data

    def to_json(self) -> str:
        """The record as one line of JSON (no newline inside, keys sorted for stable diffs)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AuditRecord":
        target = data["target"]
        return cls(
            when=data["when"],
            who=data["who"],
            why=data["why"],
            action=data["action"],
            target=target if isinstance(target, str) else tuple(target),  # type: ignore[arg-type]
            before=data.get("before"),
            after=data.get("after"),
            version_before=data["version_before"],
            version_after=data["version_after"],
            concepts=tuple(data.get("concepts", ())),
        )


@dataclass(frozen=True)
class _Edit:
    """A change applied in memory, not yet written."""

    ontology: Ontology  # the whole ontology after the change
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    concepts: tuple[str, ...]  # concept ids touched


class Curator:
    """Validated, audited edits of the curated sources in ``sources_dir`` (see the module docstring).

    Every change method takes a required, non-empty ``why`` and returns ``True`` when it changed
    the sources, ``False`` when there was nothing to change.
    """

    def __init__(
        self,
        sources_dir: Path,
        *,
        audit_log: Path | None = None,
        user: str | None = None,
        validator: Validator | None = None,
        store: "GraphStore | None" = None,
        variant: str = DEFAULT_VARIANT,
        publish: Callable[[Ontology], Ontology] | None = None,
    ):
        if not variant:
            raise ValueError("variant must be a non-empty name")
        self.sources_dir = Path(sources_dir)
        self.audit_log = Path(audit_log) if audit_log is not None else self.sources_dir / AUDIT_FILE
        self.user = user if user is not None else getpass.getuser()
        if not self.user.strip():
            raise ValueError("user must be a non-empty name")
        self.validator: Validator = validator if validator is not None else Ontology.problems
        self.store = store
        self.variant = variant
        # What the graph holds is the curated sources *built* (codes and data-driven edges added),
        # so the caller says how to turn the curated ontology into the one synced; identity by default.
        self.publish: Callable[[Ontology], Ontology] = publish if publish is not None else (lambda curated: curated)

    # -- reading -------------------------------------------------------------------------------
    def current(self) -> Ontology:
        """The curated ontology as the sources hold it now."""
        return read_sources(self.sources_dir)

    def problems(self, ontology: Ontology) -> list[str]:
        """What the validator finds in ``ontology``, one message per problem (errors only)."""
        result = self.validator(ontology)
        errors = getattr(result, "errors", None)
        items = errors if errors is not None else result
        return [str(item) for item in items]  # type: ignore[union-attr]

    def history(self, concept_id: str | None = None) -> list[AuditRecord]:
        """The audit log's records, oldest first; with ``concept_id`` only the changes touching it."""
        if not self.audit_log.exists():
            return []
        records: list[AuditRecord] = []
        with self.audit_log.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = AuditRecord.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError) as e:
                    raise CurationError(f"{self.audit_log}:{number}: not an audit record: {e}") from e
                if concept_id is None or concept_id in record.concepts:
                    records.append(record)
        return records

    @staticmethod
    def diff(a: Ontology, b: Ontology) -> OntologyDiff:
        """What changed from ``a`` to ``b`` (``ontology.diff.diff_ontologies``)."""
        return diff_ontologies(a, b)

    # -- changes -------------------------------------------------------------------------------
    def add_concept(self, concept: Concept, *, why: str) -> bool:
        """Add a new concept; an id that already exists is refused."""
        limits.check_concept(concept)

        def edit(ontology: Ontology) -> _Edit:
            if concept.id in ontology:
                existing = ontology[concept.id]
                raise CurationError(
                    f"concept {concept.id!r} already exists ({existing.kind.value} {existing.name!r}); "
                    "use set() to change it"
                )
            return _Edit(
                ontology.with_changes(concepts=[*ontology.concepts, concept]),
                before=None, after=_concept_dict(concept), concepts=(concept.id,),
            )

        return self._change("add_concept", concept.id, why, edit)

    def add_edge(self, relation: Relation, *, why: str) -> bool:
        """Add a new relation between two existing concepts; a key that already exists is refused."""
        limits.check_relation(relation)

        def edit(ontology: Ontology) -> _Edit:
            missing = [i for i in dict.fromkeys((relation.start, relation.end)) if i not in ontology]
            if missing:
                raise CurationError(f"relation {_label(relation.key)}: unknown concept id(s) {', '.join(map(repr, missing))}")
            if any(r.key == relation.key for r in ontology.relations):
                raise CurationError(f"relation {_label(relation.key)} already exists; use set_edge() to change it")
            return _Edit(
                ontology.with_changes(relations=[*ontology.relations, relation]),
                before=None, after=_relation_dict(relation), concepts=_ids(relation.start, relation.end),
            )

        return self._change("add_edge", relation.key, why, edit)

    def set(self, concept_id: str, field: str, value: object, *, why: str) -> bool:
        """Set one field of a concept; ``synonyms``/``codes`` take a list or a ``|``-separated string."""
        return self.set_fields(concept_id, {field: value}, why=why)

    def set_fields(self, concept_id: str, values: Mapping[str, object], *, why: str) -> bool:
        """Set several fields of a concept as one change (one audit record, all or nothing).

        The record's ``before``/``after`` hold the fields whose value changed.
        """
        if not values:
            raise ValueError(f"set {concept_id!r}: give at least one field to set")
        owner = f"concept {concept_id!r}"
        parsed = {field: _parse_field(concept_id, field, value) for field, value in values.items()}
        for field, value in parsed.items():
            limits.check_concept_field(field, value, owner=owner)

        def edit(ontology: Ontology) -> _Edit | None:
            old = _require_concept(ontology, concept_id)
            new = dataclasses.replace(old, **parsed)
            if new == old:
                return None
            old_values, new_values = _concept_dict(old), _concept_dict(new)
            changed = [field for field in parsed if old_values[field] != new_values[field]]
            return _Edit(
                ontology.with_changes(concepts=[new if c.id == concept_id else c for c in ontology.concepts]),
                before={f: old_values[f] for f in changed}, after={f: new_values[f] for f in changed},
                concepts=(concept_id,),
            )

        return self._change("set", concept_id, why, edit)

    def set_edge(self, key: EdgeKey | Relation, *, weight: object = UNSET, count: object = UNSET, why: str) -> bool:
        """Set a relation's ``weight`` and/or ``count``; ``None`` (or ``""``) clears a value."""
        edge_key = _edge_key(key)
        if weight is UNSET and count is UNSET:
            raise ValueError(f"set_edge {_label(edge_key)}: give weight and/or count")
        new_weight = UNSET if weight is UNSET else _parse_weight(edge_key, weight)
        new_count = UNSET if count is UNSET else _parse_count(edge_key, count)
        owner = f"relation {_label(edge_key)}"
        if new_weight is not UNSET:
            limits.check_weight(new_weight, owner=owner)
        if new_count is not UNSET:
            limits.check_count(new_count, owner=owner)

        def edit(ontology: Ontology) -> _Edit | None:
            old = _require_relation(ontology, edge_key)
            new = dataclasses.replace(
                old,
                weight=old.weight if new_weight is UNSET else new_weight,
                count=old.count if new_count is UNSET else new_count,
            )
            if new.properties() == old.properties():
                return None
            return _Edit(
                ontology.with_changes(relations=[new if r.key == edge_key else r for r in ontology.relations]),
                before={"weight": old.weight, "count": old.count}, after={"weight": new.weight, "count": new.count},
                concepts=_ids(old.start, old.end),
            )

        return self._change("set_edge", edge_key, why, edit)

    def remove(self, concept_id: str, *, why: str, cascade: bool = False) -> bool:
        """Remove a concept; one that relations reference is refused unless ``cascade`` removes them too."""

        def edit(ontology: Ontology) -> _Edit:
            concept = _require_concept(ontology, concept_id)
            referencing = [r for r in ontology.relations if concept_id in (r.start, r.end)]
            if referencing and not cascade:
                shown = "; ".join(_label(r.key) for r in referencing[:10])
                more = f"; ... and {len(referencing) - 10} more" if len(referencing) > 10 else ""
                raise CurationError(
                    f"concept {concept_id!r} is referenced by {len(referencing)} relation(s): {shown}{more}; "
                    "remove those first or pass cascade=True"
                )
            gone = {r.key for r in referencing}
            return _Edit(
                ontology.with_changes(
                    concepts=[c for c in ontology.concepts if c.id != concept_id],
                    relations=[r for r in ontology.relations if r.key not in gone],
                ),
                # The relations removed with it are kept in the record, so a cascade can be undone.
                before={**_concept_dict(concept), "relations": [_relation_dict(r) for r in referencing]},
                after=None,
                concepts=_ids(concept_id, *(end for r in referencing for end in (r.start, r.end))),
            )

        return self._change("remove", concept_id, why, edit)

    def remove_edge(self, key: EdgeKey | Relation, *, why: str) -> bool:
        """Remove one relation, named by its key (type, start, end, source)."""
        edge_key = _edge_key(key)

        def edit(ontology: Ontology) -> _Edit:
            old = _require_relation(ontology, edge_key)
            return _Edit(
                ontology.with_changes(relations=[r for r in ontology.relations if r.key != edge_key]),
                before=_relation_dict(old), after=None, concepts=_ids(old.start, old.end),
            )

        return self._change("remove_edge", edge_key, why, edit)

    # -- the one write path --------------------------------------------------------------------
    def _change(self, action: str, target: str | EdgeKey, why: str, edit: Callable[[Ontology], _Edit | None]) -> bool:
        """Read, edit in memory, validate, stage and read back, then write sources + audit line
        (+ graph) or nothing."""
        why = _require_why(why, action, target)
        with self._locked():
            before = read_sources(self.sources_dir)
            change = edit(before)
            if change is None:
                return False
            version_before, version_after = before.content_hash(), change.ontology.content_hash()
            if version_after == version_before:
                return False
            problems = self.problems(change.ontology)
            if problems:
                raise OntologyValidationError(problems)
            record = AuditRecord(
                when=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                who=self.user,
                why=why,
                action=action,
                target=target,
                before=change.before,
                after=change.after,
                version_before=version_before,
                version_after=version_after,
                concepts=change.concepts,
            )
            try:
                staged = stage_sources(change.ontology, self.sources_dir)
            except UnwritableSourcesError as error:
                raise FieldError("sources", f"the change cannot be stored: {error}") from error
            with staged:
                _check_owl_round_trip(change)
                self._commit(staged, change, record)
        return True

    def _commit(self, staged: StagedSources, change: _Edit, record: AuditRecord) -> None:
        """Install the staged sources, append the record, publish; on failure restore all three."""
        saved = self._snapshot()
        audit_size = self.audit_log.stat().st_size if self.audit_log.is_file() else None
        published_version: str | None = None
        try:
            staged.install()
            self._append(record)
            if self.store is not None:
                published = self.publish(change.ontology)
                published_version = published.content_hash()
                self.store.sync(published, self.variant)
        except BaseException as error:
            # Interrupts included: sources, audit log and graph must never disagree.
            if published_version is not None and self._graph_holds(published_version, error):
                # The sync's transaction committed before the error: the graph, the sources and
                # the audit log all hold the new state already, so the change stands.
                log.warning("curation %s %s: the graph committed version %s before %r; the change stands",
                            record.action, record.target, published_version[:12], error)
                if isinstance(error, Exception):
                    return
                raise
            self._restore(saved, audit_size)
            raise

    def _graph_holds(self, version: str, error: BaseException) -> bool:
        """Whether the graph variant records ``version`` (False when the graph cannot say)."""
        try:
            return self.store is not None and self.store.version(self.variant) == version
        except Exception as check_error:  # e.g. the graph went away: the sync most likely did not commit
            error.add_note(
                f"the graph could not be asked whether the sync committed ({check_error}); the sources and "
                f"the audit log were restored; if the graph variant {self.variant!r} shows version "
                f"{version[:12]}..., sync it again from the sources"
            )
            return False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive advisory lock on the sources folder (no lock file left behind)."""
        if not self.sources_dir.is_dir():
            raise CurationError(f"sources folder {self.sources_dir} does not exist")
        if fcntl is None:  # pragma: no cover - Windows cannot open a folder as a file
            yield
            return
        try:
            fd = os.open(self.sources_dir, os.O_RDONLY)
        except OSError as e:
            raise CurationError(f"sources folder {self.sources_dir} cannot be opened: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _snapshot(self) -> dict[str, bytes | None]:
        """The source files' bytes (None for a missing one), to restore after a failed write or sync."""
        saved: dict[str, bytes | None] = {}
        for name in SOURCE_FILES:
            path = self.sources_dir / name
            saved[name] = path.read_bytes() if path.exists() else None
        return saved

    def _restore(self, saved: dict[str, bytes | None], audit_size: int | None) -> None:
        for name, data in saved.items():
            path = self.sources_dir / name
            if data is None:
                path.unlink(missing_ok=True)
            elif not path.exists() or path.read_bytes() != data:  # files the write left alone stay untouched
                write_atomically(path, data)
        if not self.audit_log.is_file():
            return  # the append never happened (or could not: something else is in its place)
        if audit_size is None:
            self.audit_log.unlink()
        else:
            with self.audit_log.open("r+b") as log:
                log.truncate(audit_size)

    def _append(self, record: AuditRecord) -> None:
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        with self.audit_log.open("a", encoding="utf-8") as log:
            log.write(record.to_json() + "\n")  # one write: a line is never split between curators
            log.flush()
            os.fsync(log.fileno())


# -- helpers ---------------------------------------------------------------------------------------
def _check_owl_round_trip(change: _Edit) -> None:
    """Write the concepts the change touched (and the relations between them) as OWL and read that
    back: a value XML cannot hold would make every later OWL export unreadable.

    Only the touched part is exported (tens of milliseconds instead of about half a second for
    the whole ontology): an OWL class depends on its own concept and edges only.
    """
    from anatomy_vlm.ontology.owl import load_owl, save_owl  # owlready2 loads only when needed

    ontology = change.ontology
    ids = {concept_id for concept_id in change.concepts if concept_id in ontology}
    if not ids:
        return
    part = Ontology(
        concepts=tuple(ontology[i] for i in ids),
        relations=tuple(r for r in ontology.relations if r.start in ids and r.end in ids),
        name=ontology.name,
    )
    with tempfile.TemporaryDirectory(prefix="curation-owl-") as folder:
        path = Path(folder) / "change.owl"
        try:
            save_owl(part, path)
            read_back = load_owl(path)
        except OntologyError as error:
            raise FieldError("owl", f"the change cannot be exported as OWL: {error}") from error
    if read_back != part:
        changed = sorted(c.id for c in part.concepts if c not in read_back.concepts)
        raise FieldError("owl", f"concept(s) {changed[:5]} would read back differently from the OWL export")


def _require_why(why: object, action: str, target: str | EdgeKey) -> str:
    shown = target if isinstance(target, str) else _label(target)
    if not isinstance(why, str) or not why.strip():
        raise ValueError(f"{action} {shown}: a reason (why) is required and must not be empty")
    return limits.check_text("why", why.strip(), owner=f"{action} {shown}")


def _require_concept(ontology: Ontology, concept_id: str) -> Concept:
    if concept_id not in ontology:
        raise CurationError(f"unknown concept id {concept_id!r}")
    return ontology[concept_id]


def _require_relation(ontology: Ontology, key: EdgeKey) -> Relation:
    for relation in ontology.relations:
        if relation.key == key:
            return relation
    raise CurationError(f"unknown relation {_label(key)}")


def _edge_key(key: EdgeKey | Relation | Sequence[object]) -> EdgeKey:
    """Normalise a relation key: a Relation, or (type, start, end, source) with type any case."""
    if isinstance(key, Relation):
        return key.key
    if isinstance(key, str) or len(key) != 4:
        raise ValueError(f"a relation key is (type, start, end, source), got {key!r}")
    rel_type, start, end, source = key
    try:
        type_value = RelationType(str(getattr(rel_type, "value", rel_type)).upper()).value
    except ValueError as e:
        known = ", ".join(t.value for t in RelationType)
        raise ValueError(f"unknown relation type {rel_type!r}; known types: {known}") from e
    return (type_value, str(start), str(end), str(source))


def _parse_field(concept_id: str, field: str, value: object) -> object:
    """The typed value of ``field`` from what a caller or the command line gives."""
    if field not in SETTABLE_FIELDS:
        raise ValueError(f"cannot set {field!r} of concept {concept_id!r}; settable fields: {', '.join(SETTABLE_FIELDS)}")
    if field in _LIST_FIELDS:
        items = value.split(LIST_SEPARATOR) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise ValueError(f"{field} of concept {concept_id!r}: expected a list or a '|'-separated string, got {value!r}")
        # A "|" inside an item is refused by the field rules (limits), naming the item.
        parsed = {str(item).strip() for item in items if str(item).strip()}
        return tuple(sorted(parsed))
    if field == "kind":
        text = str(getattr(value, "value", value)).strip()
        for kind in ConceptKind:
            if text.lower() in (kind.value.lower(), kind.name.lower()):
                return kind
        raise ValueError(f"kind of concept {concept_id!r}: {value!r} is not one of {', '.join(k.value for k in ConceptKind)}")
    if not isinstance(value, str):
        raise ValueError(f"{field} of concept {concept_id!r}: expected a string, got {value!r}")
    return value.strip()


def _parse_weight(key: EdgeKey, value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"weight of {_label(key)}: expected a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        raise ValueError(f"weight of {_label(key)}: expected a number, got {value!r}") from e


def _parse_count(key: EdgeKey, value: object) -> int | None:
    if value is None or value == "":
        return None
    error = ValueError(f"count of {_label(key)}: expected a non-negative whole number, got {value!r}")
    if isinstance(value, bool):
        raise error
    try:
        number = float(value) if isinstance(value, float) else int(str(value).strip())  # type: ignore[arg-type]
    except ValueError as e:
        raise error from e
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise error
    return int(number)


def _ids(*concept_ids: str) -> tuple[str, ...]:
    return tuple(sorted(set(concept_ids)))


def _label(key: Sequence[str]) -> str:
    rel_type, start, end, source = key
    return f"{start!r} -[{rel_type}]-> {end!r} [{source}]"


def _concept_dict(concept: Concept) -> dict[str, Any]:
    return {"kind": concept.kind.value, **concept.properties()}


def _relation_dict(relation: Relation) -> dict[str, Any]:
    return {
        "type": relation.type.value,
        "start": relation.start,
        "end": relation.end,
        "source": relation.source,
        "weight": relation.weight,
        "count": relation.count,
    }


