"""Who is asking: the staff session cookie (pages) or a bearer token (/api/), and the guards.

Pages authenticate only by cookie (and are CSRF-protected); /api/ only by bearer token, so a
cookie can never be replayed cross-site against the JSON API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.core.errors import LoginRequired, PermissionDenied
from app.core.web import cookie
from app.settings import Settings
from app.staff import sessions, tokens
from app.staff.schemas import Staff

SESSION_COOKIE = "lk_staff"
_SKIP_PREFIXES = ("/static/", "/healthz")


def session_signer(settings: Settings) -> URLSafeSerializer:
    return _session_signer(settings.secret_key)


@cache
def _session_signer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="leadkit.staff-session")


def session_cookie(settings: Settings, raw_token: str | None) -> Cookie:
    """The signed session cookie; ``None`` makes the cookie that clears it."""
    return Cookie(
        key=SESSION_COOKIE,
        value=session_signer(settings).dumps(raw_token) if raw_token else "",
        max_age=settings.session_ttl_hours * 3600 if raw_token else 0,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.is_prod,
    )


def raw_session_token(settings: Settings, cookie_value: str | None) -> str | None:
    if not cookie_value:
        return None
    try:
        raw = session_signer(settings).loads(cookie_value)
    except BadSignature:
        return None
    return raw if isinstance(raw, str) else None


def auth_middleware(
    settings: Settings, sessionmaker: async_sessionmaker
) -> Callable[[ASGIApp], ASGIApp]:
    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope["user"] = await _identify(scope)
            await app(scope, receive, send)

        return middleware

    async def _identify(scope: Scope) -> Staff | None:
        path: str = scope["path"]
        if path.startswith(_SKIP_PREFIXES):
            return None
        if path.startswith("/api/"):
            bearer = _bearer(scope)
            if bearer is None:
                return None
            async with sessionmaker() as db, db.begin():
                return await tokens.resolve_token(db, bearer)
        raw = raw_session_token(settings, cookie(scope, SESSION_COOKIE))
        if raw is None:
            return None
        async with sessionmaker() as db:
            return await sessions.resolve_session(db, raw)

    return factory


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def current_staff(connection: ASGIConnection[Any, Any, Any, Any]) -> Staff | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Staff) else None


# Guards are coroutines: Litestar runs a plain function guard in its thread pool, a thread
# hop on every staff page for a check that only reads the request's scope.


async def requires_staff(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    if current_staff(connection) is None:
        raise LoginRequired()


def requires_role(
    *roles: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard: the caller is signed in and holds one of ``roles`` (admin holds every role)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        staff = current_staff(connection)
        if staff is None:
            raise LoginRequired()
        if not staff.has_role(*roles):
            raise PermissionDenied()

    guard.__name__ = f"requires_role_{'_'.join(roles)}"
    return guard
