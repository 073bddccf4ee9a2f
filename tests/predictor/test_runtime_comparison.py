"""``predictor eval`` compares the runtimes of one device: op latency ratio, sum of blocks against whole models,
and model-level accuracy per runtime.

One runtime is real: ``profiler run`` times the whole fbnet-cifar100 table and a few architectures with torch
on this CPU. The other, "fused" (a fake, named so: no such runtime runs here), is written from those timings
by a known rule: every op takes half its torch time, and a whole model takes 1 / 0.8 of its ops' sum, as a
runtime that adds per-network work would. So its op ratio is exactly 0.5 and its sum-of-blocks bias -20 %.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from db import queries, session_scope
from db.records import MeasurementRecord
from predictor import cli, load_training_data
from predictor.runtime_comparison import compare_runtimes, sum_of_blocks_bias
from profiler.cli import app as profiler_app
from spaces import Architecture, get_space
from tests.utils.factories import ingest

SPACE = "fbnet-cifar100"
DEVICE = "this-cpu"
FAST = ["--min-run-time", "0.003", "--max-run-time", "0.006", "--copies", "2", "--warmup", "1", "--no-progress",
        "--max-quiet-wait", "0"]
FUSED_OPS, FUSED_MODEL = 0.5, 0.8  # the fake runtime's rule (module docstring)
MODELS = 4  # whole architectures profiled


def fused_records(rows: list) -> list[MeasurementRecord]:
    """The fake runtime's rows: ops at FUSED_OPS x torch, whole models at their fused ops' sum / FUSED_MODEL (each
    op at the median over the layers that share its shape, as the lookup table holds it)."""
    space = get_space(SPACE)
    ops = [r for r in rows if r.target in ("block", "fixed")]
    records = [MeasurementRecord(target=r.target, key=r.key, space=r.space, layer=r.layer, block=r.block,
                                 op_key=r.op_key, latency_ms=r.latency_ms * FUSED_OPS) for r in ops]
    by_op: dict[str, list[float]] = {}
    for r in records:
        op = space.op(r.layer, r.block) if r.target == "block" else space.fixed(r.key.rsplit("/", 1)[1]).op
        by_op.setdefault(op.key, []).append(r.latency_ms)
    for r in rows:
        if r.target == "model" and "@" not in r.key:
            arch = Architecture.parse(r.key.split("/", 1)[1], SPACE)
            summed = sum(float(np.median(by_op[op.key])) for op in arch.ops)
            records.append(MeasurementRecord(target="model", key=r.key, space=SPACE, latency_ms=summed / FUSED_MODEL))
    return records


@pytest.fixture(scope="module")
def two_runtimes(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('runtimes') / 'runtimes.db'}"
    measured = CliRunner().invoke(profiler_app, ["run", "--device", DEVICE, "--models", str(MODELS), "--db", url,
                                                 *FAST])
    assert measured.exit_code == 0, measured.output
    with session_scope(url) as session:
        rows = list(queries.latest_measurements(session, device=DEVICE, space=SPACE).values())
    ingest(url, DEVICE, fused_records(rows), runtime="fused")
    return url


def test_the_comparison_finds_the_known_ratio_and_bias(two_runtimes: str) -> None:
    with session_scope(two_runtimes) as session:
        data = {r: load_training_data(session, device=DEVICE, space=SPACE, runtime=r) for r in ("torch", "fused")}
    comparison = compare_runtimes(data)
    assert comparison.reference == "torch" and comparison.runtimes == ("fused", "torch")
    assert comparison.op_ratio["fused"].median == pytest.approx(FUSED_OPS)
    assert comparison.op_ratio["torch"].median == pytest.approx(1.0)
    assert comparison.op_ratio["fused"].n == len({s.op.key for s in data["torch"].ops})
    fused = comparison.sum_bias_pct["fused"]
    assert (fused.n, fused.median, fused.q1, fused.q3) == (MODELS, pytest.approx(-20), pytest.approx(-20),
                                                          pytest.approx(-20))
    # torch's own bias is what this CPU measured: blocks timed alone against whole networks
    torch_bias = comparison.sum_bias_pct["torch"]
    assert torch_bias.n == MODELS and torch_bias.median == sum_of_blocks_bias(data["torch"]).median
    assert -90 < torch_bias.median < 90


def test_predictor_eval_compares_the_runtimes_of_a_device(two_runtimes: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.app, ["eval", "--db", two_runtimes, "--device", DEVICE, "--kind", "lookup",
                                     "--folds", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["scores"][DEVICE]) == {"torch", "fused"}
    comparison = report["runtimes"][DEVICE]
    assert comparison["op_ratio"]["fused"]["median"] == pytest.approx(FUSED_OPS)
    assert comparison["sum_bias_pct"]["fused"]["median"] == pytest.approx(-20)
    for runtime in ("torch", "fused"):
        model = comparison["model_scores"][runtime]["lookup"]
        assert model == report["scores"][DEVICE][runtime]["lookup"]["model"] and model["n"] == MODELS
    # the fake runtime's models are its ops' sum times one factor: the correction learns it exactly
    assert comparison["model_scores"]["fused"]["lookup"]["mape"] == pytest.approx(0, abs=1e-6)

    table = runner.invoke(cli.app, ["eval", "--db", two_runtimes, "--device", DEVICE, "--kind", "lookup",
                                    "--folds", "2"], terminal_width=250)
    assert table.exit_code == 0, table.output
    assert "runtimes compared" in table.output and "fused" in table.output and "-20.0" in table.output

    only = json.loads(runner.invoke(cli.app, ["eval", "--db", two_runtimes, "--device", DEVICE, "--kind", "lookup",
                                              "--runtime", "fused", "--folds", "2", "--json"]).stdout)
    assert set(only["scores"][DEVICE]) == {"fused"} and only["runtimes"] == {}


def test_predict_asks_which_runtime_of_a_device_with_several(two_runtimes: str) -> None:
    runner = CliRunner()
    fit = runner.invoke(cli.app, ["fit", "--db", two_runtimes, "--device", DEVICE, "--kind", "lookup",
                                  "--no-evaluate", "--json"])
    assert fit.exit_code == 0, fit.output
    assert sorted((r["runtime"], r["version"]) for r in json.loads(fit.stdout)) == [("fused", 1), ("torch", 1)]
    arch = ",".join(["k3_e3"] * 22)
    ambiguous = runner.invoke(cli.app, ["predict", "--db", two_runtimes, "-d", DEVICE, "--arch", arch])
    assert ambiguous.exit_code == 2 and "several runtimes (fused, torch)" in ambiguous.output
    totals = {}
    for runtime in ("torch", "fused"):
        answer = runner.invoke(cli.app, ["predict", "--db", two_runtimes, "-d", DEVICE, "--arch", arch,
                                         "--runtime", runtime, "--json"])
        assert answer.exit_code == 0, answer.output
        totals[runtime] = json.loads(answer.stdout)
    assert totals["fused"]["runtime"] == "fused" and totals["fused"]["total_ms"] < totals["torch"]["total_ms"]
