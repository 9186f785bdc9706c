#!/usr/bin/env python3
"""CPU inference throughput of the whole aligner against torchxrayvision's DenseNet-121, and the
knowledge enrichment's share of the pipeline time.

```sh
.venv/bin/python benchmarks/inference.py [--batch 16 --size 224 --repeats 7 --warmup 2 \
                                          --preset tiny,small --out docs/benchmarks.md | --no-write]
.venv/bin/python benchmarks/inference.py --batch 2 --size 64 --repeats 1 --no-write   # quick check
```

What it measures (CPU, ``torch.no_grad()``, eval mode, ``torch.set_num_threads(os.cpu_count())``):

- **pipeline**, per ``--preset``: ``AnatomyVLM.forward(images, knowledge)`` on a ``[batch, 1, size,
  size]`` batch: ViT trunk, anatomy decoder (29 region queries, boxes), region features (RoI-align +
  context), knowledge enrichment (cross-attention over each region's graph neighbourhood) and the
  alignment heads' scores against every Finding/Disease node. Nothing is written to a database.
- **pipeline, enrichment off**: the same model with ``enrich=False`` (the heads score the region
  features as they are).
- **DenseNet-121**: ``torchxrayvision.models.DenseNet(weights=None)`` (random weights, so nothing is
  downloaded; the weights do not change its speed) on the same images mapped to its
  ``[-1024, 1024]`` convention (``xrv.utils.normalize``); its pretrained weights expect 224 px.

The arms are interleaved: each repeat runs every arm once, in a rotated order (a preset's on/off
arms back to back), after ``--warmup`` untimed rounds. An arm that takes under ``--min-repeat-s`` per batch runs several batches per
repeat. images/s is the median over repeats. The enrichment share is measured two ways: forward
hooks on the model's five parts time ``model.enrichment`` inside the enrichment-on arm (its share of
that arm's time, median over repeats), and ``1 - t(off) / t(on)`` per repeat (median over repeats).
GFLOPs per image are counted once with ``torch.utils.flop_counter.FlopCounterMode`` (batch 1).

Unless ``--no-write``, the results replace the section
"## Inference throughput (benchmarks/inference.py)" of ``--out`` (or are appended to it); the
other sections are left as they are. ``gpu_train.py`` imports the helpers marked as shared below.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from report import (  # noqa: E402 (benchmarks/ is on sys.path)
    machine, markdown_table, package_version, print_table, utc_now, write_section,
)

from anatomy_vlm.alignment.config import AlignerConfig, ModelConfig
from anatomy_vlm.alignment.factory import build_model
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.encoder.configs import AnatomyDecoderConfig, ViTConfig
from anatomy_vlm.knowledge import FixedEmbeddings, RegionKnowledge
from anatomy_vlm.knowledge import build_knowledge as build_region_knowledge
from anatomy_vlm.ontology.build import BUILT_OWL_PATH
from anatomy_vlm.ontology.owl import load_owl
from anatomy_vlm.training.config import load_config

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Inference throughput (benchmarks/inference.py)"
TINY_CONFIG = REPO / "training" / "configs" / "tiny.yaml"
PRESETS = ("tiny", "small", "base")
PATCH = 16
NODE_DIM = 128  # width of the stand-in node embeddings (the GNN's output width in the tiny config's world)
SEED = 0
PARTS = ("backbone", "decoder", "region_feature", "enrichment", "heads")  # AnatomyVLM's children, in call order
TARGET_SHARE = 10.0  # percent: the enrichment should cost under this share of the pipeline


# ----------------------------------------------------------------------------------------------
# Shared with gpu_train.py: the model, the knowledge, the report helpers
# ----------------------------------------------------------------------------------------------


def build_knowledge(node_dim: int = NODE_DIM, seed: int = SEED) -> RegionKnowledge:
    """The built ontology's 29 region neighbourhoods over seeded random node embeddings ``[N, node_dim]``.

    Random values stand in for the GNN output: the shapes (N nodes, K keys per region, F scored
    findings) set the cost, the values do not.
    """
    ontology = load_owl(BUILT_OWL_PATH)
    node_ids = [c.id for c in ontology.concepts]
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(len(node_ids), node_dim, generator=generator)
    return build_region_knowledge(ontology, FixedEmbeddings(node_ids, table))


def model_config(preset: str, size: int) -> AlignerConfig:
    """``tiny``: the project's ``training/configs/tiny.yaml`` model; ``small``/``base``: ``ModelConfig``
    defaults with that ViT and decoder preset; both at ``size`` px (the preprocessing's input and the
    ViT's position grid) with 16 px patches."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if size <= 0 or size % PATCH:
        raise ValueError(f"image size must be a positive multiple of the patch size {PATCH}, got {size}")
    if preset == "tiny":
        aligner = load_config(TINY_CONFIG).aligner
    else:
        aligner = AlignerConfig(model=ModelConfig(vit=ViTConfig.preset(preset), decoder=AnatomyDecoderConfig.preset(preset)))
    model = replace(aligner.model, vit=replace(aligner.model.vit, image_size=size, patch_size=PATCH))
    return replace(aligner, model=model, preprocess=replace(aligner.preprocess, image_size=size))


def describe_config(config: AlignerConfig, preset: str) -> str:
    """One line: the sizes of the ``preset`` model of ``config``."""
    model = config.model
    vit, decoder = model.vit, model.decoder
    return (f"ViT {preset} (width {vit.width}, depth {vit.depth}, heads {vit.heads}, patch {vit.patch_size}), "
            f"decoder {preset} (width {decoder.width}, depth {decoder.depth}), region_dim "
            f"{model.region.out_dim}, enrichment heads {model.enrichment.heads} (mlp ratio {model.enrichment.mlp_ratio}), "
            f"embed_dim {model.heads.embed_dim}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_out(out: str) -> Path:
    path = Path(out)
    return path if path.is_absolute() else REPO / path


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------


class PartTimer:
    """Wall time spent inside each named child module, by forward pre/post hooks (CPU: synchronous)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...] = PARTS) -> None:
        self.seconds = {name: 0.0 for name in names}
        self._started: dict[str, float] = {}
        self._handles = []
        for name in names:
            module = getattr(model, name)
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name: str):
        def hook(module, args):
            self._started[name] = time.perf_counter()
        return hook

    def _post(self, name: str):
        def hook(module, args, output):
            self.seconds[name] += time.perf_counter() - self._started.pop(name)
        return hook

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.seconds, 0.0)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@dataclass
class Arm:
    """One timed forward: ``run()`` processes one batch."""

    name: str
    run: Callable[[], object]
    batch: int
    params: int
    gflops_per_image: float
    preset: str | None = None  # the pipeline preset, None for DenseNet
    enrich: bool = True
    timer: PartTimer | None = None
    iters: int = 1  # batches per repeat (set after warm-up)
    seconds: list[float] = field(default_factory=list)  # per-batch seconds, one per repeat
    parts: list[dict[str, float]] = field(default_factory=list)  # per-batch seconds in each part, one per repeat

    def time_repeat(self) -> None:
        if self.timer is not None:
            self.timer.reset()
        start = time.perf_counter()
        for _ in range(self.iters):
            self.run()
        elapsed = (time.perf_counter() - start) / self.iters
        self.seconds.append(elapsed)
        if self.timer is not None:
            self.parts.append({k: v / self.iters for k, v in self.timer.seconds.items()})

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best_s(self) -> float:
        return min(self.seconds)

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median_s

    def part_share(self, part: str) -> float:
        """Median over repeats of the part's share of the batch time, in percent."""
        return 100.0 * statistics.median(p[part] / s for p, s in zip(self.parts, self.seconds))


def gflops_per_image(forward: Callable[[torch.Tensor], object], image: torch.Tensor) -> float:
    """Forward FLOPs of one ``[1, 1, H, W]`` image (matmul/conv/attention ops), in GFLOPs."""
    with FlopCounterMode(display=False) as counter:
        forward(image)
    return counter.get_total_flops() / 1e9


# ----------------------------------------------------------------------------------------------
# Run
# ----------------------------------------------------------------------------------------------


def build_arms(args, knowledge: RegionKnowledge, images: torch.Tensor) -> tuple[list[Arm], dict[str, str]]:
    import torchxrayvision as xrv

    descriptions: dict[str, str] = {}
    arms: list[Arm] = []
    densenet = xrv.models.DenseNet(weights=None).eval()
    # xrv's convention: [0, 1] -> [-1024, 1024], as xrv.utils.normalize(img, maxval) does; outside the timing.
    dense_images = (2.0 * images - 1.0) * 1024.0
    arms.append(Arm("DenseNet-121 (xrv)", lambda: densenet(dense_images), args.batch, count_params(densenet),
                    gflops_per_image(densenet, dense_images[:1])))
    for preset in args.presets:
        config = model_config(preset, args.size)
        torch.manual_seed(SEED)
        model: AnatomyVLM = build_model(config.model, config.preprocess, knowledge).eval()
        descriptions[preset] = describe_config(config, preset)
        params = count_params(model)
        flops_on = gflops_per_image(lambda x: model(x, knowledge), images[:1])
        flops_off = gflops_per_image(lambda x: model(x, knowledge, enrich=False), images[:1])
        timer = PartTimer(model)
        arms.append(Arm(f"AnatomyVLM {preset}", lambda m=model: m(images, knowledge), args.batch, params, flops_on,
                        preset=preset, enrich=True, timer=timer))
        arms.append(Arm(f"AnatomyVLM {preset}, enrichment off", lambda m=model: m(images, knowledge, enrich=False),
                        args.batch, params, flops_off, preset=preset, enrich=False))
    return arms, descriptions


def measure(arms: list[Arm], warmup: int, repeats: int, min_repeat_s: float, log) -> None:
    for round_ in range(warmup):
        for arm in arms:
            start = time.perf_counter()
            arm.run()
            elapsed = time.perf_counter() - start
            if round_ == warmup - 1:  # size the repeats from the last warm-up batch
                arm.iters = max(1, math.ceil(min_repeat_s / max(elapsed, 1e-6)))
        log(f"warm-up round {round_ + 1}/{warmup} done")
    # A preset's enrichment on/off arms stay next to each other (their per-repeat ratio is the on - off
    # share); the groups rotate and each pair swaps its order every repeat, so no arm always runs first.
    groups: list[list[Arm]] = []
    for arm in arms:
        if groups and arm.preset is not None and groups[-1][0].preset == arm.preset:
            groups[-1].append(arm)
        else:
            groups.append([arm])
    for repeat in range(repeats):
        shift = repeat % len(groups)
        for group in groups[shift:] + groups[:shift]:
            for arm in (group if repeat % 2 == 0 else group[::-1]):
                arm.time_repeat()
        log(f"repeat {repeat + 1}/{repeats}: " + ", ".join(f"{a.name} {a.seconds[-1] * 1e3:.0f} ms" for a in arms))


@dataclass
class PresetResult:
    preset: str
    on: Arm
    off: Arm
    densenet: Arm

    @property
    def ratio(self) -> float:
        """Pipeline images/s over DenseNet-121's, from the median batch times."""
        return self.on.images_per_s / self.densenet.images_per_s

    @property
    def ratio_best(self) -> float:
        """The same from each arm's fastest repeat (the one least disturbed by other work)."""
        return self.densenet.best_s / self.on.best_s

    @property
    def share_hooks(self) -> float:
        return self.on.part_share("enrichment")

    @property
    def share_on_off(self) -> float:
        """Median over repeats of ``1 - t(off) / t(on)``: the two arms of a repeat ran close together,
        so pairing them cancels most of the drift of a shared machine."""
        return 100.0 * statistics.median(1.0 - off / on for on, off in zip(self.on.seconds, self.off.seconds))


HEADERS = ["model", "params M", "GFLOPs / image", "ms / batch (median)", "ms / batch (best)", "images/s",
           "vs DenseNet-121 (median)", "vs DenseNet-121 (best)",
           "enrichment share: hooks", "enrichment share: on - off"]


def result_rows(arms: list[Arm], results: list[PresetResult]) -> list[list[str]]:
    densenet = arms[0]
    rows = []
    for arm in arms:
        ratio = arm.images_per_s / densenet.images_per_s
        found = next((r for r in results if r.on is arm), None)
        rows.append([
            arm.name, f"{arm.params / 1e6:.1f}", f"{arm.gflops_per_image:.2f}", f"{arm.median_s * 1e3:.0f}",
            f"{arm.best_s * 1e3:.0f}", f"{arm.images_per_s:.1f}", "1.00x" if arm is densenet else f"{ratio:.2f}x",
            "1.00x" if arm is densenet else f"{densenet.best_s / arm.best_s:.2f}x",
            f"{found.share_hooks:.1f}%" if found else "", f"{found.share_on_off:.1f}%" if found else "",
        ])
    return rows


def part_rows(results: list[PresetResult]) -> list[list[str]]:
    rows = []
    for r in results:
        total = r.on.median_s
        shares = [r.on.part_share(part) for part in PARTS]
        rows.append([r.preset, *(f"{s:.1f}%" for s in shares), f"{max(0.0, 100.0 - sum(shares)):.1f}%",
                     f"{total * 1e3:.0f}"])
    return rows


PART_HEADERS = ["preset", *PARTS, "outside the parts", "ms / batch"]


def load_average() -> float | None:
    """The 1-minute load average (other processes compete for the same cores), None where unknown."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def section(args, arms, results, descriptions, knowledge, command: str, started_at: str, total_s: float,
            loads: tuple[float | None, float | None]) -> str:
    lines = [SECTION, "",
             f"CPU, batch {args.batch}, {args.size}x{args.size} px, 1 channel, `torch.no_grad()`, eval mode, "
             f"torch threads: {torch.get_num_threads()}.", ""]
    lines += markdown_table(HEADERS, result_rows(arms, results))
    lines += ["", "Where the time of the enrichment-on pipeline goes (forward hooks on `AnatomyVLM`'s parts, "
              "median share of the batch time):", ""]
    lines += markdown_table(PART_HEADERS, part_rows(results))
    lines.append("")
    for r in results:
        met = r.share_hooks < TARGET_SHARE
        lines.append(f"- {r.preset} at {args.size} px: {r.on.images_per_s:.1f} images/s, {r.ratio:.2f}x DenseNet-121's "
                     f"{r.densenet.images_per_s:.1f} ({r.ratio_best:.2f}x from the fastest repeats); enrichment share {r.share_hooks:.1f}% by hooks, "
                     f"{r.share_on_off:.1f}% by on - off (target < {TARGET_SHARE:.0f}% by hooks: **{'met' if met else 'NOT met'}**).")
    lines += [
        "",
        "How it was measured:",
        "- Pipeline: `AnatomyVLM.forward(images, knowledge)`: ViT trunk, anatomy decoder (29 region queries, boxes, "
        "presence), region features (RoI-align + CLS context), knowledge enrichment (cross-attention over each "
        "region's neighbourhood), alignment heads (region and image scores against every Finding/Disease node). "
        "No explanation is built and nothing is written to a database. 'Enrichment off' is the same model with "
        "`enrich=False`.",
        *(f"- `{p}`: {descriptions[p]}"
          + (" (the model of `training/configs/tiny.yaml`, image size overridden)." if p == "tiny" else
             " (`ModelConfig` defaults otherwise).") for p in args.presets),
        f"- Knowledge: the built ontology (`{BUILT_OWL_PATH.relative_to(REPO)}`, {len(knowledge.node_ids)} concepts) via "
        f"`knowledge.build_knowledge` over `FixedEmbeddings`: {knowledge.num_regions} regions with up to {knowledge.key_index.shape[1]} "
        f"keys each, {knowledge.num_findings} scored findings; node embeddings are seeded `torch.randn(N, "
        f"{knowledge.node_embeddings.shape[1]})` standing in for the GNN output (the values do not change the cost).",
        "- DenseNet-121: `torchxrayvision.models.DenseNet(weights=None)` (random weights, nothing downloaded; its "
        "published weights take 224 px, 1 channel), fed the same images mapped to [-1024, 1024] "
        "(`xrv.utils.normalize`'s convention) before timing. Model weights do not change the speed.",
        f"- Images: seeded `torch.rand({args.batch}, 1, {args.size}, {args.size})` (the project's [0, 1] convention).",
        f"- Timing: warm-up rounds: {args.warmup}, then timed repeats: {args.repeats}; in each repeat every arm runs once "
        "(interleaved, so drift hits all arms alike): DenseNet-121 and each preset's on/off pair in an order rotated "
        "by one per repeat, the pair's two arms back to back, swapping which goes first. An arm faster than "
        f"{args.min_repeat_s:g} s per batch runs several batches per repeat ("
        + ", ".join(f"{a.name}: {a.iters}" for a in arms) + "); the table gives the median per batch.",
        "- Enrichment share, two ways: forward pre/post hooks on `model.enrichment` (its share of the batch time in "
        "the enrichment-on arm, median over repeats; the other parts likewise in the second table), and "
        "`1 - t(off) / t(on)` per repeat, median over repeats (noisier: the difference of two timings; "
        "negative values are noise). images/s and the ratio to DenseNet-121 use the median batch time; the best "
        "(fastest) repeat is shown too, as the least disturbed by other work.",
        "- GFLOPs / image: `torch.utils.flop_counter.FlopCounterMode` over one forward at batch 1 (matmul, conv and "
        "attention ops; elementwise ops are not counted).",
        "- The machine is shared with other work, so the numbers are indicative: 1-minute load average "
        + " at the start, ".join("n/a" if v is None else f"{v:.2f}" for v in loads) + " at the end, on "
        f"{os.cpu_count()} CPUs.",
        "",
        f"- Date: {started_at}; run took {total_s:.0f} s",
        f"- Machine: {machine()}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, torchxrayvision {package_version('torchxrayvision')}",
        f"- Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="images per forward")
    parser.add_argument("--size", type=int, default=224, help="image side in px (a multiple of 16)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds before the repeats")
    parser.add_argument("--min-repeat-s", type=float, default=1.0,
                        help="an arm faster than this per batch runs several batches per repeat")
    parser.add_argument("--preset", default="tiny,small",
                        help=f"comma-separated pipeline presets to measure ({', '.join(PRESETS)})")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all CPUs)")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file whose section is replaced")
    parser.add_argument("--no-write", action="store_true", help="print only; leave --out untouched")
    args = parser.parse_args(argv)
    args.presets = [p.strip() for p in args.preset.split(",") if p.strip()]
    if not args.presets or any(p not in PRESETS for p in args.presets):
        parser.error(f"--preset takes a comma-separated list of {', '.join(PRESETS)}, got {args.preset!r}")
    if args.size <= 0 or args.size % PATCH:
        parser.error(f"--size must be a positive multiple of {PATCH}, got {args.size}")
    for name in ("batch", "repeats", "threads"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (it sizes the repeats)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([".venv/bin/python", "benchmarks/inference.py", *(sys.argv[1:] if argv is None else argv)])
    started_at, started, load_start = utc_now(), time.perf_counter(), load_average()
    torch.set_num_threads(args.threads)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731

    knowledge = build_knowledge()
    images = torch.rand(args.batch, 1, args.size, args.size, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        arms, descriptions = build_arms(args, knowledge, images)
        log("models built: " + ", ".join(f"{a.name} {a.params / 1e6:.1f}M params" for a in arms))
        measure(arms, args.warmup, args.repeats, args.min_repeat_s, log)
    for arm in arms:
        if arm.timer is not None:
            arm.timer.remove()
    densenet = arms[0]
    results = [PresetResult(arm.preset, arm, next(a for a in arms if a.preset == arm.preset and not a.enrich), densenet)
               for arm in arms if arm.preset is not None and arm.enrich]
    total_s = time.perf_counter() - started

    print_table(f"Inference throughput: CPU, batch {args.batch}, {args.size} px, {torch.get_num_threads()} threads",
                HEADERS, result_rows(arms, results))
    print_table("Share of the pipeline time per part (forward hooks)", PART_HEADERS, part_rows(results))
    for r in results:  # plain lines, for logs and the tests
        print(f"{r.preset}: pipeline {r.on.images_per_s:.2f} images/s, DenseNet-121 {r.densenet.images_per_s:.2f} "
              f"images/s, ratio {r.ratio:.3f} (median), {r.ratio_best:.3f} (best)")
        print(f"{r.preset}: enrichment share {r.share_hooks:.1f}% (hooks), {r.share_on_off:.1f}% (on - off)")
    if not args.no_write:
        out = resolve_out(args.out)
        write_section(out, SECTION, section(args, arms, results, descriptions, knowledge, command, started_at, total_s,
                                                (load_start, load_average())))
        log(f"wrote the section {SECTION!r} of {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
