"""``anatomy-vlm ontology ...``: validate, coverage, diff, import and audited curation, end to end."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from anatomy_vlm.cli import app
from anatomy_vlm.ontology.build import BUILT_OWL_PATH
from anatomy_vlm.ontology.sources_io import DEFAULT_SOURCES_DIR, read_sources

runner = CliRunner()


@pytest.fixture
def sources(tmp_path):
    """A private copy of the curated sources to edit."""
    folder = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, folder, ignore=shutil.ignore_patterns("audit.jsonl"))
    return folder


def test_validate_the_built_ontology_with_hermit():
    result = runner.invoke(app, ["ontology", "validate"])
    assert result.exit_code == 0, result.output
    assert "0 error(s)" in result.output and "HermiT ran" in result.output


def test_coverage_report_counts_codes_definitions_and_located_in():
    result = runner.invoke(app, ["ontology", "coverage"])
    assert result.exit_code == 0, result.output
    assert "SNOMED" in result.output and "UMLS CUI" in result.output and "LOCATED_IN" in result.output


def test_curation_is_audited_refused_changes_write_nothing_and_diff_shows_it(sources, tmp_path):
    before = {p.name: p.read_bytes() for p in sources.iterdir()}
    add = ["ontology", "add-concept", "pleural_plaque", "--kind", "Finding", "--name", "pleural plaque",
           "--definition", "A focal area of pleural thickening, often calcified, after asbestos exposure.",
           "--why", "common finding missing", "--curator", "alice", "--sources", str(sources)]
    result = runner.invoke(app, add)
    assert result.exit_code == 0, result.output
    assert "pleural_plaque" in read_sources(sources)

    edge = ["ontology", "add-edge", "LOCATED_IN", "pleural_plaque", "pleural_effusion", "--why", "wrong on purpose",
            "--sources", str(sources)]
    refused = runner.invoke(app, edge)
    assert refused.exit_code != 0
    assert "pleural_plaque" in str(refused.exception) and "pleural_effusion" in str(refused.exception)

    history = runner.invoke(app, ["ontology", "history", "pleural_plaque", "--json", "--sources", str(sources)])
    records = json.loads(history.output)
    assert len(records) == 1  # the refused edge left no trace
    assert (records[0]["who"], records[0]["why"], records[0]["action"]) == ("alice", "common finding missing", "add_concept")

    original = tmp_path / "original"
    original.mkdir()
    for name, data in before.items():
        (original / name).write_bytes(data)
    diff = runner.invoke(app, ["ontology", "diff", str(original), str(sources), "--json"])
    assert json.loads(diff.output)["concepts_added"] == ["pleural_plaque"]


def test_import_obo_into_owl(tmp_path):
    from tests.ontology.test_importers import FIXTURES  # the hand-written OBO fixture

    out = tmp_path / "imported.owl"
    result = runner.invoke(app, ["ontology", "import", "obo", str(FIXTURES / "hp_chest.obo"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists() and "concepts" in result.output


def test_committed_build_is_current():
    result = runner.invoke(app, ["ontology", "build", "--check", "--out", str(BUILT_OWL_PATH)])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_curation_with_sync_keeps_the_graph_equal_to_the_build(sources, graph_args, store):
    from anatomy_vlm.ontology.build import build_ontology

    env_free = CliRunner(env={name: None for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")})
    result = env_free.invoke(app, ["ontology", "set", "trachea", "definition", "The windpipe.", "--why", "shorter",
                                   "--sources", str(sources), "--sync", *graph_args])
    assert result.exit_code == 0, result.output
    built, _ = build_ontology(sources)
    assert built["trachea"].definition == "The windpipe."
    assert store.read_ontology() == built  # after a sync the graph equals the ontology
