"""Dependencies of the routes: the database session, the table cache, metrics, settings and bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from api.cache import CachedLUT, LUTCache, LUTKey, UnknownDeviceError
from api.errors import FieldError, Loc, forbidden, not_found, unauthorized
from api.metrics import ServiceMetrics
from db import queries
from db.config import Settings
from db.engine import session_scope
from predictor.errors import (
    AmbiguousRuntimeError,
    PredictorError,
    PredictorLoadError,
    PredictorNotFoundError,
    UnknownRuntimeError,
    UnmeasuredOpError,
)

Model = TypeVar("Model", bound=BaseModel)


def parse_query(model: type[Model], request: Request) -> Model:
    """The query string validated by ``model``; errors as FastAPI reports declared parameters' (422, loc 'query')."""
    try:
        # parse_qsl on the raw string: Starlette's QueryParams multidict costs twice as much
        return model.model_validate(dict(parse_qsl(request.scope["query_string"].decode("latin-1"))))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors]) from None


def query_parameters(model: type[BaseModel]) -> list[dict]:
    """OpenAPI query parameters describing ``model`` (for routes that validate their query with parse_query)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "description": field.get("description", ""),
         "schema": {k: v for k, v in field.items() if k not in ("description", "examples")}}
        | ({"example": field["examples"][0]} if field.get("examples") else {})
        for name, field in schema["properties"].items()
    ]


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.settings.resolved_database_url()) as session:
        yield session


# scope="function": commit before the response is sent, so a 2xx means the data is stored
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def check_device_known(session: Session, device: str, loc: Loc) -> None:
    """404 listing the known devices unless ``device`` is in the database."""
    if queries.get_device(session, name=device) is None:
        raise not_found(loc, str(UnknownDeviceError(device, queries.device_names(session))))


async def get_cache(request: Request) -> LUTCache:
    return request.app.state.cache


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


CacheDep = Annotated[LUTCache, Depends(get_cache)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def lut_entry(cache: LUTCache, key: LUTKey, *, device_loc: Loc, kind_loc: Loc) -> CachedLUT:
    """The cached table for (device, runtime, space, predictor kind), or an error naming the request field at fault.

    The runtime's field sits beside the predictor kind's (``[..., "runtime"]``).
    """
    runtime_loc = [*kind_loc[:-1], "runtime"]
    try:
        return await cache.get(key)
    except UnknownDeviceError as exc:
        raise not_found(device_loc, str(exc)) from None
    except AmbiguousRuntimeError as exc:
        raise FieldError(422, runtime_loc, str(exc), "runtime_required") from None
    except UnknownRuntimeError as exc:
        raise not_found(runtime_loc, str(exc)) from None
    except (PredictorNotFoundError, UnmeasuredOpError) as exc:
        raise not_found(kind_loc, str(exc)) from None
    except PredictorLoadError as exc:
        raise FieldError(503, kind_loc, f"{exc}; refit with POST /predictors/fit", "predictor_unavailable") from None
    except PredictorError as exc:
        raise FieldError(409, kind_loc, str(exc), "predictor_error") from None


# -- bearer tokens ----------------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="a token from `splitnas-api token create NAME [--device D]`")


@dataclass(frozen=True)
class TokenInfo:
    name: str
    device: str | None  # None: may write for every device

    def check_device(self, device: str, loc: Loc) -> None:
        """403 unless this token may write data of ``device``."""
        if self.device is not None and self.device != device:
            raise forbidden(loc, f"token {self.name!r} may write only for device {self.device!r}, not {device!r}")


def check_token(session: Session, credentials: HTTPAuthorizationCredentials | None) -> TokenInfo:
    """The caller's valid token, or 401 (the routes' dependency and the body guard both ask this)."""
    if credentials is None:
        raise unauthorized("this endpoint needs 'Authorization: Bearer <token>' (splitnas-api token create NAME)")
    row = queries.find_token(session, token=credentials.credentials)
    if row is None:
        raise unauthorized("the bearer token is unknown or revoked")
    return TokenInfo(row.name, row.device)


def require_token(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> TokenInfo:
    """The caller's valid token, or 401."""
    return check_token(session, credentials)


TokenDep = Annotated[TokenInfo, Depends(require_token)]
