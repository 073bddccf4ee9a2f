"""The table cache: loaded once, revalidated against the database, swapped atomically on refit."""

from __future__ import annotations

import asyncio
import threading

import pytest

from api.cache import LUTCache
from db.engine import session_scope
from predictor import load_lut
from tests.utils.api_data import SPACE, device_records, fit
from tests.utils.factories import ingest

KEY = ("raspi4", None, SPACE, "auto")


class GatedLoader:
    """``predictor.load_lut``, held at a gate from its ``hold_from``-th call on (to observe a slow rebuild)."""

    def __init__(self, hold_from: int):
        self.calls = 0
        self.hold_from = hold_from
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, session, **kwargs):
        self.calls += 1
        if self.calls >= self.hold_from:
            self.entered.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return load_lut(session, **kwargs)


def test_readers_get_the_previous_table_until_the_refit_one_is_built(service_db: str) -> None:
    loader = GatedLoader(hold_from=2)
    cache = LUTCache(service_db, ttl_s=3600, loader=loader)
    old = cache.load(KEY)
    ingest(service_db, "raspi4", device_records("raspi4", gflops=9.0))
    fit(service_db, "raspi4")
    refresh = threading.Thread(target=cache.refresh, args=("raspi4", SPACE))
    refresh.start()
    assert loader.entered.wait(30)
    assert cache.fresh(KEY) is old and asyncio.run(cache.get(KEY)) is old  # the new table is not ready yet
    loader.gate.set()
    refresh.join()
    new = cache.fresh(KEY)
    assert new is not old and new.etag != old.etag
    assert new.lut.layer_ms(9, "k3_e6") < old.lut.layer_ms(9, "k3_e6") / 3


def test_stale_table_is_revalidated_by_one_reader_while_the_others_keep_it(service_db: str) -> None:
    loader = GatedLoader(hold_from=2)
    cache = LUTCache(service_db, ttl_s=0.0, loader=loader)  # every read checks the database
    old = cache.load(KEY)
    assert asyncio.run(cache.get(KEY)) is old  # unchanged data: no rebuild
    assert loader.calls == 1
    ingest(service_db, "raspi4", device_records("raspi4", gflops=9.0))
    fit(service_db, "raspi4")
    result: list = []
    first = threading.Thread(target=lambda: result.append(asyncio.run(cache.get(KEY))))
    first.start()
    assert loader.entered.wait(30)
    assert asyncio.run(cache.get(KEY)) is old  # a second reader does not wait for the rebuild
    loader.gate.set()
    first.join()
    assert result[0] is not old and cache.fresh(KEY) is None  # ttl 0: fresh() never vouches for a table
    with session_scope(service_db) as session:
        assert result[0].lut.to_dict() == load_lut(session, device="raspi4", space=SPACE).to_dict()


def test_new_measurements_make_the_next_reader_check(service_db: str) -> None:
    cache = LUTCache(service_db, ttl_s=3600)
    old = cache.load(KEY)
    cache.invalidate("raspi4")
    assert cache.fresh(KEY) is None
    assert asyncio.run(cache.get(KEY)) is old  # fingerprint unchanged: the same table, checked again
    assert cache.fresh(KEY) is old


def test_a_failed_rebuild_keeps_serving_the_previous_table(service_db: str) -> None:
    def broken(session, **kwargs):
        if calls:
            raise RuntimeError("disk on fire")
        calls.append(1)
        return load_lut(session, **kwargs)

    calls: list[int] = []
    cache = LUTCache(service_db, ttl_s=0.0, loader=broken)
    old = cache.load(KEY)
    ingest(service_db, "raspi4", device_records("raspi4", gflops=9.0))
    assert asyncio.run(cache.get(KEY)) is old


def test_unknown_device_lists_the_known_ones(service_db: str) -> None:
    cache = LUTCache(service_db, ttl_s=10)
    with pytest.raises(LookupError, match="known devices: edgegpu, raspi4"):
        cache.load(("jetson", None, SPACE, "auto"))
