"""Peak server memory per upload for the memory attacks of issue 14 (R4), through the real app.

Each case runs in a fresh process: the app is started (its graph pointed at a closed port, so no
model loads and ``/predict`` would answer 503 after decoding: what is measured is everything up to
and including the decode), a small warm-up upload loads the readers' imports, then the case is
posted (once, or twice at the same time) and the growth of the process's peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over the warm-up peak is reported.

Cases (built by tests/api/upload_corpus.py): a 130 KB 16-bit PNG of 8192 x 8192, a 130 KB deflated
DICOM of 8192 x 8192 x 16 bit, a 4 MB deflated DICOM whose 16 x 16 header hides 4 GB of pixel
data, an 11 KB JPEG whose frame header is patched to 8192 x 8192, and a legitimate 25-megapixel
16-bit PNG and deflated DICOM (the largest images the default budget admits).

Run it with this checkout's interpreter for the figures "after", and with an older checkout's
(``/path/to/old/.venv/bin/python benchmarks/upload_memory.py --label before``) for "before": the
script only uses ``create_app``, ``Settings`` and ``TestClient``, which both have. ``--max-pixels``
raises the pixel budget, to measure the decoding pipeline itself at 8192 x 8192.

    .venv/bin/python benchmarks/upload_memory.py [--label after] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "png16-8192": ("bomb16.png", "image/png", "16-bit PNG, 8192 x 8192 zeros"),
    "dicom-deflated-8192": ("bomb.dcm", "application/dicom", "deflated DICOM, 8192 x 8192 x 16 bit zeros"),
    "dicom-deflated-4gb": ("infl4g.dcm", "application/dicom", "deflated DICOM, 16 x 16 header, 4 GB inflated"),
    "jpeg-patched-8192": ("patched.jpg", "image/jpeg", "JPEG with its SOF patched to 8192 x 8192"),
    "png16-25mp": ("p25.png", "image/png", "16-bit PNG, 5000 x 5000 (25 MP, within the default budget)"),
    "dicom-deflated-25mp": ("d25.dcm", "application/dicom", "deflated DICOM, 5000 x 5000 x 16 bit (25 MP, within it)"),
}


def _corpus():
    """tests/api/upload_corpus.py loaded by its path: putting this checkout on ``sys.path`` would
    shadow the interpreter's own ``anatomy_vlm`` (an older checkout's venv must measure its code)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("upload_corpus", REPO / "tests" / "api" / "upload_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build(case: str) -> bytes:
    upload_corpus = _corpus()

    if case == "png16-8192":
        return upload_corpus.png16(8192, 8192)
    if case == "png16-25mp":
        return upload_corpus.png16(5000, 5000)
    if case == "dicom-deflated-8192":
        return upload_corpus.deflated_dicom(8192, 8192)
    if case == "dicom-deflated-25mp":
        return upload_corpus.deflated_dicom(5000, 5000)
    if case == "dicom-deflated-4gb":
        return upload_corpus.deflated_dicom(16, 16, pixel_bytes=4_000_000_000)
    if case == "jpeg-patched-8192":
        return next(u.data for u in upload_corpus.malformed_uploads() if u.filename == "patched.jpg")
    raise ValueError(f"unknown case {case!r}")


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(case: str, concurrent: int, max_pixels: int | None, tmp: Path) -> dict:
    """Runs in the fresh process: start the app, warm up, post the case, measure."""
    import threading

    import numpy as np
    from fastapi.testclient import TestClient
    from PIL import Image

    from anatomy_vlm.api.app import create_app
    from anatomy_vlm.api.auth import KeyStore
    from anatomy_vlm.api.settings import Settings
    from anatomy_vlm.api.services import uploads

    data = build(case)
    filename, content_type, _ = CASES[case]
    overrides = {}
    if max_pixels is not None:
        overrides = {"max_image_pixels": max_pixels, "max_image_side": 65535}
        if "max_image_bytes" in Settings.model_fields:
            overrides["max_image_bytes"] = 4 * max_pixels
    settings = Settings(neo4j_uri="bolt://127.0.0.1:9", neo4j_password="x", keys_file=tmp / "keys.json",
                        state_dir=tmp / "state", **overrides)
    key = KeyStore(settings.keys_file).create("bench", "reader")[0]
    small = tmp / "warm.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(small)
    with TestClient(create_app(settings)) as client:
        def post(payload: bytes, name: str, ctype: str, out: list) -> None:
            response = client.post("/predict", headers={"X-API-Key": key}, files={"file": (name, payload, ctype)})
            out.append((response.status_code, response.json().get("detail", "")[:160]))

        warm: list = []
        post(small.read_bytes(), "warm.png", "image/png", warm)
        before = peak_rss_mib()
        answers: list = []
        start = time.perf_counter()
        threads = [threading.Thread(target=post, args=(data, filename, content_type, answers))
                   for _ in range(concurrent)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        after = peak_rss_mib()
    return {"case": case, "upload_bytes": len(data), "concurrent": concurrent, "baseline_peak_mib": round(before, 1),
            "peak_mib": round(after, 1), "growth_mib": round(after - before, 1), "seconds": round(seconds, 2),
            "answers": answers, "warm_up": warm, "code": uploads.__file__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="after", help="what this run measures (before / after)")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--concurrent", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--max-pixels", type=int, default=None, help="raise the pixel budget (default: the settings')")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "CONCURRENT", "TMP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, concurrent, tmp = args.child
        print(json.dumps(child(case, int(concurrent), args.max_pixels, Path(tmp))))
        return

    import tempfile

    results = []
    for case in args.cases:
        for concurrent in args.concurrent:
            with tempfile.TemporaryDirectory() as tmp:
                command = [sys.executable, __file__, "--child", case, str(concurrent), tmp]
                if args.max_pixels is not None:
                    command += ["--max-pixels", str(args.max_pixels)]
                run = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if run.returncode != 0:
                result = {"case": case, "concurrent": concurrent, "error": run.stderr[-800:]}
            else:
                result = json.loads(run.stdout.strip().splitlines()[-1])
            result["label"] = args.label
            results.append(result)
            answers = result.get("answers", result.get("error"))
            print(f"{args.label:7s} {case:22s} x{concurrent}: peak RSS +{result.get('growth_mib', '?')} MiB "
                  f"in {result.get('seconds', '?')} s -> {answers}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
