"""Type aliases and the small result objects the graph store returns."""

from __future__ import annotations

from dataclasses import dataclass, field

NodeType = str  # a kind label: "Anatomy", "Finding", ...
EdgeType = tuple[str, str, str]  # (start kind, relation type, end kind), as torch-geometric keys them

DEFAULT_VARIANT = "canonical"  # the variant ``sync`` writes the curated ontology into


@dataclass(frozen=True)
class SyncReport:
    """What one ``GraphStore.sync`` changed in a variant."""

    variant: str
    version: str  # content hash of the ontology now in the variant
    concepts_added: int = 0
    concepts_updated: int = 0  # properties or kind changed
    concepts_removed: int = 0
    relations_added: int = 0
    relations_updated: int = 0  # weight/count changed
    relations_removed: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any((
            self.concepts_added, self.concepts_updated, self.concepts_removed,
            self.relations_added, self.relations_updated, self.relations_removed,
        ))


@dataclass(frozen=True)
class VariantInfo:
    """A knowledge variant as recorded in the graph (one ``:KnowledgeVariant`` node)."""

    name: str
    version: str  # content hash of what was last synced into it
    concepts: int
    relations: int
    parent: str | None = None  # the variant it was derived from, if any
    recipe: str | None = None  # how it was derived (free text or a recipe spec)
    created_at: str | None = None  # ISO-8601, UTC
    synced_at: str | None = None  # ISO-8601, UTC


@dataclass(frozen=True)
class Ancestor:
    id: str
    name: str
    depth: int  # PART_OF hops from the anatomy node (1 = direct parent)


@dataclass(frozen=True)
class LocatedFinding:
    """A finding known to occur at the anatomy node or at one of its ancestors."""

    id: str
    name: str
    site: str  # the anatomy id the LOCATED_IN edge points at (the node itself or an ancestor)
    source: str
    weight: float | None = None
    count: int | None = None


@dataclass(frozen=True)
class Neighbourhood:
    """The knowledge around one anatomy node: the keys of that region's enrichment."""

    id: str
    name: str
    ancestors: tuple[Ancestor, ...] = ()  # nearest first
    findings: tuple[LocatedFinding, ...] = ()  # sorted by finding id, then site

    @property
    def node_ids(self) -> list[str]:
        """The node, its ancestors and its findings, each once: the ids enrichment attends over."""
        seen = dict.fromkeys([self.id, *(a.id for a in self.ancestors), *(f.id for f in self.findings)])
        return list(seen)


@dataclass(frozen=True)
class QueryResult:
    """Rows of a read-only user query."""

    columns: list[str]
    rows: list[dict[str, object]] = field(default_factory=list)
    truncated: bool = False  # more rows existed than the limit allowed
