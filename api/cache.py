"""In-memory lookup tables of the service: loaded once, served without the database, swapped atomically.

Every (device, runtime, space, predictor kind) table is a ``predictor.latency.DeviceLUT`` built by
``predictor.load_lut``; the cache also keeps its JSON body and ETag for ``GET /lut``. A table is
served from memory until ``ttl_s`` has passed or new data arrived through this process; then one
reader checks the database's fingerprint of the device (newest measurement and predictor ids) and
rebuilds the table if it changed, while every other reader keeps getting the previous table. A
refit rebuilds all of a device's tables first and swaps them in with one reference assignment.
A runtime of None in a key is the device's only runtime (``predictor.runtimes.resolve_runtime``), resolved
when the table is built: the hot path never reads the database to learn it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy.orm import Session

import predictor
from db import queries
from db.engine import session_scope
from predictor.errors import AmbiguousRuntimeError
from predictor.latency import DeviceLUT

log = logging.getLogger(__name__)

LUTKey = tuple[str, str | None, str, str]
"""(device, runtime or None for the device's only one, space, predictor kind)"""

LUTLoader = Callable[..., DeviceLUT]


class UnknownDeviceError(LookupError):
    """The device has no row in the database."""

    def __init__(self, device: str, known: list[str]):
        self.device, self.known = device, known
        listed = ", ".join(known) if known else "none yet (upload measurements first)"
        super().__init__(f"unknown device {device!r}; known devices: {listed}")


def answered_by(predictor: str, measured: bool) -> str:
    """The kind that answered an entry of a table built by ``primary+fallback`` (or by one kind)."""
    primary, _, fallback = predictor.partition("+")
    return primary if measured or not fallback else fallback


@dataclass(frozen=True)
class Answer:
    """One entry as ``GET /latency`` serves it: the JSON body, and the labels it is counted under."""

    body: bytes
    predictor: str
    source: str  # measured, predicted


def answers(lut: DeviceLUT) -> dict[tuple[int, str], Answer]:
    """Every (layer, block) entry of ``lut`` that has a value, encoded once."""
    table = {}
    for layer, row in enumerate(lut.table.tolist()):
        for column, value in enumerate(row):
            if value != value:  # NaN: not a candidate there, or a lookup table without it
                continue
            block, measured = lut.blocks[column], bool(lut.measured[layer, column])
            iqr = float(lut.iqr[layer, column]) if measured else math.nan
            predictor = answered_by(lut.predictor, measured)
            body = {
                "device": lut.device, "runtime": lut.runtime, "space": lut.space, "layer": layer, "block": block,
                "latency_ms": value, "predictor": predictor, "measured": measured,
                "iqr_ms": None if math.isnan(iqr) else iqr,
            }
            table[layer, block] = Answer(json.dumps(body, separators=(",", ":")).encode(), predictor,
                                         "measured" if measured else "predicted")
    return table


@dataclass(frozen=True)
class CachedLUT:
    """A table with what serving it needs: the data fingerprint it was built from, its JSON and ETag, answers."""

    lut: DeviceLUT
    fingerprint: tuple[int, int, int]
    body: bytes
    etag: str
    answers: dict[tuple[int, str], Answer]

    @classmethod
    def build(cls, lut: DeviceLUT, fingerprint: tuple[int, int, int]) -> CachedLUT:
        body = json.dumps(lut.to_dict(), separators=(",", ":"), allow_nan=False).encode()
        return cls(lut, fingerprint, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', answers(lut))


class LUTCache:
    """Thread-safe per-process cache of ``CachedLUT`` by (device, runtime, space, predictor kind)."""

    def __init__(self, database_url: str, *, ttl_s: float, loader: LUTLoader | None = None,
                 on_build: Callable[[str], None] | None = None):
        self.database_url = database_url
        self.ttl_s = ttl_s
        self._loader = loader or predictor.load_lut
        self._on_build = on_build or (lambda reason: None)
        self._entries: dict[LUTKey, CachedLUT] = {}
        self._checked: dict[LUTKey, float] = {}
        self._refreshing: set[LUTKey] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, key: LUTKey) -> CachedLUT | None:
        """The cached table if it was checked within ``ttl_s`` (no I/O: the hot path)."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - self._checked.get(key, -math.inf) < self.ttl_s:
            return entry
        return None

    async def get(self, key: LUTKey) -> CachedLUT:
        """The table for ``key``; loads it on first use, revalidates it when stale without making others wait."""
        entry = self.fresh(key)
        if entry is not None:
            return entry
        entry = self._entries.get(key)
        if entry is None:
            return await to_thread.run_sync(self.load, key)
        if not self._claim(key):
            return entry  # another reader is revalidating: serve the previous table meanwhile
        try:
            return await to_thread.run_sync(self.revalidate, key)
        finally:
            self._release(key)

    def load(self, key: LUTKey) -> CachedLUT:
        with session_scope(self.database_url) as session:
            entry = self._build(session, key, reason="load")
        self._install({key: entry})
        return entry

    def revalidate(self, key: LUTKey) -> CachedLUT:
        """Rebuild ``key`` if its device's data changed; on failure keep serving the previous table."""
        old = self._entries[key]
        try:
            with session_scope(self.database_url) as session:
                if queries.data_fingerprint(session, device=key[0]) == old.fingerprint:
                    self._mark_checked(key)
                    return old
                entry = self._build(session, key, reason="new data")
        except AmbiguousRuntimeError:
            # the device gained a runtime: a key without one has no answer now; its readers are told why
            self._install({}, drop=[key])
            raise
        except Exception:
            log.exception("could not rebuild the %s/%s/%s/%s table; serving the previous one", *key)
            self._mark_checked(key)
            return old
        self._install({key: entry})
        return entry

    def refresh(self, device: str, space: str) -> list[LUTKey]:
        """Rebuild every cached table of ``device`` and ``space``, all runtimes (after a refit), and swap them in
        together.

        A table that cannot be rebuilt is dropped, so that its next reader gets the reason. Returns the
        keys that were rebuilt.
        """
        new, failed = {}, []
        with session_scope(self.database_url) as session:
            for key in [key for key in self._entries if (key[0], key[2]) == (device, space)]:
                try:
                    new[key] = self._build(session, key, reason="refit")
                except Exception:
                    log.exception("could not rebuild the %s/%s/%s/%s table after a refit; dropping it", *key)
                    failed.append(key)
        self._install(new, drop=failed)
        return list(new)

    def invalidate(self, device: str) -> None:
        """Make the next reader of any table of ``device`` check the database (new measurements arrived)."""
        with self._lock:
            for key in self._checked:
                if key[0] == device:
                    self._checked[key] = -math.inf

    def _build(self, session: Session, key: LUTKey, *, reason: str) -> CachedLUT:
        device, runtime, space, kind = key
        if queries.get_device(session, name=device) is None:
            raise UnknownDeviceError(device, queries.device_names(session))
        fingerprint = queries.data_fingerprint(session, device=device)  # before loading: a race only rebuilds again
        lut = self._loader(session, device=device, space=space, kind=kind, runtime=runtime)
        entry = CachedLUT.build(lut, fingerprint)
        self._on_build(reason)
        return entry

    def _install(self, new: dict[LUTKey, CachedLUT], drop: Sequence[LUTKey] = ()) -> None:
        with self._lock:
            # one reference swap: a reader sees every table old or every table new
            self._entries = {key: entry for key, entry in {**self._entries, **new}.items() if key not in drop}
            now = time.monotonic()
            self._checked.update(dict.fromkeys(new, now))

    def _mark_checked(self, key: LUTKey) -> None:
        with self._lock:
            self._checked[key] = time.monotonic()

    def _claim(self, key: LUTKey) -> bool:
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def _release(self, key: LUTKey) -> None:
        with self._lock:
            self._refreshing.discard(key)
