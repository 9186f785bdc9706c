"""Knowledge enrichment, alignment heads, losses, metrics and explanations; training, evaluation and
prediction live in ``train``, ``pipeline`` and ``inference``."""

from anatomy_vlm.alignment.enrichment import EnrichmentConfig, KnowledgeEnrichment
from anatomy_vlm.alignment.explanation import Explanation, FindingPrediction, Prediction, explain, to_provenance
from anatomy_vlm.alignment.heads import AlignmentHeads, HeadsConfig
from anatomy_vlm.alignment.knowledge import RegionKnowledge, neighbourhoods_from_ontology, scored_finding_ids
from anatomy_vlm.alignment.losses import AlignmentCriterion, AlignmentLossConfig, build_criterion

__all__ = [
    "AlignmentCriterion", "AlignmentHeads", "AlignmentLossConfig", "EnrichmentConfig", "Explanation",
    "FindingPrediction", "HeadsConfig", "KnowledgeEnrichment", "Prediction", "RegionKnowledge", "build_criterion",
    "explain", "neighbourhoods_from_ontology", "scored_finding_ids", "to_provenance",
]
