"""Bearer tokens: stored hashed, optional on reads (``SPLITNAS_API_READ_AUTH``), always on writes."""

from __future__ import annotations

import hashlib

from db import queries
from db.engine import session_scope
from pipeline.service import Service
from tests.api.conftest import make_client
from tests.utils.api_data import create_token


def test_tokens_are_stored_hashed(service_db: str) -> None:
    token = create_token(service_db, "agent", device="raspi4")
    with session_scope(service_db) as session:
        (row,) = [t for t in queries.list_tokens(session) if t.name == "agent"]
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
        assert row.device == "raspi4" and not row.revoked


def test_reads_are_open_by_default(service_db: str) -> None:
    with make_client(service_db) as client:
        assert client.get("/latency", params={"device": "raspi4", "layer": 1, "block": "k3_e3"}).status_code == 200


def test_read_auth_closes_every_endpoint_but_health_and_metrics(service_db: str) -> None:
    token = create_token(service_db, "reader")
    auth = {"Authorization": f"Bearer {token}"}
    with make_client(service_db, api_read_auth=True) as client:
        reads = [("/latency", {"device": "raspi4", "layer": 1, "block": "k3_e3"}), ("/lut", {"device": "raspi4"}),
                 ("/devices", {}), ("/spaces", {}), ("/spaces/fbnet-cifar100", {}), ("/predictors", {}),
                 ("/measurements", {"limit": 1})]
        for path, params in reads:
            refused = client.get(path, params=params)
            assert refused.status_code == 401, path
            assert refused.json()["detail"][0]["loc"] == ["header", "Authorization"]
            assert client.get(path, params=params, headers=auth).status_code == 200, path
        batch = {"queries": [{"device": "raspi4", "layer": 1, "block": "k3_e3"}]}
        assert client.post("/latency/batch", json=batch).status_code == 401
        assert client.post("/latency/batch", json=batch, headers=auth).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200


def test_read_auth_over_a_real_server(template_db: str, tmp_path) -> None:
    from tests.utils.api_data import copy_sqlite

    db_url = copy_sqlite(template_db, tmp_path / "service.db")
    token = create_token(db_url, "reader")
    server = Service(db_url, log=tmp_path / "server.log", env={"SPLITNAS_API_READ_AUTH": "true"})
    try:
        import httpx

        params = {"device": "raspi4", "layer": 1, "block": "k3_e3"}
        assert httpx.get(server.url + "/latency", params=params).status_code == 401
        ok = httpx.get(server.url + "/latency", params=params, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    finally:
        server.stop()
