"""The knowledge-variant study: the same training and evaluation per knowledge arm, one table out.

Arms: ``canonical`` (the curated graph), ``enrichment-off`` (regions do not attend over the graph)
and ``shuffled`` (``LOCATED_IN`` shuffled, degree-preserving). ``variant_study`` writes
``out_dir/study.csv`` and ``out_dir/study.md``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from anatomy_vlm.training.config import RunConfig
from anatomy_vlm.training.run import run

STUDY_ARMS: dict[str, dict[str, Any]] = {
    "canonical": {},
    "enrichment-off": {"enrich": False},
    "shuffled": {"variant": "shuffled", "variant_recipe": "shuffle-located-in:seed=7"},
}
STUDY_COLUMNS = ("map50", "miou", "auc", "bmac", "f1", "ece", "region_auc", "zero_shot_auc", "zero_shot_region_auc")


def arm_config(config: RunConfig, arm: str) -> RunConfig:
    """``config`` changed for one arm of the study, writing under ``out_dir/<arm>``."""
    if arm not in STUDY_ARMS:
        raise ValueError(f"unknown study arm {arm!r}; known: {', '.join(STUDY_ARMS)}")
    changes = dict(STUDY_ARMS[arm])
    model = replace(config.model, enrich=changes.pop("enrich", config.model.enrich))
    train_config = replace(config.train, out_dir=str(Path(config.train.out_dir) / arm), **changes)
    return replace(config, model=model, train=train_config)


def variant_study(config: RunConfig, arms: Sequence[str] = tuple(STUDY_ARMS)) -> list[dict[str, Any]]:
    """Train and evaluate ``config`` once per arm (same data, seed and steps); one summary row per arm."""
    rows = []
    for arm in arms:
        result = run(arm_config(config, arm))
        summary = result.evaluation.summary() if result.evaluation else {}
        rows.append({"arm": arm, **{k: summary.get(k, float("nan")) for k in STUDY_COLUMNS},
                     "train_s": result.seconds.get("train", float("nan"))})
    out_dir = Path(config.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "study.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "study.md").write_text(study_table(rows))
    return rows


def study_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of study rows (numbers to 3 decimals, NaN as n/a)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            value = row[c]
            if isinstance(value, float):
                cells.append("n/a" if math.isnan(value) else f"{value:.3f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["STUDY_ARMS", "STUDY_COLUMNS", "arm_config", "study_table", "variant_study"]
