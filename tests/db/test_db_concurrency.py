"""Sessions that store the same new rows at the same time all succeed, on SQLite and PostgreSQL.

An agent retrying while its first request still runs posts the same batch twice; agents that start
together register the same new device; two fits of one predictor store versions at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import queries, session_scope
from db.models import Device, FittedPredictor, Measurement
from db.records import MeasurementBatch, MeasurementRecord, RunRecord

SPACE = "fbnet-cifar100"
THREADS = 6


def batch(uid: str = "run-1", device: str = "pi5") -> MeasurementBatch:
    records = [
        MeasurementRecord(target="block", key=f"{SPACE}/L{layer}/k3_e1", space=SPACE, layer=layer, block="k3_e1",
                          latency_ms=0.1 * (layer + 1))
        for layer in range(8)
    ]
    run = RunRecord(uid=uid, device=device, device_facts={"cores": 4}, host="pi-lab")
    return MeasurementBatch(run=run, measurements=records)


def register(session: Session) -> Any:
    return queries.get_or_create_device(session, name="pi5", kind="cpu", facts={"cores": 4}).name


def ingest(session: Session) -> Any:
    return queries.ingest_batch(session, batch=batch())


def save_gbdt(session: Session) -> Any:
    queries.get_or_create_device(session, name="pi5")
    return queries.save_predictor(session, device="pi5", space=SPACE, kind="gbdt", artifact=b"model", metrics={},
                                  meta={}).version


def count(url: str, model: type[Any]) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("action", "first", "second", "model", "rows"),
    [
        (register, "pi5", "pi5", Device, 1),
        (ingest, (8, 0), (0, 8), Measurement, 8),
        (save_gbdt, 1, 2, FittedPredictor, 2),
    ],
    ids=["same new device", "same batch", "same predictor"],
)
def test_a_session_that_waits_for_a_concurrent_insert_of_the_same_rows_succeeds(
    database_url: str, action: Callable[[Session], Any], first: Any, second: Any, model: type[Any], rows: int
) -> None:
    """The first session has stored the rows but not committed them when the second one stores them too."""
    stored, release = threading.Event(), threading.Event()

    def first_session() -> Any:
        with session_scope(database_url) as session:
            result = action(session)
            session.flush()
            stored.set()
            release.wait(timeout=60)  # commit only once the second session is waiting for these rows
        return result

    def second_session() -> Any:
        with session_scope(database_url) as session:
            return action(session)

    with ThreadPoolExecutor(max_workers=2) as pool:
        holder = pool.submit(first_session)
        assert stored.wait(timeout=60)
        waiter = pool.submit(second_session)
        # the second session now blocks on the first one's uncommitted rows (or on SQLite's write lock)
        release.wait(timeout=0.5)
        release.set()
        assert (holder.result(timeout=60), waiter.result(timeout=60)) == (first, second)
    assert count(database_url, model) == rows


def run_together(action: Callable[[Session], Any], url: str, threads: int = THREADS) -> list[Any]:
    """``action`` in ``threads`` sessions of as many threads, started together; their results."""
    barrier = threading.Barrier(threads)

    def one() -> Any:
        barrier.wait(timeout=60)
        with session_scope(url) as session:
            return action(session)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [future.result(timeout=120) for future in [pool.submit(one) for _ in range(threads)]]


def test_identical_batches_posted_together_are_stored_once(database_url: str) -> None:
    results = run_together(ingest, database_url)
    assert sum(inserted for inserted, _ in results) == 8
    assert all(inserted + duplicates == 8 for inserted, duplicates in results)
    assert count(database_url, Measurement) == 8
    with session_scope(database_url) as session:
        assert [(r.uid, r.device.name) for r in queries.list_runs(session)] == [("run-1", "pi5")]


def test_agents_registering_the_same_devices_together_all_succeed(database_url: str) -> None:
    def register_all(session: Session) -> list[str]:
        return [queries.get_or_create_device(session, name=f"pi-{n}").name for n in range(5)]

    assert run_together(register_all, database_url) == [[f"pi-{n}" for n in range(5)]] * THREADS
    assert count(database_url, Device) == 5


def test_concurrent_fits_of_one_predictor_get_distinct_versions(database_url: str) -> None:
    with session_scope(database_url) as session:
        queries.get_or_create_device(session, name="pi5")
    versions = run_together(save_gbdt, database_url, threads=4)
    assert sorted(versions) == [1, 2, 3, 4]
    with session_scope(database_url) as session:
        assert [p.version for p in queries.latest_predictors(session, device="pi5")] == [4]
