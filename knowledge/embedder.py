"""Node embeddings of a knowledge graph: frozen text encoder -> GNN with fixed weights.

``KnowledgeEmbedder`` holds a frozen text encoder and a ``KnowledgeGraphEncoder`` whose weights
are fixed once fitted (optionally by link-prediction pretraining on the graph it is fitted to).
Its ``embed(ontology)`` runs the *same* weights over any graph version, so a finding added to the
graph later (its text, its ``LOCATED_IN`` edges) gets an embedding in the space the aligner was
trained against: that is what makes the zero-shot score of a new node meaningful. The aligner's
checkpoint stores the embedder's state (``state()`` / ``KnowledgeEmbedder.from_state``).

Embeddings are cached per graph version (``EmbeddingCache``): the key names the text encoder and a
hash of the GNN's weights, so a changed graph or a refitted GNN is a miss, never a stale hit.

``anatomy_vlm.knowledge.build_knowledge`` turns an ontology (or a graph store's variant) and an
embedder into the ``RegionKnowledge`` the model reads.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from anatomy_vlm.config import typed_from_dict
from anatomy_vlm.kg.export import to_hetero_data
from anatomy_vlm.knowledge.cache import EmbeddingCache
from anatomy_vlm.knowledge.gnn import GNNConfig, KnowledgeGraphEncoder, pretrain_link_prediction
from anatomy_vlm.knowledge.text_encoder import HashingTextEncoder, MiniLMTextEncoder, TextEncoder, encode_concepts
from anatomy_vlm.ontology.model import Ontology

TEXT_ENCODERS = ("minilm", "hashing")


@dataclass(frozen=True)
class KnowledgeConfig:
    """How node embeddings are made from a graph (the ``knowledge:`` section of a run's YAML)."""

    text_encoder: str = "minilm"  # "minilm" (all-MiniLM-L6-v2, shipped as a package) or "hashing" (no weights)
    hashing_dim: int = 256  # width of the hashing encoder's features ("hashing" only)
    conv: str = "sage"  # GNN layer: "sage", "graph" (uses edge weights) or "hgt"; see knowledge/gnn.py for why sage
    hidden: int = 128  # GNN width
    out_dim: int = 128  # node embedding width D
    layers: int = 2  # message-passing layers (2 reach a region's grandparents)
    pretrain_epochs: int = 100  # link-prediction epochs (DistMult over all edges); 0 keeps the seeded init
    pretrain_lr: float = 0.01
    seed: int = 0  # GNN init and negative sampling
    center: bool = True  # subtract the mean GNN output over the graph's nodes, then L2-normalise each row
    text_residual: bool = True  # append each node's (L2-normalised) text features to its GNN embedding
    cache_dir: str = ".anatomy-vlm/embeddings"  # per-graph-version cache; "" turns caching off

    def __post_init__(self) -> None:
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"knowledge.text_encoder must be one of {TEXT_ENCODERS}, got {self.text_encoder!r}")
        if self.pretrain_epochs < 0:
            raise ValueError(f"knowledge.pretrain_epochs must be >= 0, got {self.pretrain_epochs}")

    def gnn_config(self) -> GNNConfig:
        # dropout 0: the embeddings are computed once and frozen, so train-mode noise has no use
        return GNNConfig(hidden=self.hidden, out_dim=self.out_dim, layers=self.layers, dropout=0.0, conv=self.conv)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "KnowledgeConfig":
        return typed_from_dict(cls, data, "knowledge")


def make_text_encoder(config: KnowledgeConfig) -> TextEncoder:
    if config.text_encoder == "hashing":
        return HashingTextEncoder(dim=config.hashing_dim)
    return MiniLMTextEncoder()


def _tensor_digest(state: dict[str, Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        buffer = io.BytesIO()
        torch.save(state[name].detach().cpu().contiguous(), buffer)
        digest.update(name.encode())
        digest.update(buffer.getvalue())
    return digest.hexdigest()[:16]


class KnowledgeEmbedder:
    """Frozen text encoder + fixed-weight GNN: ``embed(ontology)`` gives ``(node_ids, [N, D])``.

    ``D`` is the GNN's ``out_dim``, plus the text width when ``config.text_residual``: the text half
    keeps nodes with similar graph context apart (the name is what tells two findings located in
    the same zones from each other), the GNN half carries the graph context.

    Build one with :meth:`fit` (seeded init + optional link-prediction pretraining on a graph) or
    :meth:`from_state` (what a checkpoint stored). Node types the GNN was fitted without are an
    error; edge types it does not know (a variant with a new relation pattern) carry no messages.
    """

    def __init__(self, config: KnowledgeConfig, text_encoder: TextEncoder, gnn: KnowledgeGraphEncoder,
                 *, pretrain_history: dict[str, list[float]] | None = None):
        self.config = config
        self.text_encoder = text_encoder
        self.gnn = gnn.eval()
        for parameter in self.gnn.parameters():
            parameter.requires_grad_(False)
        self.pretrain_history = pretrain_history or {}
        layout = f"c{int(config.center)}t{int(config.text_residual)}"
        self.fingerprint = (f"{getattr(text_encoder, 'name', type(text_encoder).__name__)}-gnn-"
                            f"{_tensor_digest(gnn.state_dict())}-{layout}")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def fit(cls, ontology: Ontology, config: KnowledgeConfig = KnowledgeConfig(),
            text_encoder: TextEncoder | None = None) -> "KnowledgeEmbedder":
        """Seed the GNN, and pretrain it by link prediction over ``ontology``'s edges when asked."""
        text_encoder = text_encoder or make_text_encoder(config)
        data, index = to_hetero_data(ontology)
        x_dict = encode_concepts(text_encoder, ontology, index)
        text_dim = int(next(iter(x_dict.values())).shape[1])
        torch.manual_seed(config.seed)
        gnn = KnowledgeGraphEncoder(config.gnn_config(), text_dim, data.metadata())
        history: dict[str, list[float]] = {}
        if config.pretrain_epochs:
            history = pretrain_link_prediction(gnn, data, x_dict, epochs=config.pretrain_epochs, seed=config.seed,
                                               lr=config.pretrain_lr)
        return cls(config, text_encoder, gnn, pretrain_history=history)

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this embedder (``from_state``)."""
        return {
            "config": asdict(self.config),
            "text_dim": self.gnn.text_dim,
            "metadata": [list(self.gnn.node_types), [list(et) for et in self.gnn.edge_types]],
            "gnn": {k: v.detach().cpu() for k, v in self.gnn.state_dict().items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], text_encoder: TextEncoder | None = None) -> "KnowledgeEmbedder":
        try:
            config = KnowledgeConfig.from_dict(state["config"])
            node_types, edge_types = state["metadata"]
            gnn = KnowledgeGraphEncoder(config.gnn_config(), int(state["text_dim"]),
                                        (list(node_types), [tuple(et) for et in edge_types]))
            gnn.load_state_dict(state["gnn"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"not a knowledge-embedder state: {e}") from e
        return cls(config, text_encoder or make_text_encoder(config), gnn)

    # -- use ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _compute(self, ontology: Ontology, data, index) -> Tensor:
        """The ``[N, D]`` table of one export (``to_hetero_data(ontology)``), rows in ``index.flat_ids()`` order."""
        unknown = sorted(set(index.node_ids) - set(self.gnn.node_types))
        if unknown:
            raise ValueError(f"the graph has node type(s) {unknown} the knowledge GNN was not fitted with "
                             f"(it knows {self.gnn.node_types}): refit it on this graph")
        x_dict = encode_concepts(self.text_encoder, ontology, index)
        text_dim = int(next(iter(x_dict.values())).shape[1])
        if text_dim != self.gnn.text_dim:
            raise ValueError(f"text features are {text_dim} wide, the GNN expects {self.gnn.text_dim}")
        for node_type in self.gnn.node_types:  # a kind this graph lacks: an empty feature table
            x_dict.setdefault(node_type, torch.zeros(0, text_dim))
        known = set(self.gnn.edge_types)
        edge_index = {tuple(et): ei for et, ei in data.edge_index_dict.items() if tuple(et) in known}
        edge_weight = {et: data[et].edge_weight for et in edge_index}
        embeddings = self.gnn(x_dict, edge_index, edge_weight)["embeddings"]
        node_types = sorted(index.node_ids)
        table = torch.cat([embeddings[node_type] for node_type in node_types], dim=0).float()  # [N, out_dim]
        if self.config.center:
            # Link-prediction pretraining and mean aggregation leave every node with a large shared
            # component (measured: cosine 0.96-0.995 between the planted findings' raw outputs),
            # which the heads cannot tell apart; what distinguishes nodes is the rest.
            table = F.normalize(table - table.mean(dim=0, keepdim=True), dim=-1)
        if self.config.text_residual:
            text = torch.cat([x_dict[node_type] for node_type in node_types], dim=0).float()  # [N, text_dim]
            table = torch.cat([table, F.normalize(text, dim=-1)], dim=-1)  # [N, out_dim + text_dim]
        return table

    def embed(self, ontology: Ontology, cache: EmbeddingCache | None = None) -> tuple[list[str], Tensor]:
        """``(node_ids, [N, D])`` for every concept of ``ontology``, rows in ``node_ids`` order.

        With ``cache``, the table is read from / written to it under the ontology's content hash.
        """
        data, index = to_hetero_data(ontology)
        node_ids = index.flat_ids()
        if cache is None:
            return node_ids, self._compute(ontology, data, index)
        table = cache.get_or_compute(ontology.content_hash(), self.fingerprint,
                                     lambda: self._compute(ontology, data, index))
        if table.shape[0] != len(node_ids):
            raise ValueError(f"cached embeddings have {table.shape[0]} rows, the graph {len(node_ids)} nodes")
        return node_ids, table


def cache_for(config: KnowledgeConfig) -> EmbeddingCache | None:
    return EmbeddingCache(config.cache_dir) if config.cache_dir else None


class FixedEmbeddings:
    """A given ``[N, D]`` table standing in for an embedder (tests, benchmarks, precomputed tables):
    ``embed`` returns it for any ontology whose concepts it covers."""

    def __init__(self, node_ids: Sequence[str], table: Tensor):
        if table.dim() != 2 or table.shape[0] != len(node_ids):
            raise ValueError(f"table must be [N, D] with N = {len(node_ids)} node ids, got {tuple(table.shape)}")
        self.node_ids, self.table = list(node_ids), table.detach()

    def embed(self, ontology: Ontology, cache: EmbeddingCache | None = None) -> tuple[list[str], Tensor]:
        return self.node_ids, self.table


__all__ = ["FixedEmbeddings", "KnowledgeConfig", "KnowledgeEmbedder", "cache_for", "make_text_encoder"]
