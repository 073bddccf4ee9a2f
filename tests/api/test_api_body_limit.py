"""Bodies are guarded before they are parsed: a token first on routes that need one, then a size limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from db import queries
from db.engine import session_scope
from pipeline.service import Service
from tests.api.conftest import make_client
from tests.utils.api_data import copy_sqlite, create_token, device_records, measurement_batch

LIMIT = 64 * 1024  # SPLITNAS_API_MAX_BODY_BYTES of the services below
JSON = {"Content-Type": "application/json"}


@pytest.fixture(params=["in-process", "uvicorn"])
def guarded(request: pytest.FixtureRequest, template_db: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """A service with a small body limit, in process and as a real uvicorn server, with its database."""
    db_url = copy_sqlite(template_db, tmp_path / "service.db")
    if request.param == "in-process":
        with make_client(db_url, api_max_body_bytes=LIMIT) as client:
            yield client, db_url
        return
    server = Service(db_url, log=tmp_path / "server.log", env={"SPLITNAS_API_MAX_BODY_BYTES": str(LIMIT)})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client, db_url
    finally:
        server.stop()


def big_upload(device: str, size: int) -> bytes:
    """A valid upload whose one measurement's ``raw`` JSON makes the body ``size`` bytes or more."""
    body = measurement_batch(device, device_records(device, gflops=3.0)[:1])
    body["measurements"][0]["raw"] = {"padding": "x" * size}
    return json.dumps(body).encode()


def chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    """A body sent in chunks without Content-Length (Transfer-Encoding: chunked)."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_a_write_without_a_valid_token_is_refused_before_its_body_is_parsed(guarded) -> None:
    client, _db = guarded
    not_json = client.post("/measurements", content=b"{ not json at all", headers=JSON)
    assert not_json.status_code == 401  # the body was never parsed: parsing it would answer 422
    assert not_json.json()["detail"][0]["loc"] == ["header", "Authorization"]
    assert client.post("/measurements", content=big_upload("raspi4", 4 * LIMIT), headers=JSON).status_code == 401
    bad = client.post("/predictors/fit", content=b"[", headers=JSON | {"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "unknown or revoked" in bad.json()["detail"][0]["msg"]


def test_a_body_over_the_limit_is_413_and_nothing_is_stored(guarded) -> None:
    client, db_url = guarded
    auth = {"Authorization": f"Bearer {create_token(db_url, 'agent')}"} | JSON
    with session_scope(db_url) as session:
        runs = len(queries.list_runs(session))
    for content in (big_upload("raspi4", 2 * LIMIT), chunks(big_upload("raspi4", 2 * LIMIT))):
        response = client.post("/measurements", content=content, headers=auth)
        assert response.status_code == 413, response.text
        (item,) = response.json()["detail"]
        assert item["loc"] == ["body"] and "SPLITNAS_API_MAX_BODY_BYTES" in item["msg"]
    with session_scope(db_url) as session:
        assert len(queries.list_runs(session)) == runs
    fits = client.post("/measurements", content=big_upload("raspi4", LIMIT // 2), headers=auth)
    assert fits.status_code == 201, fits.text


def test_reads_with_a_body_are_limited_too(guarded) -> None:
    client, _db = guarded
    queries_ = [{"device": "raspi4", "layer": 1, "block": "k3_e3"}] * (LIMIT // 40)
    body = json.dumps({"queries": queries_}).encode()
    assert len(body) > LIMIT
    for content in (body, chunks(body)):
        response = client.post("/latency/batch", content=content, headers=JSON)
        assert response.status_code == 413 and response.json()["detail"][0]["type"] == "too_large"
