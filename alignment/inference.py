"""Prediction with a trained aligner: images in, ``Prediction`` objects (with explanations) out.

``Predictor`` is what the CLI's ``predict``, the demo and the service hold: a model loaded from a
checkpoint, the ``RegionKnowledge`` of the graph version it scores against, the input size, and
the device. The knowledge can be rebuilt from a newer graph (``with_knowledge``): the checkpoint's
frozen GNN embeds the new graph, so findings added since training are scored too (zero-shot).

Boxes in a ``Prediction`` are pixels of the image as given (not of the resized model input).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from anatomy_vlm.alignment.explanation import Prediction, explain
from anatomy_vlm.alignment.graph_knowledge import (
    KnowledgeEmbedder, build_region_knowledge, cache_for, knowledge_from_store,
)
from anatomy_vlm.alignment.knowledge import RegionKnowledge
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.alignment.train import autocast_context, load_checkpoint, resolve_device
from anatomy_vlm.encoder.io import read_image
from anatomy_vlm.encoder.transforms import Resize
from anatomy_vlm.kg.types import DEFAULT_VARIANT
from anatomy_vlm.ontology.model import Ontology


def image_sha256(image: Tensor) -> str:
    """Content hash of a decoded image ``[1, H, W]`` (what a provenance ``Image`` node records)."""
    return hashlib.sha256(image.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


@dataclass
class Predictor:
    """A trained model and the knowledge it scores against, ready for images.

    Shapes: ``predict`` takes images ``[1, H, W]`` float32 in ``[0, 1]`` (any size; each is resized
    to ``image_size``) and returns one ``Prediction`` per image.
    """

    model: AnatomyVLM
    knowledge: RegionKnowledge
    embedder: KnowledgeEmbedder | None  # rebuilds the knowledge from another graph version
    image_size: int
    device: torch.device
    precision: str = "fp32"
    name: str = "anatomy-vlm"  # written as the provenance ``model``; the checkpoint's file stem by default
    trained_finding_ids: tuple[str, ...] = ()  # the findings the checkpoint's knowledge listed in training
    holdout_findings: tuple[str, ...] = ()  # of those, the ones whose labels training withheld (zero-shot)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, ontology: Ontology | None = None, store=None,
                        variant: str | None = None, device: str = "auto", name: str | None = None) -> "Predictor":
        """Load ``path`` and build the knowledge from ``ontology``, a graph ``store``'s variant, or the
        ontology the checkpoint was trained on (stored in it) when neither is given."""
        checkpoint = load_checkpoint(path)
        if checkpoint.embedder_state is None:
            raise ValueError(f"{path}: the checkpoint holds no knowledge embedder (trained without one)")
        embedder = KnowledgeEmbedder.from_state(checkpoint.embedder_state)
        variant = variant or checkpoint.variant or DEFAULT_VARIANT
        cache = cache_for(embedder.config)
        if store is not None:
            knowledge = knowledge_from_store(store, embedder, variant, region_ids=checkpoint.region_ids, cache=cache)
        else:
            ontology = ontology if ontology is not None else checkpoint.ontology
            if ontology is None:
                raise ValueError(f"{path}: no ontology stored in the checkpoint; pass ontology= or store=")
            knowledge = build_region_knowledge(ontology, embedder, variant=variant, region_ids=checkpoint.region_ids,
                                               cache=cache)
        torch_device = resolve_device(device)
        return cls(model=checkpoint.model.to(torch_device).eval(), knowledge=knowledge.to(torch_device),
                   embedder=embedder, image_size=checkpoint.config.train.image_size, device=torch_device,
                   precision=checkpoint.config.train.precision, name=name or Path(path).stem,
                   trained_finding_ids=tuple(checkpoint.finding_ids),
                   holdout_findings=tuple(checkpoint.config.train.holdout_findings))

    def with_knowledge(self, knowledge: RegionKnowledge) -> "Predictor":
        """The same model scoring against another graph version's knowledge."""
        return replace(self, knowledge=knowledge.to(self.device))

    def knowledge_for(self, ontology: Ontology, variant: str = DEFAULT_VARIANT) -> RegionKnowledge:
        """Embed ``ontology`` with this predictor's frozen GNN (new nodes included)."""
        if self.embedder is None:
            raise ValueError("this predictor has no knowledge embedder")
        return build_region_knowledge(ontology, self.embedder, variant=variant, region_ids=self.knowledge.region_ids,
                                      cache=cache_for(self.embedder.config))

    @torch.no_grad()
    def outputs(self, images: Sequence[Tensor], *, enrich: bool = True) -> tuple[dict, Tensor]:
        """The model's raw output dict for ``images`` and the resized batch ``[B, 1, S, S]``."""
        if not images:
            raise ValueError("no images to predict")
        resize = Resize(self.image_size)
        batch = []
        for i, image in enumerate(images):
            if image.dim() != 3 or image.shape[0] != 1:
                raise ValueError(f"image {i} must be [1, H, W], got {tuple(image.shape)}")
            batch.append(resize(image.float()))
        stacked = torch.stack(batch).to(self.device)  # [B, 1, S, S]
        with autocast_context(self.device, self.precision):
            out = self.model(stacked, self.knowledge, enrich=enrich)
        return out, stacked

    @torch.no_grad()
    def predict(self, images: Sequence[Tensor], image_ids: Sequence[str] | None = None, *, top_k: int = 3,
                top_nodes: int = 5) -> list[Prediction]:
        """One ``Prediction`` per image; boxes in each image's own pixels."""
        out, _ = self.outputs(images)
        sizes = torch.tensor([[img.shape[-1], img.shape[-2], img.shape[-1], img.shape[-2]] for img in images],
                             dtype=torch.float32)  # [B, 4] (w, h, w, h) per image
        boxes = out["boxes_xyxy"].float().cpu() * sizes[:, None, :]  # [B, R, 4] pixels
        presence = torch.sigmoid(out["presence_logits"].float().cpu())  # [B, R]
        return explain(out, self.knowledge, boxes, top_k, image_ids=image_ids, presence=presence,
                       top_nodes=top_nodes, model=self.name)

    def predict_files(self, paths: Sequence[str | Path], **kwargs) -> list[tuple[Prediction, str]]:
        """Read DICOM/PNG/JPEG files and predict them; ``(prediction, image sha256)`` per file.

        Raises ``ImageReadError`` naming a file that cannot be read (nothing is predicted then).
        """
        images = [read_image(path).image for path in paths]
        predictions = self.predict(images, [Path(p).stem for p in paths], **kwargs)
        return [(p, image_sha256(img)) for p, img in zip(predictions, images)]


__all__ = ["Predictor", "image_sha256"]
