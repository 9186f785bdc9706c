"""Knowledge variants through the API: list, create by recipe, diff, delete (admin)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_create_list_diff_and_delete_a_variant(api):
    curator, reader = api.headers("curator"), api.headers("reader")
    created = api.client.post("/variants", headers=curator,
                              json={"name": "api-no-located", "recipe": "drop-edge-type:LOCATED_IN"})
    assert created.status_code == 201, created.text
    assert created.json()["variant"]["parent"] == "canonical"
    assert "drop-edge-type:LOCATED_IN" in created.json()["variant"]["recipe"]
    names = [v["name"] for v in api.client.get("/variants", headers=reader).json()]
    assert {"canonical", "api-no-located"} <= set(names)

    diff = api.client.get("/variants/diff", params={"a": "canonical", "b": "api-no-located"}, headers=reader)
    assert diff.status_code == 200, diff.text
    body = diff.json()
    located = body["relations_by_type"]["LOCATED_IN"]
    assert located["a"] > 0 and located["b"] == 0 and located["delta"] == -located["a"]
    assert body["relations_by_type"]["PART_OF"]["delta"] == 0
    assert len(body["diff"]["relations_removed"]) == located["a"]

    again = api.client.post("/variants", headers=curator, json={"name": "api-no-located"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert api.client.delete("/variants/api-no-located", headers=curator).status_code == 403
    deleted = api.client.delete("/variants/api-no-located", headers=api.headers("admin"))
    assert deleted.status_code == 200 and deleted.json()["name"] == "api-no-located"
    assert api.store.variant("api-no-located") is None


@pytest.mark.parametrize("body, status, words", [
    ({"name": "bad", "recipe": ["no-such-recipe"]}, 422, "no-such-recipe"),
    ({"name": "bad", "recipe": ["drop-edges:fraction=2,seed=1"]}, 422, "fraction"),
    ({"name": "bad", "recipe": ["add-concepts:/etc/passwd"]}, 422, "server"),
    ({"name": "bad", "base": "missing"}, 404, "missing"),
    ({"name": "has space"}, 422, "name"),
])
def test_bad_variant_requests(api, body, status, words):
    before = [v["name"] for v in api.client.get("/variants", headers=api.headers("reader")).json()]
    response = api.client.post("/variants", headers=api.headers("curator"), json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert [v["name"] for v in api.client.get("/variants", headers=api.headers("reader")).json()] == before


def test_diff_and_delete_of_unknown_variants(api):
    response = api.client.get("/variants/diff", params={"a": "canonical", "b": "nope"}, headers=api.headers("reader"))
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    assert api.client.delete("/variants/nope", headers=api.headers("admin")).status_code == 404
    assert api.client.delete("/variants/canonical", headers=api.headers("admin")).status_code == 409
