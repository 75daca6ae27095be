"""What a claim store is: the grab and the claimant it decides for, the answer's pieces, and
the interface the SQL and Redis stores implement (see app/grabs/store/__init__.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import now
from app.core.schedule import window_open
from app.events.schemas import EventContext
from app.grabs.codes import display, new_code
from app.grabs.models import Grab
from app.grabs.schemas import ClaimAnswer, Result, Voucher

IDEMPOTENCY_TTL = 86_400
# A claim whose owner deleted their data keeps its unit (won + remaining = initial) under a
# phone "hash" that is the hash of no number: TOMBSTONE + the claim's voucher code, unique per
# claim. Redis counts such units under one winners field, DELETED_UNITS.
TOMBSTONE = "deleted:"
DELETED_UNITS = TOMBSTONE + "units"


@dataclass(frozen=True, slots=True)
class GrabInfo:
    """A grab's settings as the claim path needs them (cached per process for a moment)."""

    id: int
    tool_id: int
    tool_version: int
    slug: str
    title: str
    offer: str
    image_url: str
    initial_stock: int
    per_phone_limit: int
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    mode: str
    voucher_prefix: str
    voucher_valid_days: int
    voucher_where: str


@dataclass(frozen=True, slots=True)
class Claimant:
    """An authorised visitor: who claims (the phone's lookup hash) and for the funnel."""

    visitor_id: int
    lead_id: int
    phone_hash: str
    platform: str
    link_id: int | None


def tap_limit_key(visitor_id: int) -> str:
    """The rate-limit key of one visitor's taps (counted by the service or the claim script)."""
    return f"grab:v:{visitor_id}"


def is_tombstone(phone_hash: str) -> bool:
    """True for the phone field of a unit won by someone who has since deleted their data."""
    return phone_hash.startswith(TOMBSTONE)


class ToolRef(Protocol):
    """What a funnel event needs of the tool (a grab, a draw): which one, at which version."""

    @property
    def tool_id(self) -> int: ...

    @property
    def tool_version(self) -> int: ...


class VisitorRef(Protocol):
    """What a funnel event needs of an authorised visitor (a Claimant, a draw's Entrant)."""

    @property
    def visitor_id(self) -> int: ...

    @property
    def lead_id(self) -> int: ...

    @property
    def link_id(self) -> int | None: ...

    @property
    def platform(self) -> str: ...


def tap_context(tool: ToolRef, who: VisitorRef | None) -> EventContext:
    """The funnel context of a tap on ``tool`` by ``who`` (None: not known yet)."""
    if who is None:
        return EventContext(tool_id=tool.tool_id, tool_version=tool.tool_version)
    return EventContext(
        visitor_id=who.visitor_id,
        lead_id=who.lead_id,
        link_id=who.link_id,
        platform=who.platform,
        tool_id=tool.tool_id,
        tool_version=tool.tool_version,
    )


def terms(grab: GrabInfo) -> tuple[dt.datetime, str, dt.datetime]:
    """What a claim made now would be given: the time, a new voucher code and its expiry."""
    at = now()
    return at, new_code(grab.voucher_prefix), at + dt.timedelta(days=grab.voucher_valid_days)


def voucher(grab: GrabInfo, code: str, n: int, expires_at: dt.datetime) -> Voucher:
    return Voucher(
        code=code, display=display(code), n=n, expires_at=expires_at, where=grab.voucher_where
    )


def open_clause(at: dt.datetime) -> Any:
    """SQL for "the grab takes claims at ``at``" (the host's override, else the schedule)."""
    return window_open(Grab, at)


class ClaimRateLimited(Exception):
    """A rate limit counted inside the claim (Redis store) was exceeded; nothing was claimed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = max(1, retry_after)


@runtime_checkable
class ClaimStore(Protocol):
    # True when ``claim`` counts ``limits`` itself (raising ClaimRateLimited); otherwise the
    # caller applies them first.
    limits_inline: bool

    async def claim(
        self,
        grab: GrabInfo,
        who: Claimant,
        key: str | None,
        limits: Sequence[tuple[str, int, int]] = (),
    ) -> tuple[ClaimAnswer, bool]:
        """Decide one claim: won (with a voucher), sold_out, already_claimed or not_open; and
        whether it is the answer an earlier request with the same key got (a replay)."""
        ...

    async def replay(self, grab: GrabInfo, who: Claimant, key: str) -> ClaimAnswer | None:
        """The answer an earlier request with this Idempotency-Key got, if any."""
        ...

    async def remember(self, grab: GrabInfo, who: Claimant, key: str, result: Result) -> None:
        """Keep a refusal decided outside the store (not_open) for replays."""
        ...

    async def stock_left(self, grab: GrabInfo, conn: AsyncConnection | None = None) -> int:
        """Units left; through ``conn`` (the request's connection) when given."""
        ...

    async def restock(self, grab_id: int, total: int, conn: AsyncConnection) -> None:
        """Make ``total`` the grab's initial stock, in the caller's transaction (``conn``);
        Conflict if more were already won."""
        ...

    async def winners(self, grab: GrabInfo) -> dict[str, int] | None:
        """Phone hash → units won, as the hot store sees it (None: SQL is the only record)."""
        ...

    async def forget(self, phone_hash: str) -> None:
        """Forget a phone whose owner deleted their data: its idempotency answers go, and what
        it won is counted only as a deleted person's units (the deletion itself turns its SQL
        claims into tombstones). Idempotent: run again after a failure, it finishes the job."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
