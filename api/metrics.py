"""Prometheus metrics of one app (its own registry): requests, their latency, predictions, table loads."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The service's collectors, registered in a registry of their own (one per app, so tests do not clash)."""

    def __init__(self, cached_tables: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "splitnas_http_requests", "HTTP requests by route template and status", ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "splitnas_http_request_duration_seconds", "time from request to response, by route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
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
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a tuple: do it once per label set
            children = (self.requests.labels(method, route, str(status)), self.duration.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

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
            self.metrics.observe(
                scope["method"], getattr(route, "path", "unmatched"), status, time.perf_counter() - start
            )
