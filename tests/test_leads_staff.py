"""Staff lead views: the list (masked, attributed), one lead's page and timeline, the audited
"show number" action, and status/owner/notes updates."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.core.models import AuditEntry
from app.core.phone import display
from app.core.state import part
from app.demo.service import seed_tools
from app.events.service import Tracker
from app.leads.models import Lead
from app.staff.models import StaffUser
from tests.helpers import LINK_TO_LEAD, Browserish, soup, statements

LIVE_PHONE = "13812345678"
VIDEO_PHONE = "13987654321"


def flush(client: Browserish) -> None:
    client.raw.blocking_portal.call(part(client.app, Tracker).flush)


def become_lead(client: Browserish, link: str | None, phone: str | None, src: str = "") -> None:
    """A fresh visitor (own cookies) opens ``link`` (or the tool directly) and, with ``phone``,
    passes the SMS gate."""
    client.raw.cookies.clear()
    if link:
        assert client.get(f"/s/{link}", follow_redirects=False).status_code == 302
    page = client.get("/t/guide-demo", params={"src": src} if src else None)
    assert page.status_code == 200
    if phone is None:
        return
    sent = client.post("/api/v1/gate/code", json={"phone": phone, "consent": True})
    assert sent.status_code == 202, sent.text
    code = client.get("/dev/sms", params={"phone": phone}).json()["code"]
    verified = client.post("/api/v1/gate/verify", json={"phone": phone, "code": code})
    assert verified.status_code == 200, verified.text


@pytest.fixture
def two_leads(client: Browserish) -> dict[str, int]:
    """live01 (brand/live) → LIVE_PHONE, video01 (employee/video) → VIDEO_PHONE; then staff."""
    client.run(seed_tools)
    become_lead(client, "live01", LIVE_PHONE)
    become_lead(client, "video01", VIDEO_PHONE)
    flush(client)
    client.raw.cookies.clear()
    for username, role in (("mara", "marketer"), ("sam", "sales"), ("hana", "host")):
        client.make_staff(username, role)

    async def ids(db: Any) -> dict[str, int]:
        leads = (await db.execute(select(Lead).order_by(Lead.id))).scalars().all()
        return {"live": leads[0].id, "video": leads[1].id}

    return dict(client.run(ids))


def lead_audits(client: Browserish) -> list[tuple[str, str, str]]:
    """Audit entries about leads, oldest first: (action, target, actor)."""

    async def work(db: Any) -> list[tuple[str, str, str]]:
        found = await db.execute(
            select(AuditEntry.action, AuditEntry.target, AuditEntry.actor_name)
            .where(AuditEntry.action.like("lead.%"))
            .order_by(AuditEntry.id)
        )
        return [(action, target, actor) for action, target, actor in found]

    return list(client.run(work))


def login(client: Browserish, username: str) -> None:
    client.raw.cookies.clear()
    assert client.login(username).status_code == 303


def rows(page: Any) -> dict[str, Any]:
    return {
        row.select_one("td.phone").get_text(strip=True): row
        for row in soup(page).select("#leads-list tbody tr")
    }


def test_list_shows_masked_attributed_leads(client: Browserish, two_leads: dict[str, int]) -> None:
    login(client, "mara")
    page = client.get("/staff/leads")
    assert page.status_code == 200
    assert LIVE_PHONE not in page.text and VIDEO_PHONE not in page.text
    found = rows(page)
    assert list(found) == ["139****4321", "138****5678"]  # newest first
    live = found["138****5678"].get_text(" ", strip=True)
    assert "装修家·官方号" in live and "品牌号" in live and "直播" in live
    video = found["139****4321"].get_text(" ", strip=True)
    assert "设计师小林" in video and "员工号" in video and "短视频" in video
    assert "2026 装修避坑指南" in live  # tools used
    assert "新线索" in live  # status
    assert found["138****5678"].select_one("a")["href"] == f"/staff/leads/{two_leads['live']}"
    nav = soup(page).select_one("nav a[aria-current=page]")
    assert nav is not None and nav["href"] == "/staff/leads"


def test_unattributed_and_organic_sources(client: Browserish) -> None:
    client.run(seed_tools)
    become_lead(client, None, "13700000001", src="mystery9")
    become_lead(client, None, "13700000002")
    flush(client)
    client.raw.cookies.clear()
    client.make_staff("sam", "sales")
    login(client, "sam")
    found = rows(client.get("/staff/leads"))
    assert "未知渠道码：mystery9" in found["137****0001"].get_text(" ", strip=True)
    assert "自然流量" in found["137****0002"].get_text(" ", strip=True)


def test_filters(client: Browserish, two_leads: dict[str, int]) -> None:
    login(client, "sam")
    assert list(rows(client.get("/staff/leads", params={"channel": "live"}))) == ["138****5678"]
    assert list(rows(client.get("/staff/leads", params={"channel": "none"}))) == []
    assert list(rows(client.get("/staff/leads", params={"status": "won"}))) == []
    assert len(rows(client.get("/staff/leads", params={"tool": "guide-demo"}))) == 2
    assert rows(client.get("/staff/leads", params={"from": "2020-01-01", "to": "2020-01-02"})) == {}

    async def employee_account(db: Any) -> int:
        from app.links.models import Account

        return int(
            (await db.execute(select(Account.id).where(Account.kind == "employee"))).scalar_one()
        )

    account = client.run(employee_account)
    only = rows(client.get("/staff/leads", params={"account": str(account)}))
    assert list(only) == ["139****4321"]

    partial = client.get(
        "/staff/leads", params={"channel": "video"}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200
    assert "<html" not in partial.text and soup(partial).select_one("#leads-panel") is not None

    bad = client.get("/staff/leads", params={"from": "2026-02-30"})
    assert bad.status_code == 400
    assert "YYYY-MM-DD" in soup(bad).select_one(".alert").text
    assert client.get("/staff/leads", params={"status": "bogus"}).status_code == 400


def test_list_costs_a_fixed_number_of_queries(client: Browserish) -> None:
    client.run(seed_tools)
    client.make_staff("sam", "sales")

    def queries_for_list() -> int:
        with statements(client) as seen:
            assert client.get("/staff/leads").status_code == 200
        return len(seen)

    become_lead(client, "live01", "13700000011")
    flush(client)
    login(client, "sam")
    one = queries_for_list()
    for n, link in enumerate(("video01", "share01", "live01", None), start=12):
        become_lead(client, link, f"137000000{n}")
    flush(client)
    login(client, "sam")
    assert len(rows(client.get("/staff/leads"))) == 5
    assert queries_for_list() == one <= 8


def test_host_may_not_see_leads(client: Browserish, two_leads: dict[str, int]) -> None:
    login(client, "hana")
    assert client.get("/staff/leads").status_code == 403
    assert client.get(f"/staff/leads/{two_leads['live']}").status_code == 403
    client.raw.cookies.clear()
    anonymous = client.get("/staff/leads", follow_redirects=False)
    assert anonymous.status_code in (302, 303)


def test_lead_page_shows_the_whole_timeline(client: Browserish, two_leads: dict[str, int]) -> None:
    login(client, "mara")
    page = client.get(f"/staff/leads/{two_leads['live']}")
    assert page.status_code == 200
    assert LIVE_PHONE not in page.text
    html = soup(page)
    assert "138****5678" in html.select_one("#lead-phone").text
    assert html.select_one("#lead-phone form") is None  # marketers cannot reveal
    assert html.select_one("#lead-manage form") is None  # nor edit
    names = [row["data-event"] for row in html.select("#timeline tbody tr")]
    assert names[:6] == LINK_TO_LEAD
    first = html.select("#timeline tbody tr")[0].get_text(" ", strip=True)
    assert "打开了渠道链接" in first and "装修家·官方号" in first and "live01" in first
    viewed = html.select("#timeline tbody tr")[1].get_text(" ", strip=True)
    assert "浏览了工具" in viewed and "2026 装修避坑指南" in viewed
    consents = html.select(".consents tbody tr")
    assert len(consents) == 1 and "testclient" in consents[0].text
    assert client.get("/staff/leads/999999").status_code == 404


def test_sales_reveals_the_number_and_it_is_audited(
    client: Browserish, two_leads: dict[str, int]
) -> None:
    lead_id = two_leads["live"]
    login(client, "mara")
    token = client.csrf(f"/staff/leads/{lead_id}")
    denied = client.post(f"/staff/leads/{lead_id}/phone", headers={"x-csrftoken": token})
    assert denied.status_code == 403
    assert LIVE_PHONE not in denied.text

    login(client, "sam")
    page = client.get(f"/staff/leads/{lead_id}")
    assert LIVE_PHONE not in page.text
    assert soup(page).select_one("#lead-phone form[hx-post]") is not None
    assert client.post(f"/staff/leads/{lead_id}/phone").status_code == 403  # no CSRF token
    assert lead_audits(client) == []
    shown = client.post(
        f"/staff/leads/{lead_id}/phone",
        headers={"HX-Request": "true", "x-csrftoken": client.csrf(f"/staff/leads/{lead_id}")},
    )
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert "<html" not in shown.text
    full = soup(shown).select_one("a.phone.full")
    assert full is not None
    # Read back grouped, as everywhere else; dialled as the phone in a sales hand needs it.
    assert (
        full.text
        == display(f"+86{LIVE_PHONE}")
        == f"{LIVE_PHONE[:3]} {LIVE_PHONE[3:7]} {LIVE_PHONE[7:]}"
    )
    assert full["href"] == f"tel:{LIVE_PHONE}"

    assert lead_audits(client) == [("lead.reveal_phone", f"lead:{lead_id}", "sam")]
    # Still masked on the next ordinary view.
    assert LIVE_PHONE not in client.get(f"/staff/leads/{lead_id}").text


def test_status_owner_and_notes(client: Browserish, two_leads: dict[str, int]) -> None:
    lead_id = two_leads["live"]
    page = f"/staff/leads/{lead_id}"

    async def sales_id(db: Any) -> int:
        return int(
            (await db.execute(select(StaffUser.id).where(StaffUser.username == "sam"))).scalar_one()
        )

    async def host_id(db: Any) -> int:
        return int(
            (
                await db.execute(select(StaffUser.id).where(StaffUser.username == "hana"))
            ).scalar_one()
        )

    async def state(db: Any) -> tuple[str, int | None, str]:
        lead = await db.get(Lead, lead_id)
        return lead.status, lead.owner_id, lead.notes

    login(client, "mara")
    assert client.submit(page, {"status": "contacted"}, page=page).status_code == 403

    login(client, "sam")
    htmx = {"HX-Request": "true"}
    bogus = client.submit(page, {"status": "bogus", "note": "x"}, page=page, headers=htmx)
    assert bogus.status_code == 400
    assert "未知的线索状态" in soup(bogus).select_one(".alert").text
    assert client.run(state) == ("new", None, "")
    withdrawn = client.submit(page, {"status": "withdrawn"}, page=page, headers=htmx)
    assert withdrawn.status_code == 400
    wrong_owner = client.submit(
        page, {"status": "won", "owner_id": str(client.run(host_id))}, page=page, headers=htmx
    )
    assert wrong_owner.status_code == 400
    assert client.run(state) == ("new", None, "")
    assert lead_audits(client) == []

    sam = client.run(sales_id)
    done = client.submit(
        page,
        {"status": "contacted", "owner_id": str(sam), "note": "客户想要 90 平全包报价"},
        page=page,
        headers=htmx,
    )
    assert done.status_code == 200
    assert soup(done).select_one("#lead-manage .notes") is not None
    status, owner, notes = client.run(state)
    assert (status, owner) == ("contacted", sam)
    assert notes.endswith("客户想要 90 平全包报价")
    again = client.submit(
        page, {"status": "contacted", "owner_id": str(sam), "note": "第二条"}, page=page
    )
    assert again.status_code == 200 and "<html" in again.text
    assert client.run(state)[2].count("\n\n") == 1  # appended, not replaced

    actions = [action for action, _, _ in lead_audits(client)]
    assert actions == ["lead.status", "lead.owner", "lead.note", "lead.note"]
    listed = rows(client.get("/staff/leads"))
    assert "已联系" in listed["138****5678"].get_text()
