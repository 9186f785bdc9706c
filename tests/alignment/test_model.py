"""AnatomyVLM assembled by build_model: output dict, gradients, batch invariance, enrichment switch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anatomy_vlm.alignment.config import ModelConfig
from anatomy_vlm.alignment.enrichment import EnrichmentConfig
from anatomy_vlm.alignment.factory import build_model
from anatomy_vlm.alignment.losses import AlignmentLossConfig, build_criterion
from anatomy_vlm.encoder.configs import RegionFeatureConfig
from anatomy_vlm.knowledge import FixedEmbeddings, RegionKnowledge, build_knowledge
from anatomy_vlm.knowledge.text_encoder import HashingTextEncoder, concept_text
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology
from anatomy_vlm.training.config import RunConfig, load_config

TINY_YAML = Path(__file__).resolve().parents[2] / "training" / "configs" / "tiny.yaml"
NODE_DIM = 32


def make_knowledge(ontology=None, dim: int = NODE_DIM) -> RegionKnowledge:
    """Node embeddings = hashing-text embeddings of each concept's text (no weights needed)."""
    ontology = ontology if ontology is not None else seed_ontology()
    node_ids = [c.id for c in ontology.concepts]
    embeddings = HashingTextEncoder(dim=dim).encode([concept_text(c) for c in ontology.concepts])
    return build_knowledge(ontology, FixedEmbeddings(node_ids, embeddings))


@pytest.fixture(scope="module")
def knowledge():
    return make_knowledge()


@pytest.fixture(scope="module")
def config():
    return load_config(TINY_YAML)


def _model(config, knowledge, seed=0):
    torch.manual_seed(seed)
    return build_model(config.model, config.preprocess, knowledge)


def test_forward_keys_shapes_and_finite_grads(config, knowledge):
    model = _model(config, knowledge).train()
    images = torch.rand(2, 1, 64, 64)
    out = model(images, knowledge)
    b, r, f = 2, len(REGION_IDS), knowledge.num_findings
    k = knowledge.key_index.shape[1]
    e = config.model.heads.embed_dim
    assert out["boxes"].shape == (b, r, 4) and out["boxes_xyxy"].shape == (b, r, 4)
    assert out["presence_logits"].shape == (b, r)
    assert out["region_embeddings"].shape == (b, r, e) and out["image_embedding"].shape == (b, e)
    assert out["finding_embeddings"].shape == (f, e)
    assert out["region_logits"].shape == (b, r, f) and out["image_logits"].shape == (b, f)
    assert out["evidence_weights"].shape == (b, r, f)
    assert out["attention"].shape == (b, r, k) and out["key_index"].shape == (r, k)
    assert out["logit_scale"].shape == () and out["logit_bias"].shape == ()
    assert len(out["aux_outputs"]) == model.decoder.config.depth - 1
    assert float(out["boxes_xyxy"].detach().min()) >= 0 and float(out["boxes_xyxy"].detach().max()) <= 1

    targets = {
        "boxes": torch.tensor([0.5, 0.5, 0.2, 0.2]).expand(b, r, 4),
        "box_present": torch.ones(b, r, dtype=torch.bool),
        "image_labels": torch.randint(0, 2, (b, f)).float(),
        "region_labels": torch.randint(0, 2, (b, r, f)).float(),
    }
    losses = build_criterion(AlignmentLossConfig(stage=3))(out, targets)
    losses["total_loss"].backward()
    # Every parameter learns at stage 3, the evidence pooling and the CLS mix too (pooled_loss).
    assert "pooled_loss" in losses
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for part in (model.backbone, model.decoder, model.region_feature, model.enrichment, model.heads):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_batch_equals_single_in_eval(config, knowledge):
    model = _model(config, knowledge).eval()
    images = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        batched = model(images, knowledge)
        for i in range(3):
            single = model(images[i : i + 1], knowledge)
            for key in ("boxes", "presence_logits", "region_logits", "image_logits", "evidence_weights", "attention"):
                torch.testing.assert_close(single[key][0], batched[key][i], atol=1e-5, rtol=1e-4)


def test_enrich_off_changes_region_outputs(config, knowledge):
    model = _model(config, knowledge).eval()
    images = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        on, off = model(images, knowledge), model(images, knowledge, enrich=False)
    torch.testing.assert_close(on["boxes"], off["boxes"])  # detection does not see the graph
    assert not torch.allclose(on["region_embeddings"], off["region_embeddings"], atol=1e-4)
    assert not torch.allclose(on["region_logits"], off["region_logits"], atol=1e-4)
    assert off["attention"].abs().sum() == 0 and on["attention"].sum() > 0


def test_region_init_from_knowledge(config, knowledge):
    model = _model(config, knowledge)
    rows = [knowledge.node_ids.index(r) for r in REGION_IDS]
    torch.testing.assert_close(model.decoder.region_init, knowledge.node_embeddings[rows].float())


def test_bad_arguments(config, knowledge):
    model = _model(config, knowledge)
    with pytest.raises(ValueError):
        model(torch.rand(1, 1, 64, 64), make_knowledge(dim=NODE_DIM + 8))  # wrong node width
    with pytest.raises(ValueError):
        model(torch.rand(1, 1, 64, 64), "not knowledge")
    with pytest.raises(ValueError):
        build_model(config.model, config.preprocess)  # no knowledge and no node_dim
    with pytest.raises(ValueError):
        ModelConfig(region=RegionFeatureConfig(out_dim=30), enrichment=EnrichmentConfig(heads=4))
    with pytest.raises(ValueError):
        RunConfig.from_dict({"model": {"no_such_field": 1}})
    with pytest.raises(ValueError):
        RunConfig.from_dict({"train": {"steps_per_stage": [1, 2]}})
