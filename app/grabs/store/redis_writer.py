"""The Redis claim store's writer: a task in every process that takes the wins the claim
script appended to the claim stream and writes them to SQL (insert on conflict do nothing, so
a redelivered entry changes nothing), then brings ``grab.stock`` level. Entries stay in the
stream, unacknowledged, until they are written; a writer that dies leaves them to another
(the stream's part, shared with the draws' entries: app/db/stream_writer.py)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.sql import upsert_insert
from app.db.stream_writer import StreamWriter
from app.events.models import FunnelEvent
from app.events.schemas import EventContext, GrabWon
from app.events.service import event_row
from app.grabs.models import Grab, GrabClaim
from app.grabs.store.claims import TOMBSTONE, tap_limit_key
from app.grabs.store.redis_scripts import redis_glob
from app.leads.models import Lead
from app.visitors.models import Visitor

log = logging.getLogger("leadkit.grabs")


def context_of(f: dict[str, str]) -> EventContext:
    """The funnel context a stream entry carries: ``visitor`` and ``lead`` ids, and ``ctx``,
    ``link|platform|tool|version`` (an entry without it is a browser's)."""
    link, platform, tool, version = (f.get("ctx") or "0|browser|0|0").split("|")
    return EventContext(
        visitor_id=int(f["visitor"]) or None,
        lead_id=int(f["lead"]) or None,
        link_id=int(link) or None,
        platform=platform,
        tool_id=int(tool) or None,
        tool_version=int(version) or None,
    )


async def still_there(conn: Any, rows: list[dict[str, Any]]) -> tuple[set[int], set[int]]:
    """Of the ``lead_id`` and ``visitor_id`` the rows name, those that still exist in SQL (a
    person deleted while their entries waited in a stream is no longer there)."""
    lead_ids = {row["lead_id"] for row in rows if row["lead_id"] is not None}
    visitor_ids = {row["visitor_id"] for row in rows if row["visitor_id"] is not None}
    leads: set[int] = set()
    if lead_ids:
        leads = set((await conn.execute(select(Lead.id).where(Lead.id.in_(lead_ids)))).scalars())
    visitors: set[int] = set()
    if visitor_ids:
        found = await conn.execute(select(Visitor.id).where(Visitor.id.in_(visitor_ids)))
        visitors = set(found.scalars())
    return leads, visitors


class ClaimWriter(StreamWriter):
    """Drains the claim stream ``stream`` into SQL (the stream, its consumer group and group
    commit: app/db/stream_writer.py); ``forget(grab id, phone hash)`` is the Redis side of
    forgetting a person (the store's), run for a claim of someone deleted before it reached
    SQL."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        engine: AsyncEngine,
        stream: str,
        forget: Callable[[int, str], Awaitable[None]],
    ) -> None:
        super().__init__(redis, streams=[stream], log=log, name="grab-claim-writer")
        self._prefix = prefix
        self._engine = engine
        self._forget = forget

    async def write(self, entries: list[dict[bytes, bytes]]) -> None:
        rows: list[dict[str, Any]] = []
        contexts: list[EventContext] = []
        for fields in entries:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            contexts.append(context_of(f))
            rows.append(
                {
                    "grab_id": int(f["grab"]),
                    "phone_hash": f["phone"],
                    "n": int(f["n"]),
                    "lead_id": int(f["lead"]) or None,
                    "visitor_id": int(f["visitor"]) or None,
                    "idempotency_key": f["key"] or None,
                    "claimed_at": dt.datetime.fromtimestamp(float(f["at"]), dt.UTC),
                    "code": f["code"],
                    "expires_at": dt.datetime.fromtimestamp(int(f["expires"]), dt.UTC),
                    "status": "issued",
                }
            )
        if not rows:
            return
        grab_ids = {row["grab_id"] for row in rows}
        async with self._engine.begin() as conn:
            departed = await self._departed(conn, rows, contexts)
            # A redelivered entry (a writer died after writing, before acknowledging) inserts
            # nothing, and so records no second win.
            inserted = {
                (grab_id, phone_hash, n)
                for grab_id, phone_hash, n in await conn.execute(
                    upsert_insert(conn)(GrabClaim)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["grab_id", "phone_hash", "n"])
                    .returning(GrabClaim.grab_id, GrabClaim.phone_hash, GrabClaim.n)
                )
            }
            won_events = [
                event_row(ctx, GrabWon(n=row["n"]), row["claimed_at"])
                for row, ctx in zip(rows, contexts, strict=True)
                if (row["grab_id"], row["phone_hash"], row["n"]) in inserted
            ]
            if won_events:
                await conn.execute(insert(FunnelEvent), won_events)
            won = (
                select(func.count())
                .where(GrabClaim.grab_id == Grab.id)
                .correlate(Grab)
                .scalar_subquery()
            )
            await conn.execute(
                update(Grab)
                .where(Grab.id.in_(grab_ids), Grab.initial_stock >= won)
                .values(stock=Grab.initial_stock - won)
            )
        # After the commit: the Redis side of a person deleted meanwhile, as the deletion does.
        for grab_id, phone_hash, visitor_id in departed:
            await self._forget(grab_id, phone_hash)
            if visitor_id is not None:  # the tap counter the claim script kept for it
                pattern = f"{redis_glob(self._prefix)}rl:{redis_glob(tap_limit_key(visitor_id))}:*"
                async for name in self._redis.scan_iter(match=pattern):
                    await self._redis.delete(name)

    async def _departed(
        self, conn: Any, rows: list[dict[str, Any]], contexts: list[EventContext]
    ) -> list[tuple[int, str, int | None]]:
        """Claims decided for a person whose data was deleted before they reached SQL (queued
        in the stream then, or tapped from a claimant another process still had cached):
        written as tombstones, void, naming nobody, so the unit stays counted and nothing of
        the person lands in SQL. A visitor that no longer exists is dropped from its row.
        Returns (grab id, phone hash, visitor id) of each such claim. A deletion committing
        between this look-up and the insert fails the insert on its foreign key; the batch is
        then retried and comes here again."""
        leads, visitors = await still_there(conn, rows)
        departed: list[tuple[int, str, int | None]] = []
        for i, row in enumerate(rows):
            if row["lead_id"] is not None and row["lead_id"] not in leads:
                departed.append((row["grab_id"], row["phone_hash"], row["visitor_id"]))
                row.update(
                    phone_hash=TOMBSTONE + row["code"],
                    n=1,
                    lead_id=None,
                    visitor_id=None,
                    idempotency_key=None,
                    status="void",
                )
                contexts[i] = msgspec.structs.replace(contexts[i], lead_id=None, visitor_id=None)
            elif row["visitor_id"] is not None and row["visitor_id"] not in visitors:
                row["visitor_id"] = None
                contexts[i] = msgspec.structs.replace(contexts[i], visitor_id=None)
        return departed
