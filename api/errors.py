"""Error responses that name the bad field and what is allowed, in FastAPI's validation-error shape."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import ErrorPublic

Loc = Sequence[str | int]


class FieldError(HTTPException):
    """An HTTP error whose body is ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``."""

    def __init__(self, status_code: int, loc: Loc, msg: str, kind: str, headers: dict[str, str] | None = None):
        super().__init__(status_code, detail=[{"loc": list(loc), "msg": msg, "type": kind}], headers=headers)


def invalid(loc: Loc, msg: str) -> FieldError:
    """422: a value the search space or the request schema does not allow."""
    return FieldError(status.HTTP_422_UNPROCESSABLE_CONTENT, loc, msg, "value_error")


def not_found(loc: Loc, msg: str) -> FieldError:
    return FieldError(status.HTTP_404_NOT_FOUND, loc, msg, "not_found")


def many_invalid(errors: list[tuple[Loc, str]]) -> HTTPException:
    """422 listing every bad entry of a batch at once."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in errors],
    )


def too_large(loc: Loc, count: int, limit: int, what: str) -> FieldError:
    return FieldError(
        status.HTTP_413_CONTENT_TOO_LARGE, loc,
        f"at most {limit} {what} per request (SPLITNAS_API_MAX_BATCH), got {count}; split the batch", "too_large",
    )


def unauthorized(msg: str) -> FieldError:
    return FieldError(
        status.HTTP_401_UNAUTHORIZED, ["header", "Authorization"], msg, "unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )


def forbidden(loc: Loc, msg: str) -> FieldError:
    return FieldError(status.HTTP_403_FORBIDDEN, loc, msg, "forbidden")


def _echo(value: Any) -> Any:
    """The bad input as the error shows it: small scalars only, non-finite numbers as text (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 200):
        return value
    return None


async def validation_error_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with ``loc``, ``msg``, ``type`` and the offending value when small (FastAPI's default echoes any
    input, which fails on NaN and repeats whole batches)."""
    detail = []
    for error in exc.errors():
        item = {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        echoed = _echo(error.get("input"))
        if echoed is not None:
            item["input"] = echoed
        detail.append(item)
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


ERROR_RESPONSES: dict[int | str, dict] = {
    code: {"model": ErrorPublic, "description": description}
    for code, description in {
        404: "an unknown device, run or predictor (the message lists what exists)",
        422: "a bad value: the message names the field and what is allowed",
    }.items()
}
AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"model": ErrorPublic, "description": "missing, invalid or revoked bearer token"},
    403: {"model": ErrorPublic, "description": "the token is scoped to another device"},
}
BATCH_RESPONSES: dict[int | str, dict] = {
    413: {"model": ErrorPublic, "description": "more entries than SPLITNAS_API_MAX_BATCH"},
}
