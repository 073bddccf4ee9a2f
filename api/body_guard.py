"""A pure ASGI middleware that guards request bodies: token first, then a size limit counted while reading.

A body is never parsed for a caller without a valid token on a route that needs one (FastAPI would
parse and validate the whole JSON before the token dependency runs), and never read past
``SPLITNAS_API_MAX_BODY_BYTES``, whether the client sent a Content-Length or chunks.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import bearer, check_token, require_token
from api.errors import FieldError
from db.engine import session_scope


def body_too_large(limit: int) -> FieldError:
    return FieldError(413, ["body"], f"the body is over {limit} bytes (SPLITNAS_API_MAX_BODY_BYTES); "
                      "send fewer entries per request", "too_large")


def _needs_token(dependant: Dependant) -> bool:
    return any(d.call is require_token or _needs_token(d) for d in dependant.dependencies)


class BodyGuard:
    """Refuse a body before it is read: 401 where the route needs a token and it is bad, 413 past the limit."""

    def __init__(self, app: ASGIApp, database_url: str, max_body_bytes: int):
        self.app = app
        self.database_url = database_url
        self.max_body_bytes = max_body_bytes
        self._token_routes: dict[int, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._guarded(scope, receive), send)

    def _guarded(self, scope: Scope, receive: Receive) -> Receive:
        """``receive`` that checks the token and Content-Length before the first chunk, and counts the chunks.

        Its errors are HTTP exceptions, answered by the app's error handler: FastAPI reads the body
        (once routed, before any dependency runs) and re-raises them.
        """
        received = 0
        checked = False

        async def guarded() -> Message:
            nonlocal received, checked
            if not checked:
                checked = True
                route = scope.get("route")  # set by the router before the endpoint reads its body
                if isinstance(route, APIRoute) and self._needs_token(route):
                    credentials = await bearer(HTTPConnection(scope))
                    await to_thread.run_sync(self._check, credentials)
                length = Headers(scope=scope).get("content-length", "")
                if length.isdigit() and int(length) > self.max_body_bytes:
                    raise body_too_large(self.max_body_bytes)  # not a byte of it read
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise body_too_large(self.max_body_bytes)
            return message

        return guarded

    def _needs_token(self, route: APIRoute) -> bool:
        key = id(route)  # routes are not hashable; they live as long as the app
        if key not in self._token_routes:
            self._token_routes[key] = _needs_token(route.dependant)
        return self._token_routes[key]

    def _check(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        with session_scope(self.database_url) as session:
            check_token(session, credentials)
