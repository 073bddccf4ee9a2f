"""Metrics by hand, and the hold-out protocols keeping held-out data out of the fit."""

from __future__ import annotations

import math

import pytest

from predictor.data import OpSample
from predictor.evaluate import evaluate_kind, score
from tests.predictor.synthetic import synthetic_data


def test_scores_by_hand():
    s = score([1.0, 2.0, 4.0, 10.0], [1.04, 2.3, 4.0, 9.6])  # errors 4 %, 15 %, 0 %, 4 %
    assert s.mape == pytest.approx((4 + 15 + 0 + 4) / 4)
    assert s.within_5 == 75.0 and s.within_10 == 75.0
    assert s.rmse_ms == pytest.approx(math.sqrt((0.04**2 + 0.3**2 + 0 + 0.4**2) / 4))
    assert s.spearman == pytest.approx(1.0) and s.kendall == pytest.approx(1.0)
    assert (s.n, s.coverage) == (4, 1.0)


def test_measured_zeros_count_for_rmse_but_not_for_relative_errors():
    s = score([0.0, 1.0, 2.0], [0.1, 1.0, 2.0], total=6)
    assert s.mape == 0.0 and s.within_5 == 100.0
    assert s.rmse_ms == pytest.approx(math.sqrt(0.01 / 3))
    assert s.coverage == 0.5
    assert score([], [], total=3).note == "no prediction possible"


def test_every_protocol_runs_and_lookup_cannot_answer_held_out_ops():
    data = synthetic_data(configs=40, models=12)
    # configs that repeat the space's own ops must be held out with them, or the lookup would answer
    data = data.with_samples(ops=list(data.ops) + [OpSample(s.op, s.latency_ms, "config", s.op.key)
                                                   for s in data.blocks])
    steps: list[str] = []
    lookup = evaluate_kind("lookup", data, folds=3, progress=steps.append)
    assert steps == ["entry", "layer", "config", "model"]  # arch-sum only without measured models
    assert set(lookup) == {"entry", "layer", "config", "model", "model-raw", "head"}
    assert lookup["entry"].n == lookup["layer"].n == 0 and lookup["entry"].total == 198
    assert lookup["model"].n == 12 and lookup["model"].mape == pytest.approx(0, abs=1e-9)
    assert lookup["model-raw"].mape == pytest.approx(100 * (1 - 1 / 1.1))
    assert lookup["head"].n == 12
    gbdt = evaluate_kind("gbdt", data, folds=3, params={"n_estimators": 60})
    assert gbdt["entry"].n == gbdt["layer"].n == 198 and gbdt["config"].coverage == 1.0
    assert gbdt["config"].within_10 > 80 and gbdt["layer"].spearman > 0.95


def test_without_measured_models_architectures_are_judged_on_the_summed_table():
    data = synthetic_data(configs=0, models=0)
    flops = evaluate_kind("flops-linear-intercept", data, folds=3)
    assert flops["model"].total == 0 and "profiler run --models" in flops["model"].note
    assert flops["config"].note.startswith("no sampled configurations")
    assert flops["arch-sum"].n == 200 and flops["arch-sum"].spearman > 0.9
    assert evaluate_kind("lookup", data, folds=3)["arch-sum"].n == 0
