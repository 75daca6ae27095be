"""The visitor's side of grabs at phone size (issue 12, items 4 and 5).

4. A voucher shows its state to its holder: once staff redeem it, the grab page no longer
   shows a QR code and "valid until" but 已核销 with when and at which store, and 我的券
   (linked from the grab page and the site header) lists it the same way.
5. A sold-out grab is not a dead end: a visitor who missed it leaves their number through the
   gate and joins the waiting list for the next round (once, however often they tap), told
   已加入候补; sales see it on the lead's timeline.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.core.clock import CHINA_TZ
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab
from tests.e2e.steps import pass_gate, staff_with_open_grab
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots/helper-item45")
WINNER = "13600004501"
LATE_WINNER = "13600004502"
LATECOMER = "13600004503"
STORE = "徐汇体验店"


def shot(tab: Tab, name: str) -> None:
    tab.screenshot(name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def win(tab: Tab, base: str, slug: str, phone: str) -> str:
    """Open the grab, pass the gate, tap the button: the code won."""
    tab.page.goto(f"{base}/t/{slug}", wait_until="load")  # SSE: never network-idle
    pass_gate(tab, base, phone)
    assert tab.page.locator("#gate").count() == 0
    tab.page.locator("[data-grab-button]").click()
    code = tab.page.locator("[data-voucher-code]")
    expect(code).to_have_text(re.compile(r"^H [0-9A-Z]{4} [0-9A-Z]{4} [0-9A-Z]{4}$"))
    return code.inner_text()


def redeem_at_the_store(counter: Tab, base: str, code: str) -> None:
    counter.goto(f"{base}/staff/vouchers")
    cp = counter.page
    cp.wait_for_function("() => window.htmx && window.leadkitVouchers")
    cp.locator("#voucher-store").fill(STORE)
    cp.locator("#voucher-code").fill(code)
    cp.locator("#voucher-lookup").click()
    cp.locator("#voucher-confirm").click()
    cp.locator("#voucher-result.ok").wait_for()


def test_a_redeemed_voucher_shows_as_redeemed_to_its_holder(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    base = live_server
    staff = staff_with_open_grab(open_tab, base, "e2e-held", 3, "限量 3 份：免费量房")

    tab = open_tab("phone")
    page = tab.page
    code = win(tab, base, "e2e-held", WINNER)
    card = page.locator("[data-voucher]")
    expect(card).to_have_attribute("data-voucher-state", "issued")
    expect(card.locator(".voucher-stamp")).to_have_text("可使用")
    assert page.locator("img.voucher-qr").is_visible()
    # The grab page leads to 我的券.
    assert page.locator("#grab-panel a[href='/me/vouchers']").is_visible()
    no_horizontal_scroll(tab)
    shot(tab, "held-won-phone")

    counter = open_tab("phone")
    sign_in(counter, base, ADMIN_USERNAME, ADMIN_PASSWORD)
    redeem_at_the_store(counter, base, code)

    # Back on the grab page: redeemed, when and where; no QR code to show again.
    page.goto(f"{base}/t/e2e-held", wait_until="load")
    card = page.locator("[data-voucher]")
    expect(card).to_have_attribute("data-voucher-state", "redeemed")
    expect(card.locator(".voucher-stamp")).to_have_text("已核销")
    text = card.inner_text()
    today = dt.datetime.now(CHINA_TZ).strftime("%Y-%m-%d")
    assert re.search(rf"已于 {today} \d\d:\d\d 在{STORE}核销", text), text
    assert "有效期至" not in text
    assert page.locator("img.voucher-qr").count() == 0
    assert card.locator("[data-voucher-code] s").inner_text() == code
    no_horizontal_scroll(tab)
    shot(tab, "held-redeemed-grab-phone")

    # The header now links to 我的券, which lists it the same way.
    page.locator("header [data-my-vouchers]").click()
    page.wait_for_url(f"{base}/me/vouchers")
    assert page.get_by_role("heading", name="我的券").is_visible()
    listed = page.locator("[data-voucher]")
    expect(listed).to_have_count(1)
    expect(listed).to_have_attribute("data-voucher-state", "redeemed")
    assert (
        STORE in listed.inner_text() and "限量 3 份：免费量房" in page.locator(".held").inner_text()
    )
    assert page.locator("img.voucher-qr").count() == 0
    body = page.locator("body").inner_text()
    assert WINNER[-4:] not in body and "****" not in body, "a phone number on 我的券"
    no_horizontal_scroll(tab)
    shot(tab, "held-my-vouchers-phone")
    for t in (tab, counter, staff):
        t.assert_clean()


def test_a_sold_out_grab_takes_names_for_the_next_round(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    base = live_server
    staff = staff_with_open_grab(open_tab, base, "e2e-wait", 1, "限量 1 份：免费设计")
    win(open_tab("phone"), base, "e2e-wait", LATE_WINNER)

    tab = open_tab("phone")
    page = tab.page
    page.goto(f"{base}/t/e2e-wait", wait_until="load")
    assert page.locator("#grab-panel").get_attribute("data-state") == "sold_out"
    assert page.locator(".grab-soldout").is_visible()
    # Not a dead end: the gate is there, saying what it is for.
    assert page.locator("#gate").is_visible()
    assert "下一轮开抢时通知你" in page.locator("#grab-panel").inner_text()
    no_horizontal_scroll(tab)
    shot(tab, "waitlist-gate-phone")

    pass_gate(tab, base, LATECOMER)
    assert page.locator("#gate").count() == 0
    join = page.locator("[data-waitlist-join]")
    expect(join).to_be_visible()
    expect(join).to_contain_text("加入候补名单")
    shot(tab, "waitlist-offer-phone")
    # A double tap: the second tap must not add a second entry.
    with page.expect_response(lambda r: r.url.endswith("/t/e2e-wait/waitlist")) as first:
        join.dispatch_event("click")
        join.dispatch_event("click")
    assert first.value.status == 200
    joined = page.locator("[data-waitlist-joined]")
    expect(joined).to_contain_text("已加入候补")
    # And the same form sent again, as a slow network's retry would: still one entry.
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    again = page.request.post(f"{base}/t/e2e-wait/waitlist", form={"_csrf_token": token or ""})
    assert again.status == 200 and "已加入候补" in again.text()
    no_horizontal_scroll(tab)
    shot(tab, "waitlist-joined-phone")
    # Seen again later: still on the list, no button.
    page.goto(f"{base}/t/e2e-wait", wait_until="load")
    expect(page.locator("[data-waitlist-joined]")).to_contain_text("已加入候补")
    assert page.locator("[data-waitlist-join]").count() == 0
    tab.assert_clean()

    # Sales see it on the lead: one entry on its timeline.
    staff.goto(f"{base}/staff/leads/?tool=e2e-wait")
    staff.page.locator("a", has_text="136****4503").first.click()
    staff.page.wait_for_load_state("networkidle")
    timeline = staff.page.locator("body").inner_text()
    assert timeline.count("加入候补名单") == 1, timeline
    shot(staff, "waitlist-lead-desktop")
    staff.assert_clean()
