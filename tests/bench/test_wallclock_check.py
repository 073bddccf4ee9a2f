"""The independent wall-clock check: a separate process that times networks, and the bench that scores against it."""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from db import session_scope
from predictor import fit_predictors
from tests.predictor.synthetic import SPACE, synthetic_model_ms
from tests.utils.factories import block_records, fixed_records, ingest, model_records, sample_archs, synthetic_ms

BENCH = Path(__file__).parents[2] / "bench"
QUICK = ["--rounds", "2", "--min-run-time", "0.01"]


def bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_times_whole_networks_and_heads_in_its_own_process(tmp_path: Path) -> None:
    whole, head = (a.encode() for a in sample_archs(SPACE, 1, heads=True))
    listing, out = tmp_path / "archs.txt", tmp_path / "wall.json"
    listing.write_text(f"{head}\n\n")
    done = subprocess.run(
        [sys.executable, str(BENCH / "wallclock_check.py"), whole, "--archs-file", str(listing), "--out", str(out),
         *QUICK], capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the progress bar goes to stderr: a caller printing JSON on stdout keeps it clean
    result = json.loads(out.read_text())
    assert result["space"] == SPACE and result["threads"] == 1 and result["batch"] == 1 and result["input_size"] == 32
    assert result["rounds"] == 2 and len(result["loadavg_before"]) == 3
    assert list(result["latencies"]) == [whole, head]
    for values in result["latencies"].values():
        assert len(values["round_medians_ms"]) == 2 and values["median_ms"] > 0
        assert min(values["round_medians_ms"]) <= values["median_ms"] <= max(values["round_medians_ms"])


def test_the_script_refuses_a_bad_architecture_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "wall.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "wallclock_check.py"), "k3_e3,nonsense", "--out", str(out), *QUICK],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2 and "error:" in done.stderr and not out.exists()


@pytest.fixture(scope="module")
def profiled_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A synthetic device (generated latencies) with four measured architectures and their heads, fitted."""
    url = f"sqlite:///{tmp_path_factory.mktemp('wallclock') / 'synthetic.db'}"
    records = block_records(SPACE, synthetic_ms) + fixed_records(SPACE, synthetic_ms)
    ingest(url, "synth-cpu", records + model_records(sample_archs(SPACE, 4, heads=True), synthetic_model_ms))
    with session_scope(url) as session:
        fit_predictors(session, device="synth-cpu", space=SPACE, kinds=["lookup"])
    return url


def test_the_independent_check_scores_unmeasured_architectures_and_the_profiled_ones(profiled_db: str) -> None:
    accuracy = bench_module("predictor_accuracy")
    profiled = {a.encode() for a in sample_archs(SPACE, 4)}
    result = accuracy.independent_check(
        profiled_db, "synth-cpu", ["lookup"], count=3, seed=0, rounds=1, min_run_time=0.01,
    )
    timed = set(result["wallclock"]["latencies"])
    held_out = timed - profiled
    assert len(held_out) == 3 and profiled <= timed  # three new networks, and every profiled one (fewer than 20)
    scores = result["scores"]["lookup"]
    assert scores["n"] == 3 and scores["within_10"] is not None and scores["median_bias"] is not None
    assert result["profiler_vs_wall"]["n"] == 4 and set(result["profiled_ms"]) == profiled
    ratios = [result["profiled_ms"][a] / result["wallclock"]["latencies"][a]["median_ms"] for a in profiled]
    assert result["profiler_vs_wall"]["median_ratio"] == pytest.approx(statistics.median(ratios))
    verdict = accuracy.verdict({"kinds": {"lookup": {"protocols": {"model": {"n": 4, "mape": 1.0, "within_10": 100,
                                "within_5": 100, "spearman": 1.0}}}}, "independent": result})
    assert {"independent_within_10", "profiler_vs_wall"} <= set(verdict["checks"])


def test_held_out_architectures_are_new_and_distinct() -> None:
    accuracy = bench_module("predictor_accuracy")
    first = accuracy.held_out_architectures(set(), 5, seed=0)
    again = accuracy.held_out_architectures(set(first[:2]), 5, seed=0)
    assert len(set(first)) == 5 and not set(first[:2]) & set(again) and len(set(again)) == 5
