"""A lucky draw in a real browser: two visitors at phone size (390x844) enter through the gate
and see the count rise live; the host (the admin JSON API) closes and draws; the big screen at
1920x1080 reveals the winner live, the winner's page says so without a reload and the claim
works; the verify page recomputes the draw and shows a match."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    MANY_CODES,
    STAFF_ENV,
    Tab,
    e2e_server,
)
from tests.e2e.steps import pass_gate
from tests.e2e.test_staff_browser import no_horizontal_scroll
from tests.served import Served

pytestmark = pytest.mark.e2e

SLUG = "e2e-draw"
PHONES = ("13700003331", "13700003332")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server of this module's own: the test drives the host through API tokens."""
    with e2e_server(tmp_path_factory, "e2e-draw", {**STAFF_ENV, **MANY_CODES}) as served:
        yield served


TOKENS: dict[str, str] = {}


def call(app: Served, role: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The admin JSON API with a token of ``role`` (made once: each is a `leadkit` run)."""
    token = TOKENS.get(role) or TOKENS.setdefault(role, app.token(role))
    answer = app.request("POST", path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def test_enter_draw_screen_claim_verify(
    app: Served, browser: Any, open_tab: Callable[..., Tab]
) -> None:
    call(
        app,
        "marketer",
        "/api/v1/admin/draws",
        {
            "slug": SLUG,
            "title": "直播间抽奖：免费全屋设计",
            "description": "验证手机号即可参与，每个手机号限中 1 次。",
            "tiers": [{"name": "一等奖：免费全屋设计", "quantity": 1, "reserves": 1}],
            "referrals": True,
        },
    )
    call(app, "host", f"/api/v1/admin/draws/{SLUG}/open")
    base = app.url

    # Two visitors at phone size enter through the gate; each sees the count rise live.
    visitors: list[Tab] = []
    for n, phone in enumerate(PHONES, start=1):
        tab = open_tab("phone")
        page = tab.page
        page.goto(f"{base}/t/{SLUG}", wait_until="load")  # SSE: never network-idle
        assert page.get_by_role("heading", name="直播间抽奖：免费全屋设计").is_visible()
        if n == 1:
            no_horizontal_scroll(tab)
            tab.screenshot("draw-gate-phone")
        pass_gate(tab, base, phone)
        page.locator("[data-enter]").click()
        expect(page.locator("[data-entered]")).to_be_visible()
        expect(page.locator("#draw-panel [data-draw-count]").first).to_have_text(str(n))
        assert "已有" in page.locator(".draw-count").inner_text()
        visitors.append(tab)
    first = visitors[0].page
    expect(first.locator("[data-draw-count]").first).to_have_text("2", timeout=5_000)
    assert first.locator(".draw-share-url").input_value().startswith(f"{base}/t/{SLUG}?ref=")
    assert first.locator("img.draw-qr").is_visible()
    no_horizontal_scroll(visitors[0])
    visitors[0].screenshot("draw-entered-phone")

    # The big screen, an OBS browser source at 1920x1080.
    screen = Tab(browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN"))
    try:
        screen.page.goto(f"{base}/t/{SLUG}/screen", wait_until="load")
        expect(screen.page.locator("[data-draw-count]")).to_have_text("2")
        expect(screen.page.locator(".screen-waiting")).to_be_visible()

        # The host closes and draws; screen and phones learn it live.
        call(app, "host", f"/api/v1/admin/draws/{SLUG}/close")
        drawn = call(app, "host", f"/api/v1/admin/draws/{SLUG}/draw?tier=1")
        (winner_phone,) = drawn["winners"]
        assert re.fullmatch(r"137\*{4}333[12]", winner_phone), winner_phone
        expect(screen.page.locator(".screen-phones li")).to_have_text([winner_phone])
        assert screen.page.locator(".screen-tier.is-drawn").count() == 1
        assert screen.page.locator("img.screen-qr").is_visible()
        assert f"/t/{SLUG}/verify" in screen.page.locator(".screen-proof").inner_text()
        screen.screenshot("draw-screen-1920", full_page=False)
        screen.assert_clean()
    finally:
        screen.context.close()

    won_at = 0 if winner_phone.endswith(PHONES[0][-4:]) else 1
    winner, loser = visitors[won_at], visitors[1 - won_at]
    expect(winner.page.locator('[data-prize="won"]')).to_be_visible(timeout=10_000)
    assert "恭喜" in winner.page.locator('[data-prize="won"]').inner_text()
    expect(loser.page.locator(".draw-lost")).to_be_visible(timeout=10_000)
    expect(winner.page.locator("[data-winners] li")).to_have_text([winner_phone])
    winner.screenshot("draw-won-phone")

    # The claim: the masked number prefilled, the prize confirmed.
    winner.page.locator("[data-claim-link]").click()
    winner.page.wait_for_url(f"{base}/t/{SLUG}/claim")
    assert winner.page.locator("[data-claim-phone]").input_value() == winner_phone
    winner.page.get_by_label("姓名（选填）").fill("张三")
    no_horizontal_scroll(winner)
    winner.screenshot("draw-claim-phone")
    with winner.page.expect_navigation():
        winner.page.locator("[data-claim]").click()
    expect(winner.page.locator('[data-prize="claimed"]')).to_be_visible()
    winner.screenshot("draw-claimed-phone")
    winner.assert_clean()
    loser.assert_clean()

    # Anyone can check: the verify page recomputes the draw and shows a match.
    check = open_tab("phone")
    check.goto(f"{base}/t/{SLUG}/verify")
    expect(check.page.locator('[data-verdict="match"]')).to_be_visible()
    assert winner_phone in check.page.locator('[data-tier-check="match"]').inner_text()
    assert check.page.locator(".draw-entrants tbody tr").count() == 2
    no_horizontal_scroll(check)
    check.screenshot("draw-verify-phone")
    check.assert_clean()
