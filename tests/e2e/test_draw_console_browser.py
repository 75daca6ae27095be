"""The staff side of a draw on a phone (390x844): the marketer (the admin) creates a draw with
two tiers through the form; the host opens the entries on the console and watches the count
rise as visitors enter; closes (asked first); taps "draw", cancels once (nothing drawn), then
confirms; sees the winners masked, and the redraw button disabled until the claim deadline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab
from tests.e2e.steps import pass_gate
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in

pytestmark = pytest.mark.e2e

SLUG = "e2e-console-draw"
PHONES = ("13700004441", "13700004442", "13700004443")
SHOTS = Path("/tmp/shots/draws")


def shot(tab: Tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")
    no_horizontal_scroll(tab)


def create_through_the_form(tab: Tab, base: str) -> None:
    page = tab.page
    tab.goto(f"{base}/staff/draws/new")
    page.locator("input[name=slug]").fill(SLUG)
    page.locator("input[name=title]").fill("直播间抽奖：全屋设计")
    page.locator("textarea[name=description]").fill("今晚现场开奖，每个手机号限中一次。")
    names = page.locator("input[name=tier_name]")
    names.nth(0).fill("一等奖：免费全屋设计")
    page.locator("input[name=tier_quantity]").nth(0).fill("1")
    page.locator("input[name=tier_reserves]").nth(0).fill("1")
    names.nth(1).fill("二等奖：¥500 装修券")
    page.locator("input[name=tier_quantity]").nth(1).fill("1")
    page.locator("input[name=tier_prefix]").nth(1).fill("CJ")
    page.locator("input[name=tier_days]").nth(1).fill("90")
    page.locator("input[name=claim_hours]").fill("48")
    shot(tab, "form-filled")
    with page.expect_navigation():
        page.get_by_role("button", name="保存并发布").click()
    assert page.url == f"{base}/staff/draws/{SLUG}", page.url
    expect(page.locator("h1")).to_have_text("直播间抽奖：全屋设计")
    shot(tab, "draw-page-new")


def enter_as_visitor(open_tab: Callable[..., Tab], base: str, phone: str) -> None:
    tab = open_tab("phone")
    tab.page.goto(f"{base}/t/{SLUG}", wait_until="load")  # live updates: never network-idle
    pass_gate(tab, base, phone)
    answer = tab.page.request.post(f"{base}/api/v1/draws/{SLUG}/enter", data={})
    assert answer.status == 200 and answer.json()["result"] == "entered", answer.text()


def test_marketer_form_and_host_console_on_a_phone(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    base = live_server
    host = open_tab("phone")
    sign_in(host, base, ADMIN_USERNAME, ADMIN_PASSWORD)
    create_through_the_form(host, base)

    page = host.page
    page.goto(f"{base}/staff/draws/{SLUG}/console", wait_until="load")
    page.wait_for_function("() => window.htmx")
    console = page.locator("#draw-console")
    expect(console).to_have_attribute("data-state", "scheduled")
    page.locator('button[data-action="open"]').click()
    expect(console).to_have_attribute("data-state", "open")
    shot(host, "console-open")

    for phone in PHONES:
        enter_as_visitor(open_tab, base, phone)
    # The count follows the draw's status without a reload.
    expect(page.locator("[data-entrants]")).to_have_text("3", timeout=15_000)

    page.locator('button[data-action="close"]').click()
    expect(page.locator(".draw-confirm")).to_contain_text("冻结")
    shot(host, "console-close-asked")
    page.locator("button[data-yes]").click()
    expect(console).to_have_attribute("data-state", "closed")

    # Draw tier 1: asked first; Cancel leaves everything as it was.
    page.locator('button[data-action="draw"][data-tier="1"]').click()
    expect(page.locator(".draw-confirm")).to_contain_text("一等奖：免费全屋设计")
    shot(host, "console-draw-asked")
    page.locator("[data-cancel]").click()
    expect(page.locator(".draw-confirm")).to_have_count(0)
    expect(page.locator("[data-winner]")).to_have_count(0)
    status = page.request.get(f"{base}/api/v1/draws/{SLUG}").json()
    assert status["tiers"][0]["drawn"] is False

    page.locator('button[data-action="draw"][data-tier="1"]').click()
    page.locator("button[data-yes]").click()
    winners = page.locator('[data-tier="1"] [data-winner]')
    expect(winners).to_have_count(1)
    assert "****" in winners.first.inner_text()
    expect(page.locator('button[data-action="redraw"][data-tier="1"]')).to_be_disabled()
    shot(host, "console-tier1-drawn")

    page.locator('button[data-action="draw"][data-tier="2"]').click()
    page.locator("button[data-yes]").click()
    expect(page.locator('[data-tier="2"] [data-winner]')).to_have_count(1)
    expect(console).to_have_attribute("data-state", "drawn")
    expect(page.locator('button[data-action="redraw"]')).to_have_count(2)
    for button in page.locator('button[data-action="redraw"]').all():
        expect(button).to_be_disabled()
    shot(host, "console-drawn")

    # The draw's page: winners per tier with their status, entrants masked.
    host.goto(f"{base}/staff/draws/{SLUG}")
    phones = host.page.locator(".draw-entrants [data-phone]").all_inner_texts()
    assert len(phones) == 3 and all("****" in p for p in phones), phones
    expect(host.page.locator(".draw-pick-won")).to_have_count(2)
    shot(host, "draw-page-drawn")
    host.assert_clean()
