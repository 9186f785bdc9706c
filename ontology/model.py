"""The in-memory ontology: concepts and the asserted relations between them.

This is the one form every other part reads: the OWL reader produces it, ``kg.GraphStore.sync``
writes it, ``GraphStore.read_ontology`` reads it back, and its ``content_hash`` is the graph version.
Values are plain, immutable and ordered so that two equal ontologies hash equally.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable

from anatomy_vlm.exceptions import OntologyValidationError


class ConceptKind(str, Enum):
    """The kind of a concept; each is also the concept's second label in the graph."""

    ANATOMY = "Anatomy"
    FINDING = "Finding"
    DISEASE = "Disease"
    ATTRIBUTE = "Attribute"
    DEVICE = "Device"


class RelationType(str, Enum):
    """The asserted edge types of the graph schema (DESIGN.md)."""

    PART_OF = "PART_OF"
    IS_A = "IS_A"
    LOCATED_IN = "LOCATED_IN"
    SUGGESTS = "SUGGESTS"
    HAS_ATTRIBUTE = "HAS_ATTRIBUTE"


_ANY_KIND = frozenset(ConceptKind)

# Which kinds each relation type may join: (allowed start kinds, allowed end kinds).
# IS_A additionally requires both ends to be of the same kind (checked in ``validate``).
RELATION_KINDS: dict[RelationType, tuple[frozenset[ConceptKind], frozenset[ConceptKind]]] = {
    RelationType.PART_OF: (frozenset({ConceptKind.ANATOMY}), frozenset({ConceptKind.ANATOMY})),
    RelationType.IS_A: (_ANY_KIND, _ANY_KIND),
    RelationType.LOCATED_IN: (
        frozenset({ConceptKind.FINDING, ConceptKind.DISEASE, ConceptKind.DEVICE}),
        frozenset({ConceptKind.ANATOMY}),
    ),
    RelationType.SUGGESTS: (frozenset({ConceptKind.FINDING}), frozenset({ConceptKind.DISEASE})),
    RelationType.HAS_ATTRIBUTE: (
        frozenset({ConceptKind.FINDING, ConceptKind.DISEASE}),
        frozenset({ConceptKind.ATTRIBUTE}),
    ),
}

# Relation types whose graph must be acyclic: a region cannot be part of itself.
ACYCLIC_RELATIONS = (RelationType.PART_OF, RelationType.IS_A)


@dataclass(frozen=True)
class Problem:
    """One rule an ontology breaks."""

    rule: str  # e.g. "part-of-cycle"; ontology.validate.RULES describes each
    concept_id: str | None  # the concept at fault (a relation's start); None for the whole ontology
    message: str  # a sentence naming the concept at fault, e.g. "PART_OF cycle: a -> b -> a"

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


@dataclass(frozen=True)
class Concept:
    """One node of the ontology."""

    id: str  # stable identifier, also the OWL class's local name, e.g. "right_upper_lung_zone"
    kind: ConceptKind  # which top class it descends from; becomes its kind label in the graph
    name: str  # preferred human-readable name (rdfs:label), e.g. "right upper lung zone"
    synonyms: tuple[str, ...] = ()  # other names, e.g. ("superior vena cava",) for "svc"; kept sorted
    definition: str = ""  # one-sentence textual definition; feeds the text encoder
    codes: tuple[str, ...] = ()  # "SYSTEM:CODE" strings, e.g. "SNOMED:45653009", "UMLS:C0225730"; kept sorted
    source: str = ""  # which curated file or data set asserted the concept

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ConceptKind(self.kind))
        # Synonyms and codes are sets in meaning; one sorted order makes equal concepts compare
        # and hash equal whatever order a source listed them in (OWL keeps no order either).
        object.__setattr__(self, "synonyms", tuple(sorted(set(self.synonyms))))
        object.__setattr__(self, "codes", tuple(sorted(set(self.codes))))

    def properties(self) -> dict[str, object]:
        """The node properties the graph stores for this concept (the kind goes in a label)."""
        return {
            "id": self.id,
            "name": self.name,
            "synonyms": list(self.synonyms),
            "definition": self.definition,
            "codes": list(self.codes),
            "source": self.source,
        }


@dataclass(frozen=True)
class Relation:
    """One asserted, directed edge: ``start -[type]-> end``, with where the assertion came from."""

    type: RelationType  # the edge type, e.g. RelationType.LOCATED_IN
    start: str  # id of the concept the edge leaves
    end: str  # id of the concept the edge enters
    source: str  # provenance: the curated file or data set that asserted it (part of the key)
    weight: float | None = None  # normalised strength, e.g. PadChest co-occurrence frequency
    count: int | None = None  # raw evidence count behind ``weight``, where a data set gives one

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", RelationType(self.type))

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity of the edge: two assertions of the same edge by different sources are two edges."""
        return (self.type.value, self.start, self.end, self.source)

    def properties(self) -> dict[str, object]:
        """The relationship properties the graph stores (``None`` values are left out, as Neo4j does)."""
        props: dict[str, object] = {"source": self.source}
        if self.weight is not None:
            props["weight"] = float(self.weight)
        if self.count is not None:
            props["count"] = int(self.count)
        return props


@dataclass(frozen=True)
class Ontology:
    """A set of concepts and relations, kept sorted so equal content compares and hashes equal."""

    concepts: tuple[Concept, ...] = ()
    relations: tuple[Relation, ...] = ()
    name: str = field(default="anatomy-vlm", compare=False)  # a label for reports; not part of content or hash
    _by_id: dict[str, Concept] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concepts", tuple(sorted(self.concepts, key=lambda c: c.id)))
        object.__setattr__(self, "relations", tuple(sorted(self.relations, key=lambda r: r.key)))
        object.__setattr__(self, "_by_id", {c.id: c for c in self.concepts})

    # -- lookups -------------------------------------------------------------------------------
    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._by_id

    def __getitem__(self, concept_id: str) -> Concept:
        return self._by_id[concept_id]

    def of_kind(self, kind: ConceptKind | str) -> list[Concept]:
        kind = ConceptKind(kind)
        return [c for c in self.concepts if c.kind is kind]

    def relations_of_type(self, rel_type: RelationType | str) -> list[Relation]:
        rel_type = RelationType(rel_type)
        return [r for r in self.relations if r.type is rel_type]

    def with_changes(
        self,
        *,
        concepts: Iterable[Concept] | None = None,
        relations: Iterable[Relation] | None = None,
    ) -> "Ontology":
        """A copy with the concepts and/or relations replaced."""
        return Ontology(
            concepts=tuple(self.concepts if concepts is None else concepts),
            relations=tuple(self.relations if relations is None else relations),
            name=self.name,
        )

    # -- identity ------------------------------------------------------------------------------
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of every concept and relation: the graph version."""
        payload = {
            "concepts": [[c.kind.value, c.properties()] for c in self.concepts],
            "relations": [[*r.key, r.properties()] for r in self.relations],
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # -- validation ----------------------------------------------------------------------------
    def problems(self) -> list["Problem"]:
        """Every structural rule the ontology breaks, each tagged with its rule and the concept at fault.

        For a relation, the concept at fault is its start: the concept that asserts the edge.
        """
        found: list[Problem] = []
        for concept_id, n in Counter(c.id for c in self.concepts).items():
            if n > 1:
                found.append(Problem("duplicate-id", concept_id, f"duplicate concept id {concept_id!r} ({n} times)"))
        for c in self.concepts:
            if not c.id or any(ch.isspace() for ch in c.id):
                found.append(Problem("invalid-id", c.id, f"concept id {c.id!r} is empty or contains whitespace"))
            if not c.name.strip():
                found.append(Problem("missing-name", c.id, f"concept {c.id!r} has no name"))
        for key, n in Counter(r.key for r in self.relations).items():
            if n > 1:
                found.append(Problem("duplicate-relation", key[1],
                                     f"duplicate relation {key[1]!r} -[{key[0]}]-> {key[2]!r} from {key[3]!r}"))
        for r in self.relations:
            start, end = self._by_id.get(r.start), self._by_id.get(r.end)
            label = f"{r.start!r} -[{r.type.value}]-> {r.end!r}"

            def add(rule: str, message: str) -> None:
                found.append(Problem(rule, r.start, f"relation {label}{message}"))

            if start is None:
                add("dangling-reference", f" starts at unknown concept {r.start!r}")
            if end is None:
                add("dangling-reference", f" ends at unknown concept {r.end!r}")
            if start is None or end is None:
                continue
            if r.start == r.end:
                add("self-loop", f" is a self-loop on {r.start!r}")
            allowed_start, allowed_end = RELATION_KINDS[r.type]
            if start.kind not in allowed_start:
                add("relation-domain", f": {r.start!r} is {start.kind.value}, which cannot start {r.type.value}")
            if end.kind not in allowed_end:
                add("relation-range", f": {r.end!r} is {end.kind.value}, which cannot end {r.type.value}")
            if r.type is RelationType.IS_A and start.kind is not end.kind:
                add("is-a-kind-mismatch", f" joins a {start.kind.value} to a {end.kind.value}")
            if not r.source:
                add("missing-source", " has no source")
            if r.weight is not None and not math.isfinite(r.weight):
                add("non-finite-weight", " has a non-finite weight")
        for rel_type in ACYCLIC_RELATIONS:
            rule = "part-of-cycle" if rel_type is RelationType.PART_OF else "is-a-cycle"
            for cycle in _cycles(self.relations_of_type(rel_type)):
                found.append(Problem(rule, cycle[0], f"{rel_type.value} cycle: {' -> '.join(cycle)}"))
        return found

    def validate(self) -> "Ontology":
        """Raise ``OntologyValidationError`` listing every problem; return ``self`` when there is none."""
        problems = self.problems()
        if problems:
            raise OntologyValidationError([str(p) for p in problems])
        return self


def _cycles(relations: list[Relation]) -> list[list[str]]:
    """One representative cycle per strongly connected tangle, found by iterative DFS."""
    children: dict[str, list[str]] = {}
    for r in relations:
        children.setdefault(r.start, []).append(r.end)
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = finished
    cycles: list[list[str]] = []
    for root in sorted(children):
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, child_index = stack.pop()
            if child_index == 0:
                state[node] = 1
                path.append(node)
            kids = children.get(node, [])
            if child_index < len(kids):
                stack.append((node, child_index + 1))
                child = kids[child_index]
                if state.get(child) == 1:
                    cycles.append(path[path.index(child):] + [child])
                elif not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return cycles
