"""POST /api/v1/events: client-side steps, validated, rate limited, all or nothing."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.core.state import part, put
from app.demo.service import seed_tools
from app.events.schemas import EVENT_NAMES
from app.events.service import Tracker
from app.settings import Settings
from tests.helpers import Browserish


@pytest.fixture
def visitor(client: Browserish) -> Browserish:
    client.run(seed_tools)
    client.get("/t/guide-demo")
    return client


def flushed(client: Browserish) -> int:
    client.raw.blocking_portal.call(part(client.app, Tracker).flush)
    return client.count("funnel_event")


def batch(*events: dict[str, Any], tool: str = "guide-demo") -> dict[str, Any]:
    return {"events": [{"event": e, "tool": tool} for e in events]}


def test_client_steps_are_recorded(visitor: Browserish) -> None:
    before = flushed(visitor)
    response = visitor.post(
        "/api/v1/events",
        json=batch(
            {"name": "step_started", "step": "area"}, {"name": "shared", "target": "wechat"}
        ),
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 2}
    assert flushed(visitor) == before + 2


@pytest.mark.parametrize(
    "body",
    [
        batch({"name": "lead_created"}),  # server-only name
        batch({"name": "no_such_event"}),  # unknown name
        batch({"step": "area"}),  # no name
        batch({"name": "step_started", "step": "x" * 65}),  # oversized field
        batch({"name": "step_started", "step": 5}),  # wrong type
        {"events": []},  # empty batch
        {"events": [{"event": {"name": "shared"}}] * 101},  # too many
        {"nope": 1},
        [1, 2, 3],
    ],
)
def test_bad_batches_are_refused_whole(visitor: Browserish, body: Any) -> None:
    before = flushed(visitor)
    response = visitor.post("/api/v1/events", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert flushed(visitor) == before


def test_malformed_and_oversized_bodies(visitor: Browserish) -> None:
    before = flushed(visitor)
    broken = visitor.post(
        "/api/v1/events", content=b'{"events": [', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    limit = part(visitor.app, Settings).max_body_bytes
    huge = visitor.post(
        "/api/v1/events",
        content=b"[" + b" " * limit + b"]",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert flushed(visitor) == before


def test_unknown_tool_refuses_the_batch(visitor: Browserish) -> None:
    before = flushed(visitor)
    response = visitor.post("/api/v1/events", json=batch({"name": "shared"}, tool="nope"))
    assert response.status_code == 400
    assert flushed(visitor) == before


def test_needs_a_visitor_cookie(client: Browserish) -> None:
    client.run(seed_tools)
    response = client.post("/api/v1/events", json=batch({"name": "shared"}))
    assert response.status_code == 400
    assert client.count("visitor") == 0


def test_rate_limited_per_ip(visitor: Browserish) -> None:
    settings = part(visitor.app, Settings)
    limit = settings.events_ip_per_minute
    put(visitor.app.state, Settings, msgspec.structs.replace(settings, events_ip_per_minute=3))
    codes = [
        visitor.post("/api/v1/events", json=batch({"name": "shared"})).status_code for _ in range(5)
    ]
    assert codes == [202, 202, 202, 429, 429]
    assert limit > 3


def test_event_names_are_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "events.md").read_text()
    for name in EVENT_NAMES:
        assert f"`{name}`" in doc, name
