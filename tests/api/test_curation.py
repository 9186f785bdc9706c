"""Curation through the API: add / change / remove concepts and relations, each validated, audited
and published to the served variant; the audit log and the version diff; the model scores a
finding added through the API (zero-shot) without a restart. The R5 cases of issue 14 (a 1 MB
definition, control characters, "|" in a synonym, weights out of range ...) get 422 naming the
field and leave the sources, the audit log and the graph byte-identical."""

from __future__ import annotations

import pytest

from tests.api.conftest import png_bytes
from tests.conftest import snapshot

pytestmark = pytest.mark.slow

NEW = {"id": "api_test_nodule", "kind": "Finding", "name": "api test nodule", "synonyms": ["apitest nodule"],
       "definition": "A finding added by the API tests.", "why": "testing the API"}


def _sources(api) -> bytes:
    return b"".join((api.settings.sources_dir / name).read_bytes() for name in ("concepts.csv", "relations.csv"))


def _audit(api) -> bytes:
    path = api.settings.sources_dir / "audit.jsonl"
    return path.read_bytes() if path.exists() else b""


def test_add_change_relate_and_remove_a_concept(api):
    curator = api.headers("curator")
    added = api.client.post("/concepts", headers=curator, json=NEW)
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["changed"] and body["changes"] == ["+ concept api_test_nodule (Finding) 'api test nodule'"]
    assert body["audit"][0]["who"] == "curator-tester" and body["audit"][0]["why"] == "testing the API"
    assert body["graph_version"] == api.store.version("canonical")
    assert api.store.missing_concepts(["api_test_nodule"], "canonical") == []
    first_version = body["previous_version"]

    found = api.client.get("/concepts", params={"q": "apitest", "kind": "Finding"}, headers=api.headers("reader"))
    assert [c["id"] for c in found.json()] == ["api_test_nodule"]

    changed = api.client.patch("/concepts/api_test_nodule", headers=curator,
                               json={"name": "api test nodule renamed", "definition": "Changed by the API tests."})
    assert changed.status_code == 200, changed.text
    (record,) = changed.json()["audit"]  # one request, one change: both fields in one record
    assert record["after"] == {"name": "api test nodule renamed", "definition": "Changed by the API tests."}
    graph = api.store.read_ontology("canonical")
    assert graph["api_test_nodule"].name == "api test nodule renamed"
    assert graph["cardiomegaly"].codes  # built codes survive an incremental publish
    assert any(r.source == "padchest" for r in graph.relations)  # and so do the data-driven edges

    related = api.client.post("/relations", headers=curator, json={
        "start": "api_test_nodule", "type": "LOCATED_IN", "end": "right_upper_lung_zone", "weight": 0.5})
    assert related.status_code == 201, related.text
    detail = api.client.get("/concepts/api_test_nodule", headers=api.headers("reader")).json()
    assert detail["concept"]["name"] == "api test nodule renamed"
    assert [(e["type"], e["end"], e["weight"]) for e in detail["edges"]] == [("LOCATED_IN", "right_upper_lung_zone", 0.5)]
    hood = api.store.neighbourhood(["right_upper_lung_zone"], "canonical")["right_upper_lung_zone"]
    assert "api_test_nodule" in {f.id for f in hood.findings}

    # The served model picks the new finding up from the graph (zero-shot), without a restart.
    predicted = api.client.post("/predict", headers=api.headers("reader"),
                                files={"file": ("a.png", png_bytes(seed=21), "image/png")})
    assert predicted.status_code == 200, predicted.text
    assert "api_test_nodule" in {f["finding_id"] for f in predicted.json()["findings"]}
    assert predicted.json()["graph_version"] == api.store.version("canonical")

    refused = api.client.delete("/concepts/api_test_nodule", headers=curator)
    assert refused.status_code == 409 and "referenced by 1 relation" in refused.json()["detail"]
    unrelated = api.client.request("DELETE", "/relations", headers=curator, json={
        "start": "api_test_nodule", "type": "LOCATED_IN", "end": "right_upper_lung_zone"})
    assert unrelated.status_code == 200, unrelated.text
    removed = api.client.delete("/concepts/api_test_nodule", headers=curator, params={"why": "cleanup"})
    assert removed.status_code == 200, removed.text
    assert api.store.missing_concepts(["api_test_nodule"], "canonical") == ["api_test_nodule"]

    history = api.client.get("/history", params={"concept_id": "api_test_nodule"}, headers=api.headers("reader")).json()
    assert [h["action"] for h in history] == ["remove", "remove_edge", "add_edge", "set", "add_concept"]
    assert history[0]["why"] == "cleanup"

    last = removed.json()["version"]
    assert last == first_version  # back to the sources we started from: the same content hash
    diff = api.client.get("/versions/diff", params={"old": first_version[:12], "new": body["version"]},
                          headers=api.headers("reader"))
    assert diff.status_code == 200, diff.text
    assert diff.json()["diff"]["concepts_added"] == ["api_test_nodule"]
    assert diff.json()["counts"]["concepts_added"] == 1


@pytest.mark.parametrize("method, path, body, status, words", [
    ("post", "/concepts", {**NEW, "id": "cardiomegaly"}, 409, "already exists"),
    ("patch", "/concepts/no_such_concept", {"name": "x"}, 404, "unknown concept id"),
    ("patch", "/concepts/cardiomegaly", {}, 422, "nothing to change"),
    ("delete", "/concepts/no_such_concept", None, 404, "unknown concept id"),
    ("post", "/relations", {"start": "cardiomegaly", "type": "PART_OF", "end": "right_lung"}, 422, "PART_OF"),
    ("post", "/relations", {"start": "cardiomegaly", "type": "LOCATED_IN", "end": "nowhere"}, 422, "nowhere"),
    ("post", "/concepts", {**NEW, "kind": "Gadget"}, 422, "kind"),
    ("post", "/concepts", {**NEW, "id": "has space"}, 422, "id"),
])
def test_invalid_changes_are_refused_and_change_nothing(api, method, path, body, status, words):
    graph, sources = snapshot(api.store), _sources(api)
    kwargs = {"json": body} if body is not None else {}
    response = getattr(api.client, method)(path, headers=api.headers("curator"), **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert snapshot(api.store) == graph and _sources(api) == sources


def test_unknown_relation_removal_is_404(api):
    response = api.client.request("DELETE", "/relations", headers=api.headers("curator"), json={
        "start": "cardiomegaly", "type": "SUGGESTS", "end": "pneumonia", "source": "nowhere"})
    assert response.status_code == 404 and "unknown relation" in response.json()["detail"]


def test_version_diff_of_unknown_versions(api):
    reader = api.headers("reader")
    assert api.client.get("/versions/diff", params={"old": "0" * 12, "new": "1" * 12}, headers=reader).status_code == 404
    assert api.client.get("/versions/diff", params={"old": "xyz", "new": "abc"}, headers=reader).status_code == 422


def test_concept_search_and_detail(api):
    reader = api.headers("reader")
    hits = api.client.get("/concepts", params={"q": "Cardiomegaly"}, headers=reader).json()
    assert hits[0]["id"] == "cardiomegaly"  # an exact name match ranks first
    anatomy = api.client.get("/concepts", params={"q": "lung", "kind": "Anatomy", "limit": 50}, headers=reader).json()
    assert anatomy and all(c["kind"] == "Anatomy" for c in anatomy)
    assert {"right_lung", "left_lung"} <= {c["id"] for c in anatomy}
    detail = api.client.get("/concepts/right_upper_lung_zone", headers=reader).json()
    assert ("PART_OF", "right_upper_lung_zone", "right_lung") in {(e["type"], e["start"], e["end"]) for e in detail["edges"]}
    assert api.client.get("/concepts/nope", headers=reader).status_code == 404
    assert api.client.get("/concepts", params={"variant": "nope"}, headers=reader).status_code == 404


# -- issue 14, R5: what the curation API refuses, and that a refusal changes nothing ----------------
MB = "x" * 1_000_000
RELATION = {"start": "cardiomegaly", "type": "SUGGESTS", "end": "heart_failure"}

# (method, path, body or raw JSON bytes, the field the 422 names, words in the detail)
R5_CASES = [
    ("post", "/concepts", {**NEW, "definition": MB}, "definition", "at most 4000 characters"),
    ("patch", "/concepts/heart", {"definition": MB}, "definition", "at most 4000 characters"),
    ("patch", "/concepts/heart", {"name": "heart proper", "definition": MB}, "definition", "at most 4000"),
    ("post", "/concepts", {**NEW, "name": "nodule\x00"}, "name", "U+0000"),
    ("post", "/concepts", {**NEW, "name": "nod\x0bule"}, "name", "U+000B"),
    ("post", "/concepts", {**NEW, "name": "\x01nodule"}, "name", "U+0001"),
    ("post", "/concepts", {**NEW, "name": "n" * 201}, "name", "at most 200"),
    ("post", "/concepts", {**NEW, "name": "   "}, "name", "must not be empty"),
    ("patch", "/concepts/heart", {"name": "heart\u2028proper"}, "name", "U+2028"),
    ("post", "/concepts", b'{"id": "api_r5", "kind": "Finding", "name": "lone \\ud800 surrogate"}', "name",
     "valid string"),  # pydantic refuses a lone surrogate itself
    ("post", "/concepts", {**NEW, "synonyms": ["api|test"]}, "synonyms", "holds '|'"),
    ("patch", "/concepts/heart", {"synonyms": ["cardiac|organ"]}, "synonyms", "holds '|'"),
    ("post", "/concepts", {**NEW, "synonyms": [f"s{i}" for i in range(51)]}, "synonyms", "at most 50"),
    ("post", "/concepts", {**NEW, "synonyms": ["s" * 201]}, "synonyms.0", "at most 200"),
    ("post", "/concepts", {**NEW, "synonyms": [""]}, "synonyms.0", "at least 1"),
    ("post", "/concepts", {**NEW, "synonyms": ["tab\there"]}, "synonyms", "U+0009"),
    ("post", "/concepts", {**NEW, "codes": ["not a code"]}, "codes.0", "pattern"),
    ("post", "/concepts", {**NEW, "codes": [f"UMLS:C{i:07d}" for i in range(51)]}, "codes", "at most 50"),
    ("post", "/concepts", {**NEW, "source": "s\x00"}, "source", "U+0000"),
    ("post", "/concepts", {**NEW, "why": "because\x00"}, "why", "U+0000"),
    ("post", "/concepts", {**NEW, "id": "assertion"}, "owl", "reserved for the OWL schema"),
    ("post", "/relations", {**RELATION, "source": "r5", "weight": -0.5}, "weight", "greater than or equal to 0"),
    ("post", "/relations", {**RELATION, "source": "r5", "weight": 1.5}, "weight", "less than or equal to 1"),
    ("post", "/relations", b'{"start": "cardiomegaly", "type": "SUGGESTS", "end": "heart_failure", "source": "r5", '
                           b'"weight": NaN}', "weight", "finite number"),
    ("post", "/relations", {**RELATION, "source": "r5", "count": -1}, "count", "greater than or equal to 0"),
    ("post", "/relations", {**RELATION, "source": "r5", "count": 2**64}, "count", "less than or equal to"),
    ("post", "/relations", {**RELATION, "source": "r5\x0b"}, "source", "U+000B"),
    ("post", "/relations", {**RELATION, "end": "heart\x00failure"}, "end", "pattern"),
    ("delete", "/relations", {**RELATION, "source": "s" * 201}, "source", "at most 200"),
    ("delete", "/concepts/heart?why=%00", None, "why", "U+0000"),
]


@pytest.mark.parametrize("method, path, body, field, words", R5_CASES,
                         ids=[f"{m}-{f}-{i}" for i, (m, _, _, f, _) in enumerate(R5_CASES)])
def test_r5_refused_with_422_naming_the_field_and_nothing_changes(api, method, path, body, field, words):
    graph, sources, audit = snapshot(api.store), _sources(api), _audit(api)
    version = api.store.version("canonical")
    headers = api.headers("curator")
    if isinstance(body, bytes):
        response = api.client.request(method.upper(), path, headers={**headers, "Content-Type": "application/json"},
                                      content=body)
    else:
        response = api.client.request(method.upper(), path, headers=headers, json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert field in detail and words in detail, detail
    assert len(detail) < 2000  # a refused megabyte is not echoed back
    assert _sources(api) == sources and _audit(api) == audit
    assert snapshot(api.store) == graph and api.store.version("canonical") == version


def test_after_refusals_curation_and_version_diff_still_work(api):
    """R5's aftermath: a refused 1 MB definition left the service answering 503/500 until the
    sources were fixed by hand. Now the next change and /versions/diff just work."""
    curator = api.headers("curator")
    refused = api.client.patch("/concepts/heart", headers=curator, json={"definition": MB})
    assert refused.status_code == 422
    changed = api.client.patch("/concepts/heart", headers=curator,
                               json={"definition": "A hollow muscular organ; shown by the cardiac silhouette.",
                                     "why": "after a refusal"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    diff = api.client.get("/versions/diff", params={"old": body["previous_version"], "new": body["version"]},
                          headers=api.headers("reader"))
    assert diff.status_code == 200, diff.text
    assert [c["id"] for c in diff.json()["diff"]["concepts_changed"]] == ["heart"]
    restored = api.client.patch("/concepts/heart", headers=curator, json={"definition": _original_heart_definition()})
    assert restored.status_code == 200 and restored.json()["version"] == body["previous_version"]


def _original_heart_definition() -> str:
    from anatomy_vlm.ontology.sources_io import read_sources

    return read_sources()["heart"].definition


def test_odd_but_valid_text_round_trips_and_exports_as_owl(api, tmp_path):
    """Quotes, commas, XML specials, emoji, right-to-left text and '|' in a name are fine."""
    from anatomy_vlm.ontology.owl import load_owl, save_owl

    odd = {**NEW, "id": "api_odd_text", "name": 'odd "quoted", <b>&amp; | 🫁 ריאה',
           "synonyms": ["ünïcödé, with comma", "zero\u200bwidth"], "definition": "Line with \"quotes\" and \\ too."}
    added = api.client.post("/concepts", headers=api.headers("curator"), json=odd)
    assert added.status_code == 201, added.text
    graph = api.store.read_ontology("canonical")
    assert graph["api_odd_text"].name == odd["name"]
    save_owl(graph, tmp_path / "export.owl")  # what `kg variant export` writes
    assert load_owl(tmp_path / "export.owl")["api_odd_text"].synonyms == tuple(sorted(odd["synonyms"]))
    removed = api.client.delete("/concepts/api_odd_text", headers=api.headers("curator"))
    assert removed.status_code == 200, removed.text


def test_a_graph_changed_behind_the_service_is_read_again(api):
    """The service keeps what it last published; once the variant's version says the graph holds
    something else (a sync from elsewhere), the next change is applied to what the graph holds."""
    curator = api.headers("curator")
    original = _original_heart_definition()
    first = api.client.patch("/concepts/heart", headers=curator, json={"definition": "The heart (v1)."})
    assert first.status_code == 200, first.text
    graph = api.store.read_ontology("canonical")
    dropped = next(r for r in graph.relations if r.source == "padchest")
    api.store.sync(graph.with_changes(relations=[r for r in graph.relations if r.key != dropped.key]), "canonical")

    second = api.client.patch("/concepts/heart", headers=curator, json={"definition": original})
    assert second.status_code == 200, second.text
    after = api.store.read_ontology("canonical")
    assert dropped.key not in {r.key for r in after.relations}  # not overwritten from a stale copy
    assert after["heart"].definition == original
    api.store.sync(after.with_changes(relations=[*after.relations, dropped]), "canonical")
