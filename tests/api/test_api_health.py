"""``/healthz`` and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from db.engine import get_engine
from tests.api.conftest import Target, make_client


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def test_health_checks_the_database(api: Target) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == "ok"


def test_health_is_503_when_the_database_is_broken(tmp_path) -> None:
    db_file = tmp_path / "service.db"
    url = f"sqlite:///{db_file}"
    with make_client(url) as client:
        assert client.get("/healthz").status_code == 200
        get_engine(url).dispose()
        for path in tmp_path.glob("service.db*"):
            path.unlink()
        db_file.write_bytes(b"this is not a database file " * 200)
        response = client.get("/healthz")
    assert response.status_code == 503
    assert "the database does not answer" in response.json()["detail"][0]["msg"]


def test_metrics_count_requests_latencies_and_predictions(api: Target) -> None:
    before = samples(api.client.get("/metrics").text)
    for _ in range(3):
        api.client.get("/latency", params={"device": "edgegpu", "layer": 7, "block": "k5_e6"})
    api.client.get("/latency", params={"device": "edgegpu", "layer": 5, "block": "k5_e6"})
    api.client.get("/latency", params={"device": "nowhere", "layer": 7, "block": "k5_e6"})
    api.client.get("/no/such/path")
    response = api.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("splitnas_http_requests_total", method="GET", route="/latency", status="200") == 4
    assert grew("splitnas_http_requests_total", method="GET", route="/latency", status="404") == 1
    assert grew("splitnas_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert grew("splitnas_http_request_duration_seconds_count", method="GET", route="/latency") == 5
    assert grew("splitnas_http_request_duration_seconds_bucket", method="GET", route="/latency", le="+Inf") == 5
    assert grew("splitnas_op_predictions_total", predictor="lookup", source="measured") == 3
    assert grew("splitnas_op_predictions_total", predictor="flops-linear", source="predicted") == 1
    assert after[("splitnas_lut_cached", ())] >= 1
