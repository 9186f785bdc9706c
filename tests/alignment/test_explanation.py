"""explain() and to_provenance(): predictions that cite real ROIs and real graph nodes."""

from __future__ import annotations

import pytest
import torch

from anatomy_vlm.alignment.enrichment import KnowledgeEnrichment
from anatomy_vlm.alignment.explanation import Explanation, FindingPrediction, Prediction, explain, to_provenance
from anatomy_vlm.alignment.heads import AlignmentHeads
from anatomy_vlm.alignment.knowledge import RegionKnowledge
from anatomy_vlm.kg.provenance import ProvenanceRecord
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology

DIM, NODE_DIM, BATCH = 8, 6, 2


@pytest.fixture(scope="module")
def setup():
    ontology = seed_ontology()
    torch.manual_seed(0)
    node_ids = [c.id for c in ontology.concepts]
    knowledge = RegionKnowledge.from_ontology(ontology, node_ids, torch.randn(len(node_ids), NODE_DIM))
    enrichment = KnowledgeEnrichment(DIM, 2, node_dim=NODE_DIM).eval()
    heads = AlignmentHeads(DIM, DIM, NODE_DIM, 4, restrict_to_located=True).eval()
    regions, image = torch.randn(BATCH, len(REGION_IDS), DIM), torch.randn(BATCH, DIM)
    enriched = enrichment(regions, knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask)
    scored = heads(enriched["enriched"], image, knowledge.finding_embeddings(), located_mask=knowledge.located_mask)
    boxes = torch.rand(BATCH, len(REGION_IDS), 2) * 100
    boxes = torch.cat([boxes, boxes + 20], dim=-1)  # [B, R, 4] xyxy
    return ontology, knowledge, {**enriched, **scored}, boxes


def test_explain(setup):
    ontology, knowledge, outputs, boxes = setup
    presence = torch.ones(BATCH, len(REGION_IDS), dtype=torch.bool)
    preds = explain(outputs, knowledge, boxes, top_k=3, image_ids=["a", "b"], presence=presence, model="m")
    assert [p.image_id for p in preds] == ["a", "b"] and Explanation is Prediction
    for b, pred in enumerate(preds):
        assert pred.graph_version == ontology.content_hash() and pred.model == "m"
        assert len(pred.predictions) == knowledge.num_findings
        probs = [p.probability for p in pred.predictions]
        assert probs == sorted(probs, reverse=True) and all(0 < p < 1 for p in probs)
        for fp in pred.predictions:
            assert isinstance(fp, FindingPrediction) and fp.finding_id in ontology
            f = knowledge.finding_ids.index(fp.finding_id)
            torch.testing.assert_close(torch.tensor(fp.probability), outputs["image_logits"][b, f].sigmoid())
            # pooled only over regions holding the finding; none hold e.g. rib_fracture (LOCATED_IN ribs)
            expected = min(3, int(knowledge.located_mask[:, f].sum()))
            assert len(fp.top_regions) == expected
            weights = [w for _, w, _ in fp.top_regions]
            assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
            for region, weight, box in fp.top_regions:
                r = REGION_IDS.index(region)
                assert region in ontology and knowledge.located_mask[r, f]  # restricted pooling
                assert box == tuple(boxes[b, r].tolist())
                assert weight == pytest.approx(float(outputs["evidence_weights"][b, r, f].detach()))
            assert set(fp.per_region_nodes) == {region for region, _, _ in fp.top_regions}
            for region, nodes in fp.per_region_nodes.items():
                assert nodes and all(n in ontology for n, _ in nodes)
                assert set(n for n, _ in nodes) <= set(knowledge.region_keys(region))
        for region, nodes in pred.region_nodes.items():
            assert len(nodes) == min(5, len(knowledge.region_keys(region)))
            assert all(n in ontology for n, _ in nodes)


def test_min_probability_and_bad_arguments(setup):
    _, knowledge, outputs, boxes = setup
    assert all(len(p.predictions) == 0 for p in explain(outputs, knowledge, boxes, min_probability=1.1))
    with pytest.raises(ValueError, match="boxes_xyxy"):
        explain(outputs, knowledge, boxes[:, :3])
    with pytest.raises(ValueError, match="attention"):
        explain({k: v for k, v in outputs.items() if k != "attention"}, knowledge, boxes)
    with pytest.raises(ValueError, match="image ids"):
        explain(outputs, knowledge, boxes, image_ids=["only-one"])


def test_to_provenance(setup):
    ontology, knowledge, outputs, boxes = setup
    pred = explain(outputs, knowledge, boxes, image_ids=["img-1", "img-2"])[0]
    record = to_provenance(pred, "ab" * 32)
    assert isinstance(record, ProvenanceRecord)
    assert record.image_id == "img-1" and record.graph_version == ontology.content_hash()
    assert len(record.rois) == len(REGION_IDS) and len(record.predictions) == knowledge.num_findings
    rois = {roi.region: roi for roi in record.rois}
    for roi in record.rois:
        assert roi.anatomy_id == roi.region and roi.anatomy_id in ontology
        assert roi.attention and all(node in ontology for node, _ in roi.attention)
    for p in record.predictions:
        assert p.finding_id in ontology
        f = knowledge.finding_ids.index(p.finding_id)
        assert bool(p.evidence) == bool(knowledge.located_mask[:, f].any())
        assert all(region in rois for region, _ in p.evidence)
    # the record re-validates (its __post_init__ checks every cited region is an ROI)
    assert any(p.evidence for p in record.predictions)
    ProvenanceRecord(record.image_id, record.image_sha256, record.model, record.graph_version,
                     record.variant, record.rois, record.predictions)
