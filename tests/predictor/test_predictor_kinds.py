"""Every registered predictor kind against the contract, and each kind against hand-computed fits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from predictor import PREDICTORS, create_predictor, register_predictor
from predictor.base import LatencyPredictor, model_terms
from predictor.data import ModelSample, OpSample, TrainingData
from predictor.errors import NotFittedError, PredictorError, UnmeasuredOpError
from predictor.store import dump_predictor, load_artifact
from spaces import Architecture, Op, get_space
from tests.predictor.synthetic import EXTENDED, MODEL_BIAS, SPACE, synthetic_data
from tests.utils.factories import synthetic_ms

FAST = {"gbdt": {"n_estimators": 60}}


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return synthetic_data()


@pytest.fixture(scope="module", params=sorted(PREDICTORS))
def fitted(request, data) -> LatencyPredictor:
    return create_predictor(request.param, **FAST.get(request.param, {})).fit(data)


def space_ops(space: str = SPACE) -> list[Op]:
    return list(get_space(space).distinct_ops.values())


@pytest.mark.parametrize("kind", sorted(PREDICTORS))
def test_init_stores_hyperparameters_only_and_predict_needs_fit(kind):
    predictor = create_predictor(kind)
    assert not [name for name in vars(predictor) if name.endswith("_")]
    assert clone(predictor).get_params() == predictor.get_params()
    with pytest.raises(NotFittedError, match="not fitted"):
        predictor.predict_ops(space_ops()[:3])


def test_fit_returns_self_and_predicts_every_op_of_the_space(fitted):
    assert fitted.device_ == "synthetic" and fitted.n_ops_ > 0
    predictions = fitted.predict_ops(space_ops())
    assert predictions.shape == (len(space_ops()),)
    assert np.isfinite(predictions).all() and (predictions >= 0).all()
    assert fitted.predict_ops([]).shape == (0,)


def test_stored_and_loaded_predictor_predicts_the_same(fitted):
    loaded = load_artifact(dump_predictor(fitted, meta={}))
    assert type(loaded) is type(fitted) and loaded.get_params().keys() == fitted.get_params().keys()
    assert loaded.predict_ops(space_ops()) == pytest.approx(fitted.predict_ops(space_ops()), rel=1e-12)
    assert loaded.scale_ == fitted.scale_


def test_model_level_correction_recovers_the_whole_network_bias(fitted, data):
    """Models run MODEL_BIAS x the sum of their blocks: every kind learns a scale near it."""
    tolerance = 0.05 if fitted.kind.startswith("flops") else 0.01
    assert fitted.scale_ == pytest.approx(MODEL_BIAS, rel=tolerance)
    archs = [m.arch for m in data.models]
    raw = fitted.predict_models(archs, corrected=False)
    assert fitted.predict_models(archs) == pytest.approx(MODEL_BIAS * raw, rel=tolerance)


def test_without_models_or_with_correction_none_the_scale_is_one(data):
    no_models = data.with_samples(models=())
    assert create_predictor("lookup").fit(no_models).scale_ == 1.0
    assert create_predictor("lookup", correction="none").fit(data).scale_ == 1.0
    with pytest.raises(ValueError, match="correction must be one of"):
        create_predictor("lookup", correction="mean").fit(data)


def test_fitting_nothing_tells_how_to_measure():
    with pytest.raises(PredictorError, match="profiler run --device pi --space fbnet-cifar100"):
        create_predictor("gbdt").fit(TrainingData("pi", SPACE))


def test_registry_refuses_duplicates_and_unknown_kinds():
    with pytest.raises(ValueError, match="'lookup' is already registered"):
        register_predictor("lookup")(type("Again", (LatencyPredictor,), {}))
    with pytest.raises(PredictorError, match="unknown predictor kind 'xgboost'; allowed: .*gbdt"):
        create_predictor("xgboost")


# -- lookup ------------------------------------------------------------------------------------------


def test_lookup_answers_measured_entries_exactly_and_refuses_the_rest(data):
    lookup = create_predictor("lookup").fit(data)
    blocks = data.blocks
    assert lookup.predict_ops([s.op for s in blocks]).tolist() == [s.latency_ms for s in blocks]
    unmeasured = get_space(EXTENDED).op(6, "k3_e1/4")
    assert lookup.can_predict([blocks[0].op, unmeasured]).tolist() == [True, False]
    with pytest.raises(UnmeasuredOpError, match=f"op {unmeasured.key} was never measured on device 'synthetic'"):
        lookup.predict_ops([blocks[0].op, unmeasured])


def test_lookup_keeps_the_median_of_repeated_measurements_of_one_op():
    op = get_space(SPACE).op(2, "k3_e3")  # layers 2, 3 and 4 share this shape
    samples = [OpSample(op, ms, "block", f"L{i}", i, "k3_e3", iqr) for i, ms, iqr in
               [(2, 1.0, 0.01), (3, 1.4, 0.03), (4, 1.1, 0.02)]]
    lookup = create_predictor("lookup").fit(TrainingData("pi", SPACE, tuple(samples)))
    assert lookup.predict_op(op) == 1.1 and lookup.iqr_ms(op) == 0.02


# -- flops-linear ------------------------------------------------------------------------------------


def flops_data(latency) -> TrainingData:
    s = get_space(SPACE)
    samples = [OpSample(layer.op(b), latency(layer.op(b)), "block", f"L{layer.index}/{b.name}", layer.index, b.name)
               for layer in s.layers for b in layer.blocks]
    return TrainingData("dev", SPACE, tuple(samples))


def test_flops_linear_recovers_the_computation_power_of_a_pure_flops_device():
    predictor = create_predictor("flops-linear").fit(flops_data(lambda op: op.flops / 5e6))  # 5 GFLOPS
    assert predictor.pi_gflops == pytest.approx(5.0)
    assert predictor.fit_summary()["r2"] == pytest.approx(1.0)
    assert predictor.fit_summary()["n"] == 198  # every (layer, block) pair of the 22 x 9 table


def test_flops_linear_is_the_closed_form_least_squares():
    """1/Pi = sum(T * C) / sum(C^2), with T from a nonlinear device."""
    data = flops_data(synthetic_ms)
    flops = np.array([s.op.flops for s in data.ops], dtype=float)
    latency = np.array([s.latency_ms for s in data.ops])
    ms_per_flop = (latency * flops).sum() / (flops**2).sum()
    predictor = create_predictor("flops-linear").fit(data)
    assert predictor.pi_gflops == pytest.approx(1e-6 / ms_per_flop)
    residual = latency - ms_per_flop * flops
    r2 = 1 - (residual**2).sum() / ((latency - latency.mean()) ** 2).sum()
    assert predictor.fit_summary()["r2"] == pytest.approx(r2)
    op = get_space(SPACE).op(7, "k5_e6")
    assert predictor.predict_op(op) == pytest.approx(op.flops * ms_per_flop)


def test_flops_linear_intercept_recovers_overhead_and_power_and_fits_better():
    def gpu(op: Op) -> float:
        return 0.0 if op.is_identity else 0.4 + op.flops / 50e6

    data = flops_data(gpu)
    plain = create_predictor("flops-linear").fit(data)
    with_intercept = create_predictor("flops-linear-intercept").fit(data)
    assert with_intercept.fit_summary()["intercept_ms"] == pytest.approx(0.4)
    assert with_intercept.pi_gflops == pytest.approx(50.0)
    assert with_intercept.fit_summary()["r2"] == pytest.approx(1.0)
    assert plain.fit_summary()["r2"] < 0.9  # a fixed per-block overhead is what the pure ratio cannot fit
    assert with_intercept.predict_op(get_space(SPACE).op(3, "skip")) == 0.0  # identity skip: 0 FLOPs, 0 ms


# -- gbdt --------------------------------------------------------------------------------------------


def test_gbdt_predicts_blocks_it_never_saw():
    """Fitted without any bottleneck block, it predicts the extended space's ones (and new input sizes)."""
    data = synthetic_data(EXTENDED, configs=120, models=0)
    train = data.with_samples(ops=[s for s in data.ops if not (s.target == "block" and s.op.is_bottleneck)])
    gbdt = create_predictor("gbdt").fit(train)
    unseen = [s.op for s in data.blocks if s.op.is_bottleneck]
    unseen += [Op("conv", 64, 24, 32, 2, 5, 3), Op("conv", 2, 352, 352, 1, 3, 6, residual=True)]
    measured = np.array([synthetic_ms(op) for op in unseen])
    error = np.abs(gbdt.predict_ops(unseen) - measured) / measured
    assert np.median(error) < 0.05 and error.max() < 0.35
    assert gbdt.fit_summary()["top_features"]


def test_gbdt_fit_is_reproducible(data):
    a = create_predictor("gbdt", n_estimators=30).fit(data).predict_ops(space_ops())
    b = create_predictor("gbdt", n_estimators=30).fit(data).predict_ops(space_ops())
    assert a.tolist() == b.tolist()


def test_heads_sum_the_prefix_and_blocks_before_the_split_with_a_bottleneck_front():
    s = get_space(EXTENDED)
    blocks = ["k3_e3"] * 22
    blocks[4] = "k5_e1/8"
    head = Architecture.parse(",".join(blocks) + "@5", s)
    terms = model_terms(head)
    assert [op for op, _ in terms] == [s.prefix[0].op] + head.layer_ops[:5]
    assert terms[-1][1] == head.layer_ops[4].front_share < 1
    lookup = create_predictor("lookup").fit(synthetic_data(EXTENDED, configs=0, models=0))
    expected = sum(w * synthetic_ms(op) for op, w in terms)
    assert lookup.predict_models([head])[0] == pytest.approx(expected)
    assert ModelSample(head, 1.0, "k").is_head
