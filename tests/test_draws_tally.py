"""A draw's entrant count (issue 13, "Storage and scale"), on both backends: kept in the
draw's tally by the transaction that writes the entries, never by counting every entry; the
count shown is live while the entries are open and frozen at the close; `leadkit draws check`
compares the tally with the entries stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.migrate import upgrade
from app.draws.models import draw_tally
from tests.helpers import Browserish, statements
from tests.test_draws import count, enter, host, make_draw, people, settle
from tests.test_draws_check import check, lines


def tally(client: Browserish) -> int:
    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.sum(draw_tally.c.entrants))) or 0)

    return client.run(work)  # type: ignore[no-any-return]


def test_an_entry_raises_the_tally_and_never_counts_every_entry(client: Browserish) -> None:
    make_draw(client)
    host(client, "open")
    crowd = people(client, 30)
    for person in crowd[:29]:
        assert enter(client, person).result == "entered"
    with statements(client) as seen:
        last = enter(client, crowd[29])
        again = enter(client, crowd[0])
    assert (last.result, last.entrants) == ("entered", 30)
    assert (again.result, again.entrants) == ("already_entered", 30)
    counted = [s for s in seen if "count(" in s.lower() and "draw_entry" in s]
    assert counted == [], counted
    settle(client)
    assert tally(client) == count(client) == 30
    assert client.raw.get("/api/v1/draws/live").json()["entrants"] == 30


def test_the_count_is_frozen_at_the_close_and_the_check_compares_the_tally(
    client: Browserish,
) -> None:
    make_draw(client)
    host(client, "open")
    for person in people(client, 3):
        assert enter(client, person).result == "entered"
    settle(client)

    async def one_more(db: AsyncSession) -> None:
        first = select(func.min(draw_tally.c.slot)).scalar_subquery()
        await db.execute(
            update(draw_tally)
            .where(draw_tally.c.slot == first)
            .values(entrants=draw_tally.c.entrants + 1)
        )

    client.run(one_more)  # the tally says one entrant more than the entries stored
    wrong = check(client)
    assert wrong.exit_code == 1, wrong.output
    assert lines(wrong)["entrants"].startswith("MISMATCH (SQL 3")
    assert "the draw shows 4 (live count)" in lines(wrong)["entrants"]
    host(client, "close")
    shown = client.raw.get("/api/v1/draws/live").json()["entrants"]
    assert shown == 3  # frozen at the close: the entries themselves, counted once
    client.run(one_more)
    assert client.raw.get("/api/v1/draws/live").json()["entrants"] == 3
    assert lines(check(client))["entrants"].startswith("ok (SQL 3")


def test_the_migration_fills_the_tally_from_the_entries_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "before.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0009")
    now = "2026-12-01 12:00:00.000000"
    with sqlite3.connect(path) as db:
        for draw_id, entries in ((1, 3), (2, 0), (3, 2)):
            db.execute(
                "INSERT INTO draw (id, tool_id, description, image_url, tiers, mode, "
                "requires_tool, passphrase, one_win_per_phone, claim_hours, referrals, "
                "referral_cap, use_drand, seed, commitment, entrants_hash, entrants_count, "
                "drawn_tiers, turn, created_at, updated_at) VALUES (?, ?, '', '', '[]', "
                "'open', '', '', 1, 48, 0, 5, 0, ?, '', '', 0, '[]', 0, ?, ?)",
                (draw_id, draw_id, b"\0" * 32, now, now),
            )
            for n in range(entries):
                db.execute(
                    "INSERT INTO draw_entry (draw_id, phone_hash, phone_masked, code, chances, "
                    "created_at) VALUES (?, ?, '', ?, 1, ?)",
                    (draw_id, f"phone-{draw_id}-{n}", f"C{draw_id}{n}", now),
                )
    upgrade(url)
    with sqlite3.connect(path) as db:
        tallies = db.execute(
            "SELECT draw_id, SUM(entrants) FROM draw_tally GROUP BY draw_id ORDER BY draw_id"
        ).fetchall()
    assert tallies == [(1, 3), (3, 2)]  # a draw without entries needs no row: its sum is 0
