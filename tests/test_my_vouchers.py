"""The visitor's side of vouchers (issue 12, item 4): each voucher shows its state wherever
its holder sees it — the grab page after winning and 我的券 (/me/vouchers) — with the QR code
only while it can be used; 我的券 lists every voucher of the visitor's phone, newest first,
in China time, without the phone number."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select

from app.core.clock import china_time
from app.core.ratelimit import MemoryRateLimiter
from app.core.state import part
from app.events.service import Tracker
from app.grabs.codes import display, new_code
from app.grabs.models import Grab, GrabClaim
from app.leads.models import Lead
from app.settings import Settings
from app.staff.models import StaffUser
from app.staff.schemas import Staff
from app.tools.models import Tool
from app.vouchers import service
from app.vouchers.schemas import VoucherForm
from tests.grab_support import Person, add_grab, make_people, open_grab
from tests.helpers import Browserish, soup
from tests.test_vouchers import request_edge

STORE = "徐汇旗舰店"
PHONE_DIGITS = re.compile(r"1[3-9]\d[\s*]*\d{4}[\s*]*\d{4}|\*{4}")


def people(client: Browserish, n: int, per_phone: int = 1, base: int = 0) -> list[Person]:
    settings = part(client.app, Settings)
    return client.run(make_people, settings, n, per_phone, base)  # type: ignore[no-any-return]


def as_visitor(client: Browserish, person: Person | None) -> None:
    client.raw.cookies.clear()
    if person is not None:
        client.raw.cookies.set("lk_vid", person.cookie)


def add_claim(
    client: Browserish,
    person: Person,
    *,
    slug: str = "flash",
    claimed_ago: dt.timedelta = dt.timedelta(0),
    expires_in: dt.timedelta = dt.timedelta(days=30),
    status: str = "issued",
    store: str = "",
) -> str:
    """A voucher of ``person``'s phone in grab ``slug``, written straight to the database."""

    async def work(db: Any) -> str:
        at = dt.datetime.now(dt.UTC)
        grab_id = (
            await db.execute(
                select(Grab.id).join(Tool, Tool.id == Grab.tool_id).where(Tool.slug == slug)
            )
        ).scalar_one()
        lead_id = (
            await db.execute(select(Lead.id).where(Lead.phone_hash == person.phone_hash))
        ).scalar_one()
        n = 1 + len(
            (await db.execute(select(GrabClaim.id).where(GrabClaim.grab_id == grab_id))).all()
        )
        code = new_code("LK")
        db.add(
            GrabClaim(
                grab_id=grab_id,
                phone_hash=person.phone_hash,
                n=n,
                lead_id=lead_id,
                claimed_at=at - claimed_ago,
                code=code,
                expires_at=at - claimed_ago + expires_in,
                status=status,
                redeemed_at=at - dt.timedelta(hours=1) if status == "redeemed" else None,
                redeemed_store=store,
            )
        )
        await db.flush()
        return code

    return str(client.run(work))


def redeem(client: Browserish, code: str, store: str = STORE) -> None:
    """A sales member redeems ``code`` at ``store``, as the redemption page does."""
    client.make_staff("till.sales", role="sales")
    staff_id = client.run(
        lambda db: db.scalar(select(StaffUser.id).where(StaffUser.username == "till.sales"))
    )
    who = Staff(id=staff_id, username="till.sales", display_name="小陈", role="sales")

    async def work() -> None:
        async with request_edge(client.app) as db:
            await service.redeem(
                db,
                MemoryRateLimiter(),
                part(client.app, Tracker),
                who,
                VoucherForm(code=code, store=store),
                "127.0.0.1",
                10,
            )

    client.raw.blocking_portal.call(work)


def cards(html: Any) -> list[dict[str, Any]]:
    """Each voucher card of a page: its state, code, stamp, QR and text."""
    return [
        {
            "state": card["data-voucher-state"],
            "code": card.select_one("[data-voucher-code]").get_text(strip=True),
            "stamp": card.select_one(".voucher-stamp").get_text(strip=True),
            "qr": card.select_one("img.voucher-qr") is not None,
            "text": card.get_text(" ", strip=True),
        }
        for card in html.select("[data-voucher]")
    ]


def test_no_visitor_no_vouchers_and_no_hint(client: Browserish) -> None:
    as_visitor(client, None)
    page = client.get("/me/vouchers")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = soup(page)
    assert html.h1.get_text(strip=True) == "我的券"
    assert "你还没有券" in html.get_text()
    assert "lk_mv" not in page.headers.get("set-cookie", "")
    assert html.select("[data-my-vouchers]") == []


def test_my_vouchers_lists_every_state_newest_first(client: Browserish) -> None:
    client.run(add_grab, open_grab(slug="flash", per_phone_limit=5))
    client.run(add_grab, open_grab(slug="other", title="另一个活动"))
    me, stranger = people(client, 2)
    issued = add_claim(client, me, claimed_ago=dt.timedelta(hours=1))
    redeemed = add_claim(client, me, claimed_ago=dt.timedelta(days=2))
    expired = add_claim(
        client, me, claimed_ago=dt.timedelta(days=40), expires_in=dt.timedelta(days=30)
    )
    void = add_claim(client, me, claimed_ago=dt.timedelta(days=50), status="void")
    elsewhere = add_claim(client, me, slug="other", claimed_ago=dt.timedelta(minutes=5))
    add_claim(client, stranger)  # someone else's: never shown
    redeem(client, redeemed)

    as_visitor(client, me)
    page = client.get("/me/vouchers")
    assert page.status_code == 200
    assert "lk_mv=1" in page.headers["set-cookie"]
    html = soup(page)
    found = cards(html)
    assert [c["code"] for c in found] == [
        display(code) for code in (elsewhere, issued, redeemed, expired, void)
    ]
    assert [c["state"] for c in found] == ["issued", "issued", "redeemed", "expired", "void"]
    assert [c["stamp"] for c in found] == ["可使用", "可使用", "已核销", "已过期", "已作废"]
    # The QR code only while the voucher can be used; the code of a used one is struck out.
    assert [c["qr"] for c in found] == [True, True, False, False, False]
    assert all(
        card.select_one("[data-voucher-code] s")
        for card in html.select(".voucher-redeemed, .voucher-expired, .voucher-void")
    )
    # When and where it was redeemed, in China time; when the expired one ran out.
    claim_row = client.run(
        lambda db: db.execute(select(GrabClaim).where(GrabClaim.code == redeemed))
    ).scalar_one()
    assert f"已于 {china_time(claim_row.redeemed_at)} 在{STORE}核销" in found[2]["text"]
    assert "有效期至" not in found[2]["text"]
    assert "已于" in found[3]["text"] and "过期" in found[3]["text"]
    assert "此券已作废" in found[4]["text"]
    assert "另一个活动" in found[0]["text"] and "限量抢购测试" in found[1]["text"]
    # No phone number on the page, not even masked.
    assert me.phone[3:] not in page.text and not PHONE_DIGITS.search(html.get_text())
    # From now on the header and footer of every visitor page link here.
    home = soup(client.get("/"))
    assert home.select_one("header [data-my-vouchers]")["href"] == "/me/vouchers"
    assert home.select_one("footer a[href='/me/vouchers']") is not None


def test_another_browser_of_the_same_phone_sees_the_same_vouchers(client: Browserish) -> None:
    client.run(add_grab, open_grab())
    first, second = people(client, 1, per_phone=2)
    code = add_claim(client, first)
    as_visitor(client, second)
    assert [c["code"] for c in cards(soup(client.get("/me/vouchers")))] == [display(code)]


def test_a_stale_hint_is_cleared(client: Browserish) -> None:
    (me,) = people(client, 1)
    as_visitor(client, me)
    client.raw.cookies.set("lk_mv", "1")
    page = client.get("/me/vouchers")
    assert re.search(r"lk_mv=\"?\"?;", page.headers["set-cookie"]), page.headers["set-cookie"]
    assert (
        "Max-Age=0" in page.headers["set-cookie"]
        or "max-age=0" in page.headers["set-cookie"].lower()
    )


def test_the_grab_page_shows_a_redeemed_voucher_as_redeemed(client: Browserish) -> None:
    client.run(add_grab, open_grab())
    (me,) = people(client, 1)
    as_visitor(client, me)
    html = soup(client.get("/t/flash"))
    token = html.find("meta", attrs={"name": "csrf-token"})["content"]
    key = html.select_one("input[name=idempotency_key]")["value"]
    won = client.post(
        "/t/flash/grab",
        data={"_csrf_token": token, "idempotency_key": key},
        headers={"HX-Request": "true"},
    )
    assert won.status_code == 200
    assert "lk_mv=1" in won.headers["set-cookie"]
    (card,) = cards(soup(won))
    assert (card["state"], card["stamp"], card["qr"]) == ("issued", "可使用", True)
    assert "有效期至" in card["text"]
    assert soup(won).select_one("#grab-panel a[href='/me/vouchers']") is not None
    code = card["code"].replace(" ", "")

    redeem(client, code)
    as_visitor(client, me)
    page = client.get("/t/flash")
    html = soup(page)
    (card,) = cards(html)
    assert (card["state"], card["stamp"], card["qr"]) == ("redeemed", "已核销", False)
    redeemed_at = client.run(
        lambda db: db.scalar(select(GrabClaim.redeemed_at).where(GrabClaim.code == code))
    )
    assert f"已于 {china_time(redeemed_at)} 在{STORE}核销" in card["text"]
    assert "有效期至" not in card["text"]
    assert html.select_one("[data-voucher] [data-voucher-code] s").get_text() == display(code)
    assert "lk_mv=1" in page.headers["set-cookie"]


def test_the_grab_page_shows_expired_and_void_vouchers_without_a_code_to_scan(
    client: Browserish,
) -> None:
    client.run(add_grab, open_grab(per_phone_limit=2))
    (me,) = people(client, 1)
    add_claim(client, me, claimed_ago=dt.timedelta(days=31), expires_in=dt.timedelta(days=30))
    add_claim(client, me, status="void")
    as_visitor(client, me)
    found = cards(soup(client.get("/t/flash")))
    assert sorted((c["state"], c["stamp"], c["qr"]) for c in found) == [
        ("expired", "已过期", False),
        ("void", "已作废", False),
    ]
