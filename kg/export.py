"""Exports of an ontology (or a variant read back from the graph) for analysis and for the GNN.

- ``to_networkx``: a ``networkx.MultiDiGraph`` keyed by concept id, every property kept.
- ``to_hetero_data``: a torch-geometric ``HeteroData`` with one node type per concept kind and one
  edge type per (start kind, relation, end kind), plus a ``GraphIndex`` mapping ids to rows.

Row order is the sorted concept id within each kind, so the same content always gets the same
indices, whichever backend or sync order produced it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from anatomy_vlm.kg.types import EdgeType, NodeType
from anatomy_vlm.ontology.model import Ontology


def to_networkx(ontology: Ontology) -> nx.MultiDiGraph:
    """Nodes carry kind, name, synonyms, definition, codes, source; edges are keyed "TYPE|source"."""
    graph = nx.MultiDiGraph(name=ontology.name, version=ontology.content_hash())
    for concept in ontology.concepts:
        graph.add_node(concept.id, kind=concept.kind.value, **{k: v for k, v in concept.properties().items() if k != "id"})
    for relation in ontology.relations:
        graph.add_edge(
            relation.start, relation.end, key=f"{relation.type.value}|{relation.source}",
            type=relation.type.value, source=relation.source, weight=relation.weight, count=relation.count,
        )
    return graph


@dataclass(frozen=True)
class GraphIndex:
    """Stable id <-> (node type, row) maps of one exported graph."""

    node_ids: dict[NodeType, list[str]]  # node type -> ids in row order
    version: str  # content hash of the exported ontology

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", {
            node_id: (node_type, row) for node_type, ids in self.node_ids.items() for row, node_id in enumerate(ids)
        })

    def locate(self, node_id: str) -> tuple[NodeType, int]:
        """(node type, row) of a concept id; ``KeyError`` naming the id if it is not in the graph."""
        try:
            return self._rows[node_id]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"concept {node_id!r} is not in the exported graph") from None

    def node_id(self, node_type: NodeType, row: int) -> str:
        return self.node_ids[node_type][row]

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.node_ids.values())

    def flat_ids(self) -> list[str]:
        """Every node id, node types in sorted order and rows in order: the order of a table that
        stacks the per-type tensors (``KnowledgeGraphEncoder``'s ``flat`` output)."""
        return [node_id for node_type in sorted(self.node_ids) for node_id in self.node_ids[node_type]]


def to_hetero_data(ontology: Ontology):
    """``(HeteroData, GraphIndex)``.

    Shapes:
        ``data[kind].num_nodes``: number of concepts of that kind; ``data[kind].node_id``: their ids
        ``data[edge_type].edge_index``: ``[2, num_edges]`` long, rows into the two node types
        ``data[edge_type].edge_weight``: ``[num_edges]`` float, the relation's weight (1.0 if none)
        ``data[edge_type].edge_count``: ``[num_edges]`` long, the relation's count (0 if none)
    """
    import torch  # imported here: torch and torch-geometric are slow to import for the CLI
    from torch_geometric.data import HeteroData

    node_ids: dict[NodeType, list[str]] = defaultdict(list)
    for concept in ontology.concepts:  # already sorted by id
        node_ids[concept.kind.value].append(concept.id)
    index = GraphIndex(node_ids=dict(sorted(node_ids.items())), version=ontology.content_hash())

    data = HeteroData()
    for node_type, ids in index.node_ids.items():
        data[node_type].num_nodes = len(ids)
        data[node_type].node_id = list(ids)

    edges: dict[EdgeType, list[tuple[int, int, float, int]]] = defaultdict(list)
    for relation in ontology.relations:  # sorted by key, so edge order is stable too
        start_type, start_row = index.locate(relation.start)
        end_type, end_row = index.locate(relation.end)
        weight = 1.0 if relation.weight is None else float(relation.weight)
        count = 0 if relation.count is None else int(relation.count)
        edges[(start_type, relation.type.value, end_type)].append((start_row, end_row, weight, count))
    for edge_type, rows in sorted(edges.items()):
        starts, ends, weights, counts = zip(*rows)
        data[edge_type].edge_index = torch.tensor([starts, ends], dtype=torch.long)
        data[edge_type].edge_weight = torch.tensor(weights, dtype=torch.float32)
        data[edge_type].edge_count = torch.tensor(counts, dtype=torch.long)
    return data, index


EXPORT_FORMATS = (".owl", ".graphml", ".json", ".pt")


def save_export(ontology: Ontology, path: str | Path) -> Path:
    """Write an ontology to ``path`` in the format its suffix names (``EXPORT_FORMATS``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(f"cannot export to {path.name!r}: the suffix must be one of {', '.join(EXPORT_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".owl":
        from anatomy_vlm.ontology.owl import save_owl

        save_owl(ontology, path)
    elif suffix == ".graphml":
        # GraphML holds scalars only: lists become "|"-joined text and missing values are left out.
        graph = to_networkx(ontology)
        for _, attrs in graph.nodes(data=True):
            for key in ("synonyms", "codes"):
                attrs[key] = "|".join(attrs[key])
        for _, _, attrs in graph.edges(data=True):
            for key in [k for k, v in attrs.items() if v is None]:
                del attrs[key]
        nx.write_graphml(graph, path)
    elif suffix == ".json":
        # "start"/"end" name the endpoints: an edge's own "source" attribute is its provenance.
        data = nx.node_link_data(to_networkx(ontology), source="start", target="end", edges="edges")
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    else:
        import torch

        data, index = to_hetero_data(ontology)
        torch.save({"data": data, "node_ids": index.node_ids, "version": index.version}, path)
    return path
