"""The FastAPI app of the latency service: ``create_app(settings)``, and ``api.main:app`` for uvicorn.

``app`` is built from the environment's settings on first access, not at import, so that importing
this module reads no configuration (``uvicorn api.main:app`` accesses it once per worker).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from anyio import to_thread
from fastapi import Depends, FastAPI

from api.body_guard import BodyGuard
from api.cache import LUTCache
from api.deps import require_token
from api.errors import add_error_handlers
from api.fit_jobs import FitJobs
from api.metrics import MetricsMiddleware, ServiceMetrics
from api.routers import architectures, devices, e2e, health, latency, lut, measurements, predictors, spaces, ui
from db.config import Settings, get_settings
from db.engine import get_engine

DESCRIPTION = """\
Latency of blocks, architectures and split architectures on profiled devices, from fitted predictors
held in memory; and the upload endpoint of the profiler agents.

Write endpoints need `Authorization: Bearer <token>` (`splitnas-api token create NAME [--device D]`);
a token scoped to a device writes only that device's data. Read endpoints are open unless
`SPLITNAS_API_READ_AUTH=true`. Every error body is `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`,
`loc` naming the bad field and `msg` what is allowed.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default: the environment's); the database is migrated on startup."""
    settings = settings or get_settings()
    url = settings.resolved_database_url()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(get_engine, url)  # creates or migrates the schema ("migrations run on start")
        yield

    app = FastAPI(title="splitnas latency service", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # served by api.routers.ui with the service's own assets
    app.state.settings = settings
    metrics = ServiceMetrics(cached_tables=lambda: len(app.state.cache))
    app.state.metrics = metrics
    app.state.cache = LUTCache(url, ttl_s=settings.api_cache_ttl_s,
                               on_build=lambda reason: metrics.table_builds.labels(reason).inc())
    app.state.fit_jobs = FitJobs(url, app.state.cache)
    app.add_middleware(BodyGuard, database_url=url, max_body_bytes=settings.api_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: it times and counts refused bodies too
    add_error_handlers(app)

    # write routes always take a token; with read auth every other route does too (the same dependency,
    # so a write route still looks its token up once); health and metrics stay open for probes and scrapers
    read = [Depends(require_token)] if settings.api_read_auth else []
    for resource in (latency, architectures, lut, devices, spaces, predictors, measurements, e2e, ui):
        app.include_router(resource.router, dependencies=read)
    app.include_router(health.router)
    app.include_router(ui.pages)  # the dashboard's page and assets and /docs hold no data: open
    return app


@cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
