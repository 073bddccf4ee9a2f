"""The runtime of a table through a real uvicorn: a device's only runtime by default, an error listing them when
it has several, the one asked for otherwise, and a cache that never serves one runtime's table for another's.

The latencies are generated (``factories.synthetic_ms`` at a speed per runtime), not measured: what is tested is
which runtime's rows answer, and the generated values say that exactly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from db.engine import session_scope
from nas.latency_client import LatencyClient, LatencySourceError
from pipeline.service import Service
from predictor import fit_predictors
from spaces import get_space
from tests.utils.api_data import create_token, measurement_batch
from tests.utils.factories import block_records, fixed_records, ingest, synthetic_ms

SPACE = "fbnet-cifar100"
# (device, runtime) -> GFLOPS of its generated latencies
TABLES = {("dual", "torch"): 2.0, ("dual", "onnxruntime"): 5.0, ("solo", "tflite"): 1.0, ("grows", "torch"): 3.0}
LAYER, BLOCK = 7, "k5_e6"


def expected_ms(device: str, runtime: str, layer: int = LAYER, block: str = BLOCK) -> float:
    return synthetic_ms(get_space(SPACE).op(layer, block), gflops=TABLES[device, runtime])


def records(gflops: float) -> list:
    latency = partial(synthetic_ms, gflops=gflops)
    return block_records(SPACE, latency) + fixed_records(SPACE, latency)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("runtimes")
    db_url = f"sqlite:///{directory / 'runtimes.db'}"
    for (device, runtime), gflops in TABLES.items():
        ingest(db_url, device, records(gflops), runtime=runtime)
        with session_scope(db_url) as session:
            fit_predictors(session, device=device, space=SPACE, kinds=["lookup"], evaluate=False, runtime=runtime)
    with Service(db_url, log=directory / "server.log") as running:
        yield running


@pytest.fixture
def http(server: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def latency(http: httpx.Client, device: str, **params: object) -> httpx.Response:
    return http.get("/latency", params={"device": device, "layer": LAYER, "block": BLOCK, **params})


def error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    (detail,) = response.json()["detail"]
    return detail


def test_a_device_with_one_runtime_answers_under_it_by_default(http: httpx.Client, server: Service) -> None:
    body = latency(http, "solo").json()
    assert body["runtime"] == "tflite" and body["latency_ms"] == pytest.approx(expected_ms("solo", "tflite"))
    assert http.get("/lut", params={"device": "solo"}).json()["runtime"] == "tflite"
    with LatencyClient(server.url) as client:
        assert client.lut("solo", SPACE).runtime == "tflite"


def test_a_device_with_several_runtimes_asks_for_one(http: httpx.Client, server: Service) -> None:
    listed = "several runtimes (onnxruntime, torch)"
    detail = error(latency(http, "dual"), 422)
    assert detail["loc"] == ["query", "runtime"] and listed in detail["msg"] and detail["type"] == "runtime_required"
    assert error(http.get("/lut", params={"device": "dual"}), 422)["loc"] == ["query", "runtime"]
    batch = http.post("/latency/batch", json={"queries": [
        {"device": "solo", "layer": 0, "block": "skip"}, {"device": "dual", "layer": 0, "block": "skip"},
    ]})
    assert error(batch, 422)["loc"] == ["body", "queries", 1, "runtime"]
    arch = ",".join(["k3_e1"] * 22) + "@5"
    split = http.post("/architectures/latency", json={"arch": arch, "head_device": "dual", "tail_device": "solo"})
    detail = error(split, 422)
    assert detail["loc"] == ["body", "runtime"] and listed in detail["msg"]
    with LatencyClient(server.url) as client, pytest.raises(LatencySourceError, match="onnxruntime, torch"):
        client.lut("dual", SPACE)


def test_an_explicit_runtime_answers_from_its_own_table(http: httpx.Client, server: Service) -> None:
    # asked in turn, each runtime gets its own values: the cache keeps the tables apart
    for runtime in ("torch", "onnxruntime", "torch"):
        body = latency(http, "dual", runtime=runtime).json()
        assert body["runtime"] == runtime and body["latency_ms"] == pytest.approx(expected_ms("dual", runtime))
    onnx_lut = http.get("/lut", params={"device": "dual", "runtime": "onnxruntime"}).json()
    assert onnx_lut["runtime"] == "onnxruntime"
    assert onnx_lut["table"][LAYER][onnx_lut["blocks"].index(BLOCK)] == pytest.approx(
        expected_ms("dual", "onnxruntime"))
    batch = http.post("/latency/batch", json={"queries": [
        {"device": "dual", "layer": LAYER, "block": BLOCK, "runtime": "torch"},
        {"device": "dual", "layer": LAYER, "block": BLOCK, "runtime": "onnxruntime"},
        {"device": "solo", "layer": LAYER, "block": BLOCK},
    ]}).json()["results"]
    assert [(r["runtime"], r["latency_ms"]) for r in batch] == [
        (runtime, pytest.approx(expected_ms(device, runtime)))
        for device, runtime in (("dual", "torch"), ("dual", "onnxruntime"), ("solo", "tflite"))
    ]
    arch = ",".join(["k3_e1"] * 22) + "@5"
    torch_split, onnx_split = (
        http.post("/architectures/latency", json={"arch": arch, "head_device": "dual", "tail_device": "dual",
                                                  "runtime": runtime}).json()
        for runtime in ("torch", "onnxruntime")
    )
    assert onnx_split["runtimes"] == {"head": "onnxruntime", "tail": "onnxruntime"}
    assert onnx_split["head_ms"] < torch_split["head_ms"]  # the faster runtime's table answered
    with LatencyClient(server.url, runtime="onnxruntime") as client:
        assert client.lut("dual", SPACE).to_dict() == onnx_lut

    detail = error(latency(http, "dual", runtime="openvino"), 404)
    assert detail["loc"] == ["query", "runtime"] and "its runtimes: onnxruntime, torch" in detail["msg"]
    detail = error(latency(http, "dual", runtime="ONNX Runtime"), 422)
    assert detail["loc"] == ["query", "runtime"] and "lower-case letters" in detail["msg"]


def test_devices_predictors_and_measurements_name_their_runtimes(http: httpx.Client, server: Service) -> None:
    devices = {d["name"]: d for d in http.get("/devices").json()}
    assert [r["name"] for r in devices["dual"]["runtimes"]] == ["onnxruntime", "torch"]
    assert devices["solo"]["runtimes"] == [{"name": "tflite", "measurements": {SPACE: 22 * 9 + 4},
                                            "predictors": [f"{SPACE}/lookup"]}]
    onnx = http.get("/predictors", params={"runtime": "onnxruntime"}).json()
    assert [(p["device"], p["runtime"], p["kind"]) for p in onnx] == [("dual", "onnxruntime", "lookup")]
    rows = http.get("/measurements", params={"runtime": "tflite", "limit": 5}).json()
    assert len(rows) == 5 and {(r["device"], r["runtime"]) for r in rows} == {("solo", "tflite")}

    headers = {"Authorization": f"Bearer {create_token(server.db_url, f'fit-{uuid.uuid4().hex[:8]}')}"}
    started = http.post("/predictors/fit", json={"device": "dual", "runtime": "onnxruntime", "kinds": ["lookup"]},
                        headers=headers)
    assert started.status_code == 202, started.text
    job = started.json()
    deadline = time.monotonic() + 120
    while job["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        job = http.get(f"/predictors/fit/{job['id']}").json()
    assert job["status"] == "done", job
    assert job["runtime"] == "onnxruntime" and job["result"]["runtime"] == "onnxruntime"
    assert job["result"]["reports"][0]["version"] == 2  # onnxruntime's own versions: torch's stayed at 1
    torch_versions = http.get("/predictors", params={"device": "dual", "runtime": "torch"}).json()
    assert [p["version"] for p in torch_versions] == [1]


def test_a_second_runtime_uploaded_makes_the_default_ask_for_one(http: httpx.Client, server: Service) -> None:
    assert latency(http, "grows").json()["runtime"] == "torch"  # cached now
    headers = {"Authorization": f"Bearer {create_token(server.db_url, f'agent-{uuid.uuid4().hex[:8]}', 'grows')}"}
    body = measurement_batch("grows", records(6.0)[:5])
    body["run"]["runtime"] = "openvino"
    assert http.post("/measurements", json=body, headers=headers).status_code == 201
    detail = error(latency(http, "grows"), 422)  # the cached torch table is not served as the default any more
    assert "several runtimes (openvino, torch)" in detail["msg"]
    assert latency(http, "grows", runtime="torch").json()["latency_ms"] == pytest.approx(
        expected_ms("grows", "torch"))


def test_a_run_cannot_change_its_runtime(http: httpx.Client, server: Service) -> None:
    headers = {"Authorization": f"Bearer {create_token(server.db_url, f'agent-{uuid.uuid4().hex[:8]}', 'solo')}"}
    body = measurement_batch("solo", records(1.0)[:2], uid=f"run-{uuid.uuid4().hex[:8]}")
    body["run"]["runtime"] = "tflite"
    assert http.post("/measurements", json=body, headers=headers).status_code in (200, 201)
    body["run"]["runtime"] = "torch"
    detail = error(http.post("/measurements", json=body, headers=headers), 409)
    assert "measured runtime 'tflite', not 'torch'" in detail["msg"]
