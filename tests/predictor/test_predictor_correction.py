"""The model-level correction: fitted by hand-checkable least squares, and the same in LUTs as in models."""

from __future__ import annotations

import numpy as np
import pytest

from predictor import create_predictor, split_latency
from predictor.correction import Correction, Wait, fit_correction, fit_wait, model_sums, model_terms
from predictor.data import ModelSample
from predictor.facade import lut_from_predictors
from predictor.latency import DeviceLUT, Link, architecture_latency
from tests.predictor.synthetic import SPACE, synthetic_data
from tests.utils.factories import sample_archs, synthetic_ms


def test_weights_linear_recovers_scale_weight_and_call_cost_exactly():
    summed = np.array([5.0, 6.0, 7.5, 2.0, 3.0, 9.0, 4.0, 8.0, 0.1])
    mparams = np.array([1.8, 1.9, 2.0, 0.1, 0.3, 2.1, 0.2, 1.0, 0.0])
    measured = 1.2 * summed + 0.5 * mparams + 0.08
    correction = fit_correction("weights-linear", measured, summed, mparams)
    assert correction == Correction(pytest.approx(1.2), pytest.approx(0.5), pytest.approx(0.08))


def test_median_ratio_none_and_too_few_models():
    summed, mparams = np.array([1.0, 2.0, 4.0]), np.zeros(3)
    measured = np.array([1.1, 2.6, 4.4])  # ratios 1.1, 1.3, 1.1
    assert fit_correction("median-ratio", measured, summed, mparams).scale == pytest.approx(1.1)
    assert fit_correction("weights-linear", measured, summed, mparams) == Correction(pytest.approx(1.1), 0.0, 0.0)
    assert fit_correction("none", measured, summed, mparams) == Correction()
    with pytest.raises(ValueError, match="correction must be one of"):
        fit_correction("mean", measured, summed, mparams)


def test_lut_holds_in_network_latency_so_sums_match_the_predictor():
    """Models cost 1.05 x their ops + 0.4 ms per million weights + 0.06 ms per call; LUT sums match the predictor."""
    base = synthetic_data(configs=0, models=0)
    archs = sample_archs(SPACE, 30, seed=5, heads=True)

    def network_ms(arch):
        terms = model_terms(arch)
        ops_ms = sum(w * synthetic_ms(op) for op, w in terms)
        return 1.05 * ops_ms + 0.4e-6 * sum(w * op.params for op, w in terms) + 0.06

    data = base.with_samples(models=[ModelSample(a, network_ms(a), a.encode()) for a in archs])
    lookup = create_predictor("lookup").fit(data)
    assert (lookup.scale_, lookup.weight_ms_per_mparam_) == (pytest.approx(1.05), pytest.approx(0.4))
    assert lookup.call_ms_ == pytest.approx(0.06)
    lut = lut_from_predictors(lookup)
    assert lut.scale == pytest.approx(1.05) and lut.meta["correction"]["method"] == "weights-linear"
    assert lut.call_ms == pytest.approx(0.06) == DeviceLUT.from_dict(lut.to_dict()).call_ms
    whole = sample_archs(SPACE, 3, seed=11)
    assert [architecture_latency(a, lut) for a in whole] == pytest.approx(list(lookup.predict_models(whole)))
    split = whole[0].with_splits(9)
    result = split_latency(split, lut, lut, Link(8))
    assert result.segments[0].compute_ms == pytest.approx(lookup.predict_models([split])[0])
    assert result.segments[0].compute_ms == pytest.approx(network_ms(split))
    summed, mparams = model_sums(lookup, [split])
    assert result.segments[0].compute_ms == pytest.approx(1.05 * summed[0] + 0.4 * mparams[0] + 0.06)
    # each device's part is one call: split in two, the network pays one call more
    assert result.compute_ms == pytest.approx(architecture_latency(whole[0], lut) + 0.06)


def test_the_wait_after_a_link_is_fitted_on_networks_timed_after_an_idle_gap():
    # the extra of a call after a wait: 0.1 ms plus 60 % of the network's back-to-back latency
    measured = [0.05, 0.5, 0.8, 1.1, 1.5]
    assert fit_wait(measured, [ms + 0.1 + 0.6 * ms for ms in measured]) == Wait(pytest.approx(0.1), pytest.approx(0.6))
    assert fit_wait([1.0, 2.0, 4.0], [1.5, None, 4.3]) == Wait(pytest.approx(0.4))  # two timed: their median extra
    assert fit_wait([1.0, 2.0], [None, None]) == Wait()  # never timed after a wait: no cost assumed
    assert fit_wait([1.0], [0.9]) == Wait()  # faster after a wait is noise, not a negative cost
    assert Wait(0.1, 0.6).apply(np.array([1.0, 2.0])) == pytest.approx([1.7, 3.3])
    base = synthetic_data(configs=0, models=0)
    archs = sample_archs(SPACE, 9, seed=3, heads=True)
    models = [ModelSample(a, 2.0 + i, a.encode(), after_wait_ms=1.2 * (2.0 + i) + 0.1) for i, a in enumerate(archs)]
    lookup = create_predictor("lookup").fit(base.with_samples(models=models))
    assert lookup.wait_ == Wait(pytest.approx(0.1), pytest.approx(0.2))
    lut = lut_from_predictors(lookup)
    back = DeviceLUT.from_dict(lut.to_dict())
    assert (lut.wait_ms, lut.wait_share) == (pytest.approx(0.1), pytest.approx(0.2)) == (back.wait_ms, back.wait_share)
    assert lut.meta["correction"]["wait_share"] == pytest.approx(0.2)
    stored = create_predictor("lookup").set_state(lookup.get_state())
    assert stored.wait_ == lookup.wait_
    del stored.wait_ms_, stored.wait_share_  # a predictor stored before the wait was timed
    assert stored.wait_ == Wait()
