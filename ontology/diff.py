"""What changed between two versions of an ontology: concepts and relations added, removed, changed.

Concepts are matched by id, relations by their key (type, start, end, source); a concept whose
kind, name, synonyms, definition, codes or source differ is *changed*, and so is a relation whose
weight or count differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anatomy_vlm.ontology.model import Concept, Ontology, Relation


@dataclass(frozen=True)
class OntologyDiff:
    concepts_added: tuple[Concept, ...] = ()
    concepts_removed: tuple[Concept, ...] = ()
    concepts_changed: tuple[tuple[Concept, Concept], ...] = ()  # (before, after)
    relations_added: tuple[Relation, ...] = ()
    relations_removed: tuple[Relation, ...] = ()
    relations_changed: tuple[tuple[Relation, Relation], ...] = ()  # (before, after)
    before_version: str = ""
    after_version: str = ""
    _fields: tuple[str, ...] = field(default=(
        "concepts_added", "concepts_removed", "concepts_changed",
        "relations_added", "relations_removed", "relations_changed",
    ), init=False, repr=False, compare=False)

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self._fields)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in self._fields}

    def lines(self) -> list[str]:
        """One human-readable line per change, ``+`` added, ``-`` removed, ``~`` changed."""
        out = [f"+ concept {c.id} ({c.kind.value}) {c.name!r}" for c in self.concepts_added]
        out += [f"- concept {c.id} ({c.kind.value}) {c.name!r}" for c in self.concepts_removed]
        for before, after in self.concepts_changed:
            fields = [name for name in ("kind", "name", "synonyms", "definition", "codes", "source")
                      if getattr(before, name) != getattr(after, name)]
            out.append(f"~ concept {after.id}: " + "; ".join(
                f"{name} {getattr(before, name)!r} -> {getattr(after, name)!r}" for name in fields))
        out += [f"+ {_edge(r)}" for r in self.relations_added]
        out += [f"- {_edge(r)}" for r in self.relations_removed]
        out += [f"~ {_edge(after)}: weight {before.weight} -> {after.weight}, count {before.count} -> {after.count}"
                for before, after in self.relations_changed]
        return out

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: ids and keys, plus before/after values for changes."""
        return {
            "before_version": self.before_version,
            "after_version": self.after_version,
            "counts": self.counts(),
            "concepts_added": [c.id for c in self.concepts_added],
            "concepts_removed": [c.id for c in self.concepts_removed],
            "concepts_changed": [
                {"id": a.id, "before": {"kind": b.kind.value, **b.properties()}, "after": {"kind": a.kind.value, **a.properties()}}
                for b, a in self.concepts_changed
            ],
            "relations_added": [list(r.key) for r in self.relations_added],
            "relations_removed": [list(r.key) for r in self.relations_removed],
            "relations_changed": [
                {"key": list(a.key), "before": b.properties(), "after": a.properties()} for b, a in self.relations_changed
            ],
        }


def _edge(r: Relation) -> str:
    return f"{r.start} -[{r.type.value}]-> {r.end} [{r.source}]"


def diff_ontologies(before: Ontology, after: Ontology) -> OntologyDiff:
    old_concepts = {c.id: c for c in before.concepts}
    new_concepts = {c.id: c for c in after.concepts}
    old_relations = {r.key: r for r in before.relations}
    new_relations = {r.key: r for r in after.relations}
    return OntologyDiff(
        concepts_added=tuple(new_concepts[i] for i in sorted(new_concepts.keys() - old_concepts.keys())),
        concepts_removed=tuple(old_concepts[i] for i in sorted(old_concepts.keys() - new_concepts.keys())),
        concepts_changed=tuple(
            (old_concepts[i], new_concepts[i]) for i in sorted(old_concepts.keys() & new_concepts.keys())
            if old_concepts[i] != new_concepts[i]
        ),
        relations_added=tuple(new_relations[k] for k in sorted(new_relations.keys() - old_relations.keys())),
        relations_removed=tuple(old_relations[k] for k in sorted(old_relations.keys() - new_relations.keys())),
        relations_changed=tuple(
            (old_relations[k], new_relations[k]) for k in sorted(old_relations.keys() & new_relations.keys())
            if old_relations[k].properties() != new_relations[k].properties()
        ),
        before_version=before.content_hash(),
        after_version=after.content_hash(),
    )
