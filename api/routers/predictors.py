"""``/predictors``: fitted predictors with their validation metrics, and refits that swap in atomically."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CacheDep, SessionDep, TokenDep, check_device_known
from api.errors import AUTH_RESPONSES, ERROR_RESPONSES, not_found
from api.schemas import PredictorFitCreate, PredictorFitPublic, PredictorPublic
from api.validation import space_or_error
from db import queries
from predictor import PredictorNotFoundError, fit_predictors

router = APIRouter(prefix="/predictors", tags=["predictors"])


@router.get("", response_model=list[PredictorPublic], responses=ERROR_RESPONSES)
def get_predictors(
    session: SessionDep,
    device: Annotated[str | None, Query(description="only this device's predictors")] = None,
    space: Annotated[str | None, Query(description="only this space's predictors")] = None,
) -> list[dict]:
    """The newest fitted predictor of every (device, space, kind), with its held-out validation metrics."""
    if device is not None:
        check_device_known(session, device, ["query", "device"])
    if space is not None:
        space_or_error(space, ["query", "space"])
    rows = queries.latest_predictors(session, device=device, space=space)
    return [
        {"device": row.device.name, "space": row.space, "kind": row.kind, "version": row.version,
         "metrics": row.metrics, "meta": row.meta, "created_at": row.created_at}
        for row in sorted(rows, key=lambda r: (r.device.name, r.space, r.kind))
    ]


@router.post("/fit", response_model=PredictorFitPublic, responses=ERROR_RESPONSES | AUTH_RESPONSES)
def post_fit(body: PredictorFitCreate, token: TokenDep, session: SessionDep, cache: CacheDep) -> dict:
    """Refit a device's predictors on its measurements; readers keep the previous tables until the new are built."""
    token.check_device(body.device, ["body", "device"])
    space_or_error(body.space, ["body", "space"])
    check_device_known(session, body.device, ["body", "device"])
    try:
        reports = fit_predictors(session, device=body.device, space=body.space, kinds=body.kinds)
    except PredictorNotFoundError as exc:
        raise not_found(["body", "device"], str(exc)) from None
    session.commit()  # the new versions must be visible before the cached tables are rebuilt from them
    refreshed = cache.refresh(body.device, body.space)
    return {
        "device": body.device, "space": body.space,
        "reports": [{"kind": r.kind, "version": r.version, "metrics": r.metrics, "meta": r.meta} for r in reports],
        "refreshed": [f"{space}/{kind}" for _device, space, kind in refreshed],
    }
