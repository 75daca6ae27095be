"""The visitor at the edge: the signed cookie, the stamp of its cached facts, and the visitor
each request works with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache, lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from litestar import Request
from litestar.di import NamedDependency
from litestar.types import Message, Scope
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import part
from app.core.web import cookie
from app.db.uow import after_commit
from app.settings import Settings
from app.visitors import facts as cached_facts
from app.visitors import service
from app.visitors.facts import VisitorFacts
from app.visitors.models import Visitor

VISITOR_COOKIE = "lk_vid"
# The stamp of the visitor's cached facts (app/visitors/facts.py): not a credential.
STAMP_COOKIE = "lk_vs"
_STATE_KEY = "leadkit_set_visitor"
_STAMP_KEY = "leadkit_set_stamp"


@cache
def _signer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="leadkit.visitor")


def public_id_from(settings: Settings, scope: Scope) -> str | None:
    value = cookie(scope, VISITOR_COOKIE)
    if not value:
        return None
    return _verified(settings.secret_key, value)


@lru_cache(maxsize=4096)
def _verified(secret: str, value: str) -> str | None:
    """The public id a visitor cookie carries, None if its signature is wrong. The answer for
    one cookie never changes, and returning visitors send theirs with every request:
    checking a signature cost the busiest page a tenth of its time."""
    try:
        public_id = _signer(secret).loads(value)
    except BadSignature:
        return None
    return public_id if isinstance(public_id, str) else None


async def provide_visitor(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Visitor:
    """The visitor making this request. A new visitor gets a cookie on the way out but no row
    until it does something worth recording (``visitors.service.ensure``): an API client
    without cookies leaves nothing behind."""
    return await _visitor(
        request, db_session, public_id_from(part(request, Settings), request.scope)
    )


async def page_visitor(request: Request[Any, Any, Any], db: AsyncSession) -> Visitor | VisitorFacts:
    """The visitor of a page that records nothing about it but its visit: the facts cached in
    this process when they still hold for this browser and its last visit is recent (no
    query), else its row, as ``provide_visitor`` gives it."""
    scope = request.scope
    public_id = public_id_from(part(request, Settings), scope)
    stamp = cookie(scope, STAMP_COOKIE)
    if public_id and stamp:
        facts = cached_facts.cached(db, public_id, stamp)
        if facts is not None and not service.seen_long_ago(facts.last_seen_at):
            return facts
    return await _visitor(request, db, public_id)


async def _visitor(
    request: Request[Any, Any, Any], db: AsyncSession, public_id: str | None
) -> Visitor:
    visitor, new_id = await service.find_or_new(
        db, public_id, request.headers.get("user-agent", "")
    )
    if new_id:
        request.scope.setdefault("state", {})[_STATE_KEY] = visitor.public_id
    _cache_when_committed(request.scope, db, visitor)
    return visitor


def _cache_when_committed(scope: Scope, db: AsyncSession, visitor: Visitor) -> None:
    """Once the request's work is committed, cache the visitor's facts for its next pages;
    when the request changed them (stored, authorised, attributed the visitor), or the
    browser has no stamp yet, the browser gets a new stamp with the answer."""
    before = VisitorFacts.of(visitor)
    stamp = cookie(scope, STAMP_COOKIE)
    bulk_changes = cached_facts.bulk_changes()

    def cache() -> None:
        facts = VisitorFacts.of(visitor)
        # A bulk change of visitors in between (an erasure) may have deleted this one.
        if facts is None or cached_facts.bulk_changes() != bulk_changes:
            return
        current = stamp
        if current is None or not facts.same_page(before):
            current = cached_facts.new_stamp()
            scope.setdefault("state", {})[_STAMP_KEY] = current
        cached_facts.remember(db, facts, current)

    after_commit(db, cache)


def visitor_cookie_hook(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A before_send hook that sets the visitor cookie when this request created one, and the
    stamp of its facts when this request gave it a new one."""
    secure = "; Secure" if settings.is_prod else ""
    max_age = settings.visitor_cookie_days * 86_400

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        state = scope.get("state", {})
        public_id, stamp = state.get(_STATE_KEY), state.get(_STAMP_KEY)
        if not (public_id or stamp):
            return
        attributes = f"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        cookies = []
        if public_id:
            value = _signer(settings.secret_key).dumps(public_id)
            cookies.append((b"set-cookie", f"{VISITOR_COOKIE}={value}{attributes}".encode()))
        if stamp:
            cookies.append((b"set-cookie", f"{STAMP_COOKIE}={stamp}{attributes}".encode()))
        message["headers"] = [*message.get("headers", []), *cookies]

    return before_send
