"""AlignmentHeads on tiny tensors, and zero-shot scoring of a finding added to the graph."""

from __future__ import annotations

import pytest
import torch

from anatomy_vlm.alignment.enrichment import KnowledgeEnrichment
from anatomy_vlm.alignment.heads import AlignmentHeads, HeadsConfig
from anatomy_vlm.knowledge import FixedEmbeddings, build_knowledge
from anatomy_vlm.ontology.model import Concept, ConceptKind, Relation, RelationType
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology

DIM, NODE_DIM, EMBED = 8, 6, 5
B, R, F = 3, 4, 7


def _heads(**kw) -> AlignmentHeads:
    torch.manual_seed(0)
    return AlignmentHeads(DIM, DIM, NODE_DIM, EMBED, **kw).eval()


def _inputs(batch=B):
    torch.manual_seed(1)
    return torch.randn(batch, R, DIM), torch.randn(batch, DIM), torch.randn(F, NODE_DIM)


def test_shapes_and_evidence_sums_to_one():
    regions, image, findings = _inputs()
    out = _heads()(regions, image, findings)
    assert out["region_logits"].shape == (B, R, F)
    assert out["image_logits"].shape == (B, F) == out["global_logits"].shape
    assert out["evidence_weights"].shape == (B, R, F)
    assert out["region_embeddings"].shape == (B, R, EMBED)
    assert out["image_embedding"].shape == (B, EMBED)
    assert out["finding_embeddings"].shape == (F, EMBED)
    assert out["logit_scale"].shape == ()
    torch.testing.assert_close(out["evidence_weights"].sum(1), torch.ones(B, F))
    torch.testing.assert_close(out["region_embeddings"].norm(dim=-1), torch.ones(B, R))
    # the logits the loss recomputes from the returned embeddings (log-space scale, shared bias)
    scale, bias = out["logit_scale"].exp(), out["logit_bias"]
    torch.testing.assert_close(
        out["region_logits"], scale * out["region_embeddings"] @ out["finding_embeddings"].t() + bias)
    torch.testing.assert_close(
        out["global_logits"], scale * out["image_embedding"] @ out["finding_embeddings"].t() + bias)


@pytest.mark.parametrize("combine", ["mix", "logsumexp"])
def test_image_logits_combine_pooled_and_global(combine):
    regions, image, findings = _inputs()
    out = _heads(combine=combine, pooling="mean")(regions, image, findings)
    pooled = out["region_logits"].mean(1)
    if combine == "mix":
        expected = 0.5 * pooled + 0.5 * out["global_logits"]
    else:
        expected = torch.logaddexp(pooled, out["global_logits"]) - torch.log(torch.tensor(2.0))
    torch.testing.assert_close(out["image_logits"], expected)


def test_masks_restrict_evidence():
    regions, image, findings = _inputs()
    region_mask = torch.ones(B, R, dtype=torch.bool)
    region_mask[0, 1] = False
    located = torch.rand(R, F) > 0.5
    located[:, 0] = False  # finding 0 is located nowhere: global score only
    located[2, 1] = True
    out = _heads(restrict_to_located=True)(regions, image, findings, region_mask=region_mask, located_mask=located)
    allowed = region_mask[:, :, None] & located[None]
    ev = out["evidence_weights"]
    assert torch.all(ev[~allowed] == 0)
    has = allowed.any(1)
    torch.testing.assert_close(ev.sum(1)[has], torch.ones(int(has.sum())))
    torch.testing.assert_close(out["image_logits"][:, 0], out["global_logits"][:, 0])
    with pytest.raises(ValueError, match="located_mask"):
        _heads(restrict_to_located=True)(regions, image, findings)


def test_batch_equals_single():
    regions, image, findings = _inputs()
    heads = _heads()
    batched = heads(regions, image, findings)
    for b in range(B):
        single = heads(regions[b : b + 1], image[b : b + 1], findings)
        for key in ("region_logits", "image_logits", "evidence_weights"):
            torch.testing.assert_close(single[key], batched[key][b : b + 1])


def test_finite_gradients():
    regions, image, findings = _inputs()
    regions.requires_grad_(True)
    heads = _heads().train()
    out = heads(regions, image, findings, region_mask=torch.rand(B, R) > 0.3)
    (out["image_logits"].sum() + out["region_logits"].square().mean()).backward()
    assert torch.isfinite(regions.grad).all()
    for name, p in heads.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_bad_arguments():
    with pytest.raises(ValueError, match="pooling"):
        AlignmentHeads(DIM, DIM, NODE_DIM, pooling="max")
    with pytest.raises(ValueError, match="embed_dim"):
        AlignmentHeads(DIM, DIM, NODE_DIM, 0)
    regions, image, findings = _inputs()
    heads = _heads()
    with pytest.raises(ValueError, match="image_features"):
        heads(regions, image[:1], findings)
    with pytest.raises(ValueError, match="finding_embeddings"):
        heads(regions, image, findings[:, :2])
    with pytest.raises(ValueError, match="region_mask"):
        heads(regions, image, findings, region_mask=torch.ones(B, R))
    assert AlignmentHeads.from_config(HeadsConfig(region_dim=4, image_dim=4, node_dim=4, embed_dim=2)).embed_dim == 2


def test_no_per_class_parameters():
    heads = _heads()
    regions, image, _ = _inputs()
    for num_findings in (1, 7, 30):
        assert heads(regions, image, torch.randn(num_findings, NODE_DIM))["image_logits"].shape == (B, num_findings)


# -- zero-shot: a finding added to the graph is scored by the same model -----------------------
def test_zero_shot_new_finding():
    ontology = seed_ontology()
    torch.manual_seed(2)
    node_ids = [c.id for c in ontology.concepts]
    table = torch.randn(len(node_ids), NODE_DIM)
    old = build_knowledge(ontology, FixedEmbeddings(node_ids, table))

    new_id = "tracheal_foreign_body"
    grown = ontology.with_changes(
        concepts=[*ontology.concepts, Concept(new_id, ConceptKind.FINDING, "foreign body at the carina",
                                              definition="An aspirated object lodged at the carina.", source="test")],
        relations=[*ontology.relations, Relation(RelationType.LOCATED_IN, new_id, "carina", "test")],
    ).validate()
    new = build_knowledge(grown, FixedEmbeddings([*node_ids, new_id], torch.cat([table, torch.randn(1, NODE_DIM)])))
    assert new.num_findings == old.num_findings + 1 and new_id in new.finding_ids
    assert new.graph_version != old.graph_version

    torch.manual_seed(3)
    enrichment = KnowledgeEnrichment(DIM, 2, node_dim=NODE_DIM).eval()
    heads = AlignmentHeads(DIM, DIM, NODE_DIM, EMBED, restrict_to_located=True).eval()
    shapes = {k: v.shape for k, v in [*enrichment.state_dict().items(), *heads.state_dict().items()]}
    regions, image = torch.randn(2, len(REGION_IDS), DIM), torch.randn(2, DIM)

    def run(knowledge):
        enriched = enrichment(regions, knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask)
        return enriched, heads(enriched["enriched"], image, knowledge.finding_embeddings(),
                               located_mask=knowledge.located_mask)

    (_, before), (enriched, after) = run(old), run(new)
    assert {k: v.shape for k, v in [*enrichment.state_dict().items(), *heads.state_dict().items()]} == shapes
    f_new = new.finding_ids.index(new_id)
    assert after["image_logits"].shape == (2, old.num_findings + 1)
    assert torch.isfinite(after["image_logits"][:, f_new]).all()

    # Its evidence lies only in the regions whose neighbourhood holds it: carina, a leaf region.
    carina = REGION_IDS.index("carina")
    assert new.located_mask[:, f_new].nonzero().flatten().tolist() == [carina]
    evidence = after["evidence_weights"][:, :, f_new]
    torch.testing.assert_close(evidence[:, carina], torch.ones(2))
    assert torch.all(evidence[:, [r for r in range(len(REGION_IDS)) if r != carina]] == 0)
    # The carina's enrichment attends to the new node; no other region has it as a key.
    assert new_id in new.region_keys(carina)
    col = new.region_keys(carina).index(new_id)
    assert torch.all(enriched["attention"][:, carina, col] > 0)
    assert all(new_id not in new.region_keys(r) for r in range(len(REGION_IDS)) if r != carina)
    # Nothing else moved: every other region's scores of the old findings are unchanged.
    keep = [new.finding_ids.index(f) for f in old.finding_ids]
    others = [r for r in range(len(REGION_IDS)) if r != carina]
    torch.testing.assert_close(after["region_logits"][:, others][:, :, keep], before["region_logits"][:, others])
    torch.testing.assert_close(after["global_logits"][:, keep], before["global_logits"])
