"""The one place a configuration becomes the aligner's parts (DETR's ``build``, open_clip's
``create_model_and_transforms``).

``build(config, knowledge)`` returns the model, the criterion of a training stage, the
preprocessing transform and the post-processing; the parts never read the configuration
themselves. The widths that join two parts are wired here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from anatomy_vlm.alignment.config import AlignerConfig, ModelConfig
from anatomy_vlm.alignment.enrichment import KnowledgeEnrichment
from anatomy_vlm.alignment.heads import AlignmentHeads
from anatomy_vlm.alignment.losses import AlignmentCriterion, build_criterion
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.alignment.postprocess import PostProcess
from anatomy_vlm.encoder.anatomy_decoder import AnatomyDecoder
from anatomy_vlm.encoder.preprocess import Preprocess, PreprocessConfig
from anatomy_vlm.encoder.roi import RegionFeature
from anatomy_vlm.encoder.vit import ViT
from anatomy_vlm.knowledge import RegionKnowledge


def build_model(config: ModelConfig, preprocess: PreprocessConfig, knowledge: RegionKnowledge | None = None) -> AnatomyVLM:
    """``AnatomyVLM`` from ``config``; node width (and the region queries' start) from ``knowledge``.

    Without ``knowledge`` (rebuilding from a checkpoint) ``config.node_dim`` must be set; the
    region-init buffer is then zero until the state dict is loaded.
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
    if knowledge is None and config.node_dim is None:
        raise ValueError("build_model needs knowledge or config.node_dim")
    node_dim = int(knowledge.node_embeddings.shape[1]) if knowledge is not None else int(config.node_dim)
    if config.node_dim is not None and config.node_dim != node_dim:
        raise ValueError(f"config.node_dim {config.node_dim} differs from the knowledge's node width {node_dim}")
    vit_config = replace(config.vit, image_size=preprocess.image_size)
    region_init = None
    if config.region_init and knowledge is not None:
        rows = [knowledge.node_ids.index(r) for r in knowledge.region_ids]
        region_init = knowledge.node_embeddings[rows].detach().float().cpu()  # [R, node_dim]
    decoder_config = replace(config.decoder, memory_dim=vit_config.width,
                             region_init_dim=node_dim if config.region_init else None)
    if knowledge is not None and decoder_config.num_regions != knowledge.num_regions:
        raise ValueError(f"decoder has {decoder_config.num_regions} regions, the knowledge {knowledge.num_regions}")
    width = config.region.out_dim
    return AnatomyVLM(
        ViT(vit_config),
        AnatomyDecoder(decoder_config, region_init),
        RegionFeature(replace(config.region, query_dim=decoder_config.width, patch_dim=vit_config.width)),
        KnowledgeEnrichment.from_config(replace(config.enrichment, dim=width, node_dim=node_dim)),
        AlignmentHeads.from_config(replace(config.heads, region_dim=width, image_dim=vit_config.width, node_dim=node_dim)),
        aux_loss=config.aux_loss, enrich=config.enrich,
    )


@dataclass
class Aligner:
    """What :func:`build` returns: the parts of one trained or trainable aligner."""

    model: AnatomyVLM
    criterion: AlignmentCriterion  # of the loss config's stage; ``build_criterion`` makes the others
    preprocess: Preprocess
    postprocess: PostProcess


def build_transforms(config: AlignerConfig) -> tuple[Preprocess, PostProcess]:
    """The preprocessing (image -> model input, and its inverse for boxes) and the post-processing."""
    return Preprocess.from_config(config.preprocess), PostProcess()


def build(config: AlignerConfig, knowledge: RegionKnowledge | None = None) -> Aligner:
    """Model, criterion, preprocessing and post-processing from one config."""
    preprocess, postprocess = build_transforms(config)
    return Aligner(model=build_model(config.model, config.preprocess, knowledge),
                   criterion=build_criterion(config.loss), preprocess=preprocess, postprocess=postprocess)


__all__ = ["Aligner", "build", "build_model", "build_transforms"]
