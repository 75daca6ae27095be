"""The outbox's sender: a task in every worker that claims due messages and delivers them.

A claim is one conditional UPDATE that sets the lease (``locked_until``, ``locked_by``) on a
small batch of due pending rows and counts the attempt; on PostgreSQL the batch is chosen
``FOR UPDATE SKIP LOCKED``, so senders in other workers take other rows instead of waiting;
on SQLite the database has one writer at a time and the UPDATE's own condition keeps a row
from being claimed twice (across processes too). Each claimed message goes to the handler
registered for its kind, with its id as the idempotency key. Then the row is marked sent, or
due again after a backoff, or dead after the last attempt. A worker that dies mid-send leaves
its lease to run out: the row is due again and another sender delivers it (at least once;
a handler that passes the message id on lets the receiver make that exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.core.clock import now
from app.db.engine import make_engine, make_sessionmaker
from app.outbox.models import DEAD, PENDING, SENT, OutboxMessage
from app.outbox.service import add_waker, remove_waker
from app.settings import Settings
from app.sms.base import scrub

log = logging.getLogger("leadkit.outbox")

# The longest wait between two attempts, whatever the attempt count.
MAX_BACKOFF = dt.timedelta(hours=6)


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed message as its handler gets it. ``id`` is the idempotency key: the same
    message delivered again (after a lease ran out) carries the same id."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first attempt


class Undeliverable(Exception):
    """Raised by a handler when trying again cannot help (the number cannot receive texts):
    the message is dead at once. Any other exception is retried."""


Handler = Callable[[Delivery], Awaitable[None]]


def backoff(attempt: int, base: float, spread: float) -> dt.timedelta:
    """The wait after failed attempt ``attempt`` (1, 2, …): ``base`` seconds doubled each
    time, times ``spread`` (a jitter factor in [0.8, 1.2), so that messages that failed
    together do not all come back together), at most MAX_BACKOFF."""
    seconds = base * 2 ** min(attempt - 1, 30) * spread
    return min(dt.timedelta(seconds=seconds), MAX_BACKOFF)


def short_error(exc: BaseException) -> str:
    """What a failure leaves in ``last_error``: its type and message, scrubbed of phone
    numbers and signed queries, at most 200 characters."""
    text = str(exc)
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _due(at: dt.datetime) -> Any:
    return and_(
        OutboxMessage.status == PENDING,
        OutboxMessage.next_attempt_at <= at,
        or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= at),
    )


class Outbox:
    """The sender of one process (the app's part, ``make_outbox``) and the registry of
    handlers by kind."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker,
        *,
        clock: Callable[[], dt.datetime] = now,
        name: str | None = None,
        engine: AsyncEngine | None = None,
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._engine = engine  # its own, closed by stop()
        self._clock = clock
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._handlers: dict[str, Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._random = random.Random()

    def register(self, kind: str, handler: Handler) -> None:
        """Deliver messages of ``kind`` with ``handler`` (one per kind)."""
        if kind in self._handlers:
            raise ValueError(f"an outbox handler for {kind!r} is already registered")
        self._handlers[kind] = handler

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    # --- the task ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        add_waker(self.wake)
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self) -> None:
        remove_waker(self.wake)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._engine is not None:
            await self._engine.dispose()
        # A send cut short here keeps its lease until it runs out; then it is sent again.

    def wake(self) -> None:
        """Look for due messages now (callable from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        poll = self._settings.outbox_poll_seconds
        while True:
            self._wake.clear()
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("outbox sender %s: a round failed; trying again", self.name)
                handled = 0
            if handled >= self._settings.outbox_batch:
                continue  # a full batch: more may be due at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)

    # --- one round --------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch of due messages and deliver them; how many were claimed."""
        batch = await self._claim()
        if batch:
            await asyncio.gather(*(self._deliver(message) for message in batch))
        return len(batch)

    async def _claim(self) -> list[Delivery]:
        at = self._clock()
        lease = dt.timedelta(seconds=self._settings.outbox_lease_seconds)
        chosen = (
            select(OutboxMessage.id)
            .where(_due(at), OutboxMessage.kind.in_(self.kinds))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(self._settings.outbox_batch)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
        )
        async with self._sessionmaker() as db:
            postgres = db.get_bind().dialect.name == "postgresql"
            # SQLite: a look first, so that an idle poll never takes the write lock.
            if not postgres and await db.scalar(chosen.limit(1)) is None:
                return []
        async with self._sessionmaker() as db, db.begin():
            if postgres:
                # Two statements: as a subquery of the UPDATE, a SKIP LOCKED choice may be
                # run again for each row and return more than the batch.
                ids = list(await db.scalars(chosen))
                if not ids:
                    return []
                target = OutboxMessage.id.in_(ids)
            else:
                target = OutboxMessage.id.in_(chosen.scalar_subquery())
            rows = await db.execute(
                update(OutboxMessage)
                .where(target, _due(at))
                .values(
                    locked_until=at + lease,
                    locked_by=self.name,
                    attempts=OutboxMessage.attempts + 1,
                )
                .returning(
                    OutboxMessage.id,
                    OutboxMessage.kind,
                    OutboxMessage.payload,
                    OutboxMessage.attempts,
                )
                .execution_options(synchronize_session=False)
            )
            claimed = [
                Delivery(id=row.id, kind=row.kind, payload=row.payload, attempt=row.attempts)
                for row in rows
            ]
        return sorted(claimed, key=lambda d: d.id)

    async def _deliver(self, message: Delivery) -> None:
        handler = self._handlers[message.kind]
        if message.attempt > self._settings.outbox_max_attempts:
            # Its last attempt's worker died mid-send: no further try.
            await self._finish(message, DEAD, "gave up: the last attempt did not finish")
            return
        try:
            async with asyncio.timeout(self._settings.outbox_lease_seconds / 2):
                await handler(message)
        except Undeliverable as exc:
            await self._finish(message, DEAD, short_error(exc))
        except Exception as exc:
            error = short_error(exc)
            if message.attempt >= self._settings.outbox_max_attempts:
                log.warning("outbox message %s (%s) is dead: %s", message.id, message.kind, error)
                await self._finish(message, DEAD, error)
            else:
                await self._finish(message, PENDING, error)
        else:
            await self._finish(message, SENT, "")

    async def _finish(self, message: Delivery, status: str, error: str) -> None:
        at = self._clock()
        values: dict[str, Any] = {"status": status, "locked_until": None, "locked_by": ""}
        where = [OutboxMessage.id == message.id, OutboxMessage.status == PENDING]
        if status == SENT:
            # Sent is sent, even if this sender's lease ran out meanwhile.
            values |= {"sent_at": at, "last_error": ""}
        else:
            # A failure only counts while the lease is still ours: another sender may have
            # taken the message over.
            where.append(OutboxMessage.locked_by == self.name)
            values["last_error"] = error
            if status == PENDING:
                spread = 0.8 + 0.4 * self._random.random()
                wait = backoff(message.attempt, self._settings.outbox_backoff_seconds, spread)
                values["next_attempt_at"] = at + wait
        async with self._sessionmaker() as db, db.begin():
            done = await db.execute(
                update(OutboxMessage)
                .where(*where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        if getattr(done, "rowcount", 1) == 0:
            log.warning(
                "outbox message %s: its lease passed to another sender before it was %s",
                message.id,
                status,
            )


def make_outbox(settings: Settings) -> Outbox:
    """The app's sender, on a small engine of its own: its polls never take a connection a
    request is waiting for (nor show among a request's statements)."""
    engine = make_engine(msgspec.structs.replace(settings, db_pool_size=2))
    return Outbox(settings, make_sessionmaker(engine), engine=engine)
