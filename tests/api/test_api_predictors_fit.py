"""``POST /predictors/fit``: refits swap the served tables atomically; tokens are scoped to a device."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.api.conftest import Target
from tests.utils.api_data import device_records, fit, measurement_batch, upload

KINDS = ["lookup", "flops-linear"]


def run_fit(client: httpx.Client, body: dict, headers: dict[str, str]) -> dict:
    """Start a fit (202 with a job and its Location), poll it until it ends; the finished job."""
    started = client.post("/predictors/fit", json=body, headers=headers)
    assert started.status_code == 202, started.text
    job = started.json()
    # a fit that fails at once (nothing to fit) may have ended before the answer is written
    assert job["status"] in ("running", "done", "failed")
    assert started.headers["Location"] == f"/predictors/fit/{job['id']}"
    while job["status"] == "running":
        time.sleep(0.1)
        job = client.get(started.headers["Location"]).json()
    return job


def latency(api: Target, device: str) -> float:
    response = api.client.get("/latency", params={"device": device, "layer": 9, "block": "k3_e6"})
    response.raise_for_status()
    return response.json()["latency_ms"]


def test_refit_on_new_measurements_serves_the_new_values(api: Target, fresh_device: str) -> None:
    auth = api.auth(device=fresh_device)
    upload(api.client, fresh_device, device_records(fresh_device, gflops=2.0), auth)
    fit(api.db_url, fresh_device)
    before = latency(api, fresh_device)
    upload(api.client, fresh_device, device_records(fresh_device, gflops=8.0), auth)
    assert latency(api, fresh_device) == before  # new measurements: served once the predictors are refitted
    job = run_fit(api.client, {"device": fresh_device, "kinds": KINDS}, auth)
    assert job["status"] == "done", job
    result = job["result"]
    assert [(r["kind"], r["version"]) for r in result["reports"]] == [("lookup", 2), ("flops-linear", 2)]
    assert "fbnet-cifar100/auto" in result["refreshed"]
    assert result["reports"][1]["metrics"]["fit"]["pi_gflops"] > 0
    assert latency(api, fresh_device) < before / 2
    versions = {p["kind"]: p["version"] for p in api.client.get("/predictors", params={"device": fresh_device}).json()}
    assert versions == {"lookup": 2, "flops-linear": 2}


def test_readers_are_served_throughout_a_refit(api: Target, fresh_device: str) -> None:
    auth = api.auth()
    upload(api.client, fresh_device, device_records(fresh_device, gflops=2.0), auth)
    fit(api.db_url, fresh_device)
    old = latency(api, fresh_device)
    upload(api.client, fresh_device, device_records(fresh_device, gflops=8.0), auth)
    seen: list[float] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append(latency(api, fresh_device))
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        refit = run_fit(api.client, {"device": fresh_device, "kinds": KINDS}, auth)
    finally:
        done.set()
        reader.join()
    assert refit["status"] == "done" and not errors
    new = latency(api, fresh_device)
    assert seen and set(seen) <= {old, new}  # every reader got a whole table: the old one or the new one
    assert seen[0] == old and new != old


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ({"device": "jetson"}, 404, ["body", "device"]),
        ({"device": "raspi4", "space": "nope"}, 422, ["body", "space"]),
        ({"device": "raspi4", "kinds": ["oracle"]}, 422, ["body", "kinds", 0]),
        ({"device": "raspi4", "kinds": []}, 422, ["body", "kinds"]),
        ({"space": "fbnet-cifar100"}, 422, ["body", "device"]),
    ],
)
def test_bad_fit_request_names_the_field(api: Target, body: dict, status: int, loc: list) -> None:
    response = api.client.post("/predictors/fit", json=body, headers=api.auth())
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"] == loc


def test_fit_without_measurements_in_the_space_says_how_to_measure(api: Target) -> None:
    job = run_fit(api.client, {"device": "raspi4", "space": "fbnet-imagenet", "kinds": KINDS}, api.auth())
    assert job["status"] == "failed" and "profiler run" in job["error"]


def test_a_second_fit_of_a_device_while_one_runs_is_a_409(api: Target, fresh_device: str) -> None:
    auth = api.auth(device=fresh_device)
    upload(api.client, fresh_device, device_records(fresh_device, gflops=2.0), auth)
    body = {"device": fresh_device, "kinds": ["gbdt"]}  # seconds to fit: the second request meets it running
    first = api.client.post("/predictors/fit", json=body, headers=auth)
    assert first.status_code == 202
    second = api.client.post("/predictors/fit", json=body, headers=auth)
    if api.client.get(first.headers["Location"]).json()["status"] == "running":
        assert second.status_code == 409
        assert first.json()["id"] in second.json()["detail"][0]["msg"]
    while api.client.get(first.headers["Location"]).json()["status"] == "running":
        time.sleep(0.1)
    assert run_fit(api.client, {"device": fresh_device, "kinds": KINDS}, auth)["status"] == "done"


def test_an_unknown_fit_job_is_a_404(api: Target) -> None:
    response = api.client.get("/predictors/fit/nope")
    assert response.status_code == 404 and response.json()["detail"][0]["loc"] == ["path", "job_id"]


def test_fit_needs_a_token_for_the_device(api: Target) -> None:
    body = {"device": "edgegpu", "kinds": KINDS}
    assert api.client.post("/predictors/fit", json=body).status_code == 401
    response = api.client.post("/predictors/fit", json=body, headers=api.auth(device="raspi4"))
    assert response.status_code == 403
    assert response.json()["detail"][0]["loc"] == ["body", "device"]


def test_uploads_during_a_refit_on_a_real_server_are_all_stored(server, fresh_device: str) -> None:
    """A real uvicorn on a SQLite file: a refit holds no write lock that uploads would wait on."""
    from tests.utils.api_data import create_token

    auth = {"Authorization": f"Bearer {create_token(server.db_url, f'fit-{fresh_device}')}"}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        upload(client, fresh_device, device_records(fresh_device, gflops=2.0), auth)
        started = client.post("/predictors/fit", json={"device": fresh_device, "kinds": ["gbdt"]}, headers=auth)
        assert started.status_code == 202
        statuses = []
        while client.get(started.headers["Location"]).json()["status"] == "running" or not statuses:
            batch = device_records(fresh_device, gflops=4.0)[:20]
            statuses.append(client.post("/measurements", json=measurement_batch(fresh_device, batch),
                                        headers=auth).status_code)
        assert statuses and set(statuses) == {201}
        assert client.get(started.headers["Location"]).json()["status"] == "done"
