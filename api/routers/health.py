"""``/healthz`` and ``/metrics``: liveness with a database check, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from api.deps import CacheDep, MetricsDep, SessionDep
from api.errors import FieldError
from api.schemas import HealthPublic
from db import queries

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, responses={503: {"description": "the database does not answer"}})
def get_health(session: SessionDep, cache: CacheDep) -> dict:
    """200 when the service and its database answer."""
    try:
        queries.ping(session)
    except SQLAlchemyError as exc:
        raise FieldError(503, ["database"], f"the database does not answer: {exc.__class__.__name__}: {exc}",
                         "unavailable") from None
    return {"status": "ok", "database": "ok", "cached_tables": len(cache)}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def get_metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format: requests by route and status, their latency, predictions, table builds."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
