"""``anatomy-vlm kg ...`` end to end, on both backends (the ``store`` fixture gives an empty one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from anatomy_vlm.cli import app
from anatomy_vlm.ontology.owl import load_owl
from anatomy_vlm.ontology.build import BUILT_OWL_PATH
from anatomy_vlm.ontology.seed import SEED_OWL_PATH
from tests.conftest import snapshot

# The CLI reads NEO4J_* from the environment, which `make test` sets: clear them so each test
# reaches exactly the backend its options name.
runner = CliRunner(env={name: None for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")})


@pytest.fixture(scope="module")
def built():
    """The built ontology: what `kg sync` syncs by default."""
    return load_owl(BUILT_OWL_PATH)


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_sync_neighbourhood_query_and_variants(graph_args, tmp_path, built):
    out = cli("kg", "sync", *graph_args)
    assert "concepts" in out and "graph version" in out
    assert "unchanged" in cli("kg", "sync", *graph_args)

    hood = json.loads(cli("kg", "neighbourhood", "Right Costophrenic Angle", "svc", "--json", *graph_args))
    assert [h["id"] for h in hood] == ["right_costophrenic_angle", "svc"]
    assert "pleural_effusion" in {f["id"] for f in hood[0]["findings"]}
    assert "right lung" in cli("kg", "neighbourhood", "right upper lung zone", *graph_args)

    rows = json.loads(cli("kg", "query", "MATCH (n:Anatomy {variant: $v}) RETURN count(n) AS n",
                          "-p", "v=canonical", "--json", *graph_args))
    assert rows == [{"n": len(built.of_kind("Anatomy"))}]

    cli("kg", "variant", "create", "copy", *graph_args)
    listing = cli("kg", "variant", "list", *graph_args)
    assert "canonical" in listing and "copy" in listing
    out_file = tmp_path / "copy.owl"
    cli("kg", "variant", "export", "copy", "--out", str(out_file), *graph_args)
    assert load_owl(out_file) == built
    cli("kg", "variant", "delete", "copy", "--yes", *graph_args)
    assert "copy" not in cli("kg", "variant", "list", *graph_args)


def test_query_refuses_writes(graph_args):
    cli("kg", "sync", *graph_args)
    result = runner.invoke(app, ["kg", "query", "MATCH (n) DETACH DELETE n", *graph_args])
    assert result.exit_code != 0
    assert "DETACH" in str(result.exception)


def test_malformed_owl_is_refused_and_graph_unchanged(graph_args, store, tmp_path):
    cli("kg", "sync", *graph_args)
    before = snapshot(store)
    broken = tmp_path / "broken.owl"
    text = SEED_OWL_PATH.read_text()
    broken.write_text(text[: len(text) // 2])  # truncated mid-document
    result = runner.invoke(app, ["kg", "sync", "--owl", str(broken), *graph_args])
    assert result.exit_code != 0
    assert "broken.owl" in str(result.exception)
    assert snapshot(store) == before


@pytest.mark.neo4j
def test_errors_are_one_clear_line(neo4j_server):
    uri, user, password = neo4j_server
    env = {**os.environ, "NEO4J_URI": uri, "NEO4J_USER": user, "NEO4J_PASSWORD": password}
    cli_path = os.path.join(os.path.dirname(sys.executable), "anatomy-vlm")
    subprocess.run([cli_path, "kg", "sync"], env=env, check=True, capture_output=True)
    result = subprocess.run([cli_path, "kg", "neighbourhood", "left knee"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown concept id(s) in variant 'canonical': left knee" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.embedded
def test_embedded_graph_persists_between_commands(tmp_path, built):
    graph = ["--graph-path", str(tmp_path / "graph")]
    cli("kg", "sync", *graph)  # starts the engine, writes, stops it
    assert not (tmp_path / "graph" / "server.json").exists()  # nothing left running
    variants = json.loads(cli("kg", "variant", "list", "--json", *graph))  # a new engine over the same folder
    assert [(v["name"], v["concepts"]) for v in variants] == [("canonical", len(built.concepts))]


def test_variant_from_recipes_and_diff(graph_args, built):
    cli("kg", "sync", *graph_args)
    cli("kg", "variant", "create", "shuffled", "-r", "shuffle-located-in:seed=3", "-r", "drop-edge-type:SUGGESTS", *graph_args)
    variants = {v["name"]: v for v in json.loads(cli("kg", "variant", "list", "--json", *graph_args))}
    assert variants["shuffled"]["recipe"] == "copy of canonical | shuffle-located-in:seed=3 | drop-edge-type:SUGGESTS"
    comparison = json.loads(cli("kg", "variant", "diff", "canonical", "shuffled", "--json", *graph_args))
    suggests = len(built.relations_of_type("SUGGESTS"))
    assert comparison["relations_by_type"]["SUGGESTS"] == {"a": suggests, "b": 0, "delta": -suggests}
    assert comparison["relations_by_type"]["LOCATED_IN"]["delta"] == 0  # degree-preserving shuffle
    assert comparison["located_in"]["jaccard"] < 1.0
    bad = runner.invoke(app, ["kg", "variant", "create", "x", "-r", "shuffle-everything", *graph_args])
    assert bad.exit_code != 0 and "shuffle-everything" in bad.output
