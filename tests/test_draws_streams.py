"""Live streams of a draw across worker processes without Redis (issue 13; app/draws/public.py
``SharedStatus``): a process whose streams follow a draw reads the draw's version every half
second, so a change another process made — the host's tap, new entries — wakes its streams
within about a second instead of at their periodic refresh (up to 5 s)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.draws.models import Draw
from app.draws.public import shared
from tests.helpers import Browserish
from tests.test_draws import call, draws_of, host, make_draw


def test_a_change_from_another_process_wakes_the_streams_within_a_second(
    client: Browserish,
) -> None:
    draws = draws_of(client)
    if draws.entries is not None:
        pytest.skip("with Redis every process hears of every change (pub/sub)")
    make_draw(client)
    host(client, "open")

    async def draw_id(db: AsyncSession) -> int:
        return int(await db.scalar(select(Draw.id)) or 0)

    draw = client.run(draw_id)
    topic = ("draw", draw)

    async def elsewhere(db: AsyncSession) -> None:
        # What another worker's host action leaves: the draw's turn moved, nobody told here.
        await db.execute(update(Draw).values(turn=Draw.turn + 1))

    async def follow() -> tuple[float, float]:
        await shared(draws).status(draw, "live")  # a stream follows the draw: polling starts
        await asyncio.sleep(0.8)  # the poll has read the version at least once
        quiet = time.monotonic()
        await draws.live.wait(topic, 2.0)  # nothing changed: sleeps it out
        quiet = time.monotonic() - quiet
        waiting = asyncio.ensure_future(draws.live.wait(topic, 5.0))
        await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.to_thread(client.run, elsewhere)
        await waiting
        return quiet, time.monotonic() - started

    quiet, woken = call(client, follow)
    assert quiet >= 1.9  # no change, no wake-up
    assert woken < 1.5  # the other process's change, heard of by polling
