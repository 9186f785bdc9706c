"""The whole run on tiny phantoms: knowledge from the graph, training, evaluation, prediction,
provenance that resolves in the real graph stores, a new node scored, the variant study, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anatomy_vlm.alignment.checkpoint import load_checkpoint
from anatomy_vlm.alignment.postprocess import image_identity
from anatomy_vlm.alignment.predictor import Predictor
from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
from anatomy_vlm.datasets.phantom.findings import FINDING_IDS
from anatomy_vlm.encoder.io import read_image
from anatomy_vlm.kg.provenance import ProvenanceRecord
from anatomy_vlm.knowledge import KnowledgeConfig, KnowledgeEmbedder
from anatomy_vlm.knowledge.cache import EmbeddingCache
from anatomy_vlm.ontology.json_io import save_json
from anatomy_vlm.ontology.model import Concept, ConceptKind, Relation, RelationType
from anatomy_vlm.ontology.seed import REGION_IDS, seed_ontology
from anatomy_vlm.training.config import RunConfig
from anatomy_vlm.training.run import run
from anatomy_vlm.training.study import STUDY_ARMS, arm_config, study_table, variant_study

NEW_FINDING = "tracheal_foreign_body"
pytestmark = pytest.mark.timeout(1200)  # the module fixture trains a model; on a loaded 2-core machine that can take minutes


def tiny_config(root: Path, **train) -> dict:
    return {
        "model": {"vit": {"preset": "tiny", "patch_size": 16, "depth": 2}, "decoder": {"preset": "tiny", "depth": 1},
                  "region": {"out_dim": 64}, "heads": {"embed_dim": 32}},
        "preprocess": {"image_size": 64},
        "knowledge": {"text_encoder": "hashing", "hashing_dim": 64, "hidden": 32, "out_dim": 32,
                      "pretrain_epochs": 5, "cache_dir": str(root / "cache")},
        "train": {"data_root": str(root / "data"), "batch_size": 4, "steps_per_stage": [24, 4, 8],
                  "lr": 1e-3, "device": "cpu", "progress": False, "out_dir": str(root / "run"),
                  "ontology": str(root / "seed.json"), "holdout_findings": ["lung_nodule"],
                  "phantom_counts": {"train": 8, "val": 0, "test": 6}, **train},
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    save_json(seed_ontology(), root / "seed.json")
    config = RunConfig.from_dict(tiny_config(root))
    return config, run(config)


def grown(ontology):
    """The ontology with a finding it has never had, located at the carina."""
    return ontology.with_changes(
        concepts=[*ontology.concepts, Concept(NEW_FINDING, ConceptKind.FINDING, "foreign body at the carina",
                                              definition="An aspirated object lodged at the carina.", source="test")],
        relations=[*ontology.relations, Relation(RelationType.LOCATED_IN, NEW_FINDING, "carina", "test")],
    ).validate()


def test_run_writes_every_artefact(tiny_run):
    config, result = tiny_run
    out = Path(config.train.out_dir)
    for name in ("metrics.csv", "curve.png", "checkpoint.pt", "evaluation.json", "eval_detection.csv",
                 "eval_classification.csv", "eval_region.csv", "eval_zero_shot.csv"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "evaluation.json").read_text())
    for key in ("map50", "miou", "auc", "bmac", "f1", "ece", "region_auc", "zero_shot_auc"):
        assert key in summary
    assert 0.0 <= summary["map50"] <= 1.0 and 0.0 <= summary["ece"] <= 1.0
    # the held-out finding is reported as zero-shot only, the others as trained findings
    evaluation = result.evaluation
    assert [c.name for c in evaluation.zero_shot.classes] == ["lung_nodule"]
    assert "lung_nodule" not in {c.name for c in evaluation.classification.classes}
    assert {c.name for c in evaluation.classification.classes} >= set(FINDING_IDS) - {"lung_nodule"}
    assert len(evaluation.detection.regions) == len(REGION_IDS)


def test_losses_fall(tiny_run):
    _, result = tiny_run
    stage1 = [h["total_loss"] for h in result.train.history if h["stage"] == 1]
    assert sum(stage1[-4:]) / 4 < sum(stage1[:4]) / 4


def test_holdout_labels_never_reach_the_loss(tiny_run):
    from anatomy_vlm.datasets.collate import collate_samples
    from anatomy_vlm.training.trainer import build_targets

    config, result = tiny_run
    dataset = PhantomDataset(Path(config.train.data_root) / "train")
    knowledge = Predictor.from_checkpoint(result.train.checkpoint, device="cpu").knowledge
    batch = collate_samples([dataset[i] for i in range(4)], knowledge.finding_ids, knowledge.region_ids)
    column = knowledge.finding_ids.index("lung_nodule")
    assert not torch.isnan(batch.image_labels[:, column]).all()  # the batch has the labels; the targets drop them
    targets = build_targets(batch, [column])
    assert torch.isnan(targets["image_labels"][:, column]).all()
    assert torch.isnan(targets["region_labels"][:, :, column]).all()
    assert not torch.isnan(targets["image_labels"][:, knowledge.finding_ids.index("cardiomegaly")]).any()


def test_checkpoint_rebuilds_the_same_knowledge(tiny_run):
    config, result = tiny_run
    checkpoint = load_checkpoint(result.train.checkpoint)
    assert checkpoint.graph_version == checkpoint.ontology.content_hash()
    assert checkpoint.holdout_findings == ["lung_nodule"] and checkpoint.run["holdout_findings"] == ["lung_nodule"]
    predictor = Predictor.from_checkpoint(result.train.checkpoint, device="cpu")
    dataset = PhantomDataset(Path(config.train.data_root) / "test")
    image = dataset[0].image
    direct = result.train.model.cpu()(image[None], predictor.knowledge)["image_logits"]
    again, _ = predictor.outputs([image])
    assert torch.allclose(direct, again["image_logits"], atol=1e-5)


def test_embedder_cache_and_state(tmp_path):
    ontology = seed_ontology()
    config = KnowledgeConfig(text_encoder="hashing", hashing_dim=64, hidden=32, out_dim=32, pretrain_epochs=3,
                             cache_dir=str(tmp_path))
    embedder = KnowledgeEmbedder.fit(ontology, config)
    cache = EmbeddingCache(tmp_path)
    ids, table = embedder.embed(ontology, cache)
    assert table.shape == (len(ontology.concepts), 32 + 64) and sorted(ids) == sorted(c.id for c in ontology.concepts)
    assert cache.versions() == [ontology.content_hash()]
    ids_again, cached = embedder.embed(ontology, cache)
    assert ids_again == ids and torch.equal(cached, table)
    rebuilt = KnowledgeEmbedder.from_state(embedder.state())
    assert torch.allclose(rebuilt.embed(ontology)[1], table, atol=1e-6)
    assert rebuilt.fingerprint == embedder.fingerprint
    # a graph with one more node is a new version: a miss, and the new node gets a row
    bigger = grown(ontology)
    ids_big, table_big = embedder.embed(bigger, cache)
    assert NEW_FINDING in ids_big and table_big.shape[0] == table.shape[0] + 1
    assert len(cache.versions()) == 2


def test_embedder_refuses_a_node_type_it_never_saw():
    ontology = seed_ontology()
    anatomy_only = ontology.with_changes(
        concepts=[c for c in ontology.concepts if c.kind is ConceptKind.ANATOMY],
        relations=[r for r in ontology.relations if r.type is RelationType.PART_OF],
    )
    embedder = KnowledgeEmbedder.fit(anatomy_only, KnowledgeConfig(text_encoder="hashing", pretrain_epochs=0,
                                                                   cache_dir=""))
    with pytest.raises(ValueError, match="node type"):
        embedder.embed(ontology)


def test_predictor_boxes_are_in_image_pixels(tiny_run):
    config, result = tiny_run
    predictor = Predictor.from_checkpoint(result.train.checkpoint, device="cpu")
    big = torch.nn.functional.interpolate(PhantomDataset(Path(config.train.data_root) / "test")[0].image[None],
                                          size=(128, 96), mode="bilinear")[0]
    record = predictor.predict([big])[0]
    assert record.image_id == image_identity(big)[0] and (record.height, record.width) == (128, 96)
    assert {roi.region for roi in record.rois} == set(REGION_IDS)
    boxes = torch.tensor([roi.box for roi in record.rois])
    assert float(boxes[:, [0, 2]].max()) <= 96 + 1e-3 and float(boxes[:, [1, 3]].max()) <= 128 + 1e-3
    with pytest.raises(ValueError, match=r"\[1, H, W\]"):
        predictor.predict([torch.zeros(3, 64, 64)])


@pytest.mark.slow
def test_explanation_ids_resolve_in_the_graph_and_a_new_node_is_scored(tiny_run, store):
    """The graph store's variant is the knowledge: provenance written through it resolves there,
    and a finding added to the graph (no retraining) is scored by the same checkpoint."""
    config, result = tiny_run
    ontology = load_checkpoint(result.train.checkpoint).ontology
    store.sync(ontology)
    predictor = Predictor.from_checkpoint(result.train.checkpoint, source=store, device="cpu")
    assert predictor.knowledge.graph_version == ontology.content_hash()
    image = PhantomDataset(Path(config.train.data_root) / "test")[0].image
    record = predictor.predict([image])[0]
    assert isinstance(record, ProvenanceRecord) and (record.image_id, record.image_sha256) == image_identity(image)
    store.write_provenance(record)
    top = record.ranked()[0]
    rows = store.explain(record.prediction_id(top.finding_id)).rows
    assert rows and {r["finding"] for r in rows} == {top.finding_id}
    cited = {r["anatomy"] for r in rows if r["anatomy"]} | {r["attended"] for r in rows if r["attended"]}
    assert cited, "the explanation names no graph node"
    found = store.run_read_query("MATCH (c:Concept) WHERE c.id IN $ids RETURN collect(DISTINCT c.id) AS ids",
                                 {"ids": sorted(cited)}).rows[0]["ids"]
    assert set(found) == cited  # every id the explanation cites is a node of the graph

    store.sync(grown(ontology))  # a curator adds a finding; the model is not retrained
    fresh = Predictor.from_checkpoint(result.train.checkpoint, source=store, device="cpu")
    assert NEW_FINDING in fresh.knowledge.finding_ids and NEW_FINDING not in fresh.trained_finding_ids
    scored = {p.finding_id: p.score for p in fresh.predict([image])[0].predictions}
    assert 0.0 < scored[NEW_FINDING] < 1.0
    assert NEW_FINDING in fresh.knowledge.region_keys("carina")


def test_variant_study_table(tmp_path):
    save_json(seed_ontology(), tmp_path / "seed.json")
    config = RunConfig.from_dict(tiny_config(tmp_path, steps_per_stage=[2, 1, 1]))
    assert arm_config(config, "enrichment-off").model.enrich is False
    assert arm_config(config, "shuffled").train.variant_recipe.startswith("shuffle-located-in")
    with pytest.raises(ValueError, match="unknown study arm"):
        arm_config(config, "nope")
    rows = variant_study(config, arms=("canonical", "shuffled"))
    assert [r["arm"] for r in rows] == ["canonical", "shuffled"]
    table = (tmp_path / "run" / "study.md").read_text()
    assert table == study_table(rows) and "| canonical |" in table and "zero_shot_auc" in table
    shuffled = load_checkpoint(tmp_path / "run" / "shuffled" / "checkpoint.pt")
    canonical = load_checkpoint(tmp_path / "run" / "canonical" / "checkpoint.pt")
    assert shuffled.variant == "shuffled" and shuffled.graph_version != canonical.graph_version
    assert set(STUDY_ARMS) == {"canonical", "enrichment-off", "shuffled"}


@pytest.mark.slow
def test_torchrun_ddp_two_cpu_processes(tmp_path):
    """Two ranks on CPU (gloo): both train, only rank 0 writes the checkpoint."""
    save_json(seed_ontology(), tmp_path / "seed.json")
    config = tiny_config(tmp_path, steps_per_stage=[2, 1, 1], phantom_counts={"train": 8, "val": 0, "test": 0})
    from anatomy_vlm.training.data import prepare_phantoms

    prepare_phantoms(tmp_path / "data", 64, config["train"]["phantom_counts"], progress=False)
    import yaml

    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "anatomy_vlm", "train", str(tmp_path / "ddp.yaml"), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert checkpoint.step == 4
    assert checkpoint.run["steps_per_stage"] == [2, 1, 1]


# -- the model's CLI commands, on the same tiny run -------------------------------------------
def _cli(*args: str) -> str:
    from typer.testing import CliRunner

    from anatomy_vlm.cli import app

    runner = CliRunner(env={name: None for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")})
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_evaluate_and_predict(tiny_run, tmp_path):
    config, result = tiny_run
    test_dir = Path(config.train.data_root) / "test"
    out = _cli("evaluate", str(result.train.checkpoint), str(test_dir), "--out-dir", str(tmp_path / "eval"),
               "--device", "cpu")
    assert "map50" in out and "zero_shot_auc" in out
    written = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert written["n_images"] == len(PhantomDataset(test_dir))
    image = test_dir / "images" / "phantom_2000000_000000.png"
    image_id = image_identity(read_image(image).image)[0]
    predicted = _cli("predict", str(result.train.checkpoint), str(image), "--json", "--overlay-dir", str(tmp_path))
    # the ProvenanceRecord as JSON: its image id, the ROIs with their boxes, the findings
    assert '"finding_id"' in predicted and '"rois"' in predicted and '"box"' in predicted and image_id in predicted
    overlay = tmp_path / f"{image_id}.png"  # overlays are named by image id
    from PIL import Image

    with Image.open(overlay) as picture:
        assert picture.size[0] >= 512 and len(picture.convert("RGB").getcolors(maxcolors=1 << 20)) > 10  # boxes drawn in colour


@pytest.mark.slow
def test_cli_predict_persist_explain(tiny_run, store, graph_args, tmp_path):
    config, result = tiny_run
    store.sync(load_checkpoint(result.train.checkpoint).ontology)
    image = Path(config.train.data_root) / "test" / "images" / "phantom_2000000_000000.png"
    image_id = image_identity(read_image(image).image)[0]
    out = _cli("predict", str(result.train.checkpoint), str(image), "--explain", "--explanation-dir", str(tmp_path),
               *graph_args)
    assert "MATCH (p:Prediction {id: $prediction_id})" in out and "evidence_weight" in out and "attended node" in out
    top = store.run_read_query("MATCH (p:Prediction) RETURN p.id AS id ORDER BY p.score DESC, p.id LIMIT 1").rows
    prediction_id = top[0]["id"]
    assert store.explain(prediction_id).rows
    assert prediction_id.startswith(f"{image_id}/")
    assert (tmp_path / f"{image_id}_explanation.png").stat().st_size > 5000
    again = _cli("explain", prediction_id, "--json", *graph_args)
    assert prediction_id in again
