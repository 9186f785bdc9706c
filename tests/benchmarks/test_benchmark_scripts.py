"""The benchmark scripts run end to end at tiny sizes (as subprocesses, the way they are used), and
their report helpers keep the other sections of docs/benchmarks.md intact."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
DOCS = REPO / "docs" / "benchmarks.md"


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=240, env={**os.environ, **(env or {})})


def _docs_text() -> str | None:
    return DOCS.read_text() if DOCS.exists() else None


def _load(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # gpu_train imports its helpers from the inference script
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_inference_prints_ratio_and_enrichment_share():
    before = _docs_text()
    result = _run("inference.py", "--batch", "2", "--size", "64", "--repeats", "1", "--warmup", "1",
                  "--preset", "tiny", "--min-repeat-s", "0", "--threads", "1", "--no-write")
    assert result.returncode == 0, result.stderr
    ratio = re.search(r"tiny: pipeline ([\d.]+) images/s, DenseNet-121 ([\d.]+) images/s, ratio ([\d.]+)", result.stdout)
    assert ratio, result.stdout
    pipeline, densenet, reported = (float(g) for g in ratio.groups())
    assert pipeline > 0 and densenet > 0
    assert reported == pytest.approx(pipeline / densenet, rel=0.01, abs=0.002)
    share = re.search(r"tiny: enrichment share ([\d.]+)% \(hooks\), (-?[\d.]+)% \(on - off\)", result.stdout)
    assert share, result.stdout
    assert 0.0 < float(share.group(1)) < 100.0  # a part of the pipeline's time, never all of it
    assert _docs_text() == before  # --no-write leaves the docs alone


@pytest.mark.slow
def test_gpu_train_without_cuda_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "benchmarks.md"
    result = _run("gpu_train.py", "--out", str(out), env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CUDA" in result.stderr and "--cpu-smoke" in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_gpu_train_cpu_smoke_counts_flops_and_writes_nothing(tmp_path):
    out = tmp_path / "benchmarks.md"
    result = _run("gpu_train.py", "--cpu-smoke", "--out", str(out), env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    flops = [float(v) for v in re.findall(r"FLOPs per step ([\d.e+]+)", result.stdout)]
    assert len(flops) == 2 and all(f > 0 for f in flops), result.stdout
    losses = [float(v) for v in re.findall(r"loss (-?[\d.]+)", result.stdout)]
    assert len(losses) == 2 and all(0 < v < 1e6 for v in losses)  # finite losses from the real criterion
    assert not out.exists()


def test_write_section_replaces_only_its_own_section(tmp_path, monkeypatch):
    inference = _load("inference", monkeypatch)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n\n## A (a.py)\n\nold a\n\n## B (b.py)\n\nkeep b\n")
    inference.write_section(doc, "## A (a.py)", "## A (a.py)\n\nnew a\n")
    assert doc.read_text() == "# Benchmarks\n\nintro\n\n## A (a.py)\n\nnew a\n\n## B (b.py)\n\nkeep b\n"
    inference.write_section(doc, "## C (c.py)", "## C (c.py)\n\nc\n")  # absent: appended
    inference.write_section(doc, "## B (b.py)", "## B (b.py)\n\nnew b\n")  # the last section
    assert doc.read_text() == ("# Benchmarks\n\nintro\n\n## A (a.py)\n\nnew a\n\n## B (b.py)\n\nnew b\n\n"
                               "## C (c.py)\n\nc\n")


def test_model_config_sizes_and_rejects_bad_arguments(monkeypatch):
    inference = _load("inference", monkeypatch)
    tiny_config, small_config = inference.model_config("tiny", 224), inference.model_config("small", 224)
    tiny, small = tiny_config.model.vit, small_config.model.vit
    assert (tiny.width, tiny.image_hw, tiny.patch_size) == (192, (224, 224), 16)
    assert (small.width, small.depth, small.image_hw) == (384, 12, (224, 224))
    assert tiny_config.preprocess.image_size == small_config.preprocess.image_size == 224  # the model's input
    with pytest.raises(ValueError, match="preset"):
        inference.model_config("huge", 224)
    with pytest.raises(ValueError, match="multiple"):
        inference.model_config("tiny", 100)


def test_peak_table_matches_device_names(monkeypatch):
    gpu_train = _load("gpu_train", monkeypatch)
    assert gpu_train.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu_train.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu_train.peak_tflops("NVIDIA H200") == 989.0
    assert gpu_train.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert gpu_train.peak_tflops("NVIDIA L4") == 121.0
    assert gpu_train.peak_tflops("NVIDIA L40S") == 362.0  # not L4's
    assert gpu_train.peak_tflops("Tesla T4") is None
