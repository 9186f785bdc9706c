"""``/predict``: an uploaded image checked, decoded, scored, optionally persisted, and described.

Order matters for bad input: the declared type and the file's signature (415), then the header's
size (413) and only then decoding (422 for a cut or corrupt file). Nothing touches the graph until
the prediction exists, and the provenance is written in one transaction, so a bad upload never
changes the graph.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO

from anatomy_vlm.api import schemas
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.api.services.runtime import Runtime
from anatomy_vlm.api.services.uploads import SUFFIX, check_size, decode, read_header, sniff
from anatomy_vlm.exceptions import GraphStoreError, GraphUnavailableError, UnknownConceptError


WRITE_ATTEMPTS = 3  # a provenance write that hit a concurrent one is tried again (it rolled back whole)


def write_provenance(runtime: Runtime, store, record) -> None:
    """Write one image's provenance; writes from this process go one at a time.

    Two images' provenance both add edges to the same Anatomy and Finding nodes. ArcadeDB keeps a
    node's edges in the node's record, so two such transactions at once conflict and one fails;
    serialising them here avoids that, and a conflict with another process's write is retried.
    """
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with runtime.provenance_lock:
                store.write_provenance(record)
            return
        except UnknownConceptError:
            raise
        except GraphStoreError as error:
            if attempt == WRITE_ATTEMPTS or isinstance(error, GraphUnavailableError):
                raise
            time.sleep(0.05 * attempt)


def spool_upload(source: BinaryIO, filename: str, content_type: str, folder: Path) -> tuple[Path, str]:
    """Copy the upload into a file the image readers can open; returns ``(path, kind)``."""
    source.seek(0)
    head = source.read(132)
    kind = sniff(head, filename, content_type)
    source.seek(0)
    path = folder / f"upload{SUFFIX[kind]}"
    with path.open("wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)
    return path, kind


def predict_upload(
    runtime: Runtime,
    source: BinaryIO,
    filename: str,
    content_type: str,
    *,
    persist: bool,
    top_k: int,
    min_probability: float,
    cancelled: threading.Event,
) -> schemas.PredictOut:
    """Check, decode and score one upload; with ``persist`` write its provenance (unless ``cancelled``)."""
    from anatomy_vlm.encoder.io import ImageBudget

    settings = runtime.settings
    budget = ImageBudget(max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
    with tempfile.TemporaryDirectory(prefix="anatomy-vlm-upload-") as folder:
        path, kind = spool_upload(source, filename, content_type, Path(folder))
        header = read_header(path, kind, filename, budget)  # 415/413/422 from the header, before any slot
        check_size(header, settings.max_image_side, settings.max_image_pixels, filename)
        # Decoding can cost more memory than scoring, so it holds a worker slot too: at most
        # predict_workers uploads are decoded or scored at once.
        with runtime.predict_slots:
            if cancelled.is_set():
                raise ServiceError(504, "prediction timed out while waiting for a free worker")
            image = decode(path, filename, header, budget)  # [1, H, W] float32 in [0, 1]
            predictor = runtime.model.current(runtime.graph)
            record = predictor.predict([image], top_k=top_k)[0]
    store = runtime.graph.store()
    persisted = False
    if persist:
        if cancelled.is_set():
            raise ServiceError(504, "prediction timed out before its provenance was written; nothing was written")
        try:
            write_provenance(runtime, store, record)
        except UnknownConceptError as error:
            raise ServiceError(409, f"provenance not written: {error} (the graph changed since the model's "
                                    "knowledge was built; retry)") from error
        persisted = True
    return predict_out(record, runtime.ontologies.get(store, record.variant), persisted=persisted,
                       min_probability=min_probability)


def predict_out(record, ontology, *, persisted: bool, min_probability: float = 0.0) -> schemas.PredictOut:
    """The record, field for field, with concept names for the reader; findings most probable first."""

    def name(concept_id: str) -> str:
        return ontology[concept_id].name if concept_id in ontology else concept_id

    regions = [
        schemas.RegionOut(id=roi.region, name=name(roi.anatomy_id), anatomy_id=roi.anatomy_id, box=list(roi.box),
                          presence=roi.score,
                          attention=[schemas.NodeWeightOut(id=n, name=name(n), weight=w) for n, w in roi.attention])
        for roi in record.rois
    ]
    findings = [
        schemas.FindingOut(finding_id=p.finding_id, name=name(p.finding_id), probability=p.score,
                           prediction_id=record.prediction_id(p.finding_id),
                           evidence=[schemas.EvidenceWeightOut(region=r, weight=w) for r, w in p.evidence])
        for p in record.ranked() if p.score >= min_probability
    ]
    return schemas.PredictOut(
        image_id=record.image_id, image_sha256=record.image_sha256, width=record.width, height=record.height,
        model=record.model, run_id=record.run_id, graph_version=record.graph_version, variant=record.variant,
        persisted=persisted, regions=regions, findings=findings,
    )
