"""The visitor's path costs what it must: a returning visitor's plain view of a tool reads its
facts from the process's cache (app/visitors/facts.py) and the calculator's blank form from
its per-version cache (app/calculators/views.py) — and neither is ever stale where it shows.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select, update

from app.asgi import create_app
from app.core.state import part
from app.demo.service import seed_tools
from app.events.schemas import EventContext
from app.events.service import Tracker
from app.links.models import TrackedLink
from app.settings import Settings
from app.tools import service as tools
from app.visitors.models import Visitor
from app.visitors.web import STAMP_COOKIE, VISITOR_COOKIE
from tests.helpers import Browserish, soup, statements

PHONE = "13612345678"


@pytest.fixture
def seeded(client: Browserish, monkeypatch: pytest.MonkeyPatch) -> Browserish:
    client.run(seed_tools)
    # The published tool stays cached for the test: only the visitor's own reads are counted.
    monkeypatch.setattr(tools, "PUBLISHED_TTL", 3600.0)
    return client


def viewed(client: Browserish) -> list[EventContext]:
    """The contexts of the tool views tracked from now on."""
    seen: list[EventContext] = []

    def listen(ctx: EventContext, tracked: Any, _at: Any) -> None:
        if tracked.__struct_config__.tag == "tool_viewed":
            seen.append(ctx)

    part(client.app, Tracker).listeners.append(listen)
    return seen


def stored(client: Browserish) -> Visitor:
    async def read(db: Any) -> Visitor:
        return (await db.execute(select(Visitor))).scalar_one()

    return client.run(read)


def authorise(client: Browserish) -> None:
    client.authorise(PHONE)


@pytest.mark.parametrize("slug", ["renovation", "guide-demo"])
def test_a_returning_visitors_plain_view_reads_nothing(seeded: Browserish, slug: str) -> None:
    assert seeded.get(f"/t/{slug}").status_code == 200  # a new visitor: stored, stamped
    assert seeded.cookies.get(STAMP_COOKIE)
    views = viewed(seeded)
    with statements(seeded) as seen:
        for _ in range(3):
            page = seeded.get(f"/t/{slug}")
            assert page.status_code == 200
            assert STAMP_COOKIE not in page.cookies  # nothing changed: the stamp holds
    assert seen == []
    visitor = stored(seeded)
    assert [(v.visitor_id, v.lead_id, v.platform) for v in views] == [
        (visitor.id, None, visitor.platform)
    ] * 3


def test_a_forged_or_missing_stamp_costs_a_read_and_changes_nothing(seeded: Browserish) -> None:
    """The stamp is no credential: the facts are found by the signed visitor cookie, and a
    stamp the process has not cached them under is one read of the row."""
    assert seeded.get("/t/guide-demo").status_code == 200
    for stamp in ("forged", None):
        if stamp is None:
            seeded.cookies.delete(STAMP_COOKIE)
        else:
            seeded.cookies.set(STAMP_COOKIE, stamp)
        with statements(seeded) as seen:
            page = seeded.get("/t/guide-demo")
        assert any("FROM visitor" in s for s in seen), seen
        assert soup(page).select_one("#gate") is not None  # still not authorised
        with statements(seeded) as seen:
            assert seeded.get("/t/guide-demo").status_code == 200
        assert seen == []  # cached again, under the stamp the browser now holds
    assert seeded.cookies.get(STAMP_COOKIE) not in (None, "forged")  # missing: a new one


def test_authorising_shows_at_once_and_a_link_view_is_attributed(seeded: Browserish) -> None:
    assert seeded.get("/t/guide-demo").status_code == 200
    stamp = seeded.cookies.get(STAMP_COOKIE)
    authorise(seeded)
    assert seeded.cookies.get(STAMP_COOKIE) != stamp  # the authorisation re-stamped it
    views = viewed(seeded)
    page = seeded.get("/t/guide-demo")
    assert soup(page).select_one("#result") is not None
    # A view through a tracked link writes its attribution, and the next plain view (from the
    # cache again) carries that link.
    seeded.get("/t/guide-demo?src=live01")
    with statements(seeded) as seen:
        assert seeded.get("/t/guide-demo").status_code == 200
    assert seen == []

    async def link_id(db: Any) -> int:
        return (
            await db.execute(select(TrackedLink.id).where(TrackedLink.code == "live01"))
        ).scalar_one()

    lead_id = stored(seeded).lead_id
    assert lead_id is not None
    assert [(v.lead_id, v.link_id) for v in views] == [
        (lead_id, None),
        (lead_id, seeded.run(link_id)),
        (lead_id, seeded.run(link_id)),
    ]


def test_a_change_made_elsewhere_in_the_process_is_read_again(seeded: Browserish) -> None:
    """Any session of the process that changes a visitor forgets its cached facts: one
    flushed row, or a bulk change (an erasure deletes visitors in bulk)."""
    assert seeded.get("/t/guide-demo").status_code == 200
    visitor = stored(seeded)

    async def away(db: Any) -> None:
        row = await db.get(Visitor, visitor.id)
        row.last_seen_at = row.last_seen_at.replace(year=2020)

    seeded.run(away)
    with statements(seeded) as seen:
        assert seeded.get("/t/guide-demo").status_code == 200
    assert any("FROM visitor" in s for s in seen)
    assert any(s.lstrip().upper().startswith("UPDATE VISITOR") for s in seen), seen
    assert stored(seeded).last_seen_at.year > 2020  # the long absence was written down

    async def bulk(db: Any) -> None:
        await db.execute(update(Visitor).values(user_agent="x"))

    seeded.run(bulk)
    with statements(seeded) as seen:
        assert seeded.get("/t/guide-demo").status_code == 200
    assert any("FROM visitor" in s for s in seen)


def test_authorising_in_another_process_shows_on_the_next_page_here(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two apps on one database stand for two worker processes, each with its own cache: the
    browser's new stamp, set by the process that authorised it, makes the other read again."""
    monkeypatch.setattr(tools, "PUBLISHED_TTL", 3600.0)
    base = "http://testserver.local"
    with (
        TestClient(app=create_app(settings), base_url=base) as one,
        TestClient(app=create_app(settings), base_url=base) as two,
    ):
        first, second = Browserish(one), Browserish(two)
        first.run(seed_tools)
        assert first.get("/t/guide-demo").status_code == 200
        assert soup(first.get("/t/guide-demo")).select_one("#gate") is not None  # cached here
        second.cookies.update(first.cookies)
        authorise(second)
        first.cookies.update(second.cookies)
        assert first.cookies.get(VISITOR_COOKIE) == second.cookies.get(VISITOR_COOKIE)
        page = soup(first.get("/t/guide-demo"))
        assert page.select_one("#gate") is None
        assert page.select_one("#result") is not None


def test_the_blank_form_is_each_requests_own(seeded: Browserish) -> None:
    """The calculator's unanswered form is rendered once per version and language; each page
    still carries its own CSRF token and its own language."""
    chinese = soup(seeded.get("/t/renovation"))
    again = soup(seeded.get("/t/renovation"))
    english = soup(seeded.get("/t/renovation?lang=en"))
    seeded.cookies.clear()  # another browser
    other = soup(seeded.get("/t/renovation"))
    tokens = []
    for page in (chinese, again, english, other):
        hidden = page.select("form.calc-form input[name=_csrf_token]")
        meta = page.find("meta", attrs={"name": "csrf-token"})
        assert len(hidden) == 1 and meta is not None
        assert hidden[0]["value"] == meta["content"]
        tokens.append(hidden[0]["value"])
    assert tokens[0] == tokens[1] == tokens[2] != tokens[3]  # one browser, then another
    assert str(chinese.select_one("form.calc-form")) == str(again.select_one("form.calc-form"))
    assert chinese.select_one("form.calc-form button").get_text(strip=True) == "开始测算"
    assert english.select_one("form.calc-form button").get_text(strip=True) == "Calculate"
