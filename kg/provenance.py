"""The prediction record: what a model saw and predicted for one image, by graph id.

One shape from post-processing to the CLI, the API and the graph: ``alignment.postprocess``
builds a ``ProvenanceRecord`` per image, the CLI prints it, the API's ``PredictOut`` maps it field
for field, and ``GraphStore.write_provenance`` writes it. Each class is one graph node kind:
``ProvenanceRecord`` the ``:Image`` and its run, ``RegionOfInterest`` a ``:ROI``,
``PredictionRecord`` a ``:Prediction``. Identities: the image id comes from the pixels' hash
(``image_id_for``), so the same image gets one ``:Image`` node whichever entry point saw it;
``PredictionId`` builds and parses prediction ids.

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

import hashlib
from dataclasses import dataclass, field

from anatomy_vlm.kg.types import DEFAULT_VARIANT

from anatomy_vlm.typing import Box  # (x1, y1, x2, y2) in pixels of the stored image


def image_id_for(sha256: str) -> str:
    """The ``:Image`` id of an image: its pixel hash, so re-predicting it replaces its run."""
    if len(sha256) < 16:
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"img-{sha256[:16]}"


def pixel_sha256(pixels: bytes) -> str:
    """SHA-256 of an image's decoded pixels (float32 bytes in row order)."""
    return hashlib.sha256(pixels).hexdigest()


@dataclass(frozen=True)
class PredictionId:
    """``<image_id>/<run_id>/prediction/<finding_id>``: the id of one ``:Prediction`` node."""

    image_id: str
    run_id: str  # "<model>@<variant>"
    finding_id: str

    SEPARATOR = "/prediction/"

    def __str__(self) -> str:
        return f"{self.image_id}/{self.run_id}{self.SEPARATOR}{self.finding_id}"

    @property
    def variant(self) -> str:
        return self.run_id.rpartition("@")[2]

    @classmethod
    def parse(cls, text: str) -> "PredictionId":
        """The parts of a prediction id; ``ValueError`` naming the expected form when it has another."""
        head, sep, finding_id = text.rpartition(cls.SEPARATOR)
        image_id, slash, run_id = head.partition("/")
        if not (sep and slash and image_id and run_id and finding_id):
            raise ValueError(f"{text!r} is not a prediction id (<image>/<model>@<variant>/prediction/<finding>)")
        return cls(image_id, run_id, finding_id)


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
    width: int = 0  # pixels of the image the boxes are in (0: not recorded)
    height: int = 0

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
        return str(PredictionId(self.image_id, self.run_id, finding_id))

    def ranked(self) -> list[PredictionRecord]:
        """The predictions, most probable first (ties by finding id)."""
        return sorted(self.predictions, key=lambda p: (-p.score, p.finding_id))

    def roi(self, region: str) -> RegionOfInterest:
        for roi in self.rois:
            if roi.region == region:
                return roi
        raise KeyError(f"image {self.image_id!r} has no ROI {region!r}")
