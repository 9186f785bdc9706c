"""The checkpoint format: a trained aligner with everything needed to use it again.

``save_checkpoint`` writes (atomically) the model's state, its ``AlignerConfig`` (model,
preprocessing, loss), the graph version and variant it was trained against, the scored finding and
region ids, the findings whose labels training withheld, the knowledge embedder's state (its frozen
GNN embeds any later graph version in the same space) and the ontology; ``load_checkpoint`` rebuilds
the model with the factory. The training run's own settings travel as plain data (``run``), read by
the application, never by the library.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from anatomy_vlm.alignment.config import AlignerConfig
from anatomy_vlm.alignment.factory import build_model
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.atomic import write_atomically
from anatomy_vlm.knowledge import KnowledgeEmbedder, RegionKnowledge
from anatomy_vlm.ontology.json_io import ontology_from_dict, ontology_to_dict
from anatomy_vlm.ontology.model import Ontology

CHECKPOINT_FORMAT = 2  # 2: AlignerConfig of composed part configs (format 1 had flat model keys)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model and what it was trained against."""

    model: AnatomyVLM  # rebuilt and loaded, in eval mode, on CPU
    config: AlignerConfig  # model, preprocessing and loss
    graph_version: str  # content hash of the graph the knowledge came from
    variant: str  # knowledge variant name
    finding_ids: list[str]  # the finding ids scored in training (a new knowledge may list more)
    step: int  # optimiser steps taken
    region_ids: list[str] = field(default_factory=list)  # the region order of the model's queries
    holdout_findings: list[str] = field(default_factory=list)  # findings whose labels training withheld (zero-shot)
    embedder_state: dict[str, Any] | None = None  # KnowledgeEmbedder.state(): rebuilds the node embeddings
    ontology: Ontology | None = None  # the (variant) ontology trained against, when stored
    run: dict[str, Any] = field(default_factory=dict)  # the training run's settings, as plain data


def save_checkpoint(path: str | Path, model: AnatomyVLM, config: AlignerConfig, knowledge: RegionKnowledge,
                    step: int = 0, *, holdout_findings: tuple[str, ...] = (),
                    embedder: KnowledgeEmbedder | None = None, ontology: Ontology | None = None,
                    run: dict[str, Any] | None = None) -> Path:
    """``torch.save`` the CPU state dict and the rest (see the module docstring). Written atomically,
    so a reader (the service) never sees half a checkpoint."""
    path = Path(path)
    if config.model.node_dim is None:
        config = replace(config, model=replace(config.model, node_dim=model.node_dim))
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.to_dict(),
        "graph_version": knowledge.graph_version,
        "variant": knowledge.variant,
        "finding_ids": list(knowledge.finding_ids),
        "region_ids": list(knowledge.region_ids),
        "holdout_findings": list(holdout_findings),
        "step": int(step),
        "embedder": embedder.state() if embedder is not None else None,
        "ontology": ontology_to_dict(ontology) if ontology is not None else None,
        "run": dict(run or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model of a checkpoint written by :func:`save_checkpoint` (CPU, eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: say which, not a pickle traceback
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ValueError(f"{path}: not an alignment checkpoint of format {CHECKPOINT_FORMAT} (found {found!r}); "
                         "retrain it with this version")
    config = AlignerConfig.from_dict(data["config"])
    model = build_model(config.model, config.preprocess)
    model.load_state_dict(data["model"])
    model.eval()
    ontology = data.get("ontology")
    return Checkpoint(model=model, config=config, graph_version=data["graph_version"], variant=data["variant"],
                      finding_ids=list(data["finding_ids"]), step=int(data["step"]),
                      region_ids=list(data.get("region_ids") or []),
                      holdout_findings=list(data.get("holdout_findings") or []),
                      embedder_state=data.get("embedder"),
                      ontology=ontology_from_dict(ontology, where=str(path)) if ontology else None,
                      run=dict(data.get("run") or {}))


__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "load_checkpoint", "save_checkpoint"]
