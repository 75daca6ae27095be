"""Tracker.track_once: an event a visitor repeats (a thumb on the grab button) is recorded once
per visitor, tool and event (name and properties) per window in a process; a deletion forgets
the visitor's marks. On both backends, through the app's own tracker."""

from __future__ import annotations

import time

from sqlalchemy import select

from app.core.state import part
from app.db.engine import Storage
from app.events.models import FunnelEvent
from app.events.schemas import EventContext, GrabClicked, GrabRefused
from app.events.service import ONCE_WINDOW, Tracker
from tests.helpers import Browserish


def written(client: Browserish) -> list[tuple[int | None, int | None, str, dict[str, str]]]:
    """The funnel rows written so far: (visitor, tool, name, props), oldest first."""

    async def read() -> list[tuple[int | None, int | None, str, dict[str, str]]]:
        await part(client.app, Tracker).flush()
        async with part(client.app, Storage).sessionmaker() as db:
            rows = await db.execute(
                select(
                    FunnelEvent.visitor_id, FunnelEvent.tool_id, FunnelEvent.name, FunnelEvent.props
                ).order_by(FunnelEvent.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]

    return client.raw.blocking_portal.call(read)


def test_a_repeat_is_recorded_once_per_visitor_tool_and_event(client: Browserish) -> None:
    tracker = part(client.app, Tracker)
    one = EventContext(visitor_id=1, tool_id=7, tool_version=1)
    assert tracker.track_once(one, GrabClicked()) is True
    assert [tracker.track_once(one, GrabClicked()) for _ in range(50)] == [False] * 50
    # Another visitor, another tool, another event, other properties: each once.
    assert tracker.track_once(EventContext(visitor_id=2, tool_id=7), GrabClicked()) is True
    assert tracker.track_once(EventContext(visitor_id=1, tool_id=8), GrabClicked()) is True
    assert tracker.track_once(one, GrabRefused(reason="sold_out")) is True
    assert tracker.track_once(one, GrabRefused(reason="sold_out")) is False
    assert tracker.track_once(one, GrabRefused(reason="not_open")) is True
    assert written(client) == [
        (1, 7, "grab_clicked", {}),
        (2, 7, "grab_clicked", {}),
        (1, 8, "grab_clicked", {}),
        (1, 7, "grab_refused", {"reason": "sold_out"}),
        (1, 7, "grab_refused", {"reason": "not_open"}),
    ]


def test_a_repeat_after_the_window_is_recorded_again(client: Browserish) -> None:
    assert ONCE_WINDOW == 60.0  # the grab button's minute (docs/development.md)
    tracker = part(client.app, Tracker)
    ctx = EventContext(visitor_id=3, tool_id=7)
    assert tracker.track_once(ctx, GrabClicked(), window=0.2) is True
    assert tracker.track_once(ctx, GrabClicked(), window=0.2) is False
    time.sleep(0.25)
    assert tracker.track_once(ctx, GrabClicked(), window=0.2) is True
    assert tracker.track_once(ctx, GrabClicked(), window=0.2) is False
    assert [row[2] for row in written(client)] == ["grab_clicked", "grab_clicked"]


def test_listeners_hear_only_what_is_recorded(client: Browserish) -> None:
    tracker = part(client.app, Tracker)
    heard: list[str] = []
    tracker.listeners.append(lambda ctx, event, at: heard.append(type(event).__name__))
    ctx = EventContext(visitor_id=4, tool_id=7)
    for _ in range(3):
        tracker.track_once(ctx, GrabClicked())
    assert heard == ["GrabClicked"]


def test_forgetting_a_visitor_drops_its_marks_only(client: Browserish) -> None:
    tracker = part(client.app, Tracker)
    gone, stays = EventContext(visitor_id=5, tool_id=7), EventContext(visitor_id=6, tool_id=7)
    assert tracker.track_once(gone, GrabClicked()) and tracker.track_once(stays, GrabClicked())
    client.raw.blocking_portal.call(tracker.forget, None, {5: 99})
    # The deleted visitor starts afresh (a new person behind a new id would too); the other
    # visitor's repeat is still left out.
    assert tracker.track_once(gone, GrabClicked()) is True
    assert tracker.track_once(stays, GrabClicked()) is False
