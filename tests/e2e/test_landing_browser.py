"""The home page as a branded landing on a phone, and the admin changing the brand at a desk:
the published tools as cards, no staff link for visitors; the brand's name, logo, colour and
phone on the landing and on every tool page right after saving — all within the CSP (the
colours come from /brand.css, never a style attribute)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import Tab, server_url
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in
from tests.served import ADMIN_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.served]

BLUE = "rgb(26, 95, 180)"  # #1a5fb4


site = server_url("landing")


def _logo(directory: Path) -> Path:
    """A wide logo: a blue bar with a white square, on a transparent background."""
    image = Image.new("RGBA", (360, 120), (0, 0, 0, 0))
    image.paste((26, 95, 180, 255), (0, 20, 360, 100))
    image.paste((255, 255, 255, 255), (20, 40, 60, 80))
    path = directory / "logo.png"
    out = io.BytesIO()
    image.save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


def _cards(tab: Tab) -> list[dict[str, Any]]:
    return tab.page.eval_on_selector_all(
        "a.tool-card",
        """cards => cards.map(a => ({
            href: a.getAttribute('href'),
            kind: a.querySelector('.tool-kind').innerText,
            title: a.querySelector('.tool-title').innerText,
            height: a.getBoundingClientRect().height,
        }))""",
    )


def test_the_landing_and_the_brand_an_admin_sets(
    site: str, open_tab: Callable[..., Tab], tmp_path: Path
) -> None:
    visitor = open_tab("phone")
    page = visitor.page
    visitor.goto(f"{site}/")
    assert page.locator("h1").inner_text() == "实用小工具，一分钟出结果"
    cards = _cards(visitor)
    assert {c["href"] for c in cards} == {
        "/t/guide-demo",
        "/t/grab-demo",
        "/t/draw-demo",
        "/t/renovation",
        "/t/insurance",
    }
    assert {c["kind"] for c in cards} >= {"计算器"}
    assert all(c["height"] >= 44 for c in cards), cards
    assert page.locator("a[href^='/staff']").count() == 0, "a staff link shown to visitors"
    assert "员工登录" not in page.content()
    no_horizontal_scroll(visitor)
    visitor.screenshot("landing-phone-default")

    admin = open_tab("desktop")
    desk = admin.page
    sign_in(admin, site, "admin", ADMIN_PASSWORD)
    desk.locator("header nav").get_by_role("link", name="品牌").click()
    desk.wait_for_url(f"{site}/staff/admin/brand")
    assert desk.locator("header nav a[aria-current=page]").inner_text() == "品牌"
    # The notice has no contact yet: the page says so.
    assert desk.locator("#brand-no-contact").is_visible()

    # A colour too light for white text is refused, in the error style, keeping what was typed.
    desk.get_by_label("品牌名称").fill("蓝鲸家装")
    desk.get_by_label("主色").fill("#ffe066")
    admin.expect_failed_load(f"{site}/staff/admin/brand")
    with desk.expect_navigation():
        desk.get_by_role("button", name="保存").click()
    error = desk.locator("#brand-error")
    assert "太浅" in error.inner_text()
    assert error.evaluate("e => getComputedStyle(e).color") == "rgb(217, 48, 38)"
    assert desk.get_by_label("品牌名称").input_value() == "蓝鲸家装"
    admin.screenshot("brand-refused-desktop")

    desk.get_by_label("主色").fill("#1a5fb4")
    desk.get_by_label("联系电话").fill("400-820-8820")
    desk.get_by_label("标志").set_input_files(str(_logo(tmp_path)))
    with desk.expect_navigation():
        desk.get_by_role("button", name="保存").click()
    saved = desk.locator("#brand-saved")
    assert saved.is_visible()
    # The success style: green text on green, never the error's red.
    assert saved.evaluate("e => getComputedStyle(e).color") == "rgb(23, 105, 58)"
    assert desk.locator("#brand-logo-now").is_visible()
    assert desk.get_by_label("联系电话").input_value() == "400 820 8820"
    assert desk.locator("#brand-no-contact").count() == 0
    assert desk.get_by_role("link", name="查看首页").get_attribute("href") == "/"
    admin.screenshot("brand-admin-desktop")
    admin.assert_clean()

    visitor.goto(f"{site}/")
    assert page.locator(".site-name").inner_text() == "蓝鲸家装"
    assert page.title() == "蓝鲸家装"
    logo = page.locator("img.site-logo")
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
    assert logo.bounding_box()["height"] == pytest.approx(32, abs=1)  # type: ignore[index]
    card = page.locator("a.tool-card").first
    assert card.evaluate("e => getComputedStyle(e).borderLeftColor") == BLUE
    call = page.locator("#brand-call")
    assert "400 820 8820" in call.inner_text()
    assert call.get_attribute("href") == "tel:+864008208820"
    assert call.evaluate("e => getComputedStyle(e).backgroundColor") == BLUE
    assert call.bounding_box()["height"] >= 44  # type: ignore[index]
    no_horizontal_scroll(visitor)
    visitor.screenshot("landing-phone-brand")

    # A tool page wears the brand too, and its header leads back to the landing.
    with page.expect_navigation():
        page.locator("a.tool-card[href='/t/renovation']").click()
    assert page.locator(".site-name").inner_text() == "蓝鲸家装"
    button = page.locator("main button[type=submit]").first
    assert button.evaluate("e => getComputedStyle(e).backgroundColor") == BLUE
    no_horizontal_scroll(visitor)
    visitor.screenshot("tool-phone-brand", full_page=False)
    with page.expect_navigation():
        page.locator("a.site-brand").click()
    assert page.url == f"{site}/"
    visitor.assert_clean()
