"""Every error, 5xx included, is ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from db import queries
from db.config import Settings
from tests.api.conftest import Target
from tests.utils.api_data import create_token, device_records, measurement_batch


def assert_error_shape(body: dict) -> list[dict]:
    assert set(body) == {"detail"} and body["detail"]
    for item in body["detail"]:
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str) and item["msg"]
        assert isinstance(item["type"], str)
    return body["detail"]


def test_a_body_that_is_not_utf8_is_a_422_naming_the_body(api: Target) -> None:
    response = api.client.post("/latency/batch", content=b'{"queries": "\xff\xfe"}',
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert assert_error_shape(response.json())[0]["loc"][0] == "body"


def test_malformed_json_is_a_422_naming_the_body(api: Target) -> None:
    response = api.client.post("/latency/batch", content=b'{"queries": [', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert assert_error_shape(response.json())[0]["type"] == "json_invalid"


def test_unknown_paths_and_methods_answer_in_the_error_shape(api: Target) -> None:
    missing = api.client.get("/nowhere")
    assert missing.status_code == 404 and assert_error_shape(missing.json())[0]["loc"] == ["path"]
    wrong = api.client.delete("/latency")
    assert wrong.status_code == 405 and assert_error_shape(wrong.json())[0]["loc"] == ["method"]


def test_an_unhandled_exception_is_a_logged_500_in_the_error_shape(
    service_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(queries, "latest_predictors", broken)  # a bug in a query, as the route would meet it
    app = create_app(Settings(database_url=service_db))
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR, "api.errors"):
        response = client.get("/predictors")
    assert response.status_code == 500
    assert assert_error_shape(response.json())[0]["type"] == "internal_error"
    assert "RuntimeError" in caplog.text and "/predictors" in caplog.text


def test_a_read_only_database_answers_uploads_with_503(service_db: str) -> None:
    token = create_token(service_db, "agent")
    path = Path(service_db.removeprefix("sqlite:///"))
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"  # the file as a read-only disk offers it (root ignores chmod)
    body = measurement_batch("raspi4", device_records("raspi4", gflops=3.0)[:5])
    with TestClient(create_app(Settings(database_url=read_only)), raise_server_exceptions=False) as client:
        assert client.get("/devices").status_code == 200  # reads still work
        response = client.post("/measurements", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    (item,) = assert_error_shape(response.json())
    assert item["type"] == "database_unavailable" and "retry" in item["msg"]
    assert response.headers["Retry-After"]


def test_a_value_that_a_column_refuses_is_a_422_and_nothing_is_stored(
    service_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The columns refuse what the request schema should have (a field added without its limit): bad input, no 500."""
    ingest = queries.ingest_batch

    def ingest_with_a_field_the_schema_let_through(session, *, batch):
        inserted = ingest(session, batch=batch)
        queries.get_or_create_device(session, name="d" * 100)  # the devices' name column holds 64 characters
        return inserted

    monkeypatch.setattr(queries, "ingest_batch", ingest_with_a_field_the_schema_let_through)
    body = measurement_batch("pi-unstored", device_records("pi-unstored", gflops=3.0)[:5])
    auth = {"Authorization": f"Bearer {create_token(service_db, 'agent')}"}
    with TestClient(create_app(Settings(database_url=service_db)), raise_server_exceptions=False) as client:
        response = client.post("/measurements", json=body, headers=auth)
        assert response.status_code == 422
        (item,) = assert_error_shape(response.json())
        assert item["loc"] == ["body"] and "64" in item["msg"] and "nothing was stored" in item["msg"]
        assert client.get("/measurements", params={"device": "pi-unstored"}).status_code == 404


def test_a_link_too_slow_for_a_finite_latency_is_a_422_naming_the_field(api: Target) -> None:
    body = {"arch": "skip@1", "head_device": "raspi4", "tail_device": "edgegpu", "bandwidth_mbps": 5e-324}
    response = api.client.post("/architectures/latency", json=body)
    assert response.status_code == 422
    assert assert_error_shape(response.json())[0]["loc"] == ["body", "bandwidth_mbps"]


def test_a_lone_surrogate_is_a_422_and_is_not_echoed(api: Target) -> None:
    text = '{"run": {"uid": "surrogate-run", "device": "surrogate-dev", "host": "a\\ud800"}, "measurements": []}'
    response = api.client.post("/measurements", content=text, headers={"Content-Type": "application/json",
                                                                       **api.auth()})
    assert response.status_code == 422
    assert "\\ud800" not in response.text
