"""Provenance records: what a model saw and predicted for one image, by graph id.

Written to the graph by ``GraphStore.write_provenance`` in one transaction per image, following
DESIGN.md's schema::

    (:Image {id, sha256})-[:HAS_ROI]->(:ROI {region, box, score})-[:DEPICTS]->(:Anatomy)
    (:Prediction {id, score, model, graph_version})-[:PREDICTS]->(:Finding)
    (:Prediction)-[:FOR_IMAGE]->(:Image)
    (:Prediction)-[:EVIDENCE {weight}]->(:ROI)
    (:ROI)-[:ATTENDED {weight}]->(:Concept)

A *run* is one model (on one knowledge variant) predicting one image; writing the same run again
replaces what it wrote before, so re-predicting an image never duplicates ROIs or predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anatomy_vlm.kg.types import DEFAULT_VARIANT

Box = tuple[float, float, float, float]  # (x1, y1, x2, y2) in pixels of the stored image


def _strongest_first(pairs) -> tuple[tuple[str, float], ...]:
    """(name, weight) pairs ordered by weight, heaviest first, ties by name: one canonical order."""
    return tuple(sorted(((str(n), float(w)) for n, w in pairs), key=lambda p: (-p[1], p[0])))


@dataclass(frozen=True)
class RegionOfInterest:
    region: str  # the region's name as the model knows it, e.g. "right upper lung zone"
    anatomy_id: str  # the Anatomy node the ROI depicts
    box: Box
    score: float  # presence / localisation confidence
    attention: tuple[tuple[str, float], ...] = ()  # (concept id, weight) of the enrichment, strongest first

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError(f"ROI {self.region!r}: box must have 4 numbers, got {len(self.box)}")
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "attention", _strongest_first(self.attention))


@dataclass(frozen=True)
class PredictionRecord:
    finding_id: str  # the Finding (or Disease) node scored
    score: float  # probability
    evidence: tuple[tuple[str, float], ...] = ()  # (region, weight): the ROIs the score pooled, strongest first

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _strongest_first(self.evidence))


@dataclass(frozen=True)
class ProvenanceRecord:
    image_id: str
    image_sha256: str
    model: str  # model name or checkpoint id
    graph_version: str  # content hash of the variant the model used
    variant: str = DEFAULT_VARIANT
    rois: tuple[RegionOfInterest, ...] = ()
    predictions: tuple[PredictionRecord, ...] = ()
    run_id: str = field(default="")  # defaults to "<model>@<variant>"

    def __post_init__(self) -> None:
        if not self.run_id:
            object.__setattr__(self, "run_id", f"{self.model}@{self.variant}")
        object.__setattr__(self, "rois", tuple(sorted(self.rois, key=lambda r: r.region)))
        object.__setattr__(self, "predictions", tuple(sorted(self.predictions, key=lambda p: p.finding_id)))
        regions = [r.region for r in self.rois]
        if len(set(regions)) != len(regions):
            raise ValueError(f"image {self.image_id!r}: a region appears twice among the ROIs")
        for prediction in self.predictions:
            for region, _ in prediction.evidence:
                if region not in regions:
                    raise ValueError(
                        f"image {self.image_id!r}: prediction {prediction.finding_id!r} cites "
                        f"region {region!r}, which is not among the ROIs"
                    )

    def roi_id(self, region: str) -> str:
        return f"{self.image_id}/{self.run_id}/roi/{region}"

    def prediction_id(self, finding_id: str) -> str:
        return f"{self.image_id}/{self.run_id}/prediction/{finding_id}"
