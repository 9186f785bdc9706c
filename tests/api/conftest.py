"""Fixtures of the API tests: a tiny trained checkpoint, and a running app per graph backend.

``api`` is parametrised over the real Neo4j server and the embedded ArcadeDB engine (the session
servers of tests/conftest.py). Per test module and backend, the graph is wiped and the built
ontology synced into it (the ontology the tiny model scores), the curated sources are copied to a
temp folder (curation edits the copy), three API keys are created, and the app runs under
``TestClient`` with its lifespan (graph opened and model loaded as in production).
"""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from anatomy_vlm.api.app import create_app
from anatomy_vlm.api.auth import KeyStore
from anatomy_vlm.api.settings import Settings
from anatomy_vlm.kg import GraphStore, dialect_of_driver
from anatomy_vlm.ontology.build import BUILT_OWL_PATH
from anatomy_vlm.ontology.files import load_ontology
from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR
from tests.conftest import BACKENDS, wipe


@pytest.fixture(scope="session")
def built_ontology():
    return load_ontology(BUILT_OWL_PATH)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, built_ontology) -> Path:
    """A tiny aligner trained for 4 steps on 8 phantoms (about 30 s on 2 cores)."""
    from anatomy_vlm.knowledge import KnowledgeConfig, KnowledgeEmbedder, build_knowledge
    from anatomy_vlm.training.config import load_config
    from anatomy_vlm.training.trainer import train
    from anatomy_vlm.datasets.phantom.dataset import PhantomDataset
    from anatomy_vlm.datasets.phantom.generate import generate_phantoms

    tmp = tmp_path_factory.mktemp("api-checkpoint")
    generate_phantoms(8, tmp / "ph", seed=0, size=64, progress=False)
    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(str(repo / "training/configs/tiny.yaml"), steps_per_stage=(2, 1, 1), out_dir=str(tmp / "run"),
                      progress=False)
    cfg.knowledge = KnowledgeConfig(text_encoder="hashing", pretrain_epochs=5, cache_dir="")
    embedder = KnowledgeEmbedder.fit(built_ontology, cfg.knowledge)
    knowledge = build_knowledge(built_ontology, embedder)
    result = train(cfg, knowledge, PhantomDataset(tmp / "ph"), embedder=embedder, ontology=built_ontology)
    return Path(result.checkpoint)


@dataclass
class Api:
    client: TestClient
    store: GraphStore
    backend: str
    settings: Settings
    keys: dict[str, str]  # role -> key
    key_store: KeyStore

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}


def settings_for(backend: str, request, tmp: Path, **overrides) -> Settings:
    graph = {}
    if backend == "neo4j":
        uri, user, password = request.getfixturevalue("neo4j_server")
        graph = {"neo4j_uri": uri, "neo4j_user": user, "neo4j_password": password}
    else:
        graph = {"neo4j_uri": None, "graph_path": request.getfixturevalue("embedded_server").path}
    sources = tmp / "sources"
    if not sources.exists():
        shutil.copytree(DEFAULT_SOURCES_DIR, sources, ignore=shutil.ignore_patterns("*.md", "audit.jsonl"))
    values = dict(keys_file=tmp / "keys.json", sources_dir=sources, state_dir=tmp / "state", **graph)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module", params=BACKENDS)
def api(request, drivers, checkpoint, built_ontology, tmp_path_factory) -> Api:
    backend = request.param
    driver, database = drivers(backend)
    wipe(driver, database)
    store = GraphStore(driver, database=database, dialect=dialect_of_driver(driver))
    store.sync(built_ontology)
    tmp = tmp_path_factory.mktemp(f"api-{backend}")
    settings = settings_for(backend, request, tmp, checkpoint=checkpoint)
    key_store = KeyStore(settings.keys_file)
    keys = {role: key_store.create(f"{role}-tester", role)[0] for role in ("reader", "curator", "admin")}
    with TestClient(create_app(settings)) as client:
        yield Api(client, store, backend, settings, keys, key_store)


# -- images -----------------------------------------------------------------------------------
def png_bytes(width: int = 80, height: int = 96, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 72, height: int = 64, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def dicom_bytes(width: int = 64, height: int = 70, seed: int = 2) -> bytes:
    """A small MONOCHROME2 16-bit DICOM (explicit VR little endian) written with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    rng = np.random.default_rng(seed)
    ds.PixelData = rng.integers(0, 4096, (height, width), dtype=np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def huge_png_header(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` 8-bit gray, with one tiny IDAT: no pixels allocated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def node_count(store: GraphStore) -> tuple[int, int]:
    with store.driver.session(database=store.database) as session:
        nodes = session.run("MATCH (n) RETURN count(n) AS n").single()["n"]
        relationships = session.run("MATCH ()-[r]->() RETURN count(r) AS n").single()["n"]
    return nodes, relationships
