"""Prometheus metrics of one app (its own registry): requests, their latency, predictions, table loads."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestCollector(Collector):
    """Request counts and latency histograms in plain dicts, exported at scrape time.

    Only the event loop thread updates them (from the middleware), so they need none of the locks
    that prometheus_client's own metrics take on every update: the hot path pays a few dict operations.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        timing = (method, route)
        buckets = self._buckets.get(timing)
        if buckets is None:
            buckets = self._buckets[timing] = [0] * (len(LATENCY_BUCKETS) + 1)
            self._sums[timing] = 0.0
        buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sums[timing] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "splitnas_http_requests", "HTTP requests by route template and status", labels=["method", "route", "status"]
        )
        for (method, route, status), count in list(self._counts.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        duration = HistogramMetricFamily(
            "splitnas_http_request_duration_seconds", "time from request to response, by route template",
            labels=["method", "route"],
        )
        bounds = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]
        for (method, route), buckets in list(self._buckets.items()):
            duration.add_metric([method, route], list(zip(bounds, accumulate(buckets), strict=True)),
                                self._sums[method, route])
        yield duration


class ServiceMetrics:
    """The service's collectors, registered in a registry of their own (one per app, so tests do not clash)."""

    def __init__(self, cached_tables: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.requests = RequestCollector()
        self.registry.register(self.requests)
        self.op_predictions = Counter(
            "splitnas_op_predictions", "block latencies answered, by predictor and whether measured",
            ["predictor", "source"], registry=self.registry,
        )
        self.architecture_predictions = Counter(
            "splitnas_architecture_predictions", "architecture latencies answered, by request form", ["form"],
            registry=self.registry,
        )
        self.table_builds = Counter(
            "splitnas_lut_builds", "lookup tables built into the cache, by reason (load, new data, refit)",
            ["reason"], registry=self.registry,
        )
        self.uploaded = Counter(
            "splitnas_measurements_uploaded", "uploaded measurements, inserted or duplicate", ["outcome"],
            registry=self.registry,
        )
        Gauge("splitnas_lut_cached", "lookup tables held in memory", registry=self.registry).set_function(
            cached_tables
        )
        self._op_children: dict[tuple[str, str], Counter] = {}

    def count_op(self, predictor: str, source: str) -> None:
        child = self._op_children.get((predictor, source))
        if child is None:
            child = self._op_children[predictor, source] = self.op_predictions.labels(predictor, source)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task or body buffering) that times every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            # the route template, not the raw path: unknown paths must not create a label set each
            self.metrics.requests.observe(
                scope["method"], getattr(route, "path", "unmatched"), status, time.perf_counter() - start
            )
