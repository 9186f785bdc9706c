"""Prediction with a trained aligner: images in, one ``ProvenanceRecord`` per image out.

``Predictor`` is what the CLI's ``predict``, the demo and the service hold: a model loaded from a
checkpoint, the ``RegionKnowledge`` of the graph version it scores against, the preprocessing
transform and the post-processing the factory built, and the device. The path of one image:
``Preprocess`` (any size -> the model's square input, geometry recorded) -> ``AnatomyVLM`` ->
``PostProcess`` (boxes back to the image's pixels through the transform's inverse; findings,
evidence ROIs, attended graph nodes) -> ``ProvenanceRecord``.

The knowledge follows the graph: :meth:`Predictor.refreshed` rebuilds it when the variant's
version changed (a curator published a change), with the checkpoint's frozen GNN, so findings
added since training are scored too (zero-shot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from anatomy_vlm.alignment.checkpoint import load_checkpoint
from anatomy_vlm.alignment.device import autocast_context, resolve_device
from anatomy_vlm.alignment.factory import build_transforms
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.alignment.postprocess import PostProcess, image_identity
from anatomy_vlm.encoder.io import read_image
from anatomy_vlm.encoder.preprocess import ImageGeometry, Preprocess
from anatomy_vlm.kg.provenance import ProvenanceRecord
from anatomy_vlm.kg.types import DEFAULT_VARIANT
from anatomy_vlm.knowledge import KnowledgeEmbedder, RegionKnowledge, build_knowledge, cache_for
from anatomy_vlm.ontology.model import Ontology


@dataclass
class Predictor:
    """A trained model and the knowledge it scores against, ready for images.

    Shapes: ``predict`` takes images ``[1, H, W]`` float32 in ``[0, 1]`` of any size and returns one
    ``ProvenanceRecord`` per image, boxes in that image's pixels.
    """

    model: AnatomyVLM
    knowledge: RegionKnowledge
    embedder: KnowledgeEmbedder | None  # rebuilds the knowledge from another graph version
    preprocess: Preprocess
    postprocess: PostProcess
    device: torch.device
    precision: str = "bf16"  # autocast on CUDA only; CPU always runs fp32
    name: str = "anatomy-vlm"  # written as the provenance ``model``; the checkpoint's file stem by default
    trained_finding_ids: tuple[str, ...] = ()  # the findings the checkpoint's knowledge listed in training
    holdout_findings: tuple[str, ...] = ()  # of those, the ones whose labels training withheld (zero-shot)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, source: Ontology | object | None = None, variant: str | None = None,
                        device: str = "auto", name: str | None = None) -> "Predictor":
        """Load ``path`` and build the knowledge from ``source`` (an ``Ontology`` or a ``GraphStore``,
        whose ``variant`` is read), or from the ontology stored in the checkpoint when it is ``None``."""
        checkpoint = load_checkpoint(path)
        if checkpoint.embedder_state is None:
            raise ValueError(f"{path}: the checkpoint holds no knowledge embedder (trained without one)")
        embedder = KnowledgeEmbedder.from_state(checkpoint.embedder_state)
        variant = variant or checkpoint.variant or DEFAULT_VARIANT
        source = source if source is not None else checkpoint.ontology
        if source is None:
            raise ValueError(f"{path}: no ontology stored in the checkpoint; pass source= (an ontology or a graph store)")
        knowledge = build_knowledge(source, embedder, variant=variant, region_ids=checkpoint.region_ids,
                                    cache=cache_for(embedder.config))
        preprocess, postprocess = build_transforms(checkpoint.config)
        torch_device = resolve_device(device)
        return cls(model=checkpoint.model.to(torch_device).eval(), knowledge=knowledge.to(torch_device),
                   embedder=embedder, preprocess=preprocess, postprocess=postprocess, device=torch_device,
                   name=name or Path(path).stem, trained_finding_ids=tuple(checkpoint.finding_ids),
                   holdout_findings=tuple(checkpoint.holdout_findings))

    def with_knowledge(self, knowledge: RegionKnowledge) -> "Predictor":
        """The same model scoring against another graph version's knowledge."""
        return replace(self, knowledge=knowledge.to(self.device))

    def refreshed(self, store) -> "Predictor":
        """This predictor, or a copy whose knowledge matches what ``store`` now holds in its variant."""
        version = store.version(self.knowledge.variant)
        if version is None or version == self.knowledge.graph_version:
            return self
        if self.embedder is None:
            raise ValueError("this predictor has no knowledge embedder to embed the new graph version")
        return self.with_knowledge(build_knowledge(store, self.embedder, variant=self.knowledge.variant,
                                                   region_ids=self.knowledge.region_ids,
                                                   cache=cache_for(self.embedder.config)))

    @torch.no_grad()
    def outputs(self, images: Sequence[Tensor], *, enrich: bool | None = None) -> tuple[dict, list[ImageGeometry]]:
        """The model's raw output dict for ``images`` and each image's preprocessing geometry."""
        if not images:
            raise ValueError("no images to predict")
        batch, geometries = [], []
        for i, image in enumerate(images):
            if image.dim() != 3 or image.shape[0] != 1:
                raise ValueError(f"image {i} must be [1, H, W], got {tuple(image.shape)}")
            tensor, geometry = self.preprocess(image)
            batch.append(tensor)
            geometries.append(geometry)
        stacked = torch.stack(batch).to(self.device)  # [B, 1, S, S]
        with autocast_context(self.device, self.precision):
            out = self.model(stacked, self.knowledge, enrich=enrich)
        return out, geometries

    @torch.no_grad()
    def predict(self, images: Sequence[Tensor], *, top_k: int = 3, top_nodes: int = 5) -> list[ProvenanceRecord]:
        """One record per image; image ids from the pixels' hash, boxes in each image's own pixels."""
        out, geometries = self.outputs(images)
        return self.postprocess(out, self.knowledge, geometries, [image_identity(image) for image in images],
                                self.preprocess, top_k=top_k, top_nodes=top_nodes, model=self.name)

    def predict_files(self, paths: Sequence[str | Path], **kwargs) -> list[ProvenanceRecord]:
        """Read DICOM/PNG/JPEG files and predict them (``ImageReadError`` naming a file that cannot be read)."""
        return self.predict([read_image(path).image for path in paths], **kwargs)


__all__ = ["Predictor"]
