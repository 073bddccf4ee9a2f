"""``/predictors``: fitted predictors with their validation metrics, and refits that swap in atomically."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import SessionDep, TokenDep, check_device_known
from api.errors import AUTH_RESPONSES, BODY_RESPONSES, ERROR_RESPONSES, not_found
from api.fit_jobs import FitJob
from api.schemas import ErrorPublic, FitJobPublic, PredictorFitCreate, PredictorPublic
from api.validation import space_or_error
from db import queries
from db.records import RuntimeName

router = APIRouter(prefix="/predictors", tags=["predictors"])


@router.get("", response_model=list[PredictorPublic], responses=ERROR_RESPONSES)
def get_predictors(
    session: SessionDep,
    device: Annotated[str | None, Query(description="only this device's predictors")] = None,
    space: Annotated[str | None, Query(description="only this space's predictors")] = None,
    runtime: Annotated[RuntimeName | None, Query(description="only this runtime's predictors")] = None,
) -> list[dict]:
    """The newest fitted predictor of every (device, runtime, space, kind), with its held-out validation metrics."""
    if device is not None:
        check_device_known(session, device, ["query", "device"])
    if space is not None:
        space_or_error(space, ["query", "space"])
    rows = queries.latest_predictors(session, device=device, space=space, runtime=runtime)
    return [
        {"device": row.device.name, "runtime": row.runtime, "space": row.space, "kind": row.kind,
         "version": row.version, "metrics": row.metrics, "meta": row.meta, "created_at": row.created_at}
        for row in sorted(rows, key=lambda r: (r.device.name, r.runtime, r.space, r.kind))
    ]


@router.post(
    "/fit", status_code=202, response_model=FitJobPublic,
    responses={409: {"model": ErrorPublic, "description": "a fit of this device is running"}}
    | ERROR_RESPONSES | AUTH_RESPONSES | BODY_RESPONSES,
)
def post_fit(body: PredictorFitCreate, token: TokenDep, session: SessionDep, request: Request,
             response: Response) -> FitJob:
    """Start refitting a device's predictors in the background; poll the job. Readers keep the previous
    tables until the new are built."""
    token.check_device(body.device, ["body", "device"])
    space_or_error(body.space, ["body", "space"])
    check_device_known(session, body.device, ["body", "device"])
    job = request.app.state.fit_jobs.start(body.device, body.space, list(body.kinds), body.runtime)
    response.headers["Location"] = f"/predictors/fit/{job.id}"
    return job


@router.get("/fit/{job_id}", response_model=FitJobPublic, responses=ERROR_RESPONSES)
def get_fit(job_id: Annotated[str, Path(description="the id POST /predictors/fit answered")],
            request: Request) -> FitJob:
    """A fit job: running, done (with the fitted versions) or failed (with the error)."""
    job = request.app.state.fit_jobs.get(job_id)
    if job is None:
        raise not_found(["path", "job_id"], f"no fit job {job_id!r} in this service process")
    return job
