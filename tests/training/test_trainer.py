"""Three-stage training of the tiny aligner on phantoms (CPU), checkpoints, explanations, zero-shot."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from anatomy_vlm.alignment.checkpoint import load_checkpoint
from anatomy_vlm.alignment.postprocess import PostProcess, image_identity
from anatomy_vlm.datasets.collate import collate_samples
from anatomy_vlm.datasets.phantom.generate import generate_phantoms
from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
from anatomy_vlm.encoder.box_ops import denormalize_boxes
from anatomy_vlm.encoder.preprocess import Preprocess
from anatomy_vlm.knowledge import FixedEmbeddings, RegionKnowledge, build_knowledge
from anatomy_vlm.knowledge.text_encoder import HashingTextEncoder, concept_text
from anatomy_vlm.ontology.model import Concept, ConceptKind, Relation, RelationType
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology
from anatomy_vlm.training.config import load_config
from anatomy_vlm.training.trainer import build_targets, train

TINY_YAML = Path(__file__).resolve().parents[2] / "training" / "configs" / "tiny.yaml"
NODE_DIM = 32
STEPS = (30, 4, 4)
pytestmark = pytest.mark.timeout(1200)  # the module fixture trains a model; on a loaded 2-core machine that can take minutes


def make_knowledge(ontology) -> RegionKnowledge:
    node_ids = [c.id for c in ontology.concepts]
    embeddings = HashingTextEncoder(dim=NODE_DIM).encode([concept_text(c) for c in ontology.concepts])
    return build_knowledge(ontology, FixedEmbeddings(node_ids, embeddings))


def postprocess(out, knowledge, images, config, **kw):
    """The records of a batch of model-size images, through the run's preprocessing geometry."""
    preprocess = Preprocess(config.preprocess)
    geometries = [preprocess(image)[1] for image in images]
    return PostProcess()(out, knowledge, geometries, [image_identity(image) for image in images], preprocess, **kw)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    generate_phantoms(4, root, seed=0, size=64, progress=False)
    dataset = PhantomDataset(root)
    ontology = seed_ontology()
    knowledge = make_knowledge(ontology)
    config = load_config(TINY_YAML, data_root=str(root), out_dir=str(tmp_path_factory.mktemp("run")),
                         steps_per_stage=STEPS, lr=1e-3, device="cpu", progress=False)
    result = train(config, knowledge, dataset, val_dataset=dataset)
    return ontology, knowledge, dataset, config, result


def test_targets_from_batch(run):
    _, knowledge, dataset, _, _ = run
    samples = [dataset[i] for i in range(len(dataset))]
    batch = collate_samples(samples, knowledge.finding_ids, knowledge.region_ids)
    targets = build_targets(batch)
    b, r, f = len(samples), len(REGION_IDS), knowledge.num_findings
    assert targets["boxes"].shape == (b, r, 4) and targets["region_labels"].shape == (b, r, f)
    assert targets["image_labels"].shape == (b, f)
    present = targets["box_present"]
    assert float(targets["boxes"][present].min()) >= 0 and float(targets["boxes"][present].max()) <= 1
    known = ~torch.isnan(targets["region_labels"])
    assert known.any() and torch.isnan(targets["region_labels"]).any()  # labels mapped; the rest unknown
    # every known region label comes from the sample, in knowledge.finding_ids order
    for bi, sample in enumerate(samples):
        for region, labels in sample.region_labels.items():
            for finding, value in labels.items():
                if finding in knowledge.finding_ids:
                    got = targets["region_labels"][bi, REGION_IDS.index(region), knowledge.finding_ids.index(finding)]
                    assert float(got) == value


def test_stage1_loss_falls_and_outputs_written(run):
    _, _, _, config, result = run
    stage1 = [h["total_loss"] for h in result.history if h["stage"] == 1]
    assert len(stage1) == STEPS[0]
    first, last = sum(stage1[:5]) / 5, sum(stage1[-5:]) / 5
    assert last < first, (first, last)
    stages = [h["stage"] for h in result.history]
    assert stages.count(2) == STEPS[1] and stages.count(3) == STEPS[2]
    assert "global_loss" in result.history[STEPS[0]] and "fine_loss" in result.history[-1]
    assert [v["stage"] for v in result.val_history] == [1, 2, 3]
    with result.metrics_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(STEPS) + 3 and "total_loss" in rows[0] and "box_l1_loss" in rows[0]
    assert result.curve_png.stat().st_size > 0 and result.curve_png.read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_round_trip(run):
    ontology, knowledge, dataset, _, result = run
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.graph_version == ontology.content_hash() == knowledge.graph_version
    assert loaded.finding_ids == list(knowledge.finding_ids) and loaded.variant == knowledge.variant
    assert loaded.step == sum(STEPS) and loaded.run["steps_per_stage"] == list(STEPS)
    images = collate_samples([dataset[i] for i in range(2)]).images
    with torch.no_grad():
        a, b = result.model.cpu()(images, knowledge), loaded.model(images, knowledge)
    for key in ("boxes", "image_logits", "region_logits", "attention"):
        torch.testing.assert_close(a[key], b[key])


def test_explain_cites_ontology_ids(run):
    ontology, knowledge, dataset, config, result = run
    images = collate_samples([dataset[i] for i in range(2)]).images
    with torch.no_grad():
        out = result.model.cpu()(images, knowledge)
    boxes = denormalize_boxes(out["boxes_xyxy"], tuple(images.shape[-2:]))
    records = postprocess(out, knowledge, images, config, top_k=2)
    assert len(records) == 2
    for b, record in enumerate(records):
        assert record.graph_version == ontology.content_hash()
        assert {p.finding_id for p in record.predictions} == set(knowledge.finding_ids)
        for p in record.predictions:
            assert p.finding_id in ontology and p.evidence and len(p.evidence) <= 2
            for region, _ in p.evidence:
                assert region in ontology
        for roi in record.rois:
            assert roi.region in ontology and all(node in ontology for node, _ in roi.attention)
            r = REGION_IDS.index(roi.region)
            assert roi.box == pytest.approx(tuple(boxes[b, r].tolist()), abs=1e-4)  # model input = image size
        assert any(roi.attention for roi in record.rois)


def test_new_finding_scored_without_retraining(run):
    ontology, knowledge, dataset, config, result = run
    new_id = "tracheal_foreign_body"
    grown = ontology.with_changes(
        concepts=[*ontology.concepts, Concept(new_id, ConceptKind.FINDING, "foreign body at the carina",
                                              definition="An aspirated object lodged at the carina.", source="test")],
        relations=[*ontology.relations, Relation(RelationType.LOCATED_IN, new_id, "carina", "test")],
    ).validate()
    grown_knowledge = make_knowledge(grown)
    loaded = load_checkpoint(result.checkpoint)
    assert new_id not in loaded.finding_ids and new_id in grown_knowledge.finding_ids
    images = collate_samples([dataset[0]]).images
    with torch.no_grad():
        out = loaded.model(images, grown_knowledge)
    f = grown_knowledge.finding_ids.index(new_id)
    assert out["image_logits"].shape == (1, knowledge.num_findings + 1)
    assert torch.isfinite(out["image_logits"]).all()
    carina = REGION_IDS.index("carina")
    assert new_id in grown_knowledge.region_keys(carina)  # the new node is a key the carina attends to
    records = postprocess(out, grown_knowledge, images, config)
    assert new_id in {p.finding_id for p in records[0].predictions}


def test_train_rejects_bad_arguments(run):
    _, knowledge, dataset, config, _ = run
    with pytest.raises(ValueError):
        train({"model": {}}, knowledge, dataset)
    with pytest.raises(ValueError, match="holdout_findings"):
        train(replace(config, train=replace(config.train, holdout_findings=("no_such_finding",),
                                            steps_per_stage=(1, 0, 0))), knowledge, dataset)
    with pytest.raises(ValueError, match="empty"):
        train(replace(config, train=replace(config.train, steps_per_stage=(1, 0, 0))), knowledge, [])


def test_train_brings_any_image_size_to_the_model_input(run, tmp_path):
    """Images of another size than the model input (64 px phantoms, a 96 px model) are resized by the
    run's Preprocess at collate time, the same transform prediction uses (no longer an error)."""
    _, knowledge, dataset, config, _ = run
    config = replace(config, preprocess=replace(config.preprocess, image_size=96),
                     train=replace(config.train, steps_per_stage=(1, 0, 0), out_dir=str(tmp_path)))
    result = train(config, knowledge, dataset)
    assert len(result.history) == 1 and load_checkpoint(result.checkpoint).config.preprocess.image_size == 96
