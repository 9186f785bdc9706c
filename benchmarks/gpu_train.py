#!/usr/bin/env python3
"""Training-step throughput and model FLOPs utilisation of the full aligner at ViT-B/16 on one CUDA GPU.

```sh
.venv/bin/python benchmarks/gpu_train.py [--sizes 224,512 --batches 128,32 --steps 20 --repeats 3 \
                                          --warmup 5 --preset base --peak-tflops T --out docs/benchmarks.md]
.venv/bin/python benchmarks/gpu_train.py --cpu-smoke     # no GPU: a tiny config, two steps, never writes docs
```

What it measures, per image size: one training step of the full ``AnatomyVLM`` (``--preset base``:
ViT-B/16 trunk, 1 channel, the base anatomy decoder, region features, knowledge enrichment,
alignment heads; ``ModelConfig`` defaults otherwise) with bf16 autocast: forward, the stage-3
``AlignmentCriterion`` (box L1 + GIoU + presence with DETR auxiliary terms, global, fine-grained
and pooled alignment) on synthetic targets, backward, gradient clipping to norm 1 (as the trainer
does) and an ``AdamW`` step. The position grid is built for each size (no interpolation).

- images/s = batch / median step time; each of ``--repeats`` windows times ``--steps`` steps between
  two ``torch.cuda.synchronize()`` calls, after ``--warmup`` untimed steps.
- FLOPs per step: ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward (matmul,
  conv and attention ops; the optimiser and elementwise ops are not counted), counted once.
- MFU = FLOPs per step / step time / the device's dense bf16 peak (``PEAK_TFLOPS`` by device name,
  or ``--peak-tflops``).

Without CUDA it exits with code 2 and a message, and writes nothing. ``--cpu-smoke`` runs a tiny
config at 64 px for two steps on CPU (one thread; fp32 and bf16 CPU autocast) to exercise the code path; it
never writes the docs. On CUDA, unless ``--no-write``, the results replace the section
"## GPU training throughput (benchmarks/gpu_train.py)" of ``--out``.
"""

from __future__ import annotations

import argparse
import platform
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from anatomy_vlm.alignment.factory import build_model
from anatomy_vlm.alignment.losses import AlignmentCriterion, default_weight_dict
from anatomy_vlm.knowledge import RegionKnowledge

# This file runs as a script, so its own folder is on sys.path: the model, knowledge and report
# helpers are the inference benchmark's, so both benchmarks measure the same thing.
from inference import PRESETS, build_knowledge, count_params, describe_config, model_config, resolve_out  # noqa: E402
from report import machine, markdown_table, print_table, utc_now, write_section  # noqa: E402

SECTION = "## GPU training throughput (benchmarks/gpu_train.py)"
SEED = 0
NO_CUDA_EXIT = 2
# Dense (no sparsity) bf16 tensor-core peak in TFLOPS, from the vendor's data sheets, matched
# against torch.cuda.get_device_name() in this order (the more specific names first).
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"GH200", 989.0),
    (r"H200", 989.0),
    (r"H100.*NVL", 835.0),
    (r"H100.*PCIe", 756.0),
    (r"H100", 989.0),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    (r"H800.*PCIe", 756.0),
    (r"H800", 989.0),
    (r"A100", 312.0),
    (r"A800", 312.0),
    (r"L40S", 362.0),
    (r"\bL4\b", 121.0),
)


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a device by its name, or None when the table does not know it."""
    for pattern, value in PEAK_TFLOPS:
        if re.search(pattern, device_name):
            return value
    return None


def synthetic_targets(batch: int, knowledge: RegionKnowledge, device: torch.device,
                      generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random criterion targets: boxes ``[B, R, 4]`` (cx, cy, w, h) inside the image, every box present,
    image labels ``[B, F]`` and region labels ``[B, R, F]`` in {0, 1}."""
    r, f = knowledge.num_regions, knowledge.num_findings
    centre = 0.25 + 0.5 * torch.rand(batch, r, 2, generator=generator)
    extent = 0.1 + 0.3 * torch.rand(batch, r, 2, generator=generator)
    targets = {
        "boxes": torch.cat([centre, extent], dim=-1),
        "box_present": torch.ones(batch, r, dtype=torch.bool),
        "image_labels": (torch.rand(batch, f, generator=generator) < 0.2).float(),
        "region_labels": (torch.rand(batch, r, f, generator=generator) < 0.1).float(),
    }
    return {k: v.to(device) for k, v in targets.items()}


@dataclass
class SizeResult:
    size: int
    batch: int
    params: int = 0
    flops_per_step: float = 0.0
    step_s: float | None = None
    window_s: tuple[float, ...] = ()
    peak_memory_gib: float | None = None
    loss: float | None = None
    error: str | None = None

    @property
    def images_per_s(self) -> float | None:
        return None if self.step_s is None else self.batch / self.step_s

    @property
    def achieved_tflops(self) -> float | None:
        return None if self.step_s is None else self.flops_per_step / self.step_s / 1e12

    def mfu(self, peak: float | None) -> float | None:
        achieved = self.achieved_tflops
        return None if achieved is None or not peak else 100.0 * achieved / peak


def run_size(preset: str, size: int, batch: int, knowledge: RegionKnowledge, device: torch.device, *,
             bf16: bool, warmup: int, steps: int, repeats: int, log) -> SizeResult:
    result = SizeResult(size=size, batch=batch)
    torch.manual_seed(SEED)
    config = model_config(preset, size)
    model = build_model(config.model, config.preprocess, knowledge).to(device).train()
    result.params = count_params(model)
    knowledge = knowledge.to(device)
    criterion = AlignmentCriterion(default_weight_dict(), stage=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    generator = torch.Generator().manual_seed(SEED)
    images = torch.rand(batch, 1, size, size, generator=generator).to(device)
    targets = synthetic_targets(batch, knowledge, device, generator)
    autocast = lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)  # noqa: E731

    def forward_backward() -> torch.Tensor:
        with autocast():
            loss = criterion(model(images, knowledge), targets)["total_loss"]
        loss.backward()
        return loss

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = forward_backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    optimizer.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as counter:
        forward_backward()
    result.flops_per_step = float(counter.get_total_flops())
    log(f"{size} px: {result.flops_per_step / 1e12:.3f} TFLOPs per step (fwd + bwd), {result.params / 1e6:.1f}M params")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    windows = []
    for repeat in range(repeats):
        synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        synchronize()
        windows.append((time.perf_counter() - start) / steps)
        log(f"{size} px: window {repeat + 1}/{repeats}: {windows[-1] * 1e3:.1f} ms/step")
    result.window_s = tuple(windows)
    result.step_s = statistics.median(windows)
    result.loss = float(loss.detach().float())
    if device.type == "cuda":
        result.peak_memory_gib = torch.cuda.max_memory_allocated(device) / 2**30
    return result


HEADERS = ["size px", "batch", "params M", "ms / step (median)", "images/s", "TFLOPs / step (fwd+bwd)",
           "achieved TFLOPS", "MFU", "peak memory GiB"]


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def rows(results: list[SizeResult], peak: float | None) -> list[list[str]]:
    table = []
    for r in results:
        if r.error:
            table.append([str(r.size), str(r.batch), _fmt(r.params / 1e6 if r.params else None, ".1f"),
                          r.error, "", "", "", "", ""])
            continue
        mfu = r.mfu(peak)
        table.append([str(r.size), str(r.batch), f"{r.params / 1e6:.1f}", f"{r.step_s * 1e3:.1f}",
                      f"{r.images_per_s:.1f}", f"{r.flops_per_step / 1e12:.3f}", _fmt(r.achieved_tflops, ".1f"),
                      "n/a" if mfu is None else f"{mfu:.1f}%", _fmt(r.peak_memory_gib, ".1f")])
    return table


def section(args, results, device_name: str, peak: float | None, peak_source: str, knowledge: RegionKnowledge,
            command: str, started_at: str) -> str:
    lines = [SECTION, "",
             f"{device_name}, bf16 autocast, full `AnatomyVLM` with the `{args.preset}` preset "
             f"(ViT-{args.preset[0].upper()}/16, 1 channel), forward + stage-3 loss + backward + AdamW step.", ""]
    lines += markdown_table(HEADERS, rows(results, peak))
    lines += [
        "",
        "How it was measured:",
        f"- Model: {describe_config(model_config(args.preset, results[0].size), args.preset)}; the position grid is built for each "
        "image size. `ModelConfig` defaults otherwise; dropout 0.",
        f"- Knowledge: the built ontology's {knowledge.num_regions} region neighbourhoods (up to "
        f"{knowledge.key_index.shape[1]} keys each), {knowledge.num_findings} scored findings, seeded random node "
        f"embeddings [{len(knowledge.node_ids)}, {knowledge.node_embeddings.shape[1]}] (values do not change the cost).",
        "- Step: `optimizer.zero_grad()`, forward under `torch.autocast('cuda', torch.bfloat16)`, "
        "`AlignmentCriterion(default_weight_dict(), stage=3)` on synthetic targets (random boxes, all present; "
        "random image and region labels), backward, `clip_grad_norm_(1.0)`, `AdamW(lr=1e-4, weight_decay=0.05)`. "
        "The same device-resident batch every step (no data loading in the numbers).",
        f"- Timing: {args.warmup} warm-up steps, then {args.repeats} windows of {args.steps} steps each between "
        "`torch.cuda.synchronize()` calls; the table gives the median window's time per step. Windows (ms/step): "
        + "; ".join(f"{r.size} px: " + ", ".join(f"{w * 1e3:.1f}" for w in r.window_s) for r in results if r.window_s)
        + ".",
        "- FLOPs: `torch.utils.flop_counter.FlopCounterMode` over one forward + backward (matmul, conv and attention "
        "ops; elementwise ops and the optimiser step not counted). MFU = FLOPs per step / step time / peak.",
        f"- Peak: {_fmt(peak, '.0f')} TFLOPS dense bf16 ({peak_source}).",
        "",
        f"- Date: {started_at}",
        f"- Device: {device_name}; CUDA {torch.version.cuda}; host {machine()}",
        f"- Python {platform.python_version()}, torch {torch.__version__}",
        f"- Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def _int_list(text: str, name: str, parser: argparse.ArgumentParser) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--{name} takes comma-separated integers, got {text!r}")
    if not values or any(v <= 0 for v in values):
        parser.error(f"--{name} takes positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="224,512", help="comma-separated image sides in px (multiples of 16)")
    parser.add_argument("--batches", default="128,32", help="batch per size (one value: the same for all sizes)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per window")
    parser.add_argument("--repeats", type=int, default=3, help="timed windows (the median is reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--preset", default="base", choices=PRESETS, help="ViT and decoder preset")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak in TFLOPS (default: looked up by device name)")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file whose section is replaced")
    parser.add_argument("--no-write", action="store_true", help="print only; leave --out untouched")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="no GPU needed: tiny preset, 64 px, batch 2, two steps on CPU; never writes --out")
    args = parser.parse_args(argv)
    args.size_list = _int_list(args.sizes, "sizes", parser)
    batches = _int_list(args.batches, "batches", parser)
    if len(batches) == 1:
        batches = batches * len(args.size_list)
    if len(batches) != len(args.size_list):
        parser.error(f"--batches gives {len(batches)} values for {len(args.size_list)} sizes")
    args.batch_list = batches
    if any(s % 16 for s in args.size_list):
        parser.error(f"--sizes must be multiples of 16, got {args.sizes}")
    for name in ("steps", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    if args.warmup < 0 or (args.peak_tflops is not None and args.peak_tflops <= 0):
        parser.error("--warmup must be >= 0 and --peak-tflops positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([".venv/bin/python", "benchmarks/gpu_train.py", *(sys.argv[1:] if argv is None else argv)])
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    started_at = utc_now()

    if args.cpu_smoke:
        torch.set_num_threads(1)  # a code-path check, not a measurement: one thread stays quick on a busy machine
        knowledge = build_knowledge()
        results = []
        for bf16 in (False, True):
            r = run_size("tiny", 64, 2, knowledge, torch.device("cpu"), bf16=bf16, warmup=1, steps=1, repeats=2, log=log)
            results.append(r)
            print(f"cpu smoke ({'bf16 autocast' if bf16 else 'fp32'}): FLOPs per step {r.flops_per_step:.4g}, "
                  f"{r.step_s * 1e3:.0f} ms/step, {r.images_per_s:.1f} images/s, loss {r.loss:.4f}")
        print_table("GPU training benchmark, CPU smoke run (tiny, 64 px; not a measurement)", HEADERS,
                    rows(results, args.peak_tflops))
        return 0

    if not torch.cuda.is_available():
        print("gpu_train.py needs a CUDA device and torch.cuda.is_available() is False; nothing was measured or "
              "written (use --cpu-smoke to exercise the code path on CPU).", file=sys.stderr)
        return NO_CUDA_EXIT

    device = torch.device("cuda")
    device_name = torch.cuda.get_device_name(device)
    looked_up = peak_tflops(device_name)
    peak = args.peak_tflops if args.peak_tflops is not None else looked_up
    peak_source = ("--peak-tflops" if args.peak_tflops is not None else
                   f"data-sheet value for '{device_name}'" if looked_up is not None else "unknown device: MFU not given")
    torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 parts outside autocast (optimiser, losses) use TF32
    knowledge = build_knowledge()
    results = []
    for size, batch in zip(args.size_list, args.batch_list):
        try:
            results.append(run_size(args.preset, size, batch, knowledge, device, bf16=True, warmup=args.warmup,
                                    steps=args.steps, repeats=args.repeats, log=log))
        except torch.cuda.OutOfMemoryError as error:
            log(f"{size} px, batch {batch}: out of memory: {error}")
            results.append(SizeResult(size=size, batch=batch, error=f"out of memory at batch {batch}"))
        torch.cuda.empty_cache()

    print_table(f"Training step, {args.preset} preset, bf16: {device_name}", HEADERS, rows(results, peak))
    for r in results:
        if r.step_s is not None:
            mfu = r.mfu(peak)
            print(f"{r.size} px, batch {r.batch}: {r.images_per_s:.1f} images/s, {r.flops_per_step / 1e12:.3f} TFLOPs "
                  f"per step, MFU {'n/a' if mfu is None else f'{mfu:.1f}%'}")
    if not args.no_write:
        out = resolve_out(args.out)
        write_section(out, SECTION, section(args, results, device_name, peak, peak_source, knowledge, command, started_at))
        log(f"wrote the section {SECTION!r} of {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
