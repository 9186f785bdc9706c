"""RegionKnowledge indexing and KnowledgeEnrichment's masked cross-attention, on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from anatomy_vlm.alignment.enrichment import EnrichmentConfig, KnowledgeEnrichment
from anatomy_vlm.knowledge import (
    FixedEmbeddings, RegionKnowledge, build_knowledge, region_neighbourhoods, scored_finding_ids,
)
from anatomy_vlm.exceptions import UnknownConceptError
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology

DIM, NODE_DIM = 8, 6


@pytest.fixture(scope="module")
def ontology():
    return seed_ontology()


@pytest.fixture(scope="module")
def knowledge(ontology):
    torch.manual_seed(0)
    node_ids = [c.id for c in ontology.concepts]
    return build_knowledge(ontology, FixedEmbeddings(node_ids, torch.randn(len(node_ids), NODE_DIM)))


def _module(**kw) -> KnowledgeEnrichment:
    torch.manual_seed(1)
    return KnowledgeEnrichment(DIM, 2, node_dim=NODE_DIM, **kw).eval()


# -- knowledge ---------------------------------------------------------------------------------
def test_neighbourhood_semantics(ontology):
    hoods = region_neighbourhoods(ontology, ["right_costophrenic_angle", "carina"])
    rcp = hoods["right_costophrenic_angle"]
    assert [(a.id, a.depth) for a in rcp.ancestors] == [
        ("right_lower_lung_zone", 1), ("right_lung", 2), ("lungs", 3), ("thorax", 4), ("body", 5)]
    finding_ids = {f.id for f in rcp.findings}
    # at the node itself (pleural effusion) and at ancestors (right_lung: atelectasis; lungs: pneumonia)
    assert {"pleural_effusion", "atelectasis", "pneumonia"} <= finding_ids
    assert "cardiomegaly" not in finding_ids
    assert [(f.id, f.site) for f in rcp.findings] == sorted((f.id, f.site) for f in rcp.findings)
    assert "tracheal_deviation" in {f.id for f in hoods["carina"].findings}  # located in its parent
    with pytest.raises(UnknownConceptError):
        region_neighbourhoods(ontology, ["pleural_effusion"])  # a Finding, not Anatomy


def test_knowledge_indices(ontology, knowledge):
    assert knowledge.key_index.shape[0] == len(REGION_IDS) == knowledge.key_mask.shape[0]
    assert knowledge.finding_ids == tuple(scored_finding_ids(ontology))
    assert knowledge.located_mask.shape == (len(REGION_IDS), knowledge.num_findings)
    hoods = region_neighbourhoods(ontology)
    for r, region in enumerate(REGION_IDS):
        assert knowledge.region_keys(r) == hoods[region].node_ids
        located = {knowledge.finding_ids[f] for f in knowledge.located_mask[r].nonzero().flatten().tolist()}
        assert located == {f.id for f in hoods[region].findings} & set(knowledge.finding_ids)
    assert knowledge.graph_version == ontology.content_hash()
    assert torch.equal(knowledge.finding_embeddings(), knowledge.node_embeddings[knowledge.finding_index])


def test_knowledge_bad_arguments(ontology):
    hoods = region_neighbourhoods(ontology)
    node_ids = [c.id for c in ontology.concepts]
    with pytest.raises(ValueError, match="N = len"):
        RegionKnowledge.build(hoods, node_ids, torch.randn(3, 4), ["pneumonia"])
    with pytest.raises(ValueError, match="no embedding row.*pleural_effusion"):
        ids = [i for i in node_ids if i != "pleural_effusion"]
        RegionKnowledge.build(hoods, ids, torch.randn(len(ids), 4), ["pneumonia"])


# -- enrichment --------------------------------------------------------------------------------
def test_attention_confined_to_neighbourhood(knowledge):
    module = _module()
    x = torch.randn(2, len(REGION_IDS), DIM)
    out = module(x, knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask)
    assert out["enriched"].shape == x.shape
    attn = out["attention"]
    assert attn.shape == (2, *knowledge.key_index.shape)
    mask = knowledge.key_mask.expand_as(attn)
    assert torch.all(attn[~mask] == 0)
    assert torch.all(attn[mask] > 0)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, len(REGION_IDS)))
    assert torch.equal(out["key_index"], knowledge.key_index)


def test_only_neighbourhood_nodes_matter(knowledge):
    """Changing a node outside region r's neighbourhood leaves region r's output unchanged."""
    module = _module()
    x = torch.randn(1, len(REGION_IDS), DIM)
    carina = REGION_IDS.index("carina")
    outside = knowledge.node_ids.index("cardiomegaly")
    assert "cardiomegaly" not in knowledge.region_keys(carina)
    nodes = knowledge.node_embeddings.clone()
    before = module(x, nodes, knowledge.key_index, knowledge.key_mask)["enriched"]
    nodes[outside] = torch.randn(NODE_DIM) * 5  # (a constant shift would vanish in the key LayerNorm)
    after = module(x, nodes, knowledge.key_index, knowledge.key_mask)["enriched"]
    torch.testing.assert_close(after[:, carina], before[:, carina])
    cardiac = REGION_IDS.index("cardiac_silhouette")
    assert not torch.allclose(after[:, cardiac], before[:, cardiac])


def test_empty_neighbourhood_passes_through(ontology):
    hoods = region_neighbourhoods(ontology)
    del hoods["abdomen"]  # a region with no neighbourhood at all
    node_ids = [c.id for c in ontology.concepts]
    knowledge = RegionKnowledge.build(hoods, node_ids, torch.randn(len(node_ids), NODE_DIM), ["pneumonia"])
    abdomen = REGION_IDS.index("abdomen")
    assert not knowledge.key_mask[abdomen].any()
    x = torch.randn(3, len(REGION_IDS), DIM)
    out = _module()(x, knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask)
    assert torch.equal(out["enriched"][:, abdomen], x[:, abdomen])
    assert torch.all(out["attention"][:, abdomen] == 0)
    assert torch.isfinite(out["enriched"]).all()
    assert not torch.allclose(out["enriched"][:, 0], x[:, 0])


def test_batch_equals_single(knowledge):
    module = _module(dropout=0.1)  # eval mode: dropout off
    x = torch.randn(3, len(REGION_IDS), DIM)
    args = (knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask)
    batched = module(x, *args)
    for b in range(3):
        single = module(x[b : b + 1], *args)
        torch.testing.assert_close(single["enriched"], batched["enriched"][b : b + 1])
        torch.testing.assert_close(single["attention"], batched["attention"][b : b + 1])


def test_finite_gradients(knowledge):
    module = _module(dropout=0.1).train()
    x = torch.randn(2, len(REGION_IDS), DIM, requires_grad=True)
    nodes = knowledge.node_embeddings.clone().requires_grad_(True)
    out = module(x, nodes, knowledge.key_index, knowledge.key_mask)
    out["enriched"].square().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(nodes.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
    # only neighbourhood nodes receive gradient
    used = set(knowledge.key_index[knowledge.key_mask].tolist())
    unused = [i for i in range(len(knowledge.node_ids)) if i not in used]
    assert unused and torch.all(nodes.grad[unused] == 0)


def test_enrichment_bad_arguments(knowledge):
    with pytest.raises(ValueError, match="divisible"):
        KnowledgeEnrichment(10, 3)
    with pytest.raises(ValueError, match="dropout"):
        KnowledgeEnrichment(8, 2, dropout=1.0)
    module = _module()
    x = torch.randn(1, len(REGION_IDS), DIM)
    with pytest.raises(ValueError, match="region_features"):
        module(x[..., :4], knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask)
    with pytest.raises(ValueError, match="node_embeddings"):
        module(x, knowledge.node_embeddings[:, :2], knowledge.key_index, knowledge.key_mask)
    with pytest.raises(ValueError, match="key_index"):
        module(x, knowledge.node_embeddings, knowledge.key_index[:3], knowledge.key_mask[:3])
    with pytest.raises(ValueError, match="bool"):
        module(x, knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask.long())


def test_from_config():
    module = KnowledgeEnrichment.from_config(EnrichmentConfig(dim=8, heads=4, node_dim=6, mlp_ratio=0))
    assert module.mlp is None and module.heads == 4
