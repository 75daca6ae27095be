"""The visitor at the edge: the signed cookie, and the per-request event context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from litestar import Request
from litestar.di import NamedDependency
from litestar.types import Message, Scope
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import part
from app.core.web import cookie
from app.settings import Settings
from app.visitors import service
from app.visitors.models import Visitor

VISITOR_COOKIE = "lk_vid"
_STATE_KEY = "leadkit_set_visitor"


@cache
def _signer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="leadkit.visitor")


def public_id_from(settings: Settings, scope: Scope) -> str | None:
    value = cookie(scope, VISITOR_COOKIE)
    if not value:
        return None
    try:
        public_id = _signer(settings.secret_key).loads(value)
    except BadSignature:
        return None
    return public_id if isinstance(public_id, str) else None


async def provide_visitor(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Visitor:
    """The visitor making this request. A new visitor gets a cookie on the way out but no row
    until it does something worth recording (``visitors.service.ensure``): an API client
    without cookies leaves nothing behind."""
    settings = part(request, Settings)
    public_id = public_id_from(settings, request.scope)
    visitor, new_id = await service.find_or_new(
        db_session, public_id, request.headers.get("user-agent", "")
    )
    if new_id:
        request.scope.setdefault("state", {})[_STATE_KEY] = visitor.public_id
    return visitor


def visitor_cookie_hook(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A before_send hook that sets the visitor cookie when this request created one."""
    secure = "; Secure" if settings.is_prod else ""
    max_age = settings.visitor_cookie_days * 86_400

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        public_id = scope.get("state", {}).get(_STATE_KEY)
        if not public_id:
            return
        value = _signer(settings.secret_key).dumps(public_id)
        cookie = (
            f"{VISITOR_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        )
        message.setdefault("headers", [])
        message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]

    return before_send
