"""The query functions of db.queries on real databases: a SQLite file and a PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db import queries, session_scope
from db.errors import RunConflictError
from db.models import Measurement
from db.records import MeasurementBatch, MeasurementRecord, RunRecord

SPACE = "fbnet-cifar100"


def block_record(layer: int, block: str, latency_ms: float) -> MeasurementRecord:
    return MeasurementRecord(
        target="block", key=f"{SPACE}/L{layer}/{block}", space=SPACE, layer=layer, block=block, latency_ms=latency_ms
    )


def run(uid: str, device: str = "raspi4", **fields: object) -> RunRecord:
    return RunRecord(uid=uid, device=device, **fields)


def batch(uid: str, records: list[MeasurementRecord], device: str = "raspi4", **fields: object) -> MeasurementBatch:
    return MeasurementBatch(run=run(uid, device, **fields), measurements=records)


def count_measurements(database_url: str) -> int:
    with session_scope(database_url) as session:
        return session.scalar(select(func.count()).select_from(Measurement))


def test_ingest_batch_is_idempotent(database_url: str) -> None:
    records = [block_record(layer, "k3_e1", 0.1 * (layer + 1)) for layer in range(5)]
    with session_scope(database_url) as session:
        assert queries.ingest_batch(session, batch=batch("run-1", records)) == (5, 0)
    with session_scope(database_url) as session:
        assert queries.ingest_batch(session, batch=batch("run-1", records)) == (0, 5)
    assert count_measurements(database_url) == 5

    more = records + [block_record(7, "k5_e6", 1.9)]
    with session_scope(database_url) as session:
        assert queries.ingest_batch(session, batch=batch("run-1", more, status="completed")) == (1, 5)
        assert queries.get_run(session, uid="run-1").status == "completed"
    assert count_measurements(database_url) == 6


def test_repeated_keys_within_one_batch_are_stored_once(database_url: str) -> None:
    records = [block_record(3, "skip", 0.02), block_record(3, "skip", 0.03)]
    with session_scope(database_url) as session:
        assert queries.ingest_batch(session, batch=batch("run-1", records)) == (1, 1)
    assert count_measurements(database_url) == 1


def test_the_database_refuses_duplicate_keys_within_a_run(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=batch("run-1", [block_record(0, "k3_e1", 0.5)]))
    with pytest.raises(IntegrityError), session_scope(database_url) as session:
        row = queries.get_run(session, uid="run-1")
        session.add(Measurement(run_id=row.id, device_id=row.device_id, **block_record(0, "k3_e1", 0.6).model_dump()))


def test_a_run_cannot_change_device(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=batch("run-1", [], device="raspi4"))
    with pytest.raises(RunConflictError, match="run 'run-1' belongs to another device than 'jetson'"):
        with session_scope(database_url) as session:
            queries.ingest_batch(session, batch=batch("run-1", [block_record(0, "k3_e1", 0.5)], device="jetson"))
    assert count_measurements(database_url) == 0


def test_latest_measurements_prefer_later_runs(database_url: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=batch("new", [block_record(0, "k3_e1", 2.0)], started_at=start))
        queries.ingest_batch(
            session,
            batch=batch("old", [block_record(0, "k3_e1", 1.0), block_record(1, "k3_e1", 1.5)],
                        started_at=start - timedelta(days=1)),
        )
        queries.ingest_batch(session, batch=batch("other", [block_record(0, "k3_e1", 9.0)], device="jetson"))
    with session_scope(database_url) as session:
        latest = queries.latest_measurements(session, device="raspi4", space=SPACE)
        assert {key: m.latency_ms for key, m in latest.items()} == {
            f"{SPACE}/L0/k3_e1": 2.0, f"{SPACE}/L1/k3_e1": 1.5,
        }
        assert queries.coverage(session, device="raspi4") == {(SPACE, "block"): 2}
        assert [m.latency_ms for m in queries.list_measurements(session, device="jetson")] == [9.0]
        assert [r.uid for r in queries.list_runs(session, device="raspi4")] == ["old", "new"]
        assert [d.name for d in queries.list_devices(session)] == ["jetson", "raspi4"]


def test_list_measurements_filters(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=batch("a", [block_record(0, "k3_e1", 1.0), block_record(1, "skip", 1.1)]))
        queries.ingest_batch(session, batch=batch("b", [block_record(0, "k3_e1", 2.0)]))
        fixed = MeasurementRecord(target="fixed", key=f"{SPACE}/stem", space=SPACE, latency_ms=0.7)
        queries.ingest_batch(session, batch=batch("c", [fixed], device="jetson"))
    with session_scope(database_url) as session:
        def latencies(**filters: object) -> list[float]:
            return [m.latency_ms for m in queries.list_measurements(session, **filters)]

        assert latencies(run_uid="a") == [1.0, 1.1]
        assert latencies(device="raspi4", run_uid="b") == [2.0]
        assert latencies(device="raspi4") == [1.0, 1.1, 2.0]
        assert latencies(target="fixed") == [0.7]
        assert latencies(space=SPACE, limit=2, offset=1) == [1.1, 2.0]


def test_measured_keys_are_per_device_and_environment(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=batch("a", [block_record(0, "k3_e1", 1.0)], environment_key="env1"))
        queries.ingest_batch(session, batch=batch("b", [block_record(1, "k3_e1", 1.0)], environment_key="env2"))
        queries.ingest_batch(
            session, batch=batch("c", [block_record(2, "k3_e1", 1.0)], device="jetson", environment_key="env1")
        )
    with session_scope(database_url) as session:
        assert queries.measured_keys(session, device="raspi4", environment_key="env1") == {f"{SPACE}/L0/k3_e1"}


def test_measurements_of_two_runtimes_are_never_mixed(database_url: str) -> None:
    """The same key measured under torch and under onnxruntime: each runtime reads back its own."""
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=batch("t", [block_record(0, "k3_e1", 1.0)], environment_key="t"))
        queries.ingest_batch(
            session, batch=batch("o", [block_record(0, "k3_e1", 0.6)], runtime="onnxruntime", environment_key="o")
        )
        queries.ingest_batch(session, batch=batch("j", [block_record(0, "k3_e1", 0.2)], device="jetson",
                                                  runtime="tensorrt"))
        queries.upsert_run(session, run=run("empty", runtime="openvino"))  # no measurement: not a runtime of raspi4
    with session_scope(database_url) as session:
        key = f"{SPACE}/L0/k3_e1"
        assert queries.latest_measurements(session, device="raspi4")[key].latency_ms == 1.0  # torch by default
        assert queries.latest_measurements(session, device="raspi4", runtime="onnxruntime")[key].latency_ms == 0.6
        assert queries.latest_measurements(session, device="raspi4", runtime="tensorrt") == {}
        assert [m.latency_ms for m in queries.list_measurements(session, device="raspi4")] == [1.0, 0.6]
        assert [m.latency_ms for m in queries.list_measurements(session, runtime="onnxruntime")] == [0.6]
        assert [m.latency_ms for m, _, _ in queries.measurement_rows(session, runtime="tensorrt")] == [0.2]
        assert queries.coverage(session, device="raspi4", runtime="onnxruntime") == {(SPACE, "block"): 1}
        assert queries.device_runtimes(session) == {"jetson": ["tensorrt"], "raspi4": ["onnxruntime", "torch"]}
        assert queries.device_runtimes(session, device="jetson") == {"jetson": ["tensorrt"]}
        assert queries.get_run(session, uid="o").runtime == "onnxruntime"


def test_a_run_keeps_its_runtime(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=batch("r", [block_record(0, "k3_e1", 1.0)], runtime="onnxruntime"))
    conflict = pytest.raises(RunConflictError, match="measured runtime 'onnxruntime', not 'torch'")
    with session_scope(database_url) as session, conflict:
        queries.ingest_batch(session, batch=batch("r", [block_record(1, "k3_e1", 1.0)]))
    assert count_measurements(database_url) == 1


def test_predictor_versions_are_per_runtime(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.get_or_create_device(session, name="raspi4")
        for runtime in ("torch", "onnxruntime", "onnxruntime"):
            queries.save_predictor(session, device="raspi4", space=SPACE, kind="lookup", artifact=b"lut",
                                   metrics={}, meta={}, runtime=runtime)
    with session_scope(database_url) as session:
        newest = {p.runtime: p.version for p in queries.latest_predictors(session, device="raspi4")}
        assert newest == {"torch": 1, "onnxruntime": 2}
        assert [p.version for p in queries.latest_predictors(session, runtime="onnxruntime")] == [2]
        assert queries.device_runtimes(session) == {"raspi4": ["onnxruntime", "torch"]}


def test_predictor_versions(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.get_or_create_device(session, name="raspi4")
        for r2 in (0.5, 0.9):
            queries.save_predictor(
                session, device="raspi4", space=SPACE, kind="gbdt", artifact=b"model", metrics={"r2": r2}, meta={}
            )
        queries.save_predictor(
            session, device="raspi4", space=SPACE, kind="lookup", artifact=b"lut", metrics={}, meta={}
        )
        with pytest.raises(ValueError, match="unknown device 'pixel3'"):
            queries.save_predictor(session, device="pixel3", space=SPACE, kind="gbdt", artifact=b"", metrics={},
                                   meta={})
    with session_scope(database_url) as session:
        newest = {p.kind: (p.version, p.metrics) for p in queries.latest_predictors(session, device="raspi4")}
        assert newest == {"gbdt": (2, {"r2": 0.9}), "lookup": (1, {})}


def test_tokens_are_stored_hashed_and_can_be_revoked(database_url: str) -> None:
    with session_scope(database_url) as session:
        token = queries.create_token(session, name="agent-pi", device="raspi4")
    with session_scope(database_url) as session:
        found = queries.find_token(session, token=token)
        assert found is not None and found.device == "raspi4" and found.token_hash != token
        assert queries.find_token(session, token=token + "x") is None
        assert queries.revoke_token(session, name="agent-pi")
        assert not queries.revoke_token(session, name="nobody")
    with session_scope(database_url) as session:
        assert queries.find_token(session, token=token) is None


def test_search_jobs(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.create_job(session, uid="j1", method="asng", space=SPACE, config={"epochs": 1})
        queries.create_job(session, uid="j2", method="random", space=SPACE, config={})
    with session_scope(database_url) as session:
        assert queries.get_job(session, uid="j1").config == {"epochs": 1}
        assert [j.uid for j in queries.list_jobs(session, method="random")] == ["j2"]
        assert [j.uid for j in queries.list_jobs(session, status="running")] == ["j1", "j2"]
        queries.finish_job(session, uid="j1", status="completed", result={"ok": True})
    with session_scope(database_url) as session:
        with pytest.raises(ValueError, match="search job j1 has already ended \\(completed\\)"):
            queries.finish_job(session, uid="j1", status="failed", result={})


def test_sweep_jobs_and_their_interruption(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.ensure_sweep(session, name="study", spec={"grid": {"seed": [0, 1]}})
        queries.create_job(session, uid="a", method="nasc", space=SPACE, config={}, sweep="study", cell="c0")
        queries.create_job(session, uid="b", method="nasc", space=SPACE, config={}, sweep="study", cell="c1")
        queries.create_job(session, uid="alone", method="nasc", space=SPACE, config={})
        queries.finish_job(session, uid="a", status="completed", result={})
        with pytest.raises(ValueError, match="unknown sweep 'other'"):
            queries.create_job(session, uid="x", method="nasc", space=SPACE, config={}, sweep="other")
    with session_scope(database_url) as session:
        # the same name with another grid is another study: refused, not mixed in
        with pytest.raises(ValueError, match="stored with another grid"):
            queries.ensure_sweep(session, name="study", spec={"grid": {"seed": [0]}})
        assert queries.ensure_sweep(session, name="study", spec={"grid": {"seed": [0, 1]}}).name == "study"
        assert [(j.uid, j.cell) for j in queries.list_jobs(session, sweep="study")] == [("a", "c0"), ("b", "c1")]
        interrupted = queries.interrupt_sweep(session, name="study", result={"error": "interrupted"})
        assert [j.uid for j in interrupted] == ["b"]
    with session_scope(database_url) as session:
        assert [j.uid for j in queries.list_jobs(session, status="running")] == ["alone"]
        assert queries.get_job(session, uid="b").status == "failed"
        # the process that ran the interrupted cell, finishing after all, cannot make it a second completed run
        with pytest.raises(ValueError, match="already ended \\(failed\\)"):
            queries.finish_job(session, uid="b", status="completed", result={})
