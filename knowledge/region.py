"""The knowledge each region attends over and the findings the heads score, as index tensors.

``RegionKnowledge`` is built once per graph version (and variant) by ``knowledge.build_knowledge``:
from the regions' ``Neighbourhood`` objects (``region_neighbourhoods``, computed from the ontology
in memory; the named Cypher ``kg.queries.NEIGHBOURHOOD`` returns the same sets and a test holds the
two equal) and a node-embedding table (the knowledge embedder's output, one row per node id). The model never queries the graph per ROI or per image: it
gathers keys through ``key_index`` and scores against the rows ``finding_index`` names.

Adding a finding to the ontology (a concept with a text embedding and ``LOCATED_IN`` edges) and
rebuilding ``RegionKnowledge`` makes it scored by the same model: the heads hold no per-class
parameter, so the number of findings ``F`` is whatever this object lists.

Shapes:
    ``node_embeddings``: ``[N, D]``, row ``i`` belongs to ``node_ids[i]``
    ``key_index``: ``[R, K]`` long, rows of ``node_embeddings`` per region (0 where padded)
    ``key_mask``: ``[R, K]`` bool, ``True`` where ``key_index`` names a real neighbourhood node
    ``finding_index``: ``[F]`` long, rows of the scored findings in ``node_embeddings``
    ``located_mask``: ``[R, F]`` bool, finding ``f`` is in region ``r``'s neighbourhood
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from anatomy_vlm.exceptions import UnknownConceptError
from anatomy_vlm.kg.types import DEFAULT_VARIANT, Ancestor, LocatedFinding, Neighbourhood
from anatomy_vlm.ontology.model import ConceptKind, Ontology, RelationType
from anatomy_vlm.ontology.seed import REGION_IDS

SCORED_KINDS = (ConceptKind.FINDING, ConceptKind.DISEASE)  # the kinds the alignment heads score


def region_neighbourhoods(ontology: Ontology, region_ids: Sequence[str] = REGION_IDS) -> dict[str, Neighbourhood]:
    """The ``Neighbourhood`` of every anatomy id, computed from an ``Ontology`` in memory.

    The one computation of the keys enrichment attends over (``GraphStore.neighbourhood`` runs
    the same definition as Cypher and must agree): the node, its ``PART_OF`` ancestors (any distance,
    ``depth`` the fewest hops, nearest first, ties by id) and every concept ``LOCATED_IN`` the
    node or one of those ancestors (one ``LocatedFinding`` per distinct edge, sorted by finding id,
    site, source). Raises ``UnknownConceptError`` for ids that are not Anatomy concepts.
    """
    ids = list(dict.fromkeys(region_ids))
    missing = [i for i in ids if i not in ontology or ontology[i].kind is not ConceptKind.ANATOMY]
    if missing:
        raise UnknownConceptError(missing, "ontology")
    parents: dict[str, list[str]] = {}
    for relation in ontology.relations_of_type(RelationType.PART_OF):
        parents.setdefault(relation.start, []).append(relation.end)
    located: dict[str, list] = {}
    for relation in ontology.relations_of_type(RelationType.LOCATED_IN):
        located.setdefault(relation.end, []).append(relation)

    found: dict[str, Neighbourhood] = {}
    for anatomy_id in ids:
        depth: dict[str, int] = {}
        frontier, hops = [anatomy_id], 0
        while frontier:  # breadth first, so the first visit of a node is its fewest hops
            hops += 1
            next_frontier = []
            for node in frontier:
                for parent in parents.get(node, ()):
                    if parent not in depth and parent != anatomy_id:
                        depth[parent] = hops
                        next_frontier.append(parent)
            frontier = next_frontier
        ancestors = sorted(
            (Ancestor(id=a, name=ontology[a].name, depth=d) for a, d in depth.items()),
            key=lambda a: (a.depth, a.id),
        )
        findings = sorted(
            {
                LocatedFinding(
                    id=r.start, name=ontology[r.start].name, site=site, source=r.source,
                    weight=r.weight, count=r.count,
                )
                for site in [anatomy_id, *depth]
                for r in located.get(site, ())
            },
            key=lambda f: (f.id, f.site, f.source),
        )
        found[anatomy_id] = Neighbourhood(
            id=anatomy_id, name=ontology[anatomy_id].name, ancestors=tuple(ancestors), findings=tuple(findings)
        )
    return found


def scored_finding_ids(ontology: Ontology) -> list[str]:
    """Ids of the concepts the heads score (Finding and Disease), sorted."""
    return sorted(c.id for c in ontology.concepts if c.kind in SCORED_KINDS)


@dataclass(frozen=True, eq=False)  # eq=False: tensor fields do not compare as a bool
class RegionKnowledge:
    """Per-region key indices and the scored findings of one graph version; see the module docstring."""

    region_ids: tuple[str, ...]  # R region (anatomy) ids, in the order of the model's region queries
    node_ids: tuple[str, ...]  # N node ids, one per row of ``node_embeddings``
    node_embeddings: Tensor  # [N, D] node embedding table (e.g. GNN output), not trained through here
    key_index: Tensor  # [R, K] long rows into ``node_embeddings``; padding points at row 0
    key_mask: Tensor  # [R, K] bool, True for a real key
    finding_ids: tuple[str, ...]  # F scored Finding/Disease ids, in logit order
    finding_index: Tensor  # [F] long rows of the findings in ``node_embeddings``
    located_mask: Tensor  # [R, F] bool, finding f is LOCATED_IN region r or one of its ancestors
    graph_version: str = ""  # content hash of the ontology/variant these came from
    variant: str = DEFAULT_VARIANT  # knowledge variant name

    @classmethod
    def build(
        cls,
        neighbourhoods: Mapping[str, Neighbourhood],
        node_ids: Sequence[str],
        node_embeddings: Tensor,
        finding_ids: Sequence[str],
        *,
        region_ids: Sequence[str] = REGION_IDS,
        graph_version: str = "",
        variant: str = DEFAULT_VARIANT,
    ) -> "RegionKnowledge":
        """Index ``neighbourhoods`` (one per region id) against the embedding table.

        A region missing from ``neighbourhoods`` gets an empty neighbourhood (all keys masked), and
        enrichment passes its feature through unchanged. Every neighbourhood node and every
        finding must have a row in the table (``ValueError`` naming the missing ids otherwise).
        """
        node_ids = tuple(node_ids)
        region_ids = tuple(region_ids)
        finding_ids = tuple(finding_ids)
        if node_embeddings.dim() != 2 or node_embeddings.shape[0] != len(node_ids):
            raise ValueError(
                f"node_embeddings must be [N, D] with N = len(node_ids) = {len(node_ids)}, "
                f"got {tuple(node_embeddings.shape)}"
            )
        if len(set(node_ids)) != len(node_ids):
            raise ValueError("node_ids has duplicates")
        if not region_ids:
            raise ValueError("region_ids is empty")
        if len(set(finding_ids)) != len(finding_ids):
            raise ValueError("finding_ids has duplicates")
        row = {node_id: i for i, node_id in enumerate(node_ids)}

        keys = [neighbourhoods[r].node_ids if r in neighbourhoods else [] for r in region_ids]
        missing = sorted({n for ks in keys for n in ks if n not in row} | {f for f in finding_ids if f not in row})
        if missing:
            raise ValueError(f"no embedding row for node(s): {', '.join(missing)}")

        k_max = max(1, max(len(ks) for ks in keys))  # at least one column, so shapes stay valid
        key_index = torch.zeros(len(region_ids), k_max, dtype=torch.long)
        key_mask = torch.zeros(len(region_ids), k_max, dtype=torch.bool)
        for r, ks in enumerate(keys):
            key_index[r, : len(ks)] = torch.tensor([row[n] for n in ks], dtype=torch.long)
            key_mask[r, : len(ks)] = True
        finding_pos = {f: i for i, f in enumerate(finding_ids)}
        located_mask = torch.zeros(len(region_ids), len(finding_ids), dtype=torch.bool)
        for r, region in enumerate(region_ids):
            if region in neighbourhoods:
                for finding in neighbourhoods[region].findings:
                    if finding.id in finding_pos:
                        located_mask[r, finding_pos[finding.id]] = True
        return cls(
            region_ids=region_ids,
            node_ids=node_ids,
            node_embeddings=node_embeddings.detach(),
            key_index=key_index,
            key_mask=key_mask,
            finding_ids=finding_ids,
            finding_index=torch.tensor([row[f] for f in finding_ids], dtype=torch.long),
            located_mask=located_mask,
            graph_version=graph_version,
            variant=variant,
        )

    # -- views ---------------------------------------------------------------------------------
    @property
    def num_regions(self) -> int:
        return len(self.region_ids)

    @property
    def num_findings(self) -> int:
        return len(self.finding_ids)

    def finding_embeddings(self, node_embeddings: Tensor | None = None) -> Tensor:
        """``[F, D]`` rows of the scored findings, from ``node_embeddings`` (a fresh GNN pass) or the table."""
        table = self.node_embeddings if node_embeddings is None else node_embeddings
        return table[self.finding_index.to(table.device)]

    def region_keys(self, region: int | str) -> list[str]:
        """Node ids of one region's keys, in key order (the columns of its attention row)."""
        r = self.region_ids.index(region) if isinstance(region, str) else region
        return [self.node_ids[i] for i, m in zip(self.key_index[r].tolist(), self.key_mask[r].tolist()) if m]

    def with_embeddings(self, node_embeddings: Tensor) -> "RegionKnowledge":
        """The same indices over a new ``[N, D]`` table (e.g. after retraining the GNN)."""
        if node_embeddings.dim() != 2 or node_embeddings.shape[0] != len(self.node_ids):
            raise ValueError(
                f"node_embeddings must be [{len(self.node_ids)}, D], got {tuple(node_embeddings.shape)}"
            )
        return replace(self, node_embeddings=node_embeddings.detach())

    def to(self, device: torch.device | str) -> "RegionKnowledge":
        """A copy with every tensor on ``device`` (the trainer or service calls this once)."""
        return replace(
            self,
            node_embeddings=self.node_embeddings.to(device),
            key_index=self.key_index.to(device),
            key_mask=self.key_mask.to(device),
            finding_index=self.finding_index.to(device),
            located_mask=self.located_mask.to(device),
        )
