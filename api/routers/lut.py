"""``/lut``: a device's whole layer x block table, with an ETag so that search clients can cache it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.deps import CacheDep, lut_entry
from api.errors import ERROR_RESPONSES, responses
from api.schemas import DEFAULT_SPACE, LUTPublic, PredictorKind, Runtime
from api.validation import space_or_error

router = APIRouter(tags=["lut"])


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of ``etag`` against an If-None-Match list (or ``*``)."""
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


@router.get(
    "/lut",
    response_model=LUTPublic,
    responses=responses({304: {"description": "the table has not changed since the ETag sent in If-None-Match"}},
                        ERROR_RESPONSES),
)
async def get_lut(
    cache: CacheDep,
    device: Annotated[str, Query(description="device name", examples=["raspi4"])],
    space: Annotated[str, Query(description="search space")] = DEFAULT_SPACE,
    predictor: Annotated[PredictorKind, Query(description="which predictor fills the table")] = "auto",
    runtime: Annotated[Runtime, Query()] = None,
    if_none_match: Annotated[str | None, Header(description="the ETag of the copy the client holds")] = None,
) -> Response:
    """The table served to ``GET /latency`` (``DeviceLUT.to_dict()``); 304 when the client's copy is current."""
    space_or_error(space, ["query", "space"])
    entry = await lut_entry(cache, (device, runtime, space, predictor), device_loc=["query", "device"],
                            kind_loc=["query", "predictor"])
    headers = {"ETag": entry.etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and etag_matches(if_none_match, entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type="application/json", headers=headers)
