"""A shutdown never hangs: a part that does not stop is left behind and the rest stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.core.shutdown import stop_in_turn


def test_a_stuck_or_failing_part_is_left_behind_and_the_next_parts_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped: list[str] = []

    async def stubborn() -> None:
        # Swallows its first cancellation, as a part stuck in a network call may.
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)

    async def broken() -> None:
        raise RuntimeError("no connection")

    async def fine(name: str) -> None:
        stopped.append(name)

    async def run() -> list[str]:
        return await stop_in_turn(
            [
                ("first", lambda: fine("first")),
                ("stubborn", stubborn),
                ("broken", broken),
                ("last", lambda: fine("last")),
            ],
            seconds=0.2,
        )

    with caplog.at_level(logging.WARNING, logger="app.core.shutdown"):
        stuck = asyncio.run(asyncio.wait_for(run(), timeout=30))
    assert stuck == ["stubborn", "broken"]
    assert stopped == ["first", "last"]
    assert "stubborn did not stop within 0.2 s" in caplog.text
    assert "stopping broken failed" in caplog.text
