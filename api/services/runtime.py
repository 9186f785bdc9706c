"""What the service holds while it runs: the graph connection, the model, caches and limits.

Created by the app's lifespan (never at import): ``Runtime.start`` opens the graph (the embedded
engine when no URI is set) and loads the model. A graph or model that cannot be had does not stop
the service: ``/ready`` says which is missing and why, and the endpoints that need it answer 503;
the graph is tried again on the next request that needs it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from anatomy_vlm.api.auth import KeyStore
from anatomy_vlm.api.services.errors import ServiceError
from anatomy_vlm.api.settings import Settings
from anatomy_vlm.exceptions import AnatomyVLMError
from anatomy_vlm.ontology.model import Ontology

log = logging.getLogger(__name__)


class GraphHandle:
    """The graph connection, (re)opened on demand; ``store()`` raises 503 while it cannot be had."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._connection = None
        self.error: str | None = None

    def open(self) -> bool:
        from anatomy_vlm.kg.backends import GraphConnection

        with self._lock:
            if self._connection is not None:
                return True
            try:
                self._connection = GraphConnection(self.settings.graph_config()).open()
                self.error = None
            except AnatomyVLMError as error:
                self.error = str(error)
                log.warning("graph unavailable: %s", error)
            return self._connection is not None

    def store(self):
        """The open ``GraphStore``; 503 naming the problem when the graph cannot be reached."""
        if self._connection is None and not self.open():
            raise ServiceError(503, f"graph database unavailable: {self.error}")
        return self._connection.store

    def reachable(self) -> bool:
        try:
            self.store().driver.verify_connectivity()
            return True
        except ServiceError:
            return False
        except Exception as error:  # the driver's own errors: the server went away
            self.error = f"graph database unreachable: {error}"
            return False

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class ModelHandle:
    """The ``Predictor`` and the graph version its knowledge was built from.

    When the served variant's version changes (a curator published a change), the knowledge is
    rebuilt from the graph with the checkpoint's frozen embedder before the next prediction
    (``Predictor.refreshed``), so what the model scores is what the graph holds (new findings
    included, zero-shot).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.predictor = None
        self.error: str | None = None if settings.checkpoint else "no checkpoint configured (serve --checkpoint)"
        self._lock = threading.Lock()

    def load(self, graph: GraphHandle) -> None:
        from anatomy_vlm.alignment import Predictor

        if self.settings.checkpoint is None:
            return
        try:
            store = graph.store()
            self.predictor = Predictor.from_checkpoint(self.settings.checkpoint, source=store,
                                                       variant=self.settings.variant, device=self.settings.device)
            self.error = None
        except (AnatomyVLMError, ValueError, OSError, KeyError, RuntimeError) as error:
            self.error = f"model not loaded from {self.settings.checkpoint}: {error}"
            log.warning("%s", self.error)

    def current(self, graph: GraphHandle):
        """The predictor, its knowledge matching the graph's current version of the variant."""
        if self.predictor is None:
            if self.settings.checkpoint is not None and self.error and graph.error is None:
                self.load(graph)  # the graph was down at start-up; try again
            if self.predictor is None:
                raise ServiceError(503, f"no model loaded: {self.error}")
        store = graph.store()
        with self._lock:
            self.predictor = self.predictor.refreshed(store)
            return self.predictor


@dataclass
class OntologyCache:
    """Each variant's ontology read back from the graph, kept while the variant's version stays the same.

    Concept search and names in responses read this instead of the graph on every request; one
    version check (a single indexed read) tells when to read the variant again.
    """

    _entries: dict[str, tuple[str, Ontology]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, store, variant: str) -> Ontology:
        info = store.variant(variant)
        if info is None:
            known = ", ".join(v.name for v in store.list_variants()) or "none"
            raise ServiceError(404, f"no knowledge variant named {variant!r} (known: {known})")
        with self._lock:
            cached = self._entries.get(variant)
            if cached is not None and cached[0] == info.version:
                return cached[1]
        ontology = store.read_ontology(variant)
        self.put(variant, info.version, ontology)
        return ontology

    def put(self, variant: str, version: str, ontology: Ontology) -> None:
        """Keep ``ontology`` as ``variant``'s content at ``version`` (curation publishes it; reading
        the variant back would cost about as much as the sync). ``get`` uses it only once the graph
        records that version."""
        with self._lock:
            self._entries[variant] = (version, ontology)


@dataclass
class Runtime:
    settings: Settings
    keys: KeyStore
    graph: GraphHandle
    model: ModelHandle
    ontologies: OntologyCache
    curation_lock: threading.Lock  # one curation change at a time in this process (see services.curation)
    predict_slots: threading.BoundedSemaphore
    provenance_lock: threading.Lock  # one provenance write at a time (see services.predict.write_provenance)

    @classmethod
    def start(cls, settings: Settings) -> "Runtime":
        runtime = cls(
            settings=settings,
            keys=KeyStore(settings.keys_file),
            graph=GraphHandle(settings),
            model=ModelHandle(settings),
            ontologies=OntologyCache(),
            curation_lock=threading.Lock(),
            predict_slots=threading.BoundedSemaphore(settings.predict_workers),
            provenance_lock=threading.Lock(),
        )
        if runtime.graph.open():
            runtime.model.load(runtime.graph)
        return runtime

    def close(self) -> None:
        self.graph.close()


__all__ = ["GraphHandle", "ModelHandle", "OntologyCache", "Runtime"]
