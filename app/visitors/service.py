"""Visitors: find or create by cookie id, detect the platform, keep attribution."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import aware, now
from app.visitors.models import Visitor

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
RAW_MAX = 64
SEEN_GRANULARITY = dt.timedelta(minutes=5)


class Touch(msgspec.Struct, frozen=True, kw_only=True):
    """Where a visit came from: the raw ``src`` (kept even when unknown), UTM tags, share ref."""

    src: str = ""
    utm: dict[str, str] = msgspec.field(default_factory=dict)
    ref: str = ""

    @property
    def empty(self) -> bool:
        return not (self.src or self.utm or self.ref)

    @classmethod
    def from_query(cls, query: Any) -> Touch:
        def clean(value: Any) -> str:
            text = value if isinstance(value, str) else ""
            return "".join(ch for ch in text if ch.isprintable())[:RAW_MAX]

        utm = {key: clean(query.get(key)) for key in UTM_KEYS if query.get(key)}
        return cls(src=clean(query.get("src")), utm=utm, ref=clean(query.get("ref")))


def detect_platform(user_agent: str) -> str:
    if "ToutiaoMicroApp" in user_agent:
        return "douyin"
    if "miniProgram" in user_agent or "MicroMessenger" in user_agent:
        return "wechat"
    return "browser"


async def find(db: AsyncSession, public_id: str | None) -> Visitor | None:
    if not public_id:
        return None
    return (await db.execute(select(Visitor).where(Visitor.public_id == public_id))).scalar()


async def find_or_new(
    db: AsyncSession, public_id: str | None, user_agent: str
) -> tuple[Visitor, bool]:
    """The visitor behind ``public_id``; else a new one that is NOT stored yet (``ensure``
    stores it once the visitor does something worth recording: opens a tool, answers,
    authorises). Returns (visitor, new_id): ``new_id`` when the browser needs a cookie."""
    visitor = await find(db, public_id)
    if visitor is not None:
        return visitor, False
    at = now()
    visitor = Visitor(
        # A cookie whose row was never stored (or was deleted) keeps its id.
        public_id=public_id or secrets.token_urlsafe(16),
        platform=detect_platform(user_agent),
        user_agent=user_agent[:255],
        first_seen_at=at,
        last_seen_at=at,
        first_touch={},
        last_touch={},
        # Set, not left to the column: a stored visitor's facts are then all in memory, and
        # reading them never costs a query (app/visitors/facts.py).
        first_link_id=None,
        last_link_id=None,
        lead_id=None,
    )
    return visitor, public_id is None


async def ensure(db: AsyncSession, visitor: Visitor) -> Visitor:
    """Store ``visitor`` if it is not stored yet (see ``find_or_new``)."""
    if visitor.id is None:
        db.add(visitor)
        await db.flush()
    return visitor


def seen_long_ago(last_seen_at: dt.datetime) -> bool:
    """Whether a plain page view now is worth writing down (``attribute``)."""
    return now() - aware(last_seen_at) > SEEN_GRANULARITY


async def attribute(db: AsyncSession, visitor: Visitor, touch: Touch, link_id: int | None) -> None:
    """Record a touch: first touch once, last touch every time there is one. ``link_id``: the
    tracked link ``touch.src`` names, when it names a live one (unknown codes are kept raw)."""
    if touch.empty and link_id is None:
        # A plain page view writes nothing unless the visitor was away for a while.
        if seen_long_ago(visitor.last_seen_at):
            visitor.last_seen_at = now()
        return
    at = now()
    visitor.last_seen_at = at
    payload = {"utm": touch.utm, "ref": touch.ref, "at": visitor.last_seen_at.isoformat()}
    src = touch.src[:RAW_MAX]
    if visitor.first_link_id is None and not visitor.first_src:
        visitor.first_link_id = link_id
        visitor.first_src = src
        visitor.first_touch = payload
    visitor.last_link_id = link_id
    visitor.last_src = src
    visitor.last_touch = payload
