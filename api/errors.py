"""Error responses that name the bad field and what is allowed, in FastAPI's validation-error shape."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorPublic
from db.errors import UnstorableValueError

Loc = Sequence[str | int]
log = logging.getLogger(__name__)
# what FastAPI raises (400, plain string) when a body cannot be decoded at all, e.g. bytes that are not UTF-8
UNPARSEABLE_BODY = "There was an error parsing the body"


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
    """The bad input as the error shows it: small scalars only, non-finite numbers as text (JSON has none),
    strings that UTF-8 cannot encode (a lone surrogate) not at all."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
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


def error_body(loc: Loc, msg: str, kind: str) -> dict:
    """The documented error shape for one error."""
    return {"detail": [{"loc": list(loc), "msg": msg, "type": kind}]}


async def http_error_handler(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Every HTTP error in the documented shape: Starlette's own (404 path, 405 method) carry a plain string."""
    headers = getattr(exc, "headers", None)
    if isinstance(exc.detail, list):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == UNPARSEABLE_BODY:
        # the same answer as for malformed JSON: the body is a bad value
        return JSONResponse(error_body(["body"], "the body is not valid UTF-8 JSON", "json_invalid"),
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    loc = {404: ["path"], 405: ["method"]}.get(exc.status_code, [])
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(loc, str(exc.detail), kind), status_code=exc.status_code, headers=headers)


async def database_error_handler(request: Request, exc: OperationalError) -> JSONResponse:
    """503: the database cannot be reached or written now (read-only or full disk, a lock held too long)."""
    log.error("database error on %s %s: %s", request.method, request.url.path, exc.orig)
    msg = f"the database cannot serve this request now ({exc.orig}); nothing was stored, retry later"
    return JSONResponse(error_body([], msg, "database_unavailable"), status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "30"})


async def statement_error_handler(request: Request, exc: StatementError) -> JSONResponse:
    """422 for a value that passed the request schema but that a column refuses (``db.columns``: too long, out
    of range, NUL, not finite): bad input, not a bug; any other failed statement is a 500."""
    if isinstance(exc.orig, UnstorableValueError):
        msg = f"a value of the request cannot be stored: {exc.orig}; nothing was stored"
        return JSONResponse(error_body(["body"], msg, "value_error"), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return await server_error_handler(request, exc)


async def server_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """500 in the documented shape, logged with the request (the server logs the traceback after it)."""
    log.error("unhandled %s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
    msg = f"internal error ({type(exc).__name__}); the server log has the traceback"
    return JSONResponse(error_body([], msg, "internal_error"), status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app``, 5xx included, as ``{"detail": [{"loc", "msg", "type"}]}``."""
    # Starlette types a handler's exception as Exception: a handler of a subclass does not type-check
    app.add_exception_handler(RequestValidationError, validation_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, database_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StatementError, statement_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, server_error_handler)


def responses(*groups: Mapping[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route: these groups merged, later ones winning."""
    return {code: response for group in groups for code, response in group.items()}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": description}
    for code, description in {
        404: "an unknown device, run or predictor (the message lists what exists)",
        422: "a bad value: the message names the field and what is allowed",
    }.items()
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "missing, invalid or revoked bearer token"},
    403: {"model": ErrorPublic, "description": "the token is scoped to another device"},
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorPublic, "description": "a body over SPLITNAS_API_MAX_BODY_BYTES"},
}
BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorPublic, "description": "more entries than SPLITNAS_API_MAX_BATCH, or a body over "
          "SPLITNAS_API_MAX_BODY_BYTES"},
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorPublic, "description": "the database cannot be written now (read-only or full disk); "
          "nothing was stored, retry later"},
}
