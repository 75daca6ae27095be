"""A sold-out grab takes names for its next round (issue 12, item 5): the gate stays on the page
for a visitor without a phone, an authorised visitor joins the waiting list with one tap
(recorded as ``grab_waitlisted`` on the lead's timeline, in the request's transaction), is told
已加入候补, and joins once however often they tap, at the same moment too."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from app.core.state import part
from app.events.models import FunnelEvent
from app.events.schemas import EventContext
from app.events.service import Tracker
from app.grabs import waitlist
from app.settings import Settings
from app.tools.models import Tool
from tests.grab_support import Person, add_grab, cookie_header, make_people, open_grab
from tests.helpers import Browserish, soup
from tests.test_vouchers import request_edge


def people(client: Browserish, n: int, base: int = 0) -> list[Person]:
    settings = part(client.app, Settings)
    return client.run(make_people, settings, n, 1, base)  # type: ignore[no-any-return]


def as_visitor(client: Browserish, person: Person | None) -> None:
    client.raw.cookies.clear()
    if person is not None:
        client.raw.cookies.set("lk_vid", person.cookie)


def sell_out(client: Browserish, stock: int = 1) -> list[Person]:
    """A grab of ``stock`` units, all won; its winners."""
    client.run(add_grab, open_grab(stock=stock))
    winners = people(client, stock, base=900)
    for person in winners:
        client.raw.cookies.clear()
        won = client.raw.post(
            "/api/v1/grabs/flash/claim", headers={"Cookie": cookie_header(person)}
        )
        assert won.json()["result"] == "won"
    return winners


def entries(client: Browserish) -> list[tuple[int | None, int | None]]:
    """(lead, tool) of every waiting-list entry."""

    async def work(db: Any) -> list[tuple[int | None, int | None]]:
        rows = await db.execute(
            select(FunnelEvent.lead_id, FunnelEvent.tool_id).where(
                FunnelEvent.name == "grab_waitlisted"
            )
        )
        return [(lead, tool) for lead, tool in rows]

    return list(client.run(work))


def join(client: Browserish, html: Any) -> httpx.Response:
    form = html.select_one("form[action='/t/flash/waitlist']")
    assert form is not None, html.select_one("#grab-panel")
    token = html.find("meta", attrs={"name": "csrf-token"})["content"]
    return client.post(
        "/t/flash/waitlist", data={"_csrf_token": token}, headers={"HX-Request": "true"}
    )


def test_a_sold_out_grab_keeps_its_gate_with_the_waiting_list_note(client: Browserish) -> None:
    sell_out(client)
    as_visitor(client, None)
    page = client.get("/t/flash")
    assert page.status_code == 200
    html = soup(page)
    panel = html.find(id="grab-panel")
    assert panel["data-state"] == "sold_out"
    assert html.find(id="gate") is not None
    note = panel.select_one("[data-when='sold_out'].grab-gate-note")
    assert note is not None and not note.has_attr("hidden")
    assert "下一轮开抢时通知你" in note.get_text()
    assert panel.select_one("[data-when='scheduled open closed'].grab-gate-note").has_attr("hidden")


def test_join_once_confirmed_and_on_the_lead_timeline(client: Browserish) -> None:
    sell_out(client)
    (late,) = people(client, 1)
    as_visitor(client, late)
    html = soup(client.get("/t/flash"))
    button = html.select_one("[data-waitlist-join]")
    assert button is not None and "加入候补名单" in button.get_text()
    assert html.select_one("[data-waitlist-joined]") is None

    first = join(client, html)
    assert first.status_code == 200
    panel = soup(first)
    assert panel.select_one("#grab-panel") is not None and panel.select_one("html") is None
    assert "已加入候补" in panel.select_one("[data-waitlist-joined]").get_text()
    assert panel.select_one("[data-waitlist-join]") is None
    # A double tap (the same form again): told the same, recorded once.
    again = join(client, html)
    assert again.status_code == 200
    assert "已加入候补" in soup(again).select_one("[data-waitlist-joined]").get_text()
    tool_id = client.run(lambda db: db.scalar(select(Tool.id).where(Tool.slug == "flash")))
    lead_id = client.run(
        lambda db: db.scalar(
            select(func.min(FunnelEvent.lead_id)).where(FunnelEvent.name == "grab_waitlisted")
        )
    )
    assert entries(client) == [(lead_id, tool_id)]
    # The page, seen again, remembers.
    html = soup(client.get("/t/flash"))
    assert html.select_one("[data-waitlist-joined]") is not None
    assert html.select_one("[data-waitlist-join]") is None

    # Sales see it on the lead's page, labelled.
    client.make_staff("sam", "sales")
    client.raw.cookies.clear()
    client.login("sam")
    part_of = soup(client.get(f"/staff/leads/{lead_id}"))
    rows = part_of.select("#timeline tbody tr[data-event='grab_waitlisted']")
    assert len(rows) == 1
    assert "加入候补名单" in rows[0].get_text() and "限量抢购测试" in rows[0].get_text()


def test_no_waiting_list_while_units_are_left(client: Browserish) -> None:
    client.run(add_grab, open_grab(stock=3))
    (visitor,) = people(client, 1)
    as_visitor(client, visitor)
    html = soup(client.get("/t/flash"))
    form = html.select_one("form[action='/t/flash/waitlist']")
    assert form is None or form.has_attr("hidden")
    token = html.find("meta", attrs={"name": "csrf-token"})["content"]
    refused = client.post(
        "/t/flash/waitlist", data={"_csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 409
    assert soup(refused).select_one("#grab-panel .alert") is not None
    assert entries(client) == []


def test_joining_without_a_phone_gets_the_gate(client: Browserish) -> None:
    sell_out(client)
    as_visitor(client, None)
    html = soup(client.get("/t/flash"))
    token = html.find("meta", attrs={"name": "csrf-token"})["content"]
    refused = client.post(
        "/t/flash/waitlist", data={"_csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 401
    assert soup(refused).find(id="gate") is not None
    assert entries(client) == []
    assert client.post("/t/nope/waitlist", data={"_csrf_token": token}).status_code == 404


def test_two_taps_at_the_same_moment_join_once(client: Browserish) -> None:
    (person,) = people(client, 1)
    client.run(add_grab, open_grab(stock=1))
    ids = client.run(lambda db: db.scalar(select(Tool.id).where(Tool.slug == "flash")))

    async def lead_of(db: Any) -> int:
        from app.leads.models import Lead

        return int(await db.scalar(select(Lead.id).where(Lead.phone_hash == person.phone_hash)))

    lead_id = client.run(lead_of)
    ctx = EventContext(lead_id=lead_id, tool_id=ids)
    tracker = part(client.app, Tracker)

    async def tap() -> bool:
        async with request_edge(client.app) as db:
            return await waitlist.join(db, tracker, ctx)

    async def both() -> list[bool]:
        return list(await asyncio.gather(tap(), tap()))

    for _ in range(3):
        outcomes = client.raw.blocking_portal.call(both)
        assert sorted(outcomes) in ([False, True], [False, False])
    assert entries(client) == [(lead_id, ids)]
