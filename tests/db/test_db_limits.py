"""Every value is stored, or refused with UnstorableValueError, alike on SQLite and PostgreSQL.

These are the column types' checks (db.columns), for writers that do not go through db.records; the
records refuse the same values earlier, naming the field (tests/db/test_db_records.py).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from db import queries, session_scope
from db.columns import INT32_MAX, INT64_MAX
from db.errors import UnstorableValueError
from db.models import Device, Measurement, ProfilingRun
from db.records import MeasurementBatch, MeasurementRecord, RunRecord

SPACE = "fbnet-cifar100"


def store_run(url: str, **fields: Any) -> int:
    with session_scope(url) as session:
        device = queries.get_or_create_device(session, name="pi4")
        run = ProfilingRun(uid=fields.pop("uid", "r1"), device_id=device.id, **fields)
        session.add(run)
        session.flush()
        return run.id


def store_measurement(url: str, **fields: Any) -> Measurement:
    run_id = store_run(url)
    with session_scope(url) as session:
        row = Measurement(run_id=run_id, device_id=1, **{"target": "config", "key": "k", "latency_ms": 1.0, **fields})
        session.add(row)
        session.flush()
        row_id = row.id
    with session_scope(url) as session:
        return session.get_one(Measurement, row_id)


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        ({"key": "k" * 512}, {"key": "k" * 512}),
        ({"key": "ключ/层/🙂"}, {"key": "ключ/层/🙂"}),
        ({"layer": INT32_MAX, "repeats": 1}, {"layer": INT32_MAX, "repeats": 1}),
        ({"flops": INT64_MAX}, {"flops": INT64_MAX}),
        ({"latency_ms": 5e-324, "min_ms": 1.7976931348623157e308}, {"latency_ms": 5e-324,
                                                                     "min_ms": 1.7976931348623157e308}),
        ({"raw": {"times": [0.1, 2**70], "note": "tab\there \u2028", "nested": {"a": [None, True]}}},
         {"raw": {"times": [0.1, 2**70], "note": "tab\there \u2028", "nested": {"a": [None, True]}}}),
    ],
    ids=["longest key", "non-ASCII", "int32 max", "int64 max", "extreme floats", "JSON"],
)
def test_values_at_the_limits_are_stored_and_read_back_alike(
    database_url: str, fields: dict[str, Any], stored: dict[str, Any]
) -> None:
    row = store_measurement(database_url, **fields)
    assert {name: getattr(row, name) for name in stored} == stored


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": "k" * 513}, "text of 513 characters is longer than 512"),
        ({"key": "a\x00b"}, "text contains a NUL character"),
        ({"key": "a\udc80b"}, "text is not valid Unicode (a lone surrogate)"),
        ({"layer": INT32_MAX + 1}, f"integer {INT32_MAX + 1} is outside the 32-bit range"),
        ({"repeats": -INT32_MAX - 2}, "outside the 32-bit range"),
        ({"flops": INT64_MAX + 1}, "outside the 64-bit range"),
        ({"latency_ms": math.nan}, "number nan is not finite"),
        ({"iqr_ms": math.inf}, "number inf is not finite"),
        ({"raw": {"times": [1.0, math.nan]}}, "JSON value.times[1] is nan: JSON numbers must be finite"),
        ({"config": {"x": -math.inf}}, "JSON value.x is -inf"),
        ({"config": {"host": "a\ud800"}}, "JSON value.host is not valid Unicode"),
        ({"config": {"a\x00": 1}}, "a key of value contains a NUL character"),
    ],
    ids=lambda value: str(value)[:30] if isinstance(value, dict) else None,
)
def test_values_one_backend_cannot_store_are_refused_by_both(
    database_url: str, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(StatementError) as info:
        store_measurement(database_url, **fields)
    assert isinstance(info.value.orig, UnstorableValueError)
    assert message in str(info.value.orig)
    with session_scope(database_url) as session:
        assert session.scalars(select(Measurement)).all() == []


@pytest.mark.parametrize("name", ["x" * 65, "a\x00b", "a\udc00b"])
def test_lookups_of_unstorable_names_find_nothing(database_url: str, name: str) -> None:
    """A name no row can hold (too long, NUL, lone surrogate) is simply not found, on both backends."""
    with session_scope(database_url) as session:
        queries.get_or_create_device(session, name="pi4")
    with session_scope(database_url) as session:
        assert queries.get_device(session, name=name) is None
        assert queries.get_run(session, uid=name) is None
        assert queries.get_job(session, uid=name) is None
        assert queries.find_token(session, token=name) is None
        assert queries.list_measurements(session, device=name, space=name, run_uid=name) == []
        assert queries.measurement_rows(session, device=name) == []
        assert queries.coverage(session, device=name) == {}
        assert queries.latest_predictors(session, device=name, kind=name) == []


def test_paging_past_the_largest_id_finds_nothing(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.ingest_batch(session, batch=MeasurementBatch(
            run=RunRecord(uid="r1", device="pi4"),
            measurements=[MeasurementRecord(target="config", key="k", latency_ms=1.0)],
        ))
    with session_scope(database_url) as session:
        for after_id in (INT32_MAX - 1, INT32_MAX, INT32_MAX + 1, INT64_MAX, 2**70):
            assert queries.measurement_rows(session, after_id=after_id) == []
        assert len(queries.measurement_rows(session, after_id=0)) == 1


def test_times_are_stored_in_utc_and_read_back_aware(database_url: str) -> None:
    local = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2026, 5, 1, 12, 0)
    run_id = store_run(database_url, uid="aware", started_at=local, finished_at=naive)
    with session_scope(database_url) as session:
        run = session.get_one(ProfilingRun, run_id)
        assert (run.started_at, run.finished_at) == (datetime(2026, 5, 1, 10, 0, tzinfo=UTC), naive.replace(tzinfo=UTC))
        assert run.started_at.tzinfo is UTC and run.device.created_at.tzinfo is UTC


def test_text_columns_refuse_nul_on_both_backends(database_url: str) -> None:
    with pytest.raises(StatementError, match="text contains a NUL character"), session_scope(database_url) as s:
        s.add(Device(name="pi4", description="line\x00"))
