"""Stored predictors: metadata, and loading that fails with a message instead of crashing."""

from __future__ import annotations

import base64
import json

import pytest

from db.engine import session_scope
from predictor import create_predictor
from predictor.errors import PredictorLoadError, PredictorNotFoundError
from predictor.store import FORMAT_VERSION, clean_json, dump_predictor, load_artifact, load_fitted, save_fitted
from tests.predictor.synthetic import synthetic_data
from tests.utils.factories import ingest


@pytest.fixture(scope="module")
def gbdt_envelope() -> dict:
    data = synthetic_data(models=0)
    return json.loads(dump_predictor(create_predictor("gbdt", n_estimators=20).fit(data), meta={}))


def test_gbdt_fitted_with_other_library_versions_is_refused_naming_the_versions(gbdt_envelope):
    envelope = json.loads(json.dumps(gbdt_envelope))
    envelope["state"]["sklearn_version_"] = "0.24.2"
    with pytest.raises(PredictorLoadError, match=r"fitted with scikit-learn 0\.24\.2.*this environment has "
                                                 r"scikit-learn .*predictor fit --device synthetic"):
        load_artifact(json.dumps(envelope).encode())


def test_a_corrupt_model_or_envelope_is_a_load_error(gbdt_envelope):
    envelope = json.loads(json.dumps(gbdt_envelope))
    envelope["state"]["model_"] = base64.b64encode(b"not a pickle").decode()
    with pytest.raises(PredictorLoadError, match="cannot read the stored gbdt model"):
        load_artifact(json.dumps(envelope).encode())
    with pytest.raises(PredictorLoadError, match="not a splitnas-predictor envelope"):
        load_artifact(b"\x80\x04K\x01.")
    with pytest.raises(PredictorLoadError, match="unknown kind 'xgboost'; known: .*gbdt"):
        load_artifact(json.dumps({**gbdt_envelope, "kind": "xgboost"}).encode())
    with pytest.raises(PredictorLoadError, match=f"envelope version 99, this splitnas reads version {FORMAT_VERSION}"):
        load_artifact(json.dumps({**gbdt_envelope, "format_version": 99}).encode())
    with pytest.raises(PredictorLoadError, match="cannot restore the stored lookup predictor"):
        load_artifact(json.dumps({**gbdt_envelope, "kind": "lookup"}).encode())


def test_saved_predictor_carries_versions_fingerprint_features_and_metrics(db_url):
    data = synthetic_data(models=0, device="pi")
    ingest(db_url, "pi", [])  # an empty run creates the device
    predictor = create_predictor("gbdt", n_estimators=20).fit(data)
    with session_scope(db_url) as session:
        row = save_fitted(session, predictor=predictor, data=data, metrics={"entry": {"mape": float("nan")}})
        again = save_fitted(session, predictor=predictor, data=data, metrics={})
        loaded, latest = load_fitted(session, device="pi", space=data.space, kind="gbdt")
    assert (row.version, again.version, latest.version) == (1, 2, 2)
    assert set(row.meta["libraries"]) >= {"scikit-learn", "numpy", "splitnas"}
    assert row.meta["data_fingerprint"] == data.fingerprint and "log_flops" in row.meta["features"]
    assert row.meta["params"]["n_estimators"] == 20 and row.metrics == {"entry": {"mape": None}}
    assert loaded.predict_ops([s.op for s in data.blocks]).tolist() == predictor.predict_ops(
        [s.op for s in data.blocks]).tolist()


def test_loading_what_was_never_fitted_says_what_to_run(db_url):
    ingest(db_url, "pi", [])
    with session_scope(db_url) as session:
        with pytest.raises(PredictorNotFoundError, match="run `predictor fit --device pi --space fbnet-cifar100 "
                                                         "--kind gbdt`"):
            load_fitted(session, device="pi", space="fbnet-cifar100", kind="gbdt")
        with pytest.raises(PredictorNotFoundError, match=r"unknown device 'jetson' \(known devices: pi\)"):
            load_fitted(session, device="jetson", space="fbnet-cifar100", kind="gbdt")


def test_clean_json_replaces_non_finite_numbers():
    assert clean_json({"a": [1.0, float("inf")], "b": (float("nan"), "x")}) == {"a": [1.0, None], "b": [None, "x"]}
