"""The Redis entry path (issue 13, "Storage and scale"; app/draws/redis_entries.py), on
PostgreSQL + Redis: an entry is one script in Redis and no SQL write in the tap, the writer
brings the entries to SQL (a redelivered entry changes nothing), the draw's keys carry its hash
tag, a close waits for every entry Redis took — also entries racing it — and a Redis that lost
the draw loads it again from SQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import RateLimited
from app.core.state import part
from app.db.engine import Storage
from app.draws.entry_writer import ReferrerMissing
from app.draws.models import Draw, DrawEntry, draw_tally
from app.draws.redis_entries import RedisEntries
from app.draws.schemas import EnterBody
from app.events.models import FunnelEvent
from app.leads.models import Lead
from app.settings import Settings
from app.visitors.models import Visitor
from tests.helpers import Browserish, statements
from tests.test_draws import (
    call,
    count,
    draws_of,
    enter,
    host,
    make_draw,
    people,
    settle,
    who,
)


def store_of(client: Browserish) -> RedisEntries:
    store = draws_of(client).entries
    if store is None:
        pytest.skip("entries go through Redis only with REDIS_URL")
    return store


def draw_id(client: Browserish) -> int:
    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.max(Draw.id))) or 0)

    return client.run(work)  # type: ignore[no-any-return]


def sql_figures(client: Browserish) -> tuple[int, int, int, int]:
    """Entries, the tally, draw_entered events, and the frozen count, as SQL has them."""

    async def work(db: AsyncSession) -> tuple[int, int, int, int]:
        entries = await db.scalar(select(func.count()).select_from(DrawEntry))
        tally = await db.scalar(select(func.coalesce(func.sum(draw_tally.c.entrants), 0)))
        events = await db.scalar(select(func.count()).where(FunnelEvent.name == "draw_entered"))
        frozen = await db.scalar(select(func.max(Draw.entrants_count)))
        return int(entries or 0), int(tally or 0), int(events or 0), int(frozen or 0)

    return client.run(work)  # type: ignore[no-any-return]


def test_an_entry_is_decided_in_redis_and_written_by_the_writer(client: Browserish) -> None:
    store = store_of(client)
    make_draw(client, referrals=True)
    host(client, "open")
    alice, bob = people(client, 2)
    settle(client)
    with statements(client) as seen:
        first = enter(client, alice)
        again = enter(client, alice)
    assert (first.result, first.entrants, again.result) == ("entered", 1, "already_entered")
    assert again.code == first.code
    writes = [s for s in seen if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert writes == [], writes  # the tap wrote nothing to SQL: the writer does
    assert enter(client, bob, ref=first.code or "").result == "entered"
    settle(client)
    assert sql_figures(client)[:3] == (2, 2, 2)

    keys = call(client, lambda: _keys(client))
    draw = draw_id(client)
    mine = [k for k in keys if "draw" in k and "draws:streams" not in k]
    assert mine and all(f"{{draw:{draw}}}" in k for k in mine), mine
    assert call(client, lambda: store.count(draw)) == 2


async def _keys(client: Browserish) -> list[str]:
    redis = part(client.app, Storage).redis
    assert redis is not None
    prefix = part(client.app, Settings).redis_prefix
    return [k.decode() async for k in redis.scan_iter(match=f"{prefix}*")]


def test_a_redelivered_entry_changes_nothing(client: Browserish) -> None:
    store = store_of(client)
    make_draw(client)
    host(client, "open")
    (alice,) = people(client, 1)
    call(client, store.writer.stop)  # no writer in the background: the entries wait
    assert enter(client, alice).result == "entered"
    redis = part(client.app, Storage).redis
    assert redis is not None
    stream = store.stream(draw_id(client))
    (entry,) = call(client, lambda: redis.xrange(stream))
    call(client, lambda: store.writer.write([entry[1]]))
    call(client, lambda: store.writer.write([entry[1]]))  # written again: a redelivery
    assert sql_figures(client)[:3] == (1, 1, 1)
    call(client, store.writer.start)
    settle(client)
    assert sql_figures(client)[:3] == (1, 1, 1)


def test_the_close_waits_for_every_entry_redis_took(client: Browserish) -> None:
    store = store_of(client)
    make_draw(client)
    host(client, "open")
    crowd = people(client, 12)
    call(client, store.writer.stop)  # the entries stay in the stream until the close
    for person in crowd:
        assert enter(client, person).result == "entered"
    assert sql_figures(client)[0] == 0
    closed = host(client, "close")
    assert closed.entrants_count == 12
    assert sql_figures(client) == (12, 12, 12, 12)
    late = people(client, 1, base=300)[0]
    assert enter(client, late).result == "not_open"
    call(client, store.writer.start)
    assert count(client) == 12


def test_entries_racing_the_close_are_all_in_the_frozen_list(client: Browserish) -> None:
    store_of(client)
    make_draw(client)
    host(client, "open")
    crowd = [who(client, p) for p in people(client, 150)]
    draws = draws_of(client)
    sessionmaker = part(client.app, Storage).sessionmaker

    async def tap(i: int) -> str:
        while True:
            try:
                return (await draws.enter("live", crowd[i], EnterBody(), f"10.2.{i}.1")).result
            except RateLimited:
                await asyncio.sleep(0.05)

    async def close() -> Any:
        await asyncio.sleep(0.05)
        async with sessionmaker() as db, db.begin():
            return await draws.close(db, "live")

    async def race() -> tuple[list[str], Any]:
        *results, info = await asyncio.gather(*(tap(i) for i in range(150)), close())
        return list(results), info

    results, info = call(client, race)
    entered = results.count("entered")
    assert entered + results.count("not_open") == 150
    assert info.entrants_count == entered  # every entry answered "entered" is frozen
    settle(client)
    assert sql_figures(client) == (entered, entered, entered, entered)
    assert client.raw.get("/api/v1/draws/live").json()["entrants"] == entered


def test_a_redis_that_lost_the_draw_loads_it_from_sql(client: Browserish) -> None:
    store = store_of(client)
    make_draw(client, referrals=True, referral_cap=3)
    host(client, "open")
    (alice,) = people(client, 1)
    code = enter(client, alice).code
    bob, carol = people(client, 2, base=10)  # new phones: their referrals count
    assert code and enter(client, bob, ref=code).result == "entered"
    settle(client)
    redis = part(client.app, Storage).redis
    assert redis is not None
    draw = draw_id(client)
    for key in call(client, lambda: _keys(client)):
        if f"{{draw:{draw}}}" in key:
            call(client, lambda key=key: redis.delete(key))
    again = enter(client, alice)
    assert (again.result, again.code, again.chances, again.entrants) == (
        "already_entered",
        code,
        2,
        2,
    )
    assert enter(client, carol, ref=code).chances == 1
    assert enter(client, alice).chances == 3
    assert count(client) == 3
    assert call(client, lambda: store.count(draw)) == 3


def test_an_entry_of_someone_deleted_meanwhile_is_written_without_them(
    client: Browserish,
) -> None:
    store = store_of(client)
    make_draw(client)
    host(client, "open")
    alice, bob = people(client, 2)
    call(client, store.writer.stop)  # their entries wait in the stream
    assert enter(client, alice).result == enter(client, bob).result == "entered"
    gone = who(client, alice)

    async def delete_alice(db: AsyncSession) -> None:
        await db.execute(delete(Visitor).where(Visitor.id == gone.visitor_id))
        await db.execute(delete(Lead).where(Lead.id == gone.lead_id))

    client.run(delete_alice)
    call(client, store.writer.start)
    settle(client)

    async def rows(db: AsyncSession) -> list[tuple[Any, ...]]:
        found = await db.execute(
            select(DrawEntry.phone_hash, DrawEntry.lead_id, DrawEntry.visitor_id).order_by(
                DrawEntry.id
            )
        )
        return [tuple(row) for row in found]

    stored = client.run(rows)
    assert stored[0] == (alice.phone_hash, None, None)  # as SET NULL leaves an entry in SQL
    assert stored[1][0] == bob.phone_hash and stored[1][1] is not None
    assert sql_figures(client)[:3] == (2, 2, 2)


def test_a_referral_waits_for_its_referrer_to_be_written(client: Browserish) -> None:
    store = store_of(client)
    make_draw(client, referrals=True)
    host(client, "open")
    (alice,) = people(client, 1)
    call(client, store.writer.stop)
    code = enter(client, alice).code
    (bob,) = people(client, 1, base=10)
    assert code and enter(client, bob, ref=code).result == "entered"
    redis = part(client.app, Storage).redis
    assert redis is not None
    stream = store.stream(draw_id(client))
    first, second = call(client, lambda: redis.xrange(stream))
    with pytest.raises(ReferrerMissing):  # bob's entry alone: alice is not in SQL yet
        call(client, lambda: store.writer.write([second[1]]))
    call(client, lambda: store.writer.write([first[1], second[1]]))

    async def chances(db: AsyncSession) -> list[tuple[Any, ...]]:
        found = await db.execute(
            select(DrawEntry.id, DrawEntry.chances, DrawEntry.referred_by).order_by(DrawEntry.id)
        )
        return [tuple(row) for row in found]

    (a_id, a_chances, _), (_, b_chances, b_by) = client.run(chances)
    assert (a_chances, b_chances, b_by) == (2, 1, a_id)
    call(client, store.writer.start)
    settle(client)
    assert sql_figures(client)[:3] == (2, 2, 2)
