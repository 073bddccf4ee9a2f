"""``/measurements``: idempotent agent uploads, device-scoped tokens, nothing stored on bad input, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest

from db import queries
from db.engine import session_scope
from tests.api.conftest import MAX_BATCH, Target
from tests.utils.api_data import SPACE, create_token, device_records, measurement_batch


def stored(api: Target, device: str) -> int:
    with session_scope(api.db_url) as session:
        return len(queries.list_measurements(session, device=device))


def records(device: str, n: int = 10) -> list:
    return device_records(device, gflops=2.0)[:n]


def test_upload_is_idempotent(api: Target, fresh_device: str) -> None:
    body = measurement_batch(fresh_device, records(fresh_device, 12))
    auth = api.auth()
    first = api.client.post("/measurements", json=body, headers=auth)
    assert (first.status_code, first.json()) == (201, {"inserted": 12, "duplicates": 0})
    again = api.client.post("/measurements", json=body, headers=auth)
    assert (again.status_code, again.json()) == (200, {"inserted": 0, "duplicates": 12})
    more = measurement_batch(fresh_device, records(fresh_device, 20), uid=body["run"]["uid"])
    assert api.client.post("/measurements", json=more, headers=auth).json() == {"inserted": 8, "duplicates": 12}
    assert stored(api, fresh_device) == 20


def test_a_token_scoped_to_a_device_writes_only_that_device(api: Target, fresh_device: str) -> None:
    scoped = api.auth(device=fresh_device)
    own = api.client.post("/measurements", json=measurement_batch(fresh_device, records(fresh_device)), headers=scoped)
    assert own.status_code == 201
    other = f"{fresh_device}-other"
    response = api.client.post("/measurements", json=measurement_batch(other, records(other)), headers=scoped)
    assert response.status_code == 403
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "run", "device"]
    assert fresh_device in error["msg"] and other in error["msg"]
    assert stored(api, other) == 0


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "Authorization: Bearer"),
        ({"Authorization": "Bearer not-a-token"}, "unknown or revoked"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization: Bearer"),
    ],
)
def test_writes_need_a_valid_bearer_token(api: Target, fresh_device: str, headers: dict, says: str) -> None:
    response = api.client.post("/measurements", json=measurement_batch(fresh_device, records(fresh_device)),
                               headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert says in response.json()["detail"][0]["msg"]
    assert stored(api, fresh_device) == 0


def test_a_revoked_token_is_refused(api: Target, fresh_device: str) -> None:
    token = create_token(api.db_url, f"revoked-{fresh_device}")
    with session_scope(api.db_url) as session:
        assert queries.revoke_token(session, name=f"revoked-{fresh_device}")
    response = api.client.post("/measurements", json=measurement_batch(fresh_device, records(fresh_device)),
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert stored(api, fresh_device) == 0


def _with(record_change: dict, index: int = 3):
    def change(body: dict) -> dict:
        body["measurements"][index] |= record_change
        return body

    return change


@pytest.mark.parametrize(
    ("change", "loc_end", "says"),
    [
        (_with({"latency_ms": -1.5}), ["measurements", 3, "latency_ms"], "non-negative"),
        (_with({"latency_ms": 0.0}), ["measurements", 3], "latency_ms must be positive"),
        (_with({"latency_ms": 0.0, "source": "imported"}), ["measurements", 3, "latency_ms"], "must be positive"),
        (_with({"latency_ms": "fast"}), ["measurements", 3, "latency_ms"], "valid number"),
        (_with({"iqr_ms": -0.1}), ["measurements", 3, "iqr_ms"], "non-negative"),
        (_with({"space": "nasbench"}), ["measurements", 3], "unknown search space"),
        (_with({"block": "k7_e6", "key": f"{SPACE}/L0/k7_e6"}), ["measurements", 3], "allowed:"),
        (_with({"layer": 40}), ["measurements", 3], "0..21"),
        (_with({"target": "weights"}), ["measurements", 3, "target"], "'block'"),
        (lambda body: body | {"measurements": "all"}, ["measurements"], "valid list"),
        (lambda body: {"measurements": body["measurements"]}, ["run"], "Field required"),
        (lambda body: body | {"run": body["run"] | {"device": "rasp pi/4"}}, ["run", "device"], "pattern"),
    ],
)
def test_bad_upload_names_the_field_and_stores_nothing(
    api: Target, fresh_device: str, change, loc_end: list, says: str
) -> None:
    body = change(measurement_batch(fresh_device, records(fresh_device)))
    response = api.client.post("/measurements", json=body, headers=api.auth())
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", *loc_end]
    assert says in error["msg"]
    assert stored(api, fresh_device) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_latency_is_refused_and_nothing_stored(api: Target, fresh_device: str, literal: str) -> None:
    text = json.dumps(measurement_batch(fresh_device, records(fresh_device)))
    text = text.replace('"latency_ms": ', f'"latency_ms": {literal}, "_was": ', 1)
    response = api.client.post("/measurements", content=text,
                               headers=api.auth() | {"Content-Type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "measurements", 0, "latency_ms"] and "finite" in error["msg"]
    assert stored(api, fresh_device) == 0


def test_oversized_upload_is_refused_and_nothing_stored(api: Target, fresh_device: str) -> None:
    body = measurement_batch(fresh_device, device_records(fresh_device, gflops=2.0)[: MAX_BATCH + 1])
    response = api.client.post("/measurements", json=body, headers=api.auth())
    assert response.status_code == 413
    assert f"at most {MAX_BATCH}" in response.json()["detail"][0]["msg"]
    assert stored(api, fresh_device) == 0


def test_a_run_uid_of_another_device_is_a_conflict(api: Target, fresh_device: str) -> None:
    auth = api.auth()
    first = measurement_batch(fresh_device, records(fresh_device))
    api.client.post("/measurements", json=first, headers=auth).raise_for_status()
    other = f"{fresh_device}-b"
    response = api.client.post("/measurements", json=measurement_batch(other, records(other), uid=first["run"]["uid"]),
                               headers=auth)
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["body", "run", "uid"]
    assert stored(api, other) == 0


def test_download_filters_pages_and_csv(api: Target, fresh_device: str) -> None:
    auth = api.auth()
    run_a = measurement_batch(fresh_device, records(fresh_device, 15))
    run_b = measurement_batch(fresh_device, device_records(fresh_device, gflops=2.0)[15:20])
    for body in (run_a, run_b):
        api.client.post("/measurements", json=body, headers=auth).raise_for_status()
    everything = api.client.get("/measurements", params={"device": fresh_device}).json()
    assert len(everything) == 20 and {m["device"] for m in everything} == {fresh_device}
    assert everything[0]["key"] == run_a["measurements"][0]["key"]
    of_b = api.client.get("/measurements", params={"run": run_b["run"]["uid"]}).json()
    assert [m["key"] for m in of_b] == [m["key"] for m in run_b["measurements"]]
    page = api.client.get("/measurements", params={"device": fresh_device, "limit": 8}).json()
    rest = api.client.get("/measurements", params={"device": fresh_device, "after_id": page[-1]["id"]}).json()
    assert [m["id"] for m in page + rest] == [m["id"] for m in everything]
    response = api.client.get("/measurements", params={"device": fresh_device, "space": SPACE, "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["id"]) for r in rows] == [m["id"] for m in everything]
    assert float(rows[3]["latency_ms"]) == pytest.approx(everything[3]["latency_ms"])


@pytest.mark.parametrize(
    ("params", "status", "loc"),
    [
        ({"device": "jetson"}, 404, ["query", "device"]),
        ({"run": "no-such-run"}, 404, ["query", "run"]),
        ({"space": "nope"}, 422, ["query", "space"]),
        ({"format": "xml"}, 422, ["query", "format"]),
        ({"limit": 0}, 422, ["query", "limit"]),
        ({"target": "weights"}, 422, ["query", "target"]),
    ],
)
def test_bad_download_query_names_the_field(api: Target, params: dict, status: int, loc: list) -> None:
    response = api.client.get("/measurements", params=params)
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"] == loc
