"""Device lookup tables for the search: from the latency service (cached by ETag) or a local database.

A search asks for thousands of latencies; it fetches each (device, space) table once and computes
every latency locally with ``predictor.latency``, so no latency query goes over the network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from predictor.latency import DeviceLUT


class LatencySourceError(RuntimeError):
    """The latency service or database cannot provide a table; the message says why."""


@dataclass
class CachedTable:
    lut: DeviceLUT
    etag: str | None


class LatencyClient:
    """Fetches and caches ``DeviceLUT``s.

    With ``url`` it asks ``GET {url}/lut?device=D&space=S&predictor=P[&runtime=R]`` once per table and, when
    asked to ``revalidate``, sends ``If-None-Match`` (a 304 keeps the cached table). Without ``url`` it reads
    the fitted predictors of the local database ``db_url`` (default: the settings' database). ``runtime``
    None takes each device's only runtime (predictor.runtimes.resolve_runtime, on the service or here).
    ``seconds`` accumulates the time spent getting tables.
    """

    def __init__(
        self, url: str | None = None, *, db_url: str | None = None, predictor: str = "auto", timeout: float = 30.0,
        token: str | None = None, runtime: str | None = None,
    ) -> None:
        self.url = url.rstrip("/") if url else None
        self.db_url = db_url
        self.predictor = predictor
        self.runtime = runtime
        self.seconds = 0.0
        self.requests = 0
        self.not_modified = 0
        self._cache: dict[tuple[str, str], CachedTable] = {}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers) if self.url else None

    @property
    def source(self) -> str:
        return self.url or f"database {self.db_url or '(default)'}"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> LatencyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def runtimes(self, space: str) -> dict[str, str]:
        """The runtime of each device's ``space`` table fetched so far (what ``runtime`` None resolved to)."""
        return {device: table.lut.runtime for (device, s), table in sorted(self._cache.items()) if s == space}

    def check(self) -> None:
        """Fail early, with a readable message, when the service does not answer ``/healthz``."""
        if self._http is not None:
            self._request("/healthz", {}, {})

    def lut(self, device: str, space: str, *, revalidate: bool = False) -> DeviceLUT:
        """The table of ``device`` for ``space`` (from the cache unless new or revalidated)."""
        key = (device, space)
        cached = self._cache.get(key)
        if cached is not None and not revalidate:
            return cached.lut
        start = time.perf_counter()
        try:
            table = self._fetch(device, space, cached) if self._http is not None else self._read(device, space)
        finally:
            self.seconds += time.perf_counter() - start
        self._cache[key] = table
        return table.lut

    def _fetch(self, device: str, space: str, cached: CachedTable | None) -> CachedTable:
        headers = {"If-None-Match": cached.etag} if cached is not None and cached.etag else {}
        params = {"device": device, "space": space, "predictor": self.predictor}
        if self.runtime is not None:
            params["runtime"] = self.runtime
        response = self._request("/lut", params, headers)
        if response.status_code == 304 and cached is not None:
            self.not_modified += 1
            return cached
        return CachedTable(DeviceLUT.from_dict(response.json()), response.headers.get("ETag"))

    def _request(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        assert self._http is not None
        self.requests += 1
        try:
            response = self._http.get(path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise LatencySourceError(f"cannot reach the latency service at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise LatencySourceError(
                f"latency service {self.url}{path} answered {response.status_code}: {error_detail(response)}"
            )
        return response

    def _read(self, device: str, space: str) -> CachedTable:
        from db.engine import session_scope
        from predictor import PredictorError, load_lut

        try:
            with session_scope(self.db_url) as session:
                lut = load_lut(session, device=device, space=space, kind=self.predictor, runtime=self.runtime)
                return CachedTable(lut, None)
        except PredictorError as exc:
            raise LatencySourceError(f"no latency table for {device!r} / {space!r} in {self.source}: {exc}") from exc


def error_detail(response: httpx.Response) -> str:
    """The service's ``{"detail": ...}`` (a message, or a list of ``{loc, msg}``) as one line."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', item)}" if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)
