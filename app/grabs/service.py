"""Limited-quantity grabs: create and edit, open and close, the state a visitor sees, and the
claim path (gate, idempotency, sold-out flag, rate limits, then the claim store).

The claim store decides; this module keeps the hot path short: a grab's settings and an
authorised visitor's phone hash are cached per process for a moment, and once a grab is sold
out an in-process flag answers without a round trip until something changes it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from app.core.clock import now
from app.core.errors import InvalidInput, RateLimited
from app.core.i18n import N_
from app.core.live import LiveHub, Topic
from app.core.ratelimit import RateLimiter
from app.core.schedule import check_window, starts_in
from app.gate.service import GateRequired
from app.grabs import waitlist
from app.grabs.definition import (
    GrabNotFound,
    create_grab,
    definition,
    info_of,
    load_grab,
    settings_of,
    state_of,
    takes_claims,
)
from app.grabs.held import HeldVoucher, held_in
from app.grabs.invariants import CheckReport, check_grab
from app.grabs.models import Grab
from app.grabs.schemas import (
    IDEMPOTENCY_KEY,
    ClaimAnswer,
    GrabCreate,
    GrabStatus,
    GrabUpdate,
    Mode,
)
from app.grabs.store import (
    Claimant,
    ClaimRateLimited,
    ClaimStore,
    GrabInfo,
    RedisClaimStore,
    SQLClaimStore,
    tap_limit_key,
)
from app.leads.models import Lead
from app.settings import Settings
from app.tools.models import Tool
from app.visitors.models import Visitor

INFO_TTL = 2.0
CLAIMANT_TTL = 30.0
SOLD_OUT_TTL = 1.0
STATUS_TTL = 0.2
_CACHE_MAX = 100_000
_KEY = re.compile(IDEMPOTENCY_KEY)
_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


class BadIdempotencyKey(
    InvalidInput,
    code="bad_idempotency_key",
    message=N_("The Idempotency-Key header must be 1 to 64 printable characters."),
):
    """A claim's Idempotency-Key header is not 1 to 64 printable characters."""


class GrabRateLimited(
    RateLimited, message=N_("Too many taps. Please wait a moment and try again.")
):
    """A claim tap past the grab's rate limits (per visitor and per IP)."""


class ClaimantGone(GateRequired):
    """The claim named a lead or visitor that no longer exists: the person deleted their data
    while this process still had them cached. Nothing was claimed."""

    def __init__(self) -> None:
        super().__init__()
        # The claim API's 401 names its result, as when the visitor is not known at all.
        self.extra = {"result": "gate_required"}


class GrabBusy(
    RateLimited, message=N_("Too many people are grabbing right now. Please tap again.")
):
    """The database could not take the claim in time (SQLite's single writer under a rush):
    nothing was claimed, and the visitor is asked to tap again."""


@dataclass(frozen=True, slots=True)
class Claimed:
    grab: GrabInfo
    answer: ClaimAnswer
    replayed: bool = False  # the answer an earlier request with the same key got


@dataclass(slots=True)
class _Caches:
    info: dict[str, tuple[float, GrabInfo]] = field(default_factory=dict)
    claimants: dict[str, tuple[float, Claimant]] = field(default_factory=dict)
    sold_out: dict[int, float] = field(default_factory=dict)
    status: dict[int, tuple[float, GrabStatus]] = field(default_factory=dict)


@dataclass(eq=False, repr=False)
class Grabs:
    """The grabs feature with its collaborators: claim store, rate limiter, live hub."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker
    store: ClaimStore
    limiter: RateLimiter
    live: LiveHub
    _caches: _Caches = field(default_factory=_Caches, init=False)
    _loading: dict[str, asyncio.Future[GrabInfo]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.live.listeners.append(self._forget_topic)

    async def start(self) -> None:
        await self.store.start()
        await self.live.start()

    async def stop(self) -> None:
        await self.live.stop()
        await self.store.stop()

    def _forget_topic(self, topic: Topic) -> None:
        if topic[0] == "grab":
            self._forget(topic[1])

    def _forget(self, grab_id: int) -> None:
        caches = self._caches
        caches.sold_out.pop(grab_id, None)
        caches.status.pop(grab_id, None)
        for slug in [s for s, (_, g) in caches.info.items() if g.id == grab_id]:
            caches.info.pop(slug, None)

    # Reading.

    def _session(self, db: AsyncSession | None) -> AbstractAsyncContextManager[AsyncSession]:
        """The request's own session when it has one (one connection per request), else a
        short one of our own (the claim path takes no request session)."""
        return nullcontext(db) if db is not None else self.sessionmaker()

    async def info(self, slug: str, db: AsyncSession | None = None) -> GrabInfo:
        """The published grab at ``slug`` (cached for INFO_TTL seconds); GrabNotFound.

        One look-up at a time per slug: when the entry expires under a rush, the other
        requests keep the previous answer (or wait for the one look-up) instead of all asking
        the database at once."""
        hit = self._caches.info.get(slug)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if not _SLUG.match(slug):
            raise GrabNotFound()
        pending = self._loading.get(slug)
        if pending is not None:
            if hit is not None:
                return hit[1]
            return await asyncio.shield(pending)
        loading = asyncio.get_running_loop().create_future()
        self._loading[slug] = loading
        try:
            info = await self._load_info(slug, db)
        except asyncio.CancelledError:
            loading.cancel()  # the waiters see the cancellation rather than wait forever
            raise
        except Exception as exc:
            loading.set_exception(exc)
            loading.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        else:
            loading.set_result(info)
        finally:
            del self._loading[slug]
        return info

    async def _load_info(self, slug: str, session: AsyncSession | None) -> GrabInfo:
        async with self._session(session) as db:
            row = (
                await db.execute(
                    select(Tool, Grab)
                    .options(defer(Tool.draft))
                    .join(Grab, Grab.tool_id == Tool.id)
                    .where(Tool.slug == slug, Tool.kind == "grab", Tool.status == "published")
                )
            ).first()
        if row is None:
            raise GrabNotFound()
        info = info_of(row[0], row[1])
        if len(self._caches.info) > _CACHE_MAX:
            self._caches.info.clear()
        self._caches.info[slug] = (time.monotonic() + INFO_TTL, info)
        return info

    async def status(self, slug: str, db: AsyncSession | None = None) -> GrabStatus:
        """State and stock left, shared by every watcher in this process for STATUS_TTL s."""
        grab = await self.info(slug, db)
        hit = self._caches.status.get(grab.id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        at = now()
        left = await self.store.stock_left(grab, await db.connection() if db else None)
        state = state_of(grab, left, at)
        status = GrabStatus(
            slug=grab.slug,
            title=grab.title,
            state=state,
            stock_left=left,
            stock_total=grab.initial_stock,
            per_phone_limit=grab.per_phone_limit,
            starts_at=grab.starts_at,
            ends_at=grab.ends_at,
            starts_in=starts_in(state, grab.starts_at, at),
        )
        self._caches.status[grab.id] = (time.monotonic() + STATUS_TTL, status)
        return status

    async def claimant(
        self, public_id: str | None, session: AsyncSession | None = None
    ) -> Claimant | None:
        """The authorised visitor behind a visitor cookie id, or None (the gate comes first)."""
        if not public_id:
            return None
        hit = self._caches.claimants.get(public_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self._session(session) as db:
            row = (
                await db.execute(
                    select(
                        Visitor.id, Visitor.platform, Visitor.last_link_id, Lead.id, Lead.phone_hash
                    )
                    .join(Lead, Lead.id == Visitor.lead_id)
                    .where(Visitor.public_id == public_id)
                )
            ).first()
        if row is None:
            return None
        who = Claimant(
            visitor_id=row[0], platform=row[1], link_id=row[2], lead_id=row[3], phone_hash=row[4]
        )
        if len(self._caches.claimants) > _CACHE_MAX:
            self._caches.claimants.clear()
        self._caches.claimants[public_id] = (time.monotonic() + CLAIMANT_TTL, who)
        return who

    def _drop_claimant(self, phone_hash: str, lead_id: int | None) -> None:
        claimants = self._caches.claimants
        for public_id in [
            public_id
            for public_id, (_, who) in claimants.items()
            if who.phone_hash == phone_hash or who.lead_id == lead_id
        ]:
            claimants.pop(public_id, None)

    async def forget(
        self, phone_hash: str, lead_id: int | None, visitor_ids: Iterable[int]
    ) -> None:
        """A person deleted their data: this process claims nothing more for them from its
        cache, their per-visitor tap counters go, and the claim store forgets their phone.
        Idempotent. (Another process's cache still answers for up to CLAIMANT_TTL; what it
        lets through is written void and anonymous, see ClaimWriter._departed, or fails
        on the deleted lead's foreign key, see ``claim``.)"""
        self._drop_claimant(phone_hash, lead_id)
        for visitor_id in set(visitor_ids):
            await self.limiter.reset(tap_limit_key(visitor_id))
        await self.store.forget(phone_hash)

    async def vouchers_of(
        self, grab: GrabInfo, phone_hash: str, session: AsyncSession | None = None
    ) -> list[HeldVoucher]:
        """What this phone won in this grab, from the durable record, each in its state."""
        async with self._session(session) as db:
            return await held_in(db, grab.id, grab.voucher_where, phone_hash)

    async def waitlisted(
        self, grab: GrabInfo, who: Claimant, session: AsyncSession | None = None
    ) -> bool:
        """Whether the visitor's phone is on the grab's waiting list (app/grabs/waitlist.py)."""
        if who.lead_id is None:
            return False
        async with self._session(session) as db:
            return await waitlist.on_list(db, who.lead_id, grab.tool_id)

    # Claiming.

    async def claim(self, slug: str, who: Claimant, key: str | None, ip: str) -> Claimed:
        """One tap of the grab button by an authorised visitor. Replays with the same
        Idempotency-Key get the first answer; RateLimited past the per-visitor/IP limits."""
        grab = await self.info(slug)
        if key is not None:
            if not _KEY.match(key):
                raise BadIdempotencyKey()
            earlier = await self.store.replay(grab, who, key)
            if earlier is not None:
                return Claimed(grab, earlier, replayed=True)
        if not takes_claims(grab, now()):
            if key is not None:
                await self.store.remember(grab, who, key, "not_open")
            return Claimed(grab, ClaimAnswer(result="not_open"))
        sold_out_until = self._caches.sold_out.get(grab.id, 0.0)
        if key is None and sold_out_until > time.monotonic():
            return Claimed(grab, ClaimAnswer(result="sold_out"))
        limits = self._limits(who, ip)
        if not self.store.limits_inline:
            await self._limit(limits)
        try:
            answer, replayed = await self.store.claim(grab, who, key, limits)
        except ClaimRateLimited as exc:
            raise GrabRateLimited(retry_after=exc.retry_after) from None
        except (OperationalError, SQLTimeoutError) as exc:
            raise GrabBusy(retry_after=1) from exc
        except IntegrityError:
            # The claim names a lead or visitor that is gone: the person deleted their data
            # and this process still had them cached. Nothing was claimed.
            self._drop_claimant(who.phone_hash, who.lead_id)
            raise ClaimantGone() from None
        if answer.result == "sold_out":
            self._caches.sold_out[grab.id] = time.monotonic() + SOLD_OUT_TTL
        elif answer.result == "won":
            self._caches.status.pop(grab.id, None)
            self.live.changed(("grab", grab.id))
        return Claimed(grab, answer, replayed=replayed)

    def _limits(self, who: Claimant, ip: str) -> list[tuple[str, int, int]]:
        settings = self.settings
        return [
            (tap_limit_key(who.visitor_id), settings.grab_visitor_per_minute, 60),
            (f"grab:ip:{ip}", settings.grab_ip_per_minute, 60),
        ]

    async def _limit(self, limits: list[tuple[str, int, int]]) -> None:
        for verdict in await self.limiter.hit_all(limits):
            if not verdict.allowed:
                raise GrabRateLimited(retry_after=verdict.retry_after)

    # Staff: create, edit, open and close.

    async def create(self, db: AsyncSession, data: GrabCreate, by: str = "") -> GrabInfo:
        """A published grab tool and its grab row; Conflict when the slug is taken."""
        return await create_grab(db, data, by)

    async def update(self, db: AsyncSession, slug: str, data: GrabUpdate) -> GrabInfo:
        """New settings; the stock is the new total and may not drop below what was won."""
        check_window(data.starts_at, data.ends_at)
        tool, grab = await load_grab(db, slug)
        if data.stock != grab.initial_stock:
            await self.store.restock(grab.id, data.stock, await db.connection())
            await db.refresh(grab)
        tool.title = data.title
        tool.draft = definition(data.title, data.offer)
        for name, value in settings_of(data).items():
            setattr(grab, name, value)
        await db.flush()
        self._forget(grab.id)
        return info_of(tool, grab)

    async def set_mode(self, db: AsyncSession, slug: str, mode: Mode) -> GrabInfo:
        """The host's override: "open" now, "closed" now, or back to the "schedule"."""
        tool, grab = await load_grab(db, slug)
        grab.mode = mode
        await db.flush()
        self._forget(grab.id)
        return info_of(tool, grab)

    def announce(self, grab_id: int) -> None:
        """After the staff transaction committed: every process drops its cached copy."""
        self._forget(grab_id)
        self.live.changed(("grab", grab_id), now=True)

    async def console(self, db: AsyncSession) -> list[tuple[GrabInfo, GrabStatus]]:
        """Every grab, newest first, with its live state (the host console)."""
        rows = await db.execute(
            select(Tool, Grab)
            .join(Grab, Grab.tool_id == Tool.id)
            .where(Tool.kind == "grab", Tool.status == "published")
            .order_by(Grab.id.desc())
            .limit(200)
        )
        infos = [info_of(tool, grab) for tool, grab in rows]
        return [(info, await self.status(info.slug, db)) for info in infos]

    async def edit_values(self, db: AsyncSession, slug: str) -> GrabInfo:
        tool, grab = await load_grab(db, slug)
        return info_of(tool, grab)

    # The invariants.

    async def check(self, slug: str) -> CheckReport:
        """The grab's invariants (app/grabs/invariants.py), once the Redis writer caught up."""
        return await check_grab(self.sessionmaker, self.store, slug)


def make_grabs(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker,
    redis: object | None,
    limiter: RateLimiter,
    live: LiveHub | None = None,
) -> Grabs:
    """The feature wired to Redis when there is one, to SQL alone otherwise; ``live`` is the
    app's one live-update hub (app/core/live.py), made here when not given."""
    from redis.asyncio import Redis

    store: ClaimStore
    if isinstance(redis, Redis):
        store = RedisClaimStore(redis, settings.redis_prefix, engine)
    else:
        store = SQLClaimStore(engine)
    if live is None:
        live = LiveHub(redis if isinstance(redis, Redis) else None, settings.redis_prefix)
    return Grabs(settings, engine, sessionmaker, store, limiter, live)
