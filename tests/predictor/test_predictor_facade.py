"""fit_predictors, load_predictor and load_lut on real SQLite databases of synthetic devices."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from db import queries
from db.engine import make_engine, session_scope
from db.models import FittedPredictor
from db.records import MeasurementBatch
from predictor import (
    PredictorNotFoundError,
    UnmeasuredOpError,
    architecture_latency,
    fit_predictors,
    load_lut,
    load_predictor,
)
from spaces import get_space
from tests.predictor.synthetic import EXTENDED, MODEL_BIAS, SMALL_GBDT, SPACE, synthetic_model_ms, synthetic_records
from tests.utils.factories import block_records, ingest, make_run, sample_archs, synthetic_ms


@pytest.fixture(scope="module")
def fitted_db(synthetic_db) -> str:
    with session_scope(synthetic_db) as session:
        fit_predictors(session, device="synth-cpu", space=SPACE, kinds=["lookup", "gbdt"], params=SMALL_GBDT)
        fit_predictors(session, device="synth-partial", space=EXTENDED, kinds=["lookup", "gbdt", "flops-linear"],
                       params=SMALL_GBDT)
    return synthetic_db


def test_fit_reports_every_kind_with_metrics_and_stores_them(synthetic_db):
    with session_scope(synthetic_db) as session:
        reports = fit_predictors(session, device="synth-cpu", space=SPACE, kinds=["flops-linear", "lookup"])
        stored = load_predictor(session, device="synth-cpu", space=SPACE, kind="flops-linear")
    by_kind = {r.kind: r for r in reports}
    assert set(by_kind) == {"flops-linear", "lookup"}
    flops = by_kind["flops-linear"]
    assert flops.pi_gflops == pytest.approx(stored.pi_gflops) and 0.5 < flops.pi_gflops < 3
    assert flops.r2 == pytest.approx(stored.fit_summary()["r2"])
    assert set(flops.metrics["protocols"]) == {"entry", "layer", "config", "model", "model-raw", "head"}
    assert flops.metrics["scale"] == pytest.approx(stored.scale_)
    assert flops.meta["data_fingerprint"] == by_kind["lookup"].meta["data_fingerprint"]
    assert by_kind["lookup"].metrics["protocols"]["model"]["within_10"] == 100.0


def test_auto_lut_of_a_fully_measured_device_is_the_measured_table_with_the_model_correction(fitted_db):
    with session_scope(fitted_db) as session:
        lut = load_lut(session, device="synth-cpu", space=SPACE)
    space = get_space(SPACE)
    assert lut.predictor == "lookup" and lut.measured.sum() == 198
    assert lut.scale == pytest.approx(MODEL_BIAS)
    assert lut.table[7, lut.column("k5_e6")] == pytest.approx(synthetic_ms(space.op(7, "k5_e6")))
    assert lut.iqr[7, lut.column("k5_e6")] == pytest.approx(0.01 * lut.table[7, lut.column("k5_e6")])
    assert lut.fixed["head"] == pytest.approx(synthetic_ms(space.fixed("head").op))
    arch = sample_archs(SPACE, 1, seed=9)[0]
    assert architecture_latency(arch, lut) == pytest.approx(synthetic_model_ms(arch), rel=1e-3)
    assert {p["kind"] for p in lut.meta["predictors"]} == {"lookup"}


def test_auto_falls_back_to_gbdt_for_blocks_never_measured(fitted_db):
    with session_scope(fitted_db) as session:
        lut = load_lut(session, device="synth-partial", space=EXTENDED)
        gbdt = load_lut(session, device="synth-partial", space=EXTENDED, kind="gbdt")
    space = get_space(EXTENDED)
    assert lut.predictor == "lookup+gbdt"
    bottleneck = [lut.column(b.name) for b in space.blocks if b.is_bottleneck]
    assert not lut.measured[:, bottleneck].any() and lut.measured.sum() == 22 * 9
    assert np.isnan(lut.iqr[:, bottleneck]).all()
    assert lut.table[:, bottleneck] == pytest.approx(gbdt.table[:, bottleneck])
    truth = np.array([[synthetic_ms(layer.op(space.blocks[c])) for c in bottleneck] for layer in space.layers])
    assert np.median(np.abs(lut.table[:, bottleneck] - truth) / truth) < 0.1
    assert not gbdt.measured.any() and gbdt.predictor == "gbdt"


def test_lookup_lut_refuses_unmeasured_entries_and_points_to_auto(fitted_db):
    with session_scope(fitted_db) as session, pytest.raises(UnmeasuredOpError, match=r"132 entries .*L0/k3_e1/2"):
        load_lut(session, device="synth-partial", space=EXTENDED, kind="lookup")


def test_no_predictor_or_no_measurement_says_what_to_run(db_url):
    ingest(db_url, "pi", synthetic_records(configs=10, models=4))
    with session_scope(db_url) as session:
        with pytest.raises(PredictorNotFoundError, match="predictor fit --device pi --space fbnet-cifar100 --kind all"):
            load_lut(session, device="pi", space=SPACE)
        with pytest.raises(PredictorNotFoundError, match=r"unknown device 'jetson' \(known devices: pi\)"):
            load_lut(session, device="jetson", space=SPACE)
        with pytest.raises(PredictorNotFoundError, match="profiler run --device pi --space mbconv-cifar100"):
            fit_predictors(session, device="pi", space="mbconv-cifar100", kinds=["lookup"])
        with pytest.raises(PredictorNotFoundError, match="unknown predictor kind 'cnn'"):
            fit_predictors(session, device="pi", space=SPACE, kinds=["cnn"])
        lut = load_lut(session, device="pi", space=SPACE, fit_if_missing=True)
        assert lut.predictor == "lookup" and lut.scale == pytest.approx(MODEL_BIAS)
        extended = load_lut(session, device="pi", space=EXTENDED, fit_if_missing=True)
        assert extended.predictor == "lookup+gbdt" and extended.measured.sum() == 198


def test_refitting_makes_a_new_version_that_load_predictor_returns(db_url):
    ingest(db_url, "pi", synthetic_records(configs=10, models=4))
    with session_scope(db_url) as session:
        first = fit_predictors(session, device="pi", space=SPACE, kinds=["flops-linear"], evaluate=False)[0]
        second = fit_predictors(session, device="pi", space=SPACE, kinds=["flops-linear"], evaluate=False)[0]
        loaded = load_predictor(session, device="pi", space=SPACE, kind="flops-linear")
    assert (first.version, second.version) == (1, 2) and "protocols" not in second.metrics
    assert loaded.pi_gflops == pytest.approx(second.pi_gflops)


def test_another_connection_writes_while_a_fit_runs(db_url):
    """The fit pauses before fitting its second kind (in a thread); meanwhile a measurement is inserted
    through a connection that waits at most 1 s for the write lock, and sees the first kind stored."""
    ingest(db_url, "pi", synthetic_records(configs=10, models=4))
    fitting, written = threading.Event(), threading.Event()
    steps: list[tuple[str, str]] = []

    def progress(kind: str, step: str) -> None:
        steps.append((kind, step))
        if (kind, step) == ("gbdt", "fit"):
            fitting.set()
            written.wait(30)

    def fit() -> None:
        with session_scope(db_url) as session:
            fit_predictors(session, device="pi", space=SPACE, kinds=["lookup", "gbdt"], params=SMALL_GBDT,
                           progress=progress)

    thread = threading.Thread(target=fit)
    thread.start()
    try:
        assert fitting.wait(60)
        other = make_engine(db_url)
        event.listen(other, "connect", lambda connection, _record: connection.execute("PRAGMA busy_timeout=1000"))
        with Session(other) as session:
            stored = session.scalar(select(func.count()).select_from(FittedPredictor))
            batch = MeasurementBatch(run=make_run("pi"), measurements=block_records(SPACE, {(0, "k3_e1"): 0.5}))
            assert queries.ingest_batch(session, batch=batch) == (1, 0)
            session.commit()
        other.dispose()
    finally:
        written.set()
        thread.join(120)
    assert stored == 1  # the lookup table, committed before gbdt was fitted
    assert steps[:2] == [("lookup", "fit"), ("lookup", "entry")] and steps[-1] == ("gbdt", "store")
    with session_scope(db_url) as session:
        assert {r.kind for r in queries.latest_predictors(session, device="pi")} == {"lookup", "gbdt"}
