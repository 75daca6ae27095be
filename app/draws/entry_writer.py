"""The Redis entry path's writer: a task in every process that takes the entries the entry
script appended to the draws' streams and writes them to SQL in groups (the stream, its
consumer group and group commit: app/db/stream_writer.py, shared with the grabs' claims).

In one transaction per batch: the entries (insert on conflict do nothing, so a redelivered
entry changes nothing), then for the entries that were new — their referrers (``referred_by``)
and the chance a referral earned, the ``draw_entered`` funnel events, and the draws' tallies
(app/draws/models.py ``draw_tally``). A person deleted before their entry reached SQL is
written as the deletion leaves an entry already in SQL: without their lead and visitor."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.sql import upsert_insert
from app.db.stream_writer import Fields, StreamWriter
from app.draws.entries import raise_tally
from app.draws.models import DrawEntry
from app.events.models import FunnelEvent
from app.events.schemas import DrawEntered, EventContext
from app.events.service import event_row
from app.grabs.store.redis_writer import context_of, still_there

log = logging.getLogger("leadkit.draws")


class ReferrerMissing(RuntimeError):
    """A new entry names a referrer whose own entry is not in SQL yet (another writer holds
    it): the batch is written again later, when it is."""


class EntryWriter(StreamWriter):
    """Drains the draws' entry streams (those named in the set ``registry``) into SQL."""

    def __init__(self, redis: Redis, engine: AsyncEngine, registry: str) -> None:
        super().__init__(redis, registry=registry, log=log, name="draw-entry-writer")
        self._engine = engine

    async def write(self, entries: list[Fields]) -> None:
        rows: list[dict[str, Any]] = []
        contexts: list[EventContext] = []
        referrals: list[tuple[str, str]] = []  # (referrer's phone hash, outcome) per row
        for fields in entries:
            f = {k.decode(): v.decode() for k, v in fields.items()}
            contexts.append(context_of(f))
            rows.append(
                {
                    "draw_id": int(f["draw"]),
                    "phone_hash": f["phone"],
                    "phone_masked": f["masked"],
                    "lead_id": int(f["lead"]) or None,
                    "visitor_id": int(f["visitor"]) or None,
                    "code": f["code"],
                    "referred_by": None,
                    "chances": 1,
                    "created_at": dt.datetime.fromtimestamp(float(f["at"]), dt.UTC),
                }
            )
            referrals.append((f["referrer"], f["referral"]))
        if not rows:
            return
        async with self._engine.begin() as conn:
            await self._departed(conn, rows, contexts)
            # A redelivered entry (a writer died after writing, before acknowledging) inserts
            # nothing, and so records no second event, credit or count.
            inserted = {
                (draw_id, phone_hash): entry_id
                for draw_id, phone_hash, entry_id in await conn.execute(
                    upsert_insert(conn)(DrawEntry)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["draw_id", "phone_hash"])
                    .returning(DrawEntry.draw_id, DrawEntry.phone_hash, DrawEntry.id)
                )
            }
            new = [
                (row, ctx, ref)
                for row, ctx, ref in zip(rows, contexts, referrals, strict=True)
                if (row["draw_id"], row["phone_hash"]) in inserted
            ]
            await self._refer(conn, [(row, ref) for row, _, ref in new], inserted)
            if new:
                await conn.execute(
                    insert(FunnelEvent),
                    [
                        event_row(ctx, DrawEntered(referral=ref[1]), row["created_at"])
                        for row, ctx, ref in new
                    ],
                )
            for draw_id, n in Counter(row["draw_id"] for row, _, _ in new).items():
                await raise_tally(conn, draw_id, n)

    async def _refer(
        self,
        conn: AsyncConnection,
        new: list[tuple[dict[str, Any], tuple[str, str]]],
        inserted: dict[tuple[int, str], int],
    ) -> None:
        """The new entries' referrers, and one chance more for each referral that counted
        (the script decided it, the cap included)."""
        wanted: dict[int, set[str]] = defaultdict(set)
        for row, (referrer, _) in new:
            if referrer:
                wanted[row["draw_id"]].add(referrer)
        if not wanted:
            return
        ids: dict[tuple[int, str], int] = {}
        for draw_id, phones in wanted.items():
            found = await conn.execute(
                select(DrawEntry.phone_hash, DrawEntry.id).where(
                    DrawEntry.draw_id == draw_id, DrawEntry.phone_hash.in_(phones)
                )
            )
            ids.update({(draw_id, phone): entry_id for phone, entry_id in found})
        links: list[dict[str, int]] = []
        credits: list[dict[str, int]] = []
        for row, (referrer, outcome) in new:
            if not referrer:
                continue
            referrer_id = ids.get((row["draw_id"], referrer))
            if referrer_id is None:
                raise ReferrerMissing(f"draw {row['draw_id']}: a referrer is not written yet")
            links.append(
                {"entry": inserted[(row["draw_id"], row["phone_hash"])], "by": referrer_id}
            )
            if outcome == "counted":
                credits.append({"entry": referrer_id})
        # Referrers' rows in the order of their ids: two writers crediting the same referrers
        # lock them in one order, never each waiting for the other.
        credits.sort(key=lambda credit: credit["entry"])
        table: Any = DrawEntry.__table__
        await conn.execute(
            update(table)
            .where(table.c.id == bindparam("entry"))
            .values(referred_by=bindparam("by")),
            links,
        )
        if credits:
            await conn.execute(
                update(table)
                .where(table.c.id == bindparam("entry"))
                .values(chances=table.c.chances + 1),
                credits,
            )

    async def _departed(
        self, conn: AsyncConnection, rows: list[dict[str, Any]], contexts: list[EventContext]
    ) -> None:
        """Entries of a person deleted before they reached SQL: written without the lead and
        the visitor, as the deletion leaves an entry it finds in SQL (SET NULL)."""
        leads, visitors = await still_there(conn, rows)
        for i, row in enumerate(rows):
            if row["lead_id"] is not None and row["lead_id"] not in leads:
                row["lead_id"] = None
                contexts[i] = msgspec.structs.replace(contexts[i], lead_id=None)
            if row["visitor_id"] is not None and row["visitor_id"] not in visitors:
                row["visitor_id"] = None
                contexts[i] = msgspec.structs.replace(contexts[i], visitor_id=None)
