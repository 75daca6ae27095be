"""``Tracker``: the one way funnel events are recorded.

``track()`` buffers an event in memory; a background task writes the buffer in batches (at
least every LEADKIT_EVENTS_FLUSH_SECONDS, and on shutdown), so a page view costs no extra write
of its own. ``record()`` writes an outcome event (authorised, won, redeemed, …) in the
transaction of the outcome itself, so a crash loses neither without the other.
A lead's timeline is read through its visitors, so events buffered before the phone was
authorised still land on the lead's timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.events.models import FunnelEvent
from app.events.schemas import Event, EventContext
from app.visitors.facts import VisitorFacts
from app.visitors.models import Visitor

log = logging.getLogger("leadkit.events")
CHUNK = 500
# track_once: how long a visitor's repeat of an event is left out, and how many marks a
# process keeps before it starts again from none.
ONCE_WINDOW = 60.0
_ONCE_MAX = 100_000
Listener = Callable[[EventContext, Event, dt.datetime], None]


class Tracker:
    def __init__(
        self, engine: AsyncEngine, flush_seconds: float = 1.0, max_buffer: int = 200_000
    ) -> None:
        self._engine = engine
        self._flush_seconds = flush_seconds
        self._max_buffer = max_buffer
        self._buffer: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.listeners: list[Listener] = []
        # (visitor, tool, event as JSON) -> until when a repeat is left out (track_once).
        self._once: dict[tuple[int | None, int | None, bytes], float] = {}

    def track(self, ctx: EventContext, event: Event, at: dt.datetime | None = None) -> None:
        """Buffer ``event`` in context ``ctx``. Never blocks and never raises for I/O.

        Only for events that record no outcome: an outcome event goes through ``record``, in
        the outcome's own transaction."""
        if event.outcome:
            raise TypeError(f"{type(event).__name__} records an outcome: use Tracker.record")
        at = at or dt.datetime.now(dt.UTC)
        self._buffer.append(event_row(ctx, event, at))
        for listener in self.listeners:
            listener(ctx, event, at)
        if len(self._buffer) >= self._max_buffer:
            # A stalled database must not eat the process's memory: keep the newest events.
            dropped = len(self._buffer) - self._max_buffer // 2
            del self._buffer[:dropped]
            log.error("event buffer full: dropped %d oldest events", dropped)

    def track_once(self, ctx: EventContext, event: Event, window: float = ONCE_WINDOW) -> bool:
        """``track`` the event unless the same visitor already had the same event (name and
        properties) on the same tool within the last ``window`` seconds in this process.
        Returns whether it was recorded.

        The funnel counts distinct visitors per step, so a rush of repeats by one visitor (a
        thumb on the grab button, thousands of taps a second in all) is one row per window,
        not one per tap; repeats in another process are recorded there once more."""
        mark = (ctx.visitor_id, ctx.tool_id, msgspec.json.encode(event))
        at = time.monotonic()
        if self._once.get(mark, 0.0) > at:
            return False
        if len(self._once) >= _ONCE_MAX:
            self._once.clear()
        self._once[mark] = at + window
        self.track(ctx, event)
        return True

    def record(
        self, db: AsyncSession, ctx: EventContext, event: Event, at: dt.datetime | None = None
    ) -> None:
        """Write ``event`` in the transaction of ``db``: it commits (or rolls back) together
        with the outcome it records."""
        at = at or dt.datetime.now(dt.UTC)
        db.add(FunnelEvent(**event_row(ctx, event, at)))
        for listener in self.listeners:
            listener(ctx, event, at)

    def announce(self, ctx: EventContext, event: Event, at: dt.datetime) -> None:
        """Tell the listeners about an event written by someone else in its own transaction
        (a claim store writing a win together with the claim)."""
        for listener in self.listeners:
            listener(ctx, event, at)

    async def flush(self) -> int:
        """Write everything buffered so far, in short transactions of at most CHUNK rows so
        that neither the event loop nor SQLite's write lock is held for long; a chunk that
        fails goes back to the buffer and is retried on the next flush."""
        async with self._lock:
            batch, self._buffer = self._buffer, []
            written = 0
            for start in range(0, len(batch), CHUNK):
                chunk = batch[start : start + CHUNK]
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(insert(FunnelEvent), chunk)
                except Exception:
                    log.exception("could not write %d events; will retry", len(batch) - start)
                    self._buffer[:0] = batch[start:]
                    break
                written += len(chunk)
                await asyncio.sleep(0)  # let waiting requests run between chunks
            return written

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="leadkit-event-flusher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def forget(self, lead_id: int | None, visitors: Mapping[int, int]) -> None:
        """Anonymise the buffered events of a person whose data is being deleted, as the
        deletion does to the written ones: no lead, no props, and each of their visitor ids
        (the keys of ``visitors``) replaced by its stand-in. Waits for a flush under way, so
        no event of theirs is on its way to the database unseen. Their track_once marks go
        too."""
        for mark in [mark for mark in self._once if mark[0] in visitors]:
            self._once.pop(mark, None)
        async with self._lock:
            for row in self._buffer:
                if (lead_id is not None and row["lead_id"] == lead_id) or (
                    row["visitor_id"] in visitors
                ):
                    row["lead_id"] = None
                    row["visitor_id"] = visitors.get(row["visitor_id"], row["visitor_id"])
                    row["props"] = {}


def visitor_context(
    visitor: Visitor | VisitorFacts, tool_id: int | None = None, tool_version: int | None = None
) -> EventContext:
    """The event context of ``visitor`` (and the tool it is on, when it is on one)."""
    return EventContext(
        visitor_id=visitor.id,
        lead_id=visitor.lead_id,
        link_id=visitor.last_link_id,
        platform=visitor.platform,
        tool_id=tool_id,
        tool_version=tool_version,
    )


def event_row(ctx: EventContext, event: Event, at: dt.datetime) -> dict[str, Any]:
    """The ``funnel_event`` row for ``event`` in context ``ctx`` (for a bulk insert)."""
    props = msgspec.to_builtins(event)
    return {
        "at": at,
        "name": props.pop("name"),
        "tool_id": ctx.tool_id,
        "tool_version": ctx.tool_version,
        "visitor_id": ctx.visitor_id,
        "lead_id": ctx.lead_id,
        "link_id": ctx.link_id,
        "platform": ctx.platform,
        "props": props,
    }


async def timeline(db: AsyncSession, lead_id: int, limit: int = 500) -> Sequence[FunnelEvent]:
    """Every event of the lead, including those from before the phone was authorised."""
    visitor_ids = select(Visitor.id).where(Visitor.lead_id == lead_id)
    rows = await db.execute(
        select(FunnelEvent)
        .where(or_(FunnelEvent.lead_id == lead_id, FunnelEvent.visitor_id.in_(visitor_ids)))
        .order_by(FunnelEvent.at, FunnelEvent.id)
        .limit(limit)
    )
    return rows.scalars().all()
