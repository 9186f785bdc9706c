"""The web viewer, end to end: the real service (uvicorn, a tiny trained checkpoint, the embedded
graph) driven by Debian's headless chromium through playwright-core (tests/e2e/viewer.e2e.mjs).

The Node script uploads a phantom radiograph with persist on, waits for the region boxes and the
findings, opens the top finding's explanation (subgraph and Cypher), uploads a DICOM without
persisting, searches the ontology and runs Cypher; it saves viewer.png (the page with
an explanation) and its _explanation/_ontology siblings. Chromium, node and playwright-core are
installed by ``scripts/install_chromium.sh``; when they are missing this test fails saying so.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anatomy_vlm.kg import GraphStore, dialect_of_driver

REPO = Path(__file__).resolve().parents[2]
E2E = REPO / "tests" / "e2e"
SCRIPT = E2E / "viewer.e2e.mjs"
INSTALL = "scripts/install_chromium.sh"
CHROMIUM = Path("/usr/bin/chromium")
# The screenshots go to the test's temporary folder; `make viewer-screenshots` sets this variable to
# docs/images to refresh the pictures in the docs (a test run never rewrites tracked files).
SCREENSHOT_DIR_ENV = "ANATOMY_VLM_SCREENSHOT_DIR"

pytestmark = [pytest.mark.slow, pytest.mark.embedded, pytest.mark.timeout(600)]


def _missing_browser_tools() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Node.js 20 or newer)")
    if not CHROMIUM.exists():
        missing.append(f"Debian's chromium at {CHROMIUM}")
    if not (E2E / "node_modules" / "playwright-core").is_dir():
        missing.append(f"playwright-core in {E2E / 'node_modules'}")
    return missing


@pytest.fixture(scope="module")
def upload_images(tmp_path_factory):
    """A phantom radiograph as PNG (larger than the model's input, as a real upload is) and the
    same pixels as a 16-bit MONOCHROME2 DICOM."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    from anatomy_vlm.datasets.phantom.generate import generate_phantoms

    tmp = tmp_path_factory.mktemp("viewer-images")
    generate_phantoms(1, tmp / "ph", seed=7, size=256, progress=False)
    png = next((tmp / "ph" / "images").glob("*.png"))
    pixels = np.asarray(Image.open(png)).astype(np.uint16)  # [H, W], 16-bit grey

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.tobytes()
    dicom = tmp / "phantom.dcm"
    ds.save_as(dicom, enforce_file_format=True)
    return png, dicom


@pytest.fixture
def service(checkpoint, built_ontology, embedded_driver, embedded_server, tmp_path):
    """The real API on a free loopback port over the session's embedded graph (emptied, then
    holding the checkpoint's ontology as the canonical variant); yields (url, curator key).

    ``checkpoint`` (a tiny aligner trained for 4 steps) and ``built_ontology`` come from
    tests/api/conftest.py; uvicorn serves the app for real, since a browser needs a socket."""
    import uvicorn

    from anatomy_vlm.api.app import create_app
    from anatomy_vlm.api.auth import KeyStore, Role
    from anatomy_vlm.api.settings import Settings
    from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR

    driver, database = embedded_driver
    with driver.session(database=database) as session:
        session.run("MATCH (n) DETACH DELETE n").consume()
    store = GraphStore(driver, database=database, dialect=dialect_of_driver(driver))
    store.ensure_schema()
    store.sync(built_ontology)

    keys_file = tmp_path / "api-keys.json"
    key, _ = KeyStore(keys_file).create("viewer-e2e", Role.CURATOR)
    # A copy of the curated sources: nothing the service does can touch the repository's.
    sources = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    user, password = embedded_server.credentials()
    settings = Settings(neo4j_uri=embedded_server.uri, neo4j_user=user, neo4j_password=password,
                        neo4j_database=database, checkpoint=checkpoint, device="cpu", keys_file=keys_file,
                        sources_dir=sources, state_dir=tmp_path / "state", audit_log=tmp_path / "audit.jsonl")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="viewer-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the API server did not start (see the log above)", pytrace=False)
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(timeout=30)


def test_viewer_end_to_end_in_headless_chromium(request, tmp_path):
    # Checked before the (slow) model and server fixtures are asked for: a missing tool fails at once.
    missing = _missing_browser_tools()
    if missing:
        pytest.fail(f"the viewer's end-to-end test needs {', '.join(missing)}: run `sudo {INSTALL}` "
                    f"(apt-get install chromium; npm ci in tests/e2e)", pytrace=False)
    url, key = request.getfixturevalue("service")
    png, dicom = request.getfixturevalue("upload_images")
    import os

    folder = Path(os.environ.get(SCREENSHOT_DIR_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    screenshot = folder / "viewer.png"
    screenshot.unlink(missing_ok=True)
    run = subprocess.run(
        [shutil.which("node"), str(SCRIPT), "--url", url, "--key", key, "--image", str(png), "--dicom", str(dicom),
         "--out", str(screenshot)],
        cwd=REPO, capture_output=True, text=True, timeout=420,
    )
    assert run.returncode == 0, f"viewer e2e failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    report = json.loads(run.stdout)
    assert report["ok"] and report["subgraph_nodes"] >= 3 and report["findings"] > 0 and report["boxes"] > 0

    for path in (screenshot, screenshot.with_name("viewer_explanation.png"), screenshot.with_name("viewer_ontology.png")):
        assert path.is_file(), f"{path} was not saved"
        with Image.open(path) as shot:
            width, height = shot.size
            assert width >= 800 and height >= 400, f"{path} is only {width}x{height}"
            colours = shot.convert("RGB").getcolors(maxcolors=1 << 16)
            # getcolors returns None when there are more colours than maxcolors: clearly not blank.
            assert colours is None or len(colours) > 50, f"{path} is nearly one colour ({len(colours)} colours)"
    assert screenshot.stat().st_size > 20_000
