"""Each kind's funnel, walked by a visitor on a phone (390×844) in Chromium: the steps the page's
script reports (a calculator's first answer, a download tap, a call-to-action tap) and the ones
the server records, then the marketer's funnel page shows that one visitor at every step of
the kind's own funnel.

The module has a server of its own, so each demo tool has exactly this module's visitor.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.kinds import KINDS
from tests.e2e.conftest import Tab, server_url
from tests.e2e.steps import pass_gate
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in
from tests.served import ADMIN_PASSWORD

pytestmark = pytest.mark.e2e


server = server_url("funnel")


def tap_and_report(tab: Tab, locator: Any, *, download: bool = False) -> None:
    """Tap a link the page reports (POST /api/v1/events) and wait for the report to land;
    ``download``: the link is a file, saved rather than opened (as a web-view does)."""
    with tab.page.expect_response(lambda r: r.url.endswith("/api/v1/events")) as reported:
        locator.click(modifiers=["Alt"] if download else None)
    assert reported.value.status == 202


def funnel_of(staff: Tab, base: str, slug: str) -> dict[str, int]:
    staff.goto(f"{base}/staff/funnels?tool={slug}")
    items = staff.page.locator("#funnel-total li[data-step]")
    return {
        str(li.get_attribute("data-step")): int(li.locator(".count").inner_text())
        for li in items.all()
    }


def expect_every_step(staff: Tab, base: str, slug: str, kind: str, shot: str) -> None:
    """The funnel page shows the visitor at every step of the kind's funnel (events are
    written within about a second: LEADKIT_EVENTS_FLUSH_SECONDS)."""
    wanted = dict.fromkeys(KINDS[kind].funnel, 1)
    deadline = time.monotonic() + 10
    while (counts := funnel_of(staff, base, slug)) != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    assert counts == wanted
    names = staff.page.locator("#funnel-total .step-name").all_inner_texts()
    assert all("_" not in name for name in names), names
    no_horizontal_scroll(staff)
    staff.screenshot(shot)


def staff_tab(open_tab: Callable[..., Tab], base: str) -> Tab:
    staff = open_tab("phone")
    sign_in(staff, base, "admin", ADMIN_PASSWORD)
    return staff


def test_calculator_funnel(server: str, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab("phone", f"{server}/t/renovation")
    page = tab.page
    # The first answer the visitor gives starts the step.
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")) as started:
        page.locator("form.calc-form input[type=number]").first.fill("95")
    assert started.value.status == 202
    page.get_by_role("button", name="开始测算").click()
    page.locator("#result .headline").wait_for()
    pass_gate(tab, server, "13500007001")
    page.locator("table.breakdown").wait_for()
    with page.expect_download():
        tap_and_report(tab, page.locator('a[href$="/report.pdf"]'), download=True)
    tab.assert_clean()
    expect_every_step(
        staff_tab(open_tab, server), server, "renovation", "calculator", "funnel-calculator-phone"
    )


def test_grab_funnel(server: str, open_tab: Callable[..., Tab]) -> None:
    staff = staff_tab(open_tab, server)
    staff.goto(f"{server}/staff/grabs/")
    token = staff.page.locator("meta[name=csrf-token]").get_attribute("content")
    opened = staff.page.request.post(
        f"{server}/staff/grabs/grab-demo/mode", form={"_csrf_token": token or "", "mode": "open"}
    )
    assert opened.status == 200
    # The console names the state in Chinese (its labels once never reached the catalog).
    staff.goto(f"{server}/staff/grabs/")
    state = staff.page.locator("[data-grab='grab-demo'] .host-state").inner_text()
    assert state == "进行中", state
    staff.screenshot("host-console-open-phone")

    tab = open_tab("phone")
    page = tab.page
    page.goto(f"{server}/t/grab-demo", wait_until="load")  # SSE: never network-idle
    assert page.locator("#gate").is_visible()  # the gate is shown: a funnel step
    pass_gate(tab, server, "13500007002")
    page.locator("[data-grab-button]").click()
    page.locator(".grab-outcome-won").wait_for()
    tab.assert_clean()
    expect_every_step(staff, server, "grab-demo", "grab", "funnel-grab-phone")
    # The lead's timeline tells the same story in words, never in event names.
    staff.goto(f"{server}/staff/leads")
    with staff.page.expect_navigation():
        staff.page.locator("a[href^='/staff/leads/']").first.click()
    timeline = staff.page.locator("#timeline").inner_text()
    for words in ("看到了手机号验证", "点了抢购按钮", "抢到了", "领取：第 1 份"):
        assert words in timeline, timeline
    assert "_" not in timeline, timeline
    no_horizontal_scroll(staff)
    staff.screenshot("lead-timeline-grab-phone")


def test_guide_funnel(server: str, open_tab: Callable[..., Tab], tmp_path: Path) -> None:
    tab = open_tab("phone", f"{server}/t/guide-demo")
    page = tab.page
    pass_gate(tab, server, "13500007003")
    page.locator("#result").wait_for()
    no_horizontal_scroll(tab)
    tab.screenshot("guide-authorised-phone")
    # The guide as a PDF: the server records the download.
    with page.expect_download() as download:
        page.get_by_role("link", name="下载指南 PDF 版").click(modifiers=["Alt"])
    saved = tmp_path / "guide.pdf"
    download.value.save_as(saved)
    text = subprocess.run(
        ["pdftotext", "-layout", str(saved), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert "签合同前" in text or "合同" in text, text[:300]
    assert "135****7003" in text  # watermarked with the visitor's masked phone
    # The call to action: the page reports the tap.
    tap_and_report(tab, page.locator('[data-event="cta_clicked"]'))
    tab.assert_clean()
    expect_every_step(
        staff_tab(open_tab, server), server, "guide-demo", "guide", "funnel-guide-phone"
    )
