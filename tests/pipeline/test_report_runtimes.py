"""The pipeline's report shows each runtime of a device and compares them (generated tables, not measurements:
torch's whole models run 10 % above their ops' sum, the other runtime's 25 % below it)."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from db.engine import session_scope
from pipeline.report import write_report
from predictor import fit_predictors
from predictor.base import model_terms
from spaces import Architecture
from tests.utils.factories import block_records, fixed_records, ingest, model_records, sample_archs, synthetic_ms

SPACE = "fbnet-cifar100"
RUNTIMES = {"torch": (2.0, 1.1), "onnxruntime": (4.0, 0.75)}  # runtime -> (GFLOPS, whole model / sum of ops)


def test_the_report_compares_the_runtimes_of_a_device(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'report.db'}"
    for runtime, (gflops, factor) in RUNTIMES.items():
        latency = partial(synthetic_ms, gflops=gflops)

        def whole(arch: Architecture, latency=latency, factor=factor) -> float:
            return factor * sum(w * latency(op) for op, w in model_terms(arch))

        records = block_records(SPACE, latency) + fixed_records(SPACE, latency)
        ingest(db, "dual", records + model_records(sample_archs(SPACE, 6), whole), runtime=runtime)
        with session_scope(db) as session:
            fit_predictors(session, device="dual", space=SPACE, kinds=["lookup"], runtime=runtime)

    index = write_report(tmp_path, db, ["dual"], "dual", SPACE, [])
    page = index.read_text()
    assert "Runtimes compared" in page and "The runtimes of dual compared" in page
    assert "Latency table of dual under onnxruntime" in page and "Latency table of dual under torch" in page
    assert 'class="runtime-bias" data-runtime="onnxruntime"' in page
    comparison = json.loads((tmp_path / "summary.json").read_text())["runtimes"]["dual"]
    assert comparison["reference"] == "torch"
    assert comparison["op_ratio"]["onnxruntime"]["median"] == pytest.approx(0.5, rel=0.3)  # overheads do not scale
    for runtime, (_, factor) in RUNTIMES.items():
        assert comparison["sum_bias_pct"][runtime]["median"] == pytest.approx(100 * (1 / factor - 1))
        assert comparison["model_scores"][runtime]["lookup"]["n"] == 6
    assert {row["runtime"] for row in json.loads((tmp_path / "summary.json").read_text())["predictors"]} == {
        "torch", "onnxruntime"}
