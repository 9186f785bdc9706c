"""The aligner library: model parts, losses, the factory, the checkpoint format, pre/post-processing
and the ``Predictor``. Training, evaluation and studies live in ``anatomy_vlm.training``, which
imports this package; nothing here imports it.

    from anatomy_vlm.alignment import Predictor
    records = Predictor.from_checkpoint("runs/demo/checkpoint.pt").predict_files(["film.dcm"])
"""

from anatomy_vlm.alignment.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from anatomy_vlm.alignment.config import AlignerConfig, ModelConfig
from anatomy_vlm.alignment.enrichment import EnrichmentConfig, KnowledgeEnrichment
from anatomy_vlm.alignment.factory import Aligner, build, build_model, build_transforms
from anatomy_vlm.alignment.heads import AlignmentHeads, HeadsConfig
from anatomy_vlm.alignment.losses import AlignmentCriterion, AlignmentLossConfig, build_criterion
from anatomy_vlm.alignment.model import AnatomyVLM
from anatomy_vlm.alignment.postprocess import PostProcess, image_identity
from anatomy_vlm.alignment.predictor import Predictor

__all__ = [
    "Aligner", "AlignerConfig", "AlignmentCriterion", "AlignmentHeads", "AlignmentLossConfig", "AnatomyVLM", "Checkpoint",
    "EnrichmentConfig", "HeadsConfig", "KnowledgeEnrichment", "ModelConfig", "PostProcess", "Predictor", "build",
    "build_criterion", "build_model", "build_transforms", "image_identity", "load_checkpoint", "save_checkpoint",
]
