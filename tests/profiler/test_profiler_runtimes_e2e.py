"""End to end under ONNX Runtime: `profiler run --runtime onnxruntime`, `predictor fit`, uvicorn, `GET /latency`.

One device is profiled under torch and under ONNX Runtime into one SQLite file; the service answers for
each runtime with the predictor fitted to that runtime's measurements, and asks which one is meant when
none is named.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from db import queries, session_scope
from pipeline.service import Service
from predictor import load_lut

BIN = Path(sys.executable).parent
DEVICE = "e2e-cpu"
SPACE = "fbnet-cifar100"
FAST = ["--min-run-time", "0.003", "--max-run-time", "0.006", "--copies", "2", "--warmup", "1", "--no-progress",
        "--max-quiet-wait", "0", "--passes", "1"]


def command(*args: str) -> str:
    result = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_profile_under_onnxruntime_is_fitted_served_and_asked_for(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    common = ["--device", DEVICE, "--layers", "0", "--models", "1", "--db", db_url,
              "--onnx-cache", str(tmp_path / "onnx"), *FAST]
    for runtime in ("onnxruntime", "torch"):
        command("profiler", "run", "--runtime", runtime, *common)
    # flops-linear answers the blocks nobody measured; the measured ones are answered by their measurement
    command("predictor", "fit", "--device", DEVICE, "--kind", "flops-linear", "--no-evaluate", "--db", db_url)
    with session_scope(db_url) as session:
        assert sorted(run.runtime for run in queries.list_runs(session, device=DEVICE)) == ["onnxruntime", "torch"]
        tables = {runtime: load_lut(session, device=DEVICE, space=SPACE, runtime=runtime)
                  for runtime in ("onnxruntime", "torch")}
    expected = {runtime: float(lut.table[0, lut.blocks.index("k5_e6")]) for runtime, lut in tables.items()}
    assert expected["onnxruntime"] != pytest.approx(expected["torch"], rel=0.01)  # each fitted on its own rows

    with Service(db_url, log=tmp_path / "service.log") as service:
        query = {"block": "k5_e6", "layer": 0, "device": DEVICE}
        for runtime, latency in expected.items():
            response = httpx.get(f"{service.url}/latency", params={**query, "runtime": runtime}, timeout=30)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["runtime"] == runtime and answer["latency_ms"] == pytest.approx(latency)
        ambiguous = httpx.get(f"{service.url}/latency", params=query, timeout=30)
        assert ambiguous.status_code == 422, ambiguous.text
        assert "onnxruntime" in ambiguous.text and "torch" in ambiguous.text
