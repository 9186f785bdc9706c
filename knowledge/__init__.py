"""Knowledge embedding: from an ontology (or a graph store's variant) to the ``RegionKnowledge`` the model reads.

One entry point, :func:`build_knowledge`::

    embedder = KnowledgeEmbedder.fit(ontology, KnowledgeConfig())        # text encoder + GNN, fitted once
    knowledge = build_knowledge(ontology, embedder)                       # in memory
    knowledge = build_knowledge(store, embedder, variant="canonical")     # what a graph variant holds

The pieces: ``text_encoder`` (frozen MiniLM, or a local BiomedBERT folder), ``gnn`` (R-GCN with
link-prediction pretraining), ``embedder`` (``KnowledgeEmbedder``: both, weights fixed once fitted,
stored in checkpoints), ``cache`` (tables per graph version), ``region`` (each region's
neighbourhood as padded key indices: ``RegionKnowledge``). The graph database layer (``kg``) holds
none of this: it stores and queries, this package embeds.
"""

from __future__ import annotations

from collections.abc import Sequence

from anatomy_vlm.kg.types import DEFAULT_VARIANT
from anatomy_vlm.knowledge.cache import EmbeddingCache
from anatomy_vlm.knowledge.embedder import (
    FixedEmbeddings, KnowledgeConfig, KnowledgeEmbedder, cache_for, make_text_encoder,
)
from anatomy_vlm.knowledge.region import RegionKnowledge, region_neighbourhoods, scored_finding_ids
from anatomy_vlm.ontology.model import Ontology
from anatomy_vlm.ontology.seed import REGION_IDS


def build_knowledge(source, embedder: KnowledgeEmbedder | FixedEmbeddings, *, variant: str = DEFAULT_VARIANT,
                    region_ids: Sequence[str] = REGION_IDS, finding_ids: Sequence[str] | None = None,
                    cache: EmbeddingCache | None = None) -> RegionKnowledge:
    """``RegionKnowledge`` of one graph version.

    ``source`` is an ``Ontology`` or a ``GraphStore`` (then ``variant`` is read from it with
    ``read_ontology``). The embedder's table gives the node rows; each region's neighbourhood (the
    node, its PART_OF ancestors, the findings LOCATED_IN either) gives its keys; ``finding_ids``
    defaults to every Finding and Disease. With ``cache`` the table is kept per graph version.
    """
    ontology = source if isinstance(source, Ontology) else source.read_ontology(variant)
    node_ids, table = embedder.embed(ontology, cache)
    return RegionKnowledge.build(
        region_neighbourhoods(ontology, region_ids), node_ids, table,
        scored_finding_ids(ontology) if finding_ids is None else finding_ids,
        region_ids=region_ids, graph_version=ontology.content_hash(), variant=variant,
    )


__all__ = [
    "EmbeddingCache", "FixedEmbeddings", "KnowledgeConfig", "KnowledgeEmbedder", "RegionKnowledge", "build_knowledge",
    "cache_for", "make_text_encoder", "region_neighbourhoods", "scored_finding_ids",
]
