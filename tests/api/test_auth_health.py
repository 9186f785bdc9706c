"""Health and readiness, API keys (401 / 403 per role), key management, the viewer routes."""

from __future__ import annotations

import json
import stat

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from anatomy_vlm.api.app import create_app
from anatomy_vlm.api.auth import KeyStore, Role
from anatomy_vlm.api.settings import Settings
from anatomy_vlm.cli_service import app as service_cli
from tests.api.conftest import png_bytes, settings_for


def test_health_ready_and_openapi_need_no_key(api):
    assert api.client.get("/health").json() == {"status": "ok"}
    ready = api.client.get("/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["graph"] is True and body["model"] is True and body["variant"] == "canonical"
    assert body["graph_version"] == api.store.version("canonical")
    assert body["model_name"] == "checkpoint"
    schema = api.client.get("/openapi.json").json()
    assert "/predict" in schema["paths"] and "APIKeyHeader" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize("method, path, kwargs", [
    ("get", "/concepts", {}),
    ("get", "/variants", {}),
    ("post", "/cypher", {"json": {"query": "RETURN 1"}}),
    ("get", "/history", {}),
])
def test_missing_and_unknown_keys_are_401(api, method, path, kwargs):
    missing = getattr(api.client, method)(path, **kwargs)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    for bad in ("nonsense", "avlm_000000000000_secret", api.keys["reader"][:-2] + "xx"):
        response = getattr(api.client, method)(path, headers={"X-API-Key": bad}, **kwargs)
        assert response.status_code == 401 and "unknown or revoked" in response.json()["detail"]
    assert getattr(api.client, method)(path, headers=api.headers("reader"), **kwargs).status_code == 200


@pytest.mark.parametrize("role, method, path, kwargs, status", [
    ("reader", "post", "/concepts", {"json": {"id": "x", "kind": "Finding", "name": "x"}}, 403),
    ("reader", "patch", "/concepts/cardiomegaly", {"json": {"name": "x"}}, 403),
    ("reader", "delete", "/concepts/cardiomegaly", {}, 403),
    ("reader", "post", "/relations", {"json": {"start": "a", "type": "IS_A", "end": "b"}}, 403),
    ("reader", "post", "/variants", {"json": {"name": "x"}}, 403),
    ("reader", "post", "/predict?persist=true", {"files": {"file": ("a.png", png_bytes(), "image/png")}}, 403),
    ("curator", "delete", "/variants/anything", {}, 403),
    ("admin", "delete", "/variants/anything", {}, 404),  # allowed: the variant just does not exist
])
def test_roles(api, role, method, path, kwargs, status):
    response = getattr(api.client, method)(path, headers=api.headers(role), **kwargs)
    assert response.status_code == status, response.text
    if status == 403:
        assert f"is a {role} key" in response.json()["detail"]


def test_keys_are_stored_hashed_and_revocation_takes_effect_at_once(api):
    text = api.settings.keys_file.read_text()
    for key in api.keys.values():
        assert key.split("_", 2)[2] not in text  # the secret part is never written
    assert stat.S_IMODE(api.settings.keys_file.stat().st_mode) == 0o600
    key, record = api.key_store.create("short-lived", Role.READER)
    assert api.client.get("/variants", headers={"X-API-Key": key}).status_code == 200
    api.key_store.revoke(record.key_id)
    assert api.client.get("/variants", headers={"X-API-Key": key}).status_code == 401


def test_api_key_cli(tmp_path):
    runner = CliRunner()
    keys_file = tmp_path / "keys.json"
    created = runner.invoke(service_cli, ["api-key", "create", "--role", "curator", "--name", "ana", "--keys-file", str(keys_file)])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    principal = KeyStore(keys_file).authenticate(key)
    assert principal is not None and principal.role is Role.CURATOR and principal.name == "ana"
    listed = runner.invoke(service_cli, ["api-key", "list", "--keys-file", str(keys_file)])
    assert principal.key_id in listed.output and "curator" in listed.output and key not in listed.output
    revoked = runner.invoke(service_cli, ["api-key", "revoke", principal.key_id, "--keys-file", str(keys_file)])
    assert revoked.exit_code == 0 and KeyStore(keys_file).authenticate(key) is None
    assert json.loads(keys_file.read_text())["keys"] == []
    bad = runner.invoke(service_cli, ["api-key", "create", "--role", "god", "--name", "x", "--keys-file", str(keys_file)])
    assert bad.exit_code != 0 and "reader, curator, admin" in bad.output


def test_ready_is_503_without_a_model(api, request, tmp_path):
    settings = settings_for(api.backend, request, tmp_path, checkpoint=None)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["graph"] is True and body["model"] is False
        assert any("no checkpoint" in p for p in body["problems"])
        key, _ = KeyStore(settings.keys_file).create("r", Role.READER)
        response = client.post("/predict", headers={"X-API-Key": key}, files={"file": ("a.png", png_bytes(), "image/png")})
        assert response.status_code == 503 and "no model loaded" in response.json()["detail"]


def test_ready_is_503_when_the_graph_cannot_be_reached(tmp_path):
    settings = Settings(neo4j_uri="bolt://127.0.0.1:9", neo4j_password="x", keys_file=tmp_path / "k.json",
                        state_dir=tmp_path / "s")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["graph"] is False
        assert any("127.0.0.1:9" in p for p in ready.json()["problems"])
        assert client.get("/health").status_code == 200


def test_viewer_is_served_from_the_static_folder(tmp_path):
    static = tmp_path / "static"
    client = TestClient(create_app(Settings(neo4j_uri=None, static_dir=static)))  # no lifespan: no graph needed
    assert client.get("/").status_code == 404 and "viewer" in client.get("/").json()["detail"]
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>viewer</title>")
    (static / "app.js").write_text("console.log('hi')")
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "viewer" in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert client.get("/static/missing.js").status_code == 404
