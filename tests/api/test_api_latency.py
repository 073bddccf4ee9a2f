"""``GET /latency`` and ``POST /latency/batch``: values, measured or predicted, and every bad input."""

from __future__ import annotations

import math

import pytest

from db.engine import session_scope
from predictor import load_lut
from spaces import get_space
from tests.api.conftest import MAX_BATCH, Target
from tests.utils.api_data import DEVICES, SPACE
from tests.utils.factories import synthetic_ms


def expected_ms(device: str, layer: int, block: str) -> float:
    return synthetic_ms(get_space(SPACE).op(layer, block), gflops=DEVICES[device])


def get(api: Target, **params: object):
    return api.client.get("/latency", params=params)


def test_measured_entry_is_the_measurement_with_its_spread(api: Target) -> None:
    response = get(api, block="k5_e6", layer=7, device="edgegpu")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "device": "edgegpu", "runtime": "torch", "space": SPACE, "layer": 7, "block": "k5_e6",
        "latency_ms": pytest.approx(expected_ms("edgegpu", 7, "k5_e6"), rel=1e-12),
        "predictor": "lookup", "measured": True, "iqr_ms": pytest.approx(body["latency_ms"] * 0.01, rel=1e-9),
    }


def test_unmeasured_entry_is_predicted_by_the_fallback(api: Target) -> None:
    body = get(api, block="k5_e6", layer=5, device="edgegpu", space=SPACE).json()
    assert body["measured"] is False and body["iqr_ms"] is None
    assert body["predictor"] == "flops-linear"
    with session_scope(api.db_url) as session:
        lut = load_lut(session, device="edgegpu", space=SPACE, kind="auto")
    assert body["latency_ms"] == pytest.approx(lut.layer_ms(5, "k5_e6"), rel=1e-12)
    assert body["latency_ms"] != pytest.approx(expected_ms("edgegpu", 5, "k5_e6"), rel=1e-6)  # a prediction


def test_a_chosen_predictor_answers(api: Target) -> None:
    body = get(api, block="k3_e3", layer=12, device="raspi4", predictor="flops-linear").json()
    assert (body["predictor"], body["measured"]) == ("flops-linear", False)
    lookup = get(api, block="k3_e3", layer=12, device="raspi4", predictor="lookup").json()
    assert (lookup["predictor"], lookup["measured"]) == ("lookup", True)
    assert lookup["latency_ms"] == pytest.approx(expected_ms("raspi4", 12, "k3_e3"))


def test_lookup_cannot_answer_an_unmeasured_entry_and_says_what_to_ask(api: Target) -> None:
    response = get(api, block="k3_e6", layer=21, device="edgegpu", predictor="lookup")
    assert response.status_code == 404
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "predictor"]
    assert "never measured" in error["msg"] and "auto" in error["msg"]


@pytest.mark.parametrize(
    ("params", "status", "field", "says"),
    [
        ({"device": "jetson"}, 404, "device", "known devices: edgegpu, raspi4"),
        ({"space": "nasbench"}, 422, "space", "fbnet-cifar100"),
        ({"layer": 22}, 422, "layer", "0..21"),
        ({"layer": -1}, 422, "layer", "0..21"),
        ({"block": "k7_e6"}, 422, "block", "allowed: k3_e1"),
        ({"block": "conv"}, 422, "block", "conv"),
        ({"layer": "seven"}, 422, "layer", "valid integer"),
        ({"layer": "7.5"}, 422, "layer", "valid integer"),
        ({"predictor": "oracle"}, 422, "predictor", "'auto'"),
    ],
)
def test_bad_query_names_the_field_and_what_is_allowed(
    api: Target, params: dict, status: int, field: str, says: str
) -> None:
    response = get(api, **({"block": "k5_e6", "layer": 7, "device": "edgegpu"} | params))
    assert response.status_code == status
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert says in error["msg"]


def test_missing_parameter_is_named(api: Target) -> None:
    response = get(api, layer=7, device="edgegpu")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "block"]


def test_batch_answers_every_query_in_order_as_the_single_endpoint_does(api: Target) -> None:
    queries = [
        {"device": "edgegpu", "layer": 7, "block": "k5_e6"},
        {"device": "raspi4", "layer": 0, "block": "skip", "space": SPACE},
        {"device": "edgegpu", "layer": 5, "block": "k5_e6"},
        {"device": "raspi4", "layer": 12, "block": "k3_e3", "predictor": "flops-linear"},
        {"device": "edgegpu", "layer": 7, "block": "k5_e6"},
    ]
    response = api.client.post("/latency/batch", json={"queries": queries})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == len(queries)
    for query, result in zip(queries, results, strict=True):
        single = get(api, **query).json()
        assert result == single


def test_batch_reports_every_bad_query_at_once(api: Target) -> None:
    queries = [
        {"device": "edgegpu", "layer": 7, "block": "k5_e6"},
        {"device": "edgegpu", "layer": 30, "block": "k5_e6"},
        {"device": "edgegpu", "layer": 7, "block": "k9_e6"},
        {"device": "edgegpu", "layer": 7, "block": "k5_e6", "space": "nope"},
    ]
    response = api.client.post("/latency/batch", json={"queries": queries})
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert locs == [["body", "queries", 1, "layer"], ["body", "queries", 2, "block"], ["body", "queries", 3, "space"]]


@pytest.mark.parametrize(
    ("query", "status", "loc"),
    [
        ({"device": "jetson", "layer": 7, "block": "k5_e6"}, 404, ["body", "queries", 1, "device"]),
        ({"device": "edgegpu", "layer": "x", "block": "k5_e6"}, 422, ["body", "queries", 1, "layer"]),
        ({"device": "edgegpu", "layer": 7}, 422, ["body", "queries", 1, "block"]),
        ({"device": "edgegpu", "layer": 7, "block": "k5_e6", "predictor": "oracle"}, 422,
         ["body", "queries", 1, "predictor"]),
    ],
)
def test_batch_bad_entries_are_located(api: Target, query: dict, status: int, loc: list) -> None:
    good = {"device": "edgegpu", "layer": 7, "block": "k5_e6"}
    response = api.client.post("/latency/batch", json={"queries": [good, query]})
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"] == loc


def test_batch_over_the_limit_is_refused_naming_the_limit(api: Target) -> None:
    queries = [{"device": "edgegpu", "layer": 7, "block": "k5_e6"}] * (MAX_BATCH + 1)
    response = api.client.post("/latency/batch", json={"queries": queries})
    assert response.status_code == 413
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "queries"] and f"at most {MAX_BATCH}" in error["msg"]


@pytest.mark.parametrize("body", [{}, {"queries": []}, {"queries": "all"}, [1, 2]])
def test_batch_of_the_wrong_shape_is_refused(api: Target, body: object) -> None:
    response = api.client.post("/latency/batch", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_values_are_finite_positive_for_every_candidate(api: Target) -> None:
    space = get_space(SPACE)
    queries = [{"device": "edgegpu", "layer": layer.index, "block": block} for layer in space.layers
               for block in layer.block_names][:MAX_BATCH]
    results = api.client.post("/latency/batch", json={"queries": queries}).json()["results"]
    assert all(math.isfinite(r["latency_ms"]) and r["latency_ms"] > 0 for r in results)
