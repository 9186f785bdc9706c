"""PostProcess: the model's outputs -> ProvenanceRecords that cite real ROIs and real graph nodes."""

from __future__ import annotations

import pytest
import torch

from anatomy_vlm.alignment.enrichment import KnowledgeEnrichment
from anatomy_vlm.alignment.heads import AlignmentHeads
from anatomy_vlm.alignment.postprocess import PostProcess, image_identity
from anatomy_vlm.encoder.preprocess import Preprocess, PreprocessConfig
from anatomy_vlm.kg.provenance import PredictionRecord, ProvenanceRecord
from anatomy_vlm.knowledge import FixedEmbeddings, build_knowledge
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology

DIM, NODE_DIM, BATCH, SIZE = 8, 6, 2, 32
SHAPES = [(100, 80), (60, 120)]  # (H, W) of the two original images


@pytest.fixture(scope="module")
def setup():
    ontology = seed_ontology()
    torch.manual_seed(0)
    node_ids = [c.id for c in ontology.concepts]
    knowledge = build_knowledge(ontology, FixedEmbeddings(node_ids, torch.randn(len(node_ids), NODE_DIM)))
    enrichment = KnowledgeEnrichment(DIM, 2, node_dim=NODE_DIM).eval()
    heads = AlignmentHeads(DIM, DIM, NODE_DIM, 4, restrict_to_located=True).eval()
    regions, image = torch.randn(BATCH, len(REGION_IDS), DIM), torch.randn(BATCH, DIM)
    enriched = enrichment(regions, knowledge.node_embeddings, knowledge.key_index, knowledge.key_mask)
    scored = heads(enriched["enriched"], image, knowledge.finding_embeddings(), located_mask=knowledge.located_mask)
    corners = torch.rand(BATCH, len(REGION_IDS), 2) * 0.6
    boxes = torch.cat([corners, corners + 0.3], dim=-1)  # [B, R, 4] xyxy normalised on the model input
    outputs = {**enriched, **scored, "boxes_xyxy": boxes, "presence_logits": torch.randn(BATCH, len(REGION_IDS))}
    preprocess = Preprocess(PreprocessConfig(image_size=SIZE))
    images = [torch.rand(1, h, w) for h, w in SHAPES]
    geometries = [preprocess(img)[1] for img in images]
    identities = [image_identity(img) for img in images]
    return ontology, knowledge, outputs, preprocess, geometries, identities


def _records(setup, **kw) -> list[ProvenanceRecord]:
    _, knowledge, outputs, preprocess, geometries, identities = setup
    return PostProcess()(outputs, knowledge, geometries, identities, preprocess, **kw)


def test_records(setup):
    ontology, knowledge, outputs, _, _, identities = setup
    records = _records(setup, top_k=3, model="m")
    assert [r.image_id for r in records] == [image_id for image_id, _ in identities]
    assert all(r.image_id == f"img-{sha[:16]}" and r.image_sha256 == sha for r, (_, sha) in zip(records, identities))
    for b, record in enumerate(records):
        assert isinstance(record, ProvenanceRecord)
        assert record.graph_version == ontology.content_hash() and record.model == "m"
        assert record.run_id == f"m@{knowledge.variant}"
        assert (record.height, record.width) == SHAPES[b]
        assert len(record.predictions) == knowledge.num_findings
        ranked = record.ranked()
        probs = [p.score for p in ranked]
        assert probs == sorted(probs, reverse=True) and all(0 < p < 1 for p in probs)
        assert {p.finding_id for p in ranked} == set(knowledge.finding_ids)
        for fp in ranked:
            assert isinstance(fp, PredictionRecord) and fp.finding_id in ontology
            f = knowledge.finding_ids.index(fp.finding_id)
            torch.testing.assert_close(torch.tensor(fp.score), outputs["image_logits"][b, f].sigmoid())
            # pooled only over regions holding the finding; zero-weight regions are left out
            expected = min(3, int(knowledge.located_mask[:, f].sum()))
            assert len(fp.evidence) == expected
            weights = [w for _, w in fp.evidence]
            assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
            for region, weight in fp.evidence:
                r = REGION_IDS.index(region)
                assert region in ontology and knowledge.located_mask[r, f]  # restricted pooling
                assert weight == pytest.approx(float(outputs["evidence_weights"][b, r, f].detach()))
                record.roi(region)  # every cited region is an ROI of the record


def test_rois_boxes_in_original_pixels_and_top_nodes(setup):
    ontology, knowledge, outputs, _, _, _ = setup
    records = _records(setup)
    for b, record in enumerate(records):
        height, width = SHAPES[b]
        assert len(record.rois) == len(REGION_IDS)
        for r, region in enumerate(REGION_IDS):
            roi = record.roi(region)
            assert roi.anatomy_id == region and region in ontology
            # stretch preprocessing: normalised model-input xyxy -> original pixels, per axis
            expected = outputs["boxes_xyxy"][b, r] * torch.tensor([width, height, width, height])
            assert roi.box == pytest.approx(tuple(expected.tolist()), abs=1e-4)
            assert roi.score == pytest.approx(float(outputs["presence_logits"][b, r].sigmoid()))
            # the most attended nodes of the region (default top_nodes=5), strongest first, all keys of it
            keys = knowledge.region_keys(region)
            assert len(roi.attention) == min(5, len(keys))
            assert roi.attention and all(n in ontology for n, _ in roi.attention)
            assert {n for n, _ in roi.attention} <= set(keys)
            weights = [w for _, w in roi.attention]
            assert weights == sorted(weights, reverse=True)
            for node, weight in roi.attention:
                assert weight == pytest.approx(float(outputs["attention"][b, r, keys.index(node)].detach()))
            # the heaviest of all its keys comes first
            assert weights[0] == pytest.approx(float(outputs["attention"][b, r, : len(keys)].detach().max()))


def test_letterbox_boxes_in_original_pixels(setup):
    _, knowledge, outputs, _, _, identities = setup
    preprocess = Preprocess(PreprocessConfig(image_size=SIZE, keep_aspect=True))
    image = torch.rand(1, 64, 32)  # scaled by 0.5 to 32x16, padded 8 px left and right
    geometry = preprocess(image)[1]
    one = {k: (v[:1] if k not in ("key_index", "key_mask", "logit_scale", "logit_bias", "finding_embeddings") else v)
           for k, v in outputs.items()}
    record = PostProcess()(one, knowledge, [geometry], identities[:1], preprocess)[0]
    for r, region in enumerate(REGION_IDS):
        x1, y1, x2, y2 = (outputs["boxes_xyxy"][0, r] * SIZE).tolist()
        expected = [min(max((x1 - 8) * 2, 0), 32), y1 * 2, min(max((x2 - 8) * 2, 0), 32), y2 * 2]
        assert record.roi(region).box == pytest.approx(tuple(expected), abs=1e-4)
    assert (record.height, record.width) == (64, 32)


def test_top_k_and_top_nodes(setup):
    _, knowledge, _, _, _, _ = setup
    record = _records(setup, top_k=1, top_nodes=2)[0]
    for fp in record.predictions:
        f = knowledge.finding_ids.index(fp.finding_id)
        assert len(fp.evidence) == min(1, int(knowledge.located_mask[:, f].sum()))
    for roi in record.rois:
        assert len(roi.attention) == min(2, len(knowledge.region_keys(roi.region)))


def test_bad_arguments(setup):
    _, knowledge, outputs, preprocess, geometries, identities = setup
    post = PostProcess()
    with pytest.raises(ValueError, match="boxes_xyxy"):
        post({**outputs, "boxes_xyxy": outputs["boxes_xyxy"][:, :3]}, knowledge, geometries, identities, preprocess)
    with pytest.raises(ValueError, match="attention"):
        post({k: v for k, v in outputs.items() if k != "attention"}, knowledge, geometries, identities, preprocess)
    with pytest.raises(ValueError, match="identities"):
        post(outputs, knowledge, geometries, identities[:1], preprocess)
    with pytest.raises(ValueError, match="geometries"):
        post(outputs, knowledge, geometries[:1], identities, preprocess)
    with pytest.raises(ValueError, match="top_k"):
        post(outputs, knowledge, geometries, identities, preprocess, top_k=0)
    with pytest.raises(ValueError, match="evidence_weights"):
        post({**outputs, "evidence_weights": outputs["evidence_weights"][:, :3]}, knowledge, geometries, identities,
             preprocess)


def test_records_revalidate(setup):
    ontology, knowledge, _, _, _, _ = setup
    record = _records(setup)[0]
    rois = {roi.region for roi in record.rois}
    for p in record.predictions:
        assert p.finding_id in ontology
        f = knowledge.finding_ids.index(p.finding_id)
        assert bool(p.evidence) == bool(knowledge.located_mask[:, f].any())
        assert all(region in rois for region, _ in p.evidence)
    # the record re-validates (its __post_init__ checks every cited region is an ROI)
    assert any(p.evidence for p in record.predictions)
    ProvenanceRecord(record.image_id, record.image_sha256, record.model, record.graph_version,
                     record.variant, record.rois, record.predictions)
