"""The predictors on HW-NAS-Bench's public FBNet tables, imported with the profiler's importer."""

from __future__ import annotations

import math

import pytest

from db.engine import session_scope
from predictor import fit_predictors, load_lut
from predictor.data import load_training_data
from predictor.evaluate import evaluate_kind
from profiler.hwnasbench import DEVICES, import_tables, load_tables

SPACE = "fbnet-cifar100"


@pytest.fixture(scope="module")
def hwnas_db(hwnasbench_dir, tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('hwnas') / 'hwnas.db'}"
    with session_scope(url) as session:
        import_tables(session, load_tables(hwnasbench_dir), source=str(hwnasbench_dir))
    return url


def test_flops_linear_reports_pi_and_r2_for_every_device(hwnas_db):
    with session_scope(hwnas_db) as session:
        reports = {d.name: fit_predictors(session, device=d.name, space=SPACE,
                                          kinds=["flops-linear", "flops-linear-intercept"], evaluate=False)
                   for d in DEVICES}
    for name, (plain, intercept) in reports.items():
        assert plain.metrics["fit"]["n"] == 198, name  # the whole 22 x 9 table
        assert math.isfinite(plain.r2) and plain.pi_gflops > 0, name
        assert intercept.r2 >= plain.r2 - 1e-9, name  # the intercept variant fits at least as well here
    # the Raspberry Pi is CPU-bound and fits the pure ratio; the Jetson's flat per-block cost does not
    assert reports["raspi4"][0].r2 > 0.8 and 1 < reports["raspi4"][0].pi_gflops < 5
    assert reports["edgegpu"][0].r2 < 0 < reports["edgegpu"][1].r2


def test_every_protocol_runs_for_every_kind(hwnas_db):
    with session_scope(hwnas_db) as session:
        data = load_training_data(session, device="raspi4", space=SPACE)
    assert data.describe()["block"] == 198 and data.describe()["config"] > 0  # the ImageNet table's extra shapes
    results = {kind: evaluate_kind(kind, data, folds=3, params={"n_estimators": 60} if kind == "gbdt" else None)
               for kind in ("lookup", "flops-linear", "gbdt")}
    for kind, protocols in results.items():
        assert {"entry", "layer", "config", "model", "arch-sum"} <= set(protocols), kind
    assert results["gbdt"]["entry"].n == 198 and results["gbdt"]["config"].n > 0
    assert results["gbdt"]["arch-sum"].within_10 > results["flops-linear"]["arch-sum"].within_10
    assert results["lookup"]["entry"].n == 0  # held-out entries are exactly what a table cannot answer


def test_auto_lut_serves_the_imported_table(hwnas_db):
    with session_scope(hwnas_db) as session:
        fit_predictors(session, device="pixel3", space=SPACE, kinds=["lookup"], evaluate=False)
        lut = load_lut(session, device="pixel3", space=SPACE)
        data = load_training_data(session, device="pixel3", space=SPACE)
    assert lut.predictor == "lookup" and lut.measured.sum() == 198
    sample = next(s for s in data.blocks if s.layer == 7 and s.block == "k5_e6")
    assert lut.table[7, lut.column("k5_e6")] == sample.latency_ms


def test_the_extended_space_reuses_the_table_and_predicts_its_bottleneck_blocks(hwnas_db):
    space = "fbnet-extended-cifar100"
    with session_scope(hwnas_db) as session:
        fit_predictors(session, device="raspi4", space=space, kinds=["lookup", "flops-linear"], evaluate=False)
        lut = load_lut(session, device="raspi4", space=space)
        flops = load_lut(session, device="raspi4", space=space, kind="flops-linear")
    assert lut.predictor == "lookup+flops-linear" and lut.measured.sum() == 198
    bottleneck = [lut.column(name) for name in ("k3_e1/2", "k3_e1/4", "k3_e1/8", "k5_e1/2", "k5_e1/4", "k5_e1/8")]
    assert lut.table[:, bottleneck] == pytest.approx(flops.table[:, bottleneck])
    assert (lut.table[:, bottleneck] > 0).all()
