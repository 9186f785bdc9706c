"""Prediction end to end: upload -> regions and findings -> persisted provenance -> stored
prediction -> Cypher explanation whose subgraph ids resolve in the graph."""

from __future__ import annotations

import pytest

from tests.api.conftest import dicom_bytes, jpeg_bytes, node_count, png_bytes

pytestmark = pytest.mark.slow


def _predict(api, data: bytes, name: str, content_type: str, role: str = "reader", **params):
    return api.client.post("/predict", params=params, headers=api.headers(role),
                           files={"file": (name, data, content_type)})


@pytest.mark.parametrize("name, maker, content_type", [
    ("chest.png", png_bytes, "image/png"),
    ("chest.jpg", jpeg_bytes, "image/jpeg"),
    ("chest.dcm", dicom_bytes, "application/dicom"),
])
def test_predict_returns_regions_and_findings_in_image_pixels(api, name, maker, content_type):
    before = node_count(api.store)
    response = _predict(api, maker(), name, content_type, top_k=2)
    assert response.status_code == 200, response.text
    body = response.json()
    width, height = body["width"], body["height"]
    assert (width, height) == {"chest.png": (80, 96), "chest.jpg": (72, 64), "chest.dcm": (64, 70)}[name]
    assert len(body["regions"]) == 29 and body["persisted"] is False
    for region in body["regions"]:
        x1, y1, x2, y2 = region["box"]
        assert -1e-3 <= x1 <= x2 <= width + 1e-3 and -1e-3 <= y1 <= y2 <= height + 1e-3
        assert 0.0 <= region["presence"] <= 1.0 and region["name"] and region["anatomy_id"] == region["id"]
        assert region["attention"] and all(0.0 <= n["weight"] <= 1.0 and n["id"] for n in region["attention"])
    probabilities = [f["probability"] for f in body["findings"]]
    assert probabilities == sorted(probabilities, reverse=True) and len(probabilities) > 1
    region_ids = {r["id"] for r in body["regions"]}
    for finding in body["findings"]:
        assert len(finding["evidence"]) <= 2
        assert {t["region"] for t in finding["evidence"]} <= region_ids
        assert finding["prediction_id"] == f"{body['image_id']}/{body['model']}@{body['variant']}/prediction/{finding['finding_id']}"
    assert body["graph_version"] == api.store.version("canonical")
    assert node_count(api.store) == before  # persist=false writes nothing


def test_min_probability_filters_findings(api):
    everything = _predict(api, png_bytes(seed=5), "a.png", "image/png").json()["findings"]
    cut = sorted(f["probability"] for f in everything)[len(everything) // 2]
    kept = _predict(api, png_bytes(seed=5), "a.png", "image/png", min_probability=cut).json()["findings"]
    assert [f["finding_id"] for f in kept] == [f["finding_id"] for f in everything if f["probability"] >= cut]


def test_persist_then_read_prediction_and_explanation(api):
    response = _predict(api, png_bytes(seed=11), "p.png", "image/png", role="curator", persist="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["persisted"] is True
    finding = body["findings"][0]
    pid = finding["prediction_id"]

    stored = api.client.get(f"/predictions/{pid}", headers=api.headers("reader"))
    assert stored.status_code == 200, stored.text
    record = stored.json()
    assert record["finding_id"] == finding["finding_id"] and record["image_id"] == body["image_id"]
    assert record["score"] == pytest.approx(finding["probability"], rel=1e-6)
    assert [e["region"] for e in record["evidence"]] == [t["region"] for t in finding["evidence"]]
    assert record["graph_version"] == body["graph_version"]

    explained = api.client.get(f"/predictions/{pid}/explanation", headers=api.headers("reader"))
    assert explained.status_code == 200, explained.text
    explanation = explained.json()
    assert explanation["query"]["name"] == "EXPLAIN_PREDICTION"
    assert "MATCH (p:Prediction {id: $prediction_id})" in explanation["query"]["text"]
    assert explanation["query"]["parameters"] == {"prediction_id": pid}
    # The rows are exactly what the query returns when run by hand through the read-only endpoint.
    by_hand = api.client.post("/cypher", headers=api.headers("reader"), json={
        "query": explanation["query"]["text"], "parameters": {"prediction_id": pid}, "limit": 1000})
    assert by_hand.status_code == 200, by_hand.text
    assert by_hand.json()["rows"] == explanation["rows"]

    nodes = {n["id"]: n for n in explanation["subgraph"]["nodes"]}
    edges = explanation["subgraph"]["edges"]
    assert nodes[pid]["label"] == "Prediction" and nodes[finding["finding_id"]]["label"] == "Finding"
    assert {e["type"] for e in edges} >= {"PREDICTS", "FOR_IMAGE", "EVIDENCE", "DEPICTS", "ATTENDED"}
    assert all(e["source"] in nodes and e["target"] in nodes for e in edges)
    evidence = {e["target"]: e["weight"] for e in edges if e["type"] == "EVIDENCE"}
    assert sorted(nodes[roi]["name"] for roi in evidence) == sorted(t["region"] for t in finding["evidence"])
    # Every node id resolves in the graph: concepts in the served variant, provenance nodes by id.
    concepts = [i for i, n in nodes.items() if n["label"] in ("Anatomy", "Finding", "Concept")]
    assert api.store.missing_concepts(concepts, "canonical") == []
    for label in ("Prediction", "ROI", "Image"):
        ids = [i for i, n in nodes.items() if n["label"] == label]
        found = api.store.run_read_query(f"MATCH (n:{label}) WHERE n.id IN $ids RETURN n.id AS id", {"ids": ids})
        assert sorted(r["id"] for r in found.rows) == sorted(ids)

    # The same image again replaces its run: no duplicate nodes.
    counts = node_count(api.store)
    again = _predict(api, png_bytes(seed=11), "p.png", "image/png", role="curator", persist="true")
    assert again.status_code == 200 and node_count(api.store) == counts


def test_unknown_prediction_is_404(api):
    for path in ("/predictions/img-0/x@canonical/prediction/nothing", "/predictions/img-0/x@canonical/prediction/nothing/explanation",
                 "/predictions/not-an-id"):
        response = api.client.get(path, headers=api.headers("reader"))
        assert response.status_code == 404 and "no prediction" in response.json()["detail"]


def test_cli_and_api_give_one_image_one_id(api, checkpoint, tmp_path):
    """The same bytes predicted by `anatomy-vlm predict --persist` and by POST /predict?persist=true get one
    image id (the pixels' hash) and leave exactly one :Image node; the CLI's record is the API's, field for field."""
    import json

    from typer.testing import CliRunner

    from anatomy_vlm.cli import app

    data = png_bytes(seed=23)
    path = tmp_path / "same-film.png"  # a file name unlike the API's upload name: the id must not depend on it
    path.write_bytes(data)
    if api.backend == "neo4j":
        graph = ["--uri", api.settings.neo4j_uri, "--user", api.settings.neo4j_user,
                 "--password", api.settings.neo4j_password]
    else:
        graph = ["--graph-path", str(api.settings.graph_path)]
    cli = CliRunner().invoke(app, ["predict", str(checkpoint), str(path), "--persist", "--json", "--top-k", "2", *graph])
    assert cli.exit_code == 0, cli.output
    record = json.loads(cli.output[cli.output.index("{"):])
    response = _predict(api, data, "upload.png", "image/png", role="curator", persist="true", top_k=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image_id"] == record["image_id"] and body["image_sha256"] == record["image_sha256"]
    assert body["run_id"] == record["run_id"]
    found = api.store.run_read_query("MATCH (i:Image {sha256: $sha}) RETURN count(i) AS n", {"sha": body["image_sha256"]})
    assert found.rows == [{"n": 1}]
    by_finding = {p["finding_id"]: p for p in record["predictions"]}
    for finding in body["findings"]:
        assert finding["probability"] == pytest.approx(by_finding[finding["finding_id"]]["score"], abs=1e-5)
        assert [e["region"] for e in finding["evidence"]] == [r for r, _ in by_finding[finding["finding_id"]]["evidence"]]
