"""Live-stream lucky draws (issue 13; docs/draws.md): the service others build on.

``Draws`` (one per app, found by type: ``part(request, Draws)`` or the ``draws`` dependency)
is the whole API; no litestar here. Host and staff actions take the request's session and
flush (the edge commits); entering opens transactions of its own (the hot path, written
first and conditional, app/draws/entries.py). Every change is announced on the live hub
(app/core/live.py, topic ``("draw", id)``) once it has committed.

    create(db, DrawCreate, by)            -> DrawInfo     publish: seed + commitment
    update(db, slug, DrawCreate, by)      -> DrawInfo     edit (rules fixed once entered)
    open(db, slug) / schedule(db, slug)   -> DrawInfo     the host's override
    close(db, slug)                       -> DrawInfo     freeze the entrant list (idempotent)
    draw_tier(db, slug, tier)             -> DrawnTier    idempotent; a double tap draws once
    redraw(db, slug, tier)                -> list[int]    lapsed winners -> next reserves
    info(slug, db) / status(slug, db)     -> DrawInfo / DrawStatus (GET /api/v1/draws/{slug})
    read(slug, db)                        -> (DrawInfo, DrawStatus)  both, the draw read once
    entrant(public_id, db)                -> Entrant | None  (None: the gate first)
    enter(slug, who, EnterBody, ip)       -> EnterAnswer  idempotent; RateLimited
    mine(db, info, who)                   -> MyEntry | None  the visitor's entry and prizes
    claim(db, slug, who, ClaimBody)       -> list[ClaimAnswer]
    proof(db, slug)                       -> Proof        once every tier is drawn
    live.wait(("draw", id), seconds)      wake-ups for streams
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import now
from app.core.crypto import DataCipher
from app.core.errors import RateLimited
from app.core.i18n import N_
from app.core.live import LiveHub, Topic, stop_task
from app.core.ratelimit import RateLimiter
from app.core.schedule import starts_in
from app.db.uow import after_commit, after_rollback
from app.draws import drawing, entries
from app.draws.definition import DrawInfo, create_draw, info_of, load_draw, state_of
from app.draws.drand import DrandClient
from app.draws.editing import update_draw
from app.draws.entering import enter_redis
from app.draws.entries import Entrant, MyEntry, Prize
from app.draws.models import Draw, DrawEntry, DrawWinner
from app.draws.notify import Notice
from app.draws.proof import Proof
from app.draws.redis_entries import Limited, RedisEntries, limit_name
from app.draws.schemas import (
    ClaimAnswer,
    ClaimBody,
    DrawCreate,
    DrawnTier,
    DrawStatus,
    EnterAnswer,
    EnterBody,
    TierStatus,
)
from app.events.schemas import DrawRefused
from app.events.service import Tracker
from app.grabs.store.claims import tap_context
from app.settings import Settings

INFO_SECONDS = 1.0  # how long an entry may use a draw's settings read by an earlier one


class EntryRateLimited(
    RateLimited, message=N_("Too many attempts. Please wait a moment and try again.")
):
    """An entry tap past the visitor's or the IP's limit per minute."""


class EntryBusy(
    RateLimited, message=N_("Too many people are entering right now. Please tap again.")
):
    """The database could not take the entry in time (SQLite's single writer under a rush):
    nothing was entered, and the visitor is asked to tap again."""


class Draws:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker,
        limiter: RateLimiter,
        tracker: Tracker,
        live: LiveHub,
        drand: DrandClient | None = None,
        entries: RedisEntries | None = None,
    ) -> None:
        self.settings = settings
        # The winners' texts (app/draws/notify.py), queued in the draw's transaction.
        self.notice = Notice(DataCipher(settings))
        self.sessionmaker = sessionmaker
        self.limiter = limiter
        self.tracker = tracker
        self.live = live
        self.drand = drand
        # The Redis entry path (app/draws/redis_entries.py), with REDIS_URL; else SQL alone.
        self.entries = entries
        # Draws' settings as entries read them, by slug; dropped when the draw changes.
        self._infos: dict[str, tuple[float, DrawInfo]] = {}
        self._changes = 0
        self._tasks: set[asyncio.Task[None]] = set()
        live.listeners.append(self._forget)

    async def start(self) -> None:
        if self.entries is not None:
            await self.entries.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            await stop_task(task)
        if self.entries is not None:
            await self.entries.stop()

    # Announcing.

    def announce(self, db: AsyncSession, draw_id: int, *, now_: bool = True) -> None:
        """After the transaction commits, every open page of the draw hears of it (this
        process's caches at once)."""
        topic = ("draw", draw_id)

        def tell() -> None:
            self.live.forget_here(topic)
            self.live.changed(topic, now=now_)

        after_commit(db, tell)

    def _forget(self, topic: Topic) -> None:
        if topic[0] == "draw":
            self._changes += 1
            for slug in [s for s, (_, info) in self._infos.items() if info.id == topic[1]]:
                self._infos.pop(slug, None)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        self.spawn(work)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """``work`` as a task of the feature's own, outside any request (its SQL is never a
        request's second connection), cancelled when the app stops."""
        task = asyncio.get_running_loop().create_task(work, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Reading.

    async def info(self, slug: str, db: AsyncSession | None = None) -> DrawInfo:
        """The published draw at ``slug``; DrawNotFound."""
        async with self.sessionmaker() if db is None else _same(db) as session:
            return info_of(*await load_draw(session, slug, published=True))

    async def cached(self, slug: str) -> DrawInfo:
        """The published draw at ``slug`` as read at most ``INFO_SECONDS`` ago, and never from
        before a change this process heard of (the entry path; DrawNotFound)."""
        held = self._infos.get(slug)
        if held is not None and time.monotonic() - held[0] < INFO_SECONDS:
            return held[1]
        changes, at = self._changes, time.monotonic()
        info = await self.info(slug)
        if changes == self._changes:  # no change was heard of while reading
            self._infos[slug] = (at, info)
        return info

    async def status(self, slug: str, db: AsyncSession | None = None) -> DrawStatus:
        """The published draw's status (GET /api/v1/draws/{slug}); DrawNotFound."""
        return (await self.read(slug, db))[1]

    async def read(self, slug: str, db: AsyncSession | None = None) -> tuple[DrawInfo, DrawStatus]:
        """The published draw and its status, read together (for a page that shows both)."""
        async with self.sessionmaker() if db is None else _same(db) as session:
            info = await self.info(slug, session)
            return info, await self._status(session, info)

    async def _status(self, session: AsyncSession, info: DrawInfo) -> DrawStatus:
        count = await self._count(session, info)
        rows = (
            await session.execute(
                select(DrawWinner.tier, DrawEntry.phone_masked)
                .join(DrawEntry, DrawEntry.id == DrawWinner.entry_id)
                .where(
                    DrawWinner.draw_id == info.id,
                    DrawWinner.status.in_(("won", "claimed", "expired")),
                )
                .order_by(DrawWinner.tier, DrawWinner.reserve, DrawWinner.rank)
            )
        ).all()
        at = now()
        state = state_of(info, at)
        winners: dict[int, list[str]] = {}
        for tier, phone in rows:
            winners.setdefault(tier, []).append(phone)
        return DrawStatus(
            slug=info.slug,
            title=info.title,
            state=state,
            entrants=count,
            commitment=info.commitment,
            entrants_hash=info.entrants_hash or None,
            drand_round=info.drand_round,
            starts_at=info.starts_at,
            ends_at=info.ends_at,
            starts_in=starts_in(state, info.starts_at, at),
            one_win_per_phone=info.one_win_per_phone,
            referrals=info.referrals,
            tiers=[
                TierStatus(
                    name=t.name,
                    quantity=t.quantity,
                    drawn=n in info.drawn_tiers,
                    winners=winners.get(n, []),
                    undrawn=max(0, t.quantity - len(winners.get(n, [])))
                    if n in info.drawn_tiers
                    else 0,
                    voucher=t.voucher is not None,
                )
                for n, t in enumerate(info.tiers, start=1)
            ],
        )

    async def version(self, draw_id: int) -> tuple[int, int]:
        """What changes when the draw does: its host actions' turn and its tally (one cheap
        read, for a process that hears of no other process's changes: app/draws/public.py)."""
        async with self.sessionmaker() as db:
            row = (
                await db.execute(
                    select(Draw.turn, entries.count_query(draw_id).scalar_subquery()).where(
                        Draw.id == draw_id
                    )
                )
            ).first()
        return (int(row[0]), int(row[1])) if row is not None else (0, 0)

    async def entrant(
        self, public_id: str | None, db: AsyncSession | None = None
    ) -> Entrant | None:
        async with self.sessionmaker() if db is None else _same(db) as session:
            return await entries.entrant(session, public_id)

    async def mine(self, db: AsyncSession, info: DrawInfo, who: Entrant) -> MyEntry | None:
        if self.entries is not None and info.closed_at is None:
            # Open: Redis has every entry (SQL may not yet) and its latest chances; prizes
            # come after the close, when SQL has everything.
            found = await self.entries.mine(info.id, who.phone_hash, db)
            return None if found is None else MyEntry(code=found[0], chances=found[1], prizes=[])
        entry = await entries.entry_of(db, info.id, who.phone_hash)
        if entry is None:
            return None
        picks = (
            await db.execute(
                select(DrawWinner)
                .where(DrawWinner.entry_id == entry.id, DrawWinner.status != "reserve")
                .order_by(DrawWinner.tier)
            )
        ).scalars()
        at = now()
        prizes = [
            Prize(
                tier=p.tier,
                name=info.tiers[p.tier - 1].name,
                status=p.shown_status(at),
                claim_by=p.claim_by,
                voucher_code=p.voucher_code,
            )
            for p in picks
        ]
        return MyEntry(code=entry.code, chances=entry.chances, prizes=prizes)

    # Entering.

    async def enter(self, slug: str, who: Entrant, body: EnterBody, ip: str) -> EnterAnswer:
        """One tap of "enter" by an authorised visitor: entered, already_entered, not_open or
        not_eligible (with the reason). Idempotent per phone; EntryRateLimited past the limits
        (counted in the funnel), or EntryBusy when the database could not take it in time (not
        the visitor's doing, not counted) — nothing entered then."""
        try:
            return await self._enter(slug, who, body, ip)
        except (OperationalError, SQLTimeoutError) as exc:
            raise EntryBusy(retry_after=1) from exc

    async def _enter(self, slug: str, who: Entrant, body: EnterBody, ip: str) -> EnterAnswer:
        info = await self.cached(slug)
        settings = self.settings
        limits = [
            (
                limit_name(info.id, f"visitor:{who.visitor_id}"),
                settings.grab_visitor_per_minute,
                60,
            ),
            (limit_name(info.id, f"ip:{ip}"), settings.grab_ip_per_minute, 60),
        ]
        if self.entries is not None:
            try:
                return await enter_redis(self, self.entries, info, who, body, limits)
            except Limited as exc:
                raise EntryRateLimited(retry_after=exc.retry_after) from None
        for verdict in await self.limiter.hit_all(limits):
            if not verdict.allowed:
                # A tap refused past the limits is a funnel step too (docs/events.md).
                self.tracker.track_once(tap_context(info, who), DrawRefused(reason="rate_limited"))
                raise EntryRateLimited(retry_after=verdict.retry_after)
        at = now()
        ctx = tap_context(info, who)
        async with self.sessionmaker() as db:
            earlier = await entries.entry_of(db, info.id, who.phone_hash)
            if earlier is not None:
                return entries.answer_of(
                    "already_entered", info, earlier, await self._count(db, info)
                )
            if state_of(info, at) != "open":
                self.tracker.track_once(ctx, DrawRefused(reason="not_open"))
                return EnterAnswer(result="not_open", entrants=await self._count(db, info))
            reason = await entries.ineligible(db, info, who, body)
            if reason is not None:
                self.tracker.track_once(ctx, DrawRefused(reason=reason))
                return EnterAnswer(
                    result="not_eligible",
                    reason=reason,  # type: ignore[arg-type]
                    entrants=await self._count(db, info),
                )
            ref = await entries.referrer(db, info, who, body.ref)
        answer = await entries.write_entry(self.sessionmaker, self.tracker, info, who, ref, at)
        if answer.result == "entered":
            self.live.changed(("draw", info.id))  # throttled: one message per burst
        elif answer.result == "not_open":
            self.tracker.track_once(ctx, DrawRefused(reason="not_open"))
        return answer

    async def settle(self) -> None:
        """Every entry taken so far is in SQL (tests, the check): on SQL alone entries are
        written in the tap's own transaction; with Redis the writer catches up."""
        if self.entries is not None:
            await self.entries.settle()

    async def _count(self, db: AsyncSession, info: DrawInfo) -> int:
        """The count shown: frozen once closed, live before (Redis's, when it decides)."""
        if info.closed_at:
            return info.entrants_count
        if self.entries is not None:
            return await self.entries.count(info.id, db)
        return await entries.count(db, info.id)

    async def _seal(self, db: AsyncSession, slug: str, *, closing: bool) -> None:
        """Before the list is frozen (the host's close, or ``closing`` false: the first tier
        drawn after the schedule ended), with Redis: nothing enters any more, and every entry
        Redis took is written to SQL. Undone if the transaction does not commit."""
        store = self.entries
        if store is None:
            return
        info = await self.info(slug, db)
        if info.closed_at is not None or (not closing and state_of(info, now()) != "closed"):
            return
        after_rollback(db, lambda: self._later(store.unseal(info.id)))
        try:
            await store.seal(info.id)
        except TimeoutError as exc:
            raise EntryBusy(retry_after=1) from exc
        after_commit(db, lambda: self._later(store.sealed(info.id)))

    # Staff.

    async def create(self, db: AsyncSession, data: DrawCreate, by: str = "") -> DrawInfo:
        info = await create_draw(db, data, by)
        self.announce(db, info.id)
        return info

    async def update(self, db: AsyncSession, slug: str, data: DrawCreate, by: str = "") -> DrawInfo:
        """New settings for ``slug`` as far as the draw's stage allows (app/draws/editing.py);
        a change of the published rules publishes a new version of the tool."""
        info = await update_draw(db, slug, data, by)
        self.announce(db, info.id)
        return info

    async def open(self, db: AsyncSession, slug: str) -> DrawInfo:
        return await self._set_mode(db, slug, "open")

    async def schedule(self, db: AsyncSession, slug: str) -> DrawInfo:
        return await self._set_mode(db, slug, "schedule")

    async def _set_mode(self, db: AsyncSession, slug: str, mode: str) -> DrawInfo:
        info = await drawing.set_mode(db, slug, mode)
        store = self.entries
        if store is not None:  # a close that never committed leaves no seal behind
            after_commit(db, lambda: self._later(store.unseal(info.id)))
        self.announce(db, info.id)
        return info

    async def close(self, db: AsyncSession, slug: str) -> DrawInfo:
        await self._seal(db, slug, closing=True)
        info = await drawing.close(db, slug, now(), self._drand())
        self.announce(db, info.id)
        return info

    async def draw_tier(self, db: AsyncSession, slug: str, tier: int) -> DrawnTier:
        await self._seal(db, slug, closing=False)
        info, result = await drawing.draw_tier(
            db, self.tracker, slug, tier, now(), self._drand(), self.notice
        )
        if not result.replayed:
            self.announce(db, info.id)
        return result

    async def redraw(self, db: AsyncSession, slug: str, tier: int) -> list[int]:
        info, called = await drawing.redraw(db, self.tracker, slug, tier, now(), self.notice)
        self.announce(db, info.id)
        return called

    async def claim(
        self, db: AsyncSession, slug: str, who: Entrant, body: ClaimBody
    ) -> list[ClaimAnswer]:
        info = await self.info(slug, db)
        answers = await drawing.claim(db, self.tracker, info, who, body, now())
        self.announce(db, info.id)
        return answers

    async def proof(self, db: AsyncSession, slug: str) -> Proof:
        return await drawing.proof(db, slug)

    def _drand(self) -> DrandClient | None:
        if self.drand is None:
            self.drand = DrandClient.from_settings(self.settings)
        return self.drand


class _same:
    """The caller's session, as an async context manager that does not close it."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def __aenter__(self) -> AsyncSession:
        return self.db

    async def __aexit__(self, *_: object) -> None:
        return None
