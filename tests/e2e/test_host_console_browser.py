"""The host console on a phone (390x844) during a live stream (issue 12, items 9 and 10): each
state shows only the actions that make sense, as buttons a thumb can hit and set well apart;
a countdown ticks to the start or the end; the stock follows the grab live (left / total)
without reloading the page; a QR code of the grab's tracked link is there to put on screen.
Cancelling "close this grab now?" leaves the grab open; OK closes it."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from app.core.qr import qr_data_uri
from tests.e2e import steps
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab
from tests.e2e.steps import make_grab, staff_with_grab
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots/grabs")
MIN_TAP = 44  # px: the smallest button a thumb should have to hit
MIN_GAP = 16  # px between two buttons


def csrf(tab: Tab) -> str:
    return tab.page.locator("meta[name=csrf-token]").get_attribute("content") or ""


def grab_form(slug: str, stock: int, starts_in: dt.timedelta, hours: int = 2) -> dict[str, str]:
    """A live-stream grab: its title says how many there are."""
    return steps.grab_form(
        slug, stock, starts_in, hours=hours, title=f"直播间限量 {stock} 份", offer="免费上门量房"
    )


def shot(tab: Tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")
    tab.screenshot(name)


def api_state(tab: Tab, base: str, slug: str) -> str:
    return str(tab.page.request.get(f"{base}/api/v1/grabs/{slug}").json()["state"])


def buttons(tab: Tab) -> list[str]:
    return [
        b.get_attribute("data-mode") or "" for b in tab.page.locator(".host-controls button").all()
    ]


def thumb_sized_and_apart(tab: Tab) -> None:
    boxes = [b.bounding_box() for b in tab.page.locator(".host-controls button").all()]
    for box in boxes:
        assert box is not None and box["height"] >= MIN_TAP and box["width"] >= 200, box
    for upper, lower in itertools.pairwise(boxes):
        assert upper is not None and lower is not None
        gap = lower["y"] - (upper["y"] + upper["height"])
        assert gap >= MIN_GAP, f"buttons {gap:.0f}px apart"


def host_tab(open_tab: Callable[..., Tab], base: str) -> Tab:
    tab = open_tab("phone")
    sign_in(tab, base, ADMIN_USERNAME, ADMIN_PASSWORD)
    return tab


def open_host(tab: Tab, base: str, slug: str) -> Any:
    tab.page.goto(f"{base}/staff/grabs/{slug}/host", wait_until="load")  # SSE: never idle
    tab.page.wait_for_function("() => window.htmx")
    return tab.page


def test_each_state_shows_only_its_actions(live_server: str, open_tab: Callable[..., Tab]) -> None:
    desk = staff_with_grab(open_tab, live_server, grab_form("host-later", 5, dt.timedelta(hours=1)))
    # The grab's tracked link, for the live stream: its QR code is what the console shows.
    desk.goto(f"{live_server}/staff/links")
    account = desk.page.locator("select[name=account_id] option").first.get_attribute("value")
    made = desk.page.request.post(
        f"{live_server}/staff/links/",
        form={
            "_csrf_token": csrf(desk),
            "account_id": account or "",
            "channel": "live",
            "target_slug": "host-later",
            "code": "hostlive1",
            "campaign": "",
        },
    )
    assert made.status == 200, made.text()

    tab = host_tab(open_tab, live_server)
    page = open_host(tab, live_server, "host-later")
    # Scheduled: open now is the one action; the countdown to the start ticks.
    expect(page.locator("[data-host-state]")).to_have_text("未开始")
    assert buttons(tab) == ["open"]
    assert page.locator(".host-controls button").inner_text() == "立即开启"
    countdown = page.locator("[data-host-countdown]")
    first = countdown.inner_text()
    assert re.fullmatch(r"(1:00:0\d|59:[45]\d)", first), first
    expect(countdown).not_to_have_text(first, timeout=3000)
    assert "距开抢" in page.locator(".host-countdown").inner_text()
    assert page.locator("[data-stock-left]").inner_text() == "5"
    assert page.locator("[data-stock-total]").inner_text() == "5"
    # The QR code is the tracked link's, drawn by the server.
    caption = page.locator(".host-qr figcaption").inner_text()
    assert f"{live_server}/s/hostlive1" in caption and "直播" in caption
    assert page.locator(".host-qr img").get_attribute("src") == qr_data_uri(
        f"{live_server}/s/hostlive1"
    )
    assert page.locator(".host-qr img").bounding_box()["width"] >= 200  # type: ignore[index]
    thumb_sized_and_apart(tab)
    no_horizontal_scroll(tab)
    shot(tab, "host-scheduled-phone")

    # Open now: it opens; closing is what is left, with going back to the schedule apart.
    page.locator("button[data-mode=open]").click()
    expect(page.locator("[data-host-state]")).to_have_text("进行中")
    assert buttons(tab) == ["closed", "schedule"]
    assert page.locator("button[data-mode=closed]").inner_text() == "立即关闭"
    assert api_state(tab, live_server, "host-later") == "open"
    thumb_sized_and_apart(tab)
    shot(tab, "host-open-by-hand-phone")

    # Cancel "close now?": nothing is posted, the grab stays open.
    questions: list[str] = []

    def dismiss(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("button[data-mode=closed]").click()
    page.wait_for_timeout(1000)
    assert questions == ["确定现在关闭这个抢购吗？"]
    assert api_state(tab, live_server, "host-later") == "open"
    expect(page.locator("[data-host-state]")).to_have_text("进行中")

    # OK closes it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("button[data-mode=closed]").click()
    expect(page.locator("[data-host-state]")).to_have_text("已关闭")
    assert api_state(tab, live_server, "host-later") == "closed"
    assert buttons(tab) == ["open", "schedule"]
    shot(tab, "host-closed-phone")

    # Back to the schedule: scheduled again, the countdown is back.
    page.locator("button[data-mode=schedule]").click()
    expect(page.locator("[data-host-state]")).to_have_text("未开始")
    assert buttons(tab) == ["open"]
    expect(page.locator("[data-host-countdown]")).to_be_visible()
    tab.assert_clean()


def test_an_open_grab_counts_down_to_its_end_and_its_stock_is_live(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    form = grab_form("host-live", 5, -dt.timedelta(minutes=1), hours=1)
    desk = staff_with_grab(open_tab, live_server, form)
    tab = host_tab(open_tab, live_server)
    page = open_host(tab, live_server, "host-live")
    expect(page.locator("[data-host-state]")).to_have_text("进行中")
    assert buttons(tab) == ["closed"]  # open by its schedule: no override to undo
    assert "距结束" in page.locator(".host-countdown").inner_text()
    expect(page.locator("[data-host-countdown]")).to_have_text(re.compile(r"^5[89]:\d\d$"))
    # No tracked link yet: the page's own address, and it says so.
    assert f"{live_server}/t/host-live" in page.locator(".host-qr figcaption").inner_text()
    page.evaluate("() => { window.notReloaded = true; }")

    # A marketer adds stock elsewhere: the console follows through the grab's live stream.
    form.pop("slug")
    form["stock"] = "9"
    make_grab(desk, live_server, form, path="/staff/grabs/host-live/edit")
    expect(page.locator("[data-stock-total]")).to_have_text("9", timeout=10_000)
    expect(page.locator("[data-stock-left]")).to_have_text("9")
    assert page.evaluate("() => window.notReloaded") is True
    thumb_sized_and_apart(tab)
    no_horizontal_scroll(tab)
    shot(tab, "host-open-scheduled-phone")
    tab.assert_clean()


def test_a_sold_out_grab_offers_no_action(live_server: str, open_tab: Callable[..., Tab]) -> None:
    staff_with_grab(open_tab, live_server, grab_form("host-gone", 0, -dt.timedelta(minutes=1)))
    tab = host_tab(open_tab, live_server)
    page = open_host(tab, live_server, "host-gone")
    expect(page.locator("[data-host-state]")).to_have_text("已抢光")
    assert buttons(tab) == []
    assert "已抢光" in page.locator(".host-controls").inner_text()
    # The list links each grab to its host page, with a button a thumb can hit.
    tab.goto(f"{live_server}/staff/grabs/")
    link = page.locator("[data-grab=host-gone] a.host-button")
    assert link.inner_text() == "主持这个抢购"
    assert link.bounding_box()["height"] >= MIN_TAP  # type: ignore[index]
    no_horizontal_scroll(tab)
    shot(tab, "host-list-phone")
    link.click()
    page.wait_for_url(f"{live_server}/staff/grabs/host-gone/host")
    shot(tab, "host-sold-out-phone")
    tab.assert_clean()
