"""``GET /lut``: the whole table as ``DeviceLUT.to_dict()``, with an ETag and 304 for a current copy."""

from __future__ import annotations

import json

import pytest

from db.engine import session_scope
from predictor import load_lut
from tests.api.conftest import Target
from tests.api.test_api_predictors_fit import run_fit
from tests.utils.api_data import SPACE, device_records, fit, upload


def test_lut_is_the_device_table(api: Target) -> None:
    response = api.client.get("/lut", params={"device": "edgegpu", "space": SPACE})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with session_scope(api.db_url) as session:
        expected = load_lut(session, device="edgegpu", space=SPACE, kind="auto").to_dict()
    assert response.json() == json.loads(json.dumps(expected))
    table = response.json()
    assert len(table["table"]) == 22 and len(table["blocks"]) == 9
    assert table["measured"][5][table["blocks"].index("k5_e6")] is False  # left unmeasured on edgegpu
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["LUTPublic"]
    assert set(table) == set(schema["properties"])  # the documented fields are the served ones, call_ms included


def test_etag_gives_304_until_the_table_changes(api: Target) -> None:
    first = api.client.get("/lut", params={"device": "raspi4", "predictor": "flops-linear"})
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "no-cache"
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = api.client.get("/lut", params={"device": "raspi4", "predictor": "flops-linear"},
                               headers={"If-None-Match": sent})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = api.client.get("/lut", params={"device": "raspi4", "predictor": "lookup"},
                           headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


def test_a_refit_on_new_data_changes_the_etag(api: Target, fresh_device: str) -> None:
    auth = api.auth()
    upload(api.client, fresh_device, device_records(fresh_device, gflops=3), auth)
    fit(api.db_url, fresh_device)
    first = api.client.get("/lut", params={"device": fresh_device})
    upload(api.client, fresh_device, device_records(fresh_device, gflops=6), auth)
    refit = run_fit(api.client, {"device": fresh_device, "kinds": ["lookup", "flops-linear"]}, auth)
    assert refit["status"] == "done"
    second = api.client.get("/lut", params={"device": fresh_device}, headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
    assert second.json()["table"][7][7] == pytest.approx(first.json()["table"][7][7] / 2, rel=0.05)


@pytest.mark.parametrize(
    ("params", "status", "loc"),
    [
        ({"device": "jetson"}, 404, ["query", "device"]),
        ({"device": "raspi4", "space": "nope"}, 422, ["query", "space"]),
        ({"device": "raspi4", "predictor": "oracle"}, 422, ["query", "predictor"]),
        ({}, 422, ["query", "device"]),
    ],
)
def test_bad_lut_query_names_the_field(api: Target, params: dict, status: int, loc: list) -> None:
    response = api.client.get("/lut", params=params)
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"] == loc
