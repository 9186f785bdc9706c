"""benchmarks/api_load.py end to end at tiny bounds (embedded store), leaving the docs alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import built_ontology, checkpoint  # noqa: F401  (fixtures: the tiny model)

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "benchmarks.md"


@pytest.mark.slow
@pytest.mark.embedded
@pytest.mark.timeout(900)  # the fixture's training, the engine and the server start, then a 600 s bound on the script
def test_api_load_runs_and_reports(checkpoint):  # noqa: F811
    before = DOCS.read_text() if DOCS.exists() else None
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "api_load.py"), "--checkpoint", str(checkpoint), "--clients", "2",
         "--requests", "4", "--duration", "60", "--image-size", "64", "--backends", "embedded", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "NEO4J_URI": ""},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = re.search(r"embedded: ([\d.]+) requests/s, predict p95 ([\d.]+) ms, explanation p95 ([\d.]+) ms, "
                     r"query p95 ([\d.]+) ms, peak RSS (\d+) MiB, errors (\d+)", result.stdout)
    assert line, result.stdout
    throughput, predict_p95, explain_p95, query_p95, rss, errors = line.groups()
    assert float(throughput) > 0 and float(predict_p95) > 0 and float(explain_p95) > 0 and float(query_p95) > 0
    assert int(rss) > 100 and int(errors) == 0  # a torch process holds well over 100 MiB
    assert (DOCS.read_text() if DOCS.exists() else None) == before  # --no-write
