"""The Redis claim store's writer: a task in every process that takes the wins the claim
script appended to the claim stream and writes them to SQL (insert on conflict do nothing, so
a redelivered entry changes nothing), then brings ``grab.stock`` level. Entries stay in the
stream, unacknowledged, until they are written; a writer that dies leaves them to another."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.live import stop_task
from app.core.sql import upsert_insert
from app.events.models import FunnelEvent
from app.events.schemas import EventContext, GrabWon
from app.events.service import event_row
from app.grabs.models import Grab, GrabClaim
from app.grabs.store.claims import TOMBSTONE, tap_limit_key
from app.grabs.store.redis_scripts import redis_glob
from app.leads.models import Lead
from app.visitors.models import Visitor

log = logging.getLogger("leadkit.grabs")


class ClaimWriter:
    """Drains the claim stream ``stream`` into SQL; ``forget(grab id, phone hash)`` is the
    Redis side of forgetting a person (the store's), run for a claim of someone deleted
    before it reached SQL."""

    GROUP = "writers"
    BATCH = 500
    BATCH_PAUSE = 0.1  # seconds

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        engine: AsyncEngine,
        stream: str,
        forget: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._engine = engine
        self._stream = stream
        self._forget = forget
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def pending(self) -> int:
        """Stream entries not yet written to SQL (read or not)."""
        try:
            return int(await self._redis.xlen(self._stream))
        except ResponseError:
            return 0

    async def _ensure_group(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self._redis.xgroup_create(self._stream, self.GROUP, id="0", mkstream=True)

    async def start(self) -> None:
        await self._ensure_group()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="grab-claim-writer")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        # The last entries, best effort and bounded: what is left stays in the stream and the
        # next writer (any process) takes it over.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                written = await self._step(block_ms=1000)
                if 0 < written < self.BATCH:
                    # Group commit: during a rush wins arrive a few at a time; a short pause
                    # lets the next transaction carry hundreds of them instead of one or two.
                    # The entries stay in the stream, unacknowledged, until they are written.
                    await asyncio.sleep(self.BATCH_PAUSE)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or Redis hiccup: the entries stay pending
                log.exception("grab claim writer failed; retrying")
                await asyncio.sleep(1)

    async def drain(self) -> None:
        """Write whatever is in the stream now (tests, the check command, shutdown)."""
        await self._ensure_group()
        while await self._step(block_ms=None) > 0:
            pass

    async def _step(self, block_ms: int | None) -> int:
        # Entries another writer read but never acknowledged (it died) come back after 30 s.
        claimed: Any = await self._redis.xautoclaim(
            self._stream, self.GROUP, self._consumer, min_idle_time=30_000, count=self.BATCH
        )
        entries = list(claimed[1])
        mine: Any = await self._redis.xreadgroup(
            self.GROUP, self._consumer, {self._stream: "0"}, count=self.BATCH
        )
        for _, items in mine:
            entries += items
        if not entries:
            fresh: Any = await self._redis.xreadgroup(
                self.GROUP, self._consumer, {self._stream: ">"}, count=self.BATCH, block=block_ms
            )
            for _, items in fresh or []:
                entries += items
        if not entries:
            return 0
        await self.write([fields for _, fields in entries if fields])
        ids = [entry_id for entry_id, _ in entries]
        await self._redis.xack(self._stream, self.GROUP, *ids)
        await self._redis.xdel(self._stream, *ids)
        return len(ids)

    async def write(self, entries: list[dict[bytes, bytes]]) -> None:
        rows: list[dict[str, Any]] = []
        contexts: list[EventContext] = []
        for fields in entries:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            link, platform, tool, version = (f.get("ctx") or "0|browser|0|0").split("|")
            contexts.append(
                EventContext(
                    visitor_id=int(f["visitor"]) or None,
                    lead_id=int(f["lead"]) or None,
                    link_id=int(link) or None,
                    platform=platform,
                    tool_id=int(tool) or None,
                    tool_version=int(version) or None,
                )
            )
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
        lead_ids = {row["lead_id"] for row in rows if row["lead_id"] is not None}
        visitor_ids = {row["visitor_id"] for row in rows if row["visitor_id"] is not None}
        leads: set[int] = set()
        if lead_ids:
            found = await conn.execute(select(Lead.id).where(Lead.id.in_(lead_ids)))
            leads = set(found.scalars())
        visitors: set[int] = set()
        if visitor_ids:
            found = await conn.execute(select(Visitor.id).where(Visitor.id.in_(visitor_ids)))
            visitors = set(found.scalars())
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
