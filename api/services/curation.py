"""Curation over the API: each request is one validated, audited ``Curator`` change, published to
the served graph variant in one transaction (see ``ontology.curation``).

Publishing is incremental: the change between the curated sources before and after the edit is
applied to what the graph variant holds (the *built* ontology: curated sources plus codes and
data-driven edges). Rebuilding the whole ontology from the sources on every edit would reread the
PadChest labels (seconds per change); applying the curated diff gives the same result for what
the curator can change, and keeps the codes and data-driven edges the build added.

The curated "before" is read under a process-wide lock, so changes made through this service are
serialised; the ``Curator``'s folder lock guards the sources against other writers (the CLI).
Every curated version the service sees is kept as a JSON snapshot in ``state_dir/versions`` so
``/versions/diff`` can compare any two of them (the audit log names them by content hash).

Each request is *one* Curator change (a PATCH of several fields too), so it is applied whole or
not at all: the request schemas and the Curator apply the field rules of ``ontology.limits``
(422 naming the field), and the Curator reads the staged sources back before it replaces them.
What runs after the change committed (the version snapshot) cannot turn a committed change into
an error: it is logged instead.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Callable

from anatomy_vlm.api import schemas
from anatomy_vlm.api.auth import Principal
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.api.services.runtime import Runtime
from anatomy_vlm.exceptions import (
    CurationError,
    GraphStoreError,
    GraphUnavailableError,
    OntologyError,
    OntologyValidationError,
)
from anatomy_vlm.ontology.diff import OntologyDiff, diff_ontologies
from anatomy_vlm.ontology.model import Concept, Ontology, Relation

log = logging.getLogger(__name__)

_CONCEPT_FIELDS = ("kind", "name", "synonyms", "definition", "codes", "source")
_MIN_PREFIX = 8  # shortest version prefix /versions/diff accepts


def apply_diff(base: Ontology, diff: OntologyDiff) -> Ontology:
    """``base`` with the curated ``diff`` applied: changed concepts take only the fields that changed."""
    removed_ids = {c.id for c in diff.concepts_removed}
    removed_keys = {r.key for r in diff.relations_removed}
    changed = {after.id: (before, after) for before, after in diff.concepts_changed}
    concepts = []
    for concept in base.concepts:
        if concept.id in removed_ids:
            continue
        if concept.id in changed:
            before, after = changed[concept.id]
            fields = {f: getattr(after, f) for f in _CONCEPT_FIELDS if getattr(before, f) != getattr(after, f)}
            concept = dataclasses.replace(concept, **fields)
        concepts.append(concept)
    present = {c.id for c in concepts}
    concepts += [c for c in diff.concepts_added if c.id not in present]
    new_values = {after.key: after for _, after in diff.relations_changed}
    relations = [
        new_values.get(r.key, r) for r in base.relations
        if r.key not in removed_keys and r.start not in removed_ids and r.end not in removed_ids
    ]
    keys = {r.key for r in relations}
    relations += [r for r in diff.relations_added if r.key not in keys]
    return base.with_changes(concepts=concepts, relations=relations)


class VersionStore:
    """Curated ontologies by content hash, as JSON files (one per version)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder) / "versions"

    def save(self, ontology: Ontology) -> str:
        from anatomy_vlm.ontology.json_io import save_json

        version = ontology.content_hash()
        path = self.folder / f"{version}.json"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            save_json(ontology, path)
        return version

    def load(self, version: str) -> tuple[str, Ontology]:
        from anatomy_vlm.ontology.json_io import load_json

        text = version.strip().lower()
        if len(text) < _MIN_PREFIX or not all(ch in "0123456789abcdef" for ch in text):
            raise ServiceError(422, f"version {version!r}: give a content hash (at least {_MIN_PREFIX} hex digits)")
        matches = sorted(self.folder.glob(f"{text}*.json")) if self.folder.is_dir() else []
        if not matches:
            raise ServiceError(404, f"no curated version {version!r} known to this service "
                                    "(versions are kept from the service's first curation request on)")
        if len(matches) > 1:
            raise ServiceError(422, f"version prefix {version!r} matches {len(matches)} versions; give more digits")
        return matches[0].stem, load_json(matches[0])


def _curator(runtime: Runtime, principal: Principal, before: Ontology):
    from anatomy_vlm.ontology.curation import Curator
    from anatomy_vlm.ontology.validate import validate_ontology

    settings = runtime.settings
    return Curator(settings.sources_dir, audit_log=settings.audit_log, user=principal.name,
                   validator=functools.partial(validate_ontology, reasoner=False), store=runtime.graph.store(),
                   variant=settings.variant, publish=_publisher(runtime, before))


def _audit_out(record) -> schemas.AuditOut:
    data = record.to_dict()
    return schemas.AuditOut(**data)


def _apply(runtime: Runtime, principal: Principal, step: Callable) -> schemas.CurationOut:
    """Run one curator change (``step(curator) -> bool``) and report what it did."""
    from anatomy_vlm.ontology.sources_io import read_sources

    versions = VersionStore(runtime.settings.state_dir)
    with runtime.curation_lock:
        try:
            before = read_sources(runtime.settings.sources_dir)
            curator = _curator(runtime, principal, before)
            log_size = len(curator.history())
        except OntologyError as error:  # CurationError included: an audit log with a broken line
            raise ServiceError(503, f"curated sources cannot be read: {error}") from error
        _save_version(versions, before)
        try:
            changed = step(curator)
        except OntologyValidationError as error:
            raise ServiceError(422, str(error)) from error
        except ValueError as error:  # FieldError included: a field rule, a value that cannot be stored
            raise ServiceError(422, str(error)) from error
        except CurationError as error:
            message = str(error)
            if message.startswith(("unknown concept id ", "unknown relation")):
                status = 404  # the concept or relation the request names does not exist
            elif "unknown concept id(s)" in message:
                status = 422  # a new relation names an end that does not exist
            else:
                status = 409  # exists already, or still referenced
            raise ServiceError(status, str(error)) from error
        except GraphUnavailableError as error:
            raise ServiceError(503, f"change not published, nothing was written: {error}") from error
        except GraphStoreError as error:
            raise ServiceError(500, f"change not published, nothing was written: {error}") from error
        # The change is committed (or there was none); what follows only reports it.
        current = curator.current() if changed else before
        after_version = _save_version(versions, current)
        records = curator.history()[log_size:]
        diff = diff_ontologies(before, current)
    store = runtime.graph.store()
    return schemas.CurationOut(version=after_version, previous_version=before.content_hash(),
                               graph_version=store.version(runtime.settings.variant), changed=changed,
                               changes=diff.lines(), audit=[_audit_out(r) for r in records])


def _save_version(versions: VersionStore, ontology: Ontology) -> str:
    """Keep a snapshot for /versions/diff; a failure to keep it is logged, never a failed change."""
    try:
        return versions.save(ontology)
    except (OSError, OntologyError) as error:
        log.warning("could not keep curated version %s for /versions/diff: %s", ontology.content_hash()[:12], error)
        return ontology.content_hash()


def _publisher(runtime: Runtime, before: Ontology) -> Callable[[Ontology], Ontology]:
    store = runtime.graph.store()
    variant = runtime.settings.variant

    def publish(curated_after: Ontology) -> Ontology:
        published = apply_diff(runtime.ontologies.get(store, variant), diff_ontologies(before, curated_after))
        # Kept under its own hash: used only once the graph records that version (the sync committed).
        runtime.ontologies.put(variant, published.content_hash(), published)
        return published

    return publish


def _why(body_why: str | None, what: str, principal: Principal) -> str:
    return body_why.strip() if body_why and body_why.strip() else f"{what} (API request by {principal.name})"


def add_concept(runtime: Runtime, principal: Principal, body: schemas.ConceptIn) -> schemas.CurationOut:
    concept = Concept(body.id, body.kind, body.name, tuple(body.synonyms), body.definition, tuple(body.codes),
                      body.source)
    why = _why(body.why, f"add concept {body.id}", principal)
    return _apply(runtime, principal, lambda c: c.add_concept(concept, why=why))


def change_concept(runtime: Runtime, principal: Principal, concept_id: str,
                   body: schemas.ConceptPatch) -> schemas.CurationOut:
    fields = {f: getattr(body, f) for f in ("name", "synonyms", "definition") if getattr(body, f) is not None}
    if not fields:
        raise ServiceError(422, "nothing to change: give name, synonyms and/or definition")
    why = _why(body.why, f"change {', '.join(fields)} of {concept_id}", principal)
    return _apply(runtime, principal, lambda c: c.set_fields(concept_id, fields, why=why))


def remove_concept(runtime: Runtime, principal: Principal, concept_id: str, cascade: bool,
                   why: str | None) -> schemas.CurationOut:
    reason = _why(why, f"remove concept {concept_id}", principal)
    return _apply(runtime, principal, lambda c: c.remove(concept_id, why=reason, cascade=cascade))


def add_relation(runtime: Runtime, principal: Principal, body: schemas.RelationIn) -> schemas.CurationOut:
    relation = Relation(body.type, body.start, body.end, body.source, body.weight, body.count)
    why = _why(body.why, f"add {body.start} -[{body.type.value}]-> {body.end}", principal)
    return _apply(runtime, principal, lambda c: c.add_edge(relation, why=why))


def remove_relation(runtime: Runtime, principal: Principal, body: schemas.RelationKeyIn) -> schemas.CurationOut:
    key = (body.type.value, body.start, body.end, body.source)
    why = _why(body.why, f"remove {body.start} -[{body.type.value}]-> {body.end}", principal)
    return _apply(runtime, principal, lambda c: c.remove_edge(key, why=why))


def history(runtime: Runtime, concept_id: str | None, limit: int) -> list[schemas.AuditOut]:
    """The audit log, newest first."""
    from anatomy_vlm.ontology.curation import Curator

    try:
        records = Curator(runtime.settings.sources_dir, audit_log=runtime.settings.audit_log,
                          user="reader").history(concept_id)
    except CurationError as error:
        raise ServiceError(500, str(error)) from error
    return [_audit_out(r) for r in reversed(records)][:limit]


def diff_versions(runtime: Runtime, old: str, new: str) -> schemas.VersionDiffOut:
    from anatomy_vlm.ontology.sources_io import read_sources

    versions = VersionStore(runtime.settings.state_dir)
    try:
        current = read_sources(runtime.settings.sources_dir)
    except OntologyError as error:
        raise ServiceError(503, f"curated sources cannot be read: {error}") from error
    _save_version(versions, current)  # "the current version" is always diffable
    old_version, before = versions.load(old)
    new_version, after = versions.load(new)
    diff = diff_ontologies(before, after)
    return schemas.VersionDiffOut(old=old_version, new=new_version, counts=diff.counts(), changes=diff.lines(),
                                  diff=diff.to_dict())
