"""The phantom training benchmark: one command trains and evaluates the tiny config, then (with
``--study``) the knowledge-variant study; writes its section of docs/benchmarks.md.

    .venv/bin/python benchmarks/train_phantom.py [--config training/configs/phantom-tiny.yaml]
        [--study] [--study-steps 600,150,300] [--out docs/benchmarks.md] [--no-write]

Targets (issue 5), on the phantom test split, the tiny config trained by one command in <= 30
minutes on 2 CPU cores: region mAP@0.5 >= 0.8, macro AUC >= 0.9 on the planted findings, heart
Dice >= 0.9; the canonical graph beats the shuffled one on the zero-shot and region-wise metrics.
The wall time counted is the whole command: phantom generation (when the splits are missing),
knowledge fitting, training, evaluation and the segmentation transfer.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from report import machine, utc_now, write_section  # noqa: E402 (benchmarks/ is on sys.path)

SECTION = "## Phantom training (benchmarks/train_phantom.py)"
DEFAULT_CONFIG = Path("training/configs/phantom-tiny.yaml")
TARGETS = {"map50": 0.8, "auc": 0.9, "heart_dice": 0.9, "minutes": 30.0}


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--study", action="store_true", help="also run the knowledge-variant study")
    parser.add_argument("--study-steps", default=None, help="steps per stage of each study arm (default: the config's)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    from anatomy_vlm.training.config import load_config
    from anatomy_vlm.training.run import run
    from anatomy_vlm.training.study import study_table, variant_study

    torch.set_num_threads(os.cpu_count() or 1)
    config = load_config(args.config, progress=True)
    started = time.perf_counter()
    result = run(config)
    minutes = (time.perf_counter() - started) / 60
    summary = result.evaluation.summary()
    dice = {row["arm"]: row for row in result.segmentation}
    heart = max((row.get("heart_dice", float("nan")) for row in result.segmentation), default=float("nan"))

    lines = [SECTION, ""]
    lines.append(f"One command (`run(config)` = `anatomy-vlm train {args.config}`), {minutes:.1f} min wall in all "
                 f"(phases, s: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()) + ").")
    lines.append("")
    lines.append("| test images | region mAP@0.5 | mean IoU | macro AUC | macro BMAC | macro F1@0.5 | ECE | "
                 "region-wise AUC | zero-shot AUC (held out) | heart Dice frozen / fine-tuned | lung Dice (R, L) fine-tuned |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    frozen, tuned = dice.get("frozen", {}), dice.get("finetuned", {})
    lines.append(f"| {int(summary['n_images'])} | {fmt(summary['map50'])} | {fmt(summary['miou'])} | {fmt(summary['auc'])} "
                 f"| {fmt(summary.get('bmac'))} | {fmt(summary.get('f1'))} | {fmt(summary.get('ece'))} "
                 f"| {fmt(summary.get('region_auc'))} | {fmt(summary.get('zero_shot_auc'))} "
                 f"| {fmt(frozen.get('heart_dice'))} / {fmt(tuned.get('heart_dice'))} "
                 f"| {fmt(tuned.get('right_lung_dice'))}, {fmt(tuned.get('left_lung_dice'))} |")
    lines.append("")
    lines.append(f"Targets: mAP@0.5 >= {TARGETS['map50']}: {verdict(summary['map50'] >= TARGETS['map50'])} "
                 f"({fmt(summary['map50'])}); macro AUC >= {TARGETS['auc']}: {verdict(summary['auc'] >= TARGETS['auc'])} "
                 f"({fmt(summary['auc'])}); heart Dice >= {TARGETS['heart_dice']} (best arm): "
                 f"{verdict(heart >= TARGETS['heart_dice'])} ({fmt(heart)}); <= {TARGETS['minutes']:.0f} min: "
                 f"{verdict(minutes <= TARGETS['minutes'])} ({minutes:.1f} min).")
    per_class = ", ".join(f"{c.name} {fmt(c.auc)}" for c in result.evaluation.classification.classes
                          if not math.isnan(c.auc))
    lines.append(f"- AUC per planted finding: {per_class}.")
    worst = sorted((r for r in result.evaluation.detection.regions if not math.isnan(r.ap50)), key=lambda r: r.ap50)[:5]
    lines.append("- Lowest AP@0.5 regions: " + ", ".join(f"{r.name} {fmt(r.ap50)} (IoU {fmt(r.mean_iou)})" for r in worst) + ".")

    if args.study:
        steps = tuple(int(s) for s in args.study_steps.split(",")) if args.study_steps else config.train.steps_per_stage
        study_config = replace(config, train=replace(config.train, steps_per_stage=steps, segmentation_steps=0,
                                                     out_dir=str(Path(config.train.out_dir) / "study")))
        started = time.perf_counter()
        rows = variant_study(study_config)
        study_minutes = (time.perf_counter() - started) / 60
        lines += ["", f"Knowledge-variant study ({study_minutes:.1f} min; each arm: steps "
                  f"{list(study_config.train.steps_per_stage)}, same data and seed, held-out finding(s) "
                  f"{list(study_config.train.holdout_findings)}):", "", study_table(rows).rstrip("\n")]
        by_arm = {r["arm"]: r for r in rows}
        if "canonical" in by_arm and "shuffled" in by_arm:
            c, s = by_arm["canonical"], by_arm["shuffled"]
            lines.append("")
            lines.append(f"Canonical beats shuffled on zero-shot AUC: {verdict(c['zero_shot_auc'] > s['zero_shot_auc'])} "
                         f"({fmt(c['zero_shot_auc'])} vs {fmt(s['zero_shot_auc'])}); on region-wise AUC: "
                         f"{verdict(c['region_auc'] > s['region_auc'])} ({fmt(c['region_auc'])} vs {fmt(s['region_auc'])}).")

    vit, decoder = config.model.vit, config.model.decoder
    lines += ["", "How it was measured:",
              f"- Config `{args.config}`: ViT width {vit.width}, depth {vit.depth}, heads {vit.heads}, patch "
              f"{vit.patch_size}; decoder width {decoder.width}, depth {decoder.depth}; "
              f"{config.preprocess.image_size} px, batch "
              f"{config.train.batch_size}, steps {list(config.train.steps_per_stage)}, lr {config.train.lr} "
              f"({config.train.schedule}), knowledge: {config.knowledge.text_encoder} text encoder + "
              f"{config.knowledge.conv} GNN pretrained {config.knowledge.pretrain_epochs} epochs by link prediction.",
              f"- Phantom splits (train/val/test seeds {{0, 1000000, 2000000}}, never sharing an image): "
              f"{config.train.phantom_counts}; held-out findings (no label in training, scored zero-shot): "
              f"{list(config.train.holdout_findings)}.",
              "- Metrics (training/metrics.py): mAP@0.5 over the 29 regions ranked by presence; macro AUC over the "
              "planted findings with labels in training; region-wise AUC pools every (image, finding) pair per region "
              "(present regions only) and averages regions; Dice of a MONAI UNETR-style decoder on the frozen and on "
              "the fine-tuned ViT, threshold 0.5.",
              "- Single process on CPU; the machine may be shared with other work, so times are indicative.",
              "",
              f"- Date: {utc_now()}",
              f"- Machine: {machine()}",
              f"- Python {sys.version.split()[0]}, torch {torch.__version__}, threads {torch.get_num_threads()}",
              f"- Command: `.venv/bin/python benchmarks/train_phantom.py {shlex.join(argv or sys.argv[1:])}`",
              ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
