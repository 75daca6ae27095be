"""Limited-quantity grabs: create and edit, open and close, the state a visitor sees, and the
claim path (gate, idempotency, sold-out flag, rate limits, then the claim store).

The claim store decides; this module keeps the hot path short: a grab's settings and an
authorised visitor's phone hash are cached per process for a moment, and once a grab is sold
out an in-process flag answers without a round trip until something changes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from app.core.clock import CHINA_TZ
from app.core.errors import InvalidInput, NotFound, RateLimited
from app.core.i18n import N_
from app.core.ratelimit import RateLimiter
from app.gate.service import GateRequired
from app.grabs.live import LiveHub
from app.grabs.models import Grab, GrabClaim
from app.grabs.schemas import (
    IDEMPOTENCY_KEY,
    ClaimAnswer,
    GrabCreate,
    GrabForm,
    GrabStatus,
    GrabUpdate,
    Mode,
    State,
    Voucher,
)
from app.grabs.store import (
    Claimant,
    ClaimRateLimited,
    ClaimStore,
    GrabInfo,
    RedisClaimStore,
    is_tombstone,
    now,
    tap_limit_key,
    voucher,
)
from app.leads.models import Lead
from app.settings import Settings
from app.tools import service as tools
from app.tools.models import Tool
from app.visitors.models import Visitor

INFO_TTL = 2.0
CLAIMANT_TTL = 30.0
SOLD_OUT_TTL = 1.0
STATUS_TTL = 0.2
_CACHE_MAX = 100_000
_KEY = re.compile(IDEMPOTENCY_KEY)
_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


class GrabNotFound(NotFound):
    default_message = N_("This grab does not exist or is no longer available.")


class BadIdempotencyKey(InvalidInput):
    code = "bad_idempotency_key"
    default_message = N_("The Idempotency-Key header must be 1 to 64 printable characters.")


class GrabRateLimited(RateLimited):
    default_message = N_("Too many taps. Please wait a moment and try again.")


class ClaimantGone(GateRequired):
    """The claim named a lead or visitor that no longer exists: the person deleted their data
    while this process still had them cached. Nothing was claimed."""

    def __init__(self) -> None:
        super().__init__()
        # The claim API's 401 names its result, as when the visitor is not known at all.
        self.extra = {"result": "gate_required"}


class GrabBusy(RateLimited):
    """The database could not take the claim in time (SQLite's single writer under a rush):
    nothing was claimed, and the visitor is asked to tap again."""

    default_message = N_("Too many people are grabbing right now. Please tap again.")


def state_of(grab: GrabInfo, stock_left: int, at: dt.datetime) -> State:
    """sold_out beats everything; then the host's override; then the schedule."""
    if stock_left <= 0:
        return "sold_out"
    if grab.mode == "open":
        return "open"
    if grab.mode == "closed":
        return "closed"
    if grab.starts_at is None:
        return "closed"
    if at < grab.starts_at:
        return "scheduled"
    if grab.ends_at is not None and at >= grab.ends_at:
        return "closed"
    return "open"


def takes_claims(grab: GrabInfo, at: dt.datetime) -> bool:
    return state_of(grab, 1, at) == "open"


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _info(tool: Tool, grab: Grab) -> GrabInfo:
    return GrabInfo(
        id=grab.id,
        tool_id=tool.id,
        tool_version=tool.current_version or 1,
        slug=tool.slug,
        title=tool.title,
        offer=grab.offer,
        image_url=grab.image_url,
        initial_stock=grab.initial_stock,
        per_phone_limit=grab.per_phone_limit,
        starts_at=_aware(grab.starts_at),
        ends_at=_aware(grab.ends_at),
        mode=grab.mode,
        voucher_prefix=grab.voucher_prefix,
        voucher_valid_days=grab.voucher_valid_days,
        voucher_where=grab.voucher_where,
    )


def _check_window(starts_at: dt.datetime | None, ends_at: dt.datetime | None) -> None:
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(fields={name: "needs a time zone (e.g. +08:00 or Z)"})
    if starts_at and ends_at and ends_at <= starts_at:
        raise InvalidInput(
            N_("The end must come after the start."), fields={"ends_at": "before start"}
        )


def _definition(title: str, offer: str) -> dict[str, str]:
    return {"title": title, "offer": offer}


def parse_form(form: GrabForm, *, with_slug: bool) -> GrabCreate | GrabUpdate:
    """The staff form (strings; times in China time) → the API's typed body, or InvalidInput."""

    def when(raw: str, name: str) -> dt.datetime | None:
        text = raw.strip()
        if not text:
            return None
        try:
            return dt.datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)
        except ValueError:
            raise InvalidInput(fields={name: "not a date and time"}) from None

    def number(raw: str, name: str) -> int:
        try:
            return int(raw.strip())
        except ValueError:
            raise InvalidInput(fields={name: "not a whole number"}) from None

    values = {
        "title": form.title.strip(),
        "stock": number(form.stock, "stock"),
        "per_phone_limit": number(form.per_phone_limit, "per_phone_limit"),
        "starts_at": when(form.starts_at, "starts_at"),
        "ends_at": when(form.ends_at, "ends_at"),
        "offer": form.offer.replace("\r\n", "\n").strip(),
        "image_url": form.image_url.strip(),
        "voucher_prefix": form.voucher_prefix.strip().upper(),
        "voucher_valid_days": number(form.voucher_valid_days, "voucher_valid_days"),
        "voucher_where": form.voucher_where.replace("\r\n", "\n").strip(),
    }
    target: type[GrabCreate] | type[GrabUpdate] = GrabUpdate
    if with_slug:
        values["slug"] = form.slug.strip().lower()
        target = GrabCreate
    try:
        return msgspec.convert(values, target)
    except msgspec.ValidationError as exc:
        match = re.search(r"at `\$\.(\w+)`", str(exc))
        raise InvalidInput(fields={match.group(1) if match else "form": str(exc)}) from None


async def create_grab(db: AsyncSession, data: GrabCreate, by: str = "") -> GrabInfo:
    """A published grab tool and its grab row; Conflict when the slug is taken."""
    _check_window(data.starts_at, data.ends_at)
    tool = await tools.create_and_publish(
        db,
        slug=data.slug,
        kind="grab",
        title=data.title,
        definition=_definition(data.title, data.offer),
        by=by,
    )
    grab = Grab(
        tool_id=tool.id,
        offer=data.offer,
        image_url=data.image_url,
        initial_stock=data.stock,
        stock=data.stock,
        per_phone_limit=data.per_phone_limit,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        mode="schedule",
        voucher_prefix=data.voucher_prefix,
        voucher_valid_days=data.voucher_valid_days,
        voucher_where=data.voucher_where,
    )
    db.add(grab)
    await db.flush()
    return _info(tool, grab)


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


class Grabs:
    """The grabs feature with its collaborators: claim store, rate limiter, live hub."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker,
        store: ClaimStore,
        limiter: RateLimiter,
        live: LiveHub,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.store = store
        self.limiter = limiter
        self.live = live
        self._caches = _Caches()
        # (visitor, grab, what) -> until: repeated taps recorded once per window (routes).
        self.recent_taps: dict[tuple[int | None, int, str], float] = {}
        self._loading: dict[str, asyncio.Future[GrabInfo]] = {}
        live.listeners.append(self._forget)

    async def start(self) -> None:
        await self.store.start()
        await self.live.start()

    async def stop(self) -> None:
        await self.live.stop()
        await self.store.stop()

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
        info = _info(row[0], row[1])
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
            starts_in=max(0, int((grab.starts_at - at).total_seconds()) + 1)
            if state == "scheduled" and grab.starts_at
            else None,
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
        lets through is written void and anonymous, see RedisClaimStore._departed, or fails
        on the deleted lead's foreign key, see ``claim``.)"""
        self._drop_claimant(phone_hash, lead_id)
        ids = set(visitor_ids)
        for tap in [tap for tap in self.recent_taps if tap[0] in ids]:
            self.recent_taps.pop(tap, None)
        for visitor_id in ids:
            await self.limiter.reset(tap_limit_key(visitor_id))
        await self.store.forget(phone_hash)

    async def vouchers_of(
        self, grab: GrabInfo, phone_hash: str, session: AsyncSession | None = None
    ) -> list[Voucher]:
        """What this phone won in this grab, from the durable record."""
        async with self._session(session) as db:
            rows = await db.execute(
                select(GrabClaim.code, GrabClaim.n, GrabClaim.expires_at)
                .where(GrabClaim.grab_id == grab.id, GrabClaim.phone_hash == phone_hash)
                .order_by(GrabClaim.n)
            )
            return [voucher(grab, code, n, _aware(expires) or expires) for code, n, expires in rows]

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
            self.live.changed(grab.id)
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

    async def _load(self, db: AsyncSession, slug: str) -> tuple[Tool, Grab]:
        row = (
            await db.execute(
                select(Tool, Grab)
                .join(Grab, Grab.tool_id == Tool.id)
                .where(Tool.slug == slug, Tool.kind == "grab")
            )
        ).first()
        if row is None:
            raise GrabNotFound()
        return row[0], row[1]

    async def update(self, db: AsyncSession, slug: str, data: GrabUpdate) -> GrabInfo:
        """New settings; the stock is the new total and may not drop below what was won."""
        _check_window(data.starts_at, data.ends_at)
        tool, grab = await self._load(db, slug)
        if data.stock != grab.initial_stock:
            await self.store.restock(grab.id, data.stock, await db.connection())
            await db.refresh(grab)
        tool.title = data.title
        tool.draft = _definition(data.title, data.offer)
        grab.offer, grab.image_url = data.offer, data.image_url
        grab.per_phone_limit = data.per_phone_limit
        grab.starts_at, grab.ends_at = data.starts_at, data.ends_at
        grab.voucher_prefix = data.voucher_prefix
        grab.voucher_valid_days = data.voucher_valid_days
        grab.voucher_where = data.voucher_where
        await db.flush()
        self._forget(grab.id)
        return _info(tool, grab)

    async def set_mode(self, db: AsyncSession, slug: str, mode: Mode) -> GrabInfo:
        """The host's override: "open" now, "closed" now, or back to the "schedule"."""
        tool, grab = await self._load(db, slug)
        grab.mode = mode
        await db.flush()
        self._forget(grab.id)
        return _info(tool, grab)

    def announce(self, grab_id: int) -> None:
        """After the staff transaction committed: every process drops its cached copy."""
        self._forget(grab_id)
        self.live.changed(grab_id, now=True)

    async def console(self, db: AsyncSession) -> list[tuple[GrabInfo, GrabStatus]]:
        """Every grab, newest first, with its live state (the host console)."""
        rows = await db.execute(
            select(Tool, Grab)
            .join(Grab, Grab.tool_id == Tool.id)
            .where(Tool.kind == "grab", Tool.status == "published")
            .order_by(Grab.id.desc())
            .limit(200)
        )
        infos = [_info(tool, grab) for tool, grab in rows]
        return [(info, await self.status(info.slug, db)) for info in infos]

    async def edit_values(self, db: AsyncSession, slug: str) -> GrabInfo:
        tool, grab = await self._load(db, slug)
        return _info(tool, grab)

    # The invariants.

    async def check(self, slug: str) -> CheckReport:
        """won + remaining = initial (SQL, and Redis when used), SQL claims = Redis winners,
        no phone over its limit. Waits for the Redis writer to catch up first."""
        async with self.sessionmaker() as db:
            tool, grab = await self._load(db, slug)
        info = _info(tool, grab)
        store = self.store
        if isinstance(store, RedisClaimStore):
            await store.drain()
        async with self.sessionmaker() as db:
            grab_row = (await db.execute(select(Grab).where(Grab.id == info.id))).scalar_one()
            counts = dict(
                (
                    await db.execute(
                        select(GrabClaim.phone_hash, func.count())
                        .where(GrabClaim.grab_id == info.id)
                        .group_by(GrabClaim.phone_hash)
                    )
                ).all()
            )
        # Units of people who deleted their data are won units of nobody: each a tombstone in
        # SQL, one tally in Redis. They count in every sum, and are compared as a total.
        live = {h: n for h, n in counts.items() if not is_tombstone(h)}
        report = CheckReport(
            slug=slug,
            initial=grab_row.initial_stock,
            remaining=grab_row.stock,
            won=sum(counts.values()),
            phones=len(live),
            max_per_phone=max(live.values(), default=0),
            limit=grab_row.per_phone_limit,
            deleted=sum(counts.values()) - sum(live.values()),
        )
        if report.won + report.remaining != report.initial:
            report.problems.append(
                f"SQL: won {report.won} + remaining {report.remaining} != initial {report.initial}"
            )
        if report.max_per_phone > report.limit:
            report.problems.append(
                f"a phone holds {report.max_per_phone} units, over the limit of {report.limit}"
            )
        winners = await store.winners(info)
        if winners is not None:
            redis_left = await store.stock_left(info)
            redis_won = sum(winners.values())
            report.redis_remaining, report.redis_won = redis_left, redis_won
            if redis_won + redis_left != report.initial:
                report.problems.append(
                    f"Redis: won {redis_won} + remaining {redis_left} != initial {report.initial}"
                )
            live_winners = {h: n for h, n in winners.items() if not is_tombstone(h)}
            redis_deleted = redis_won - sum(live_winners.values())
            if live_winners != live or redis_deleted != report.deleted:
                report.problems.append(
                    f"SQL claims ({report.won} by {len(live)} phones, {report.deleted} deleted) "
                    f"differ from Redis winners ({redis_won} by {len(live_winners)} phones, "
                    f"{redis_deleted} deleted)"
                )
        return report


@dataclass(slots=True)
class CheckReport:
    slug: str
    initial: int
    remaining: int
    won: int
    phones: int
    max_per_phone: int
    limit: int
    deleted: int = 0  # units won by people who have since deleted their data
    redis_remaining: int | None = None
    redis_won: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def make_grabs(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker,
    redis: object | None,
    limiter: RateLimiter,
) -> Grabs:
    """The feature wired to Redis when there is one, to SQL alone otherwise."""
    from redis.asyncio import Redis

    from app.grabs.store import SQLClaimStore

    store: ClaimStore
    if isinstance(redis, Redis):
        store = RedisClaimStore(redis, settings.redis_prefix, engine)
        live = LiveHub(redis, settings.redis_prefix)
    else:
        store = SQLClaimStore(engine)
        live = LiveHub(None, settings.redis_prefix)
    return Grabs(settings, engine, sessionmaker, store, limiter, live)
