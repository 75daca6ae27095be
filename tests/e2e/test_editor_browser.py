"""A marketer edits the renovation price table in Chromium: the live preview follows, a bad cell
is marked beside the input, the draft is saved, the publish page shows the diff and the replayed
submission, and after publishing the visitor's earlier result is unchanged on the lead page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab
from tests.e2e.test_spine_browser import dev_code
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in

pytestmark = pytest.mark.e2e

PHONE = "13500003333"
FLOOR_CELL = 'input[name="tables.unit_price.values.2.1"]'
WALL_CELL = 'input[name="tables.unit_price.values.3.1"]'


def wan(text: str) -> float:
    match = re.search(r"¥([\d.]+)(万?)", text)
    assert match, text
    return float(match.group(1)) * (10_000 if match.group(2) else 1)


def visitor_result(tab: Tab, base: str) -> str:
    page = tab.page
    tab.goto(f"{base}/t/renovation")
    page.locator('input[name="area"]').fill("100")
    page.locator("form.calc-form button[type=submit]").click()
    page.locator("#result .headline").wait_for()
    return str(page.locator("#result .headline").first.inner_text())


def test_marketer_edits_previews_and_publishes(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    # A visitor uses v1 and leaves a phone number.
    visitor = open_tab("phone")
    v1_total = visitor_result(visitor, live_server)
    vp = visitor.page
    vp.get_by_label("手机号").fill(PHONE)
    vp.get_by_role("checkbox", name="我已阅读并同意").check()
    vp.get_by_role("button", name="获取验证码").click()
    vp.locator("input[name=code]").wait_for()
    vp.locator("input[name=code]").fill(dev_code(live_server, PHONE))
    with vp.expect_navigation():
        vp.get_by_role("button", name="验证并查看").click()
    vp.locator("table.breakdown").wait_for()

    # The marketer opens the editor at a desk.
    desk = open_tab("desktop")
    page = desk.page
    sign_in(desk, live_server, ADMIN_USERNAME, ADMIN_PASSWORD)
    desk.goto(f"{live_server}/staff/calculators/")
    page.locator('a[href="/staff/calculators/renovation"]').first.click()
    page.locator(FLOOR_CELL).wait_for()
    headline = page.locator("#preview .preview-headline").first
    before = headline.inner_text()
    desk.screenshot("editor-desktop", full_page=False)

    # Live preview: a 4× flooring price raises the sample estimate without saving anything.
    floor = float(page.locator(FLOOR_CELL).input_value())
    page.locator(FLOOR_CELL).fill(f"{floor * 4:g}")
    page.wait_for_function(
        "(before) => document.querySelector('#preview .preview-headline')?.innerText !== before",
        arg=before,
    )
    assert wan(headline.inner_text()) > wan(before)

    # A cell that is not a number is marked beside the input, and cleared when fixed.
    wall = page.locator(WALL_CELL).input_value()
    page.locator(WALL_CELL).fill("abc")
    page.locator(".js-inline-error").first.wait_for()
    assert page.locator(WALL_CELL).get_attribute("aria-invalid") == "true"
    desk.screenshot("editor-inline-error", full_page=False)
    page.locator(WALL_CELL).fill(wall)
    page.locator("#preview .preview-headline").wait_for()
    page.wait_for_function("() => !document.querySelector('.js-inline-error')")

    # Save the draft (htmx), then review and publish.
    page.locator(".editor-actions button[type=submit]").click()
    page.locator(".editor-actions .notice").wait_for()
    page.locator('.editor-actions a[href$="/publish"]').click()
    page.locator("pre.diff .dadd").first.wait_for()
    assert page.locator("table.replay tr.changed").count() >= 1
    assert v1_total in page.locator("table.replay").inner_text()
    desk.screenshot("editor-publish-review")
    page.locator('form[action$="/publish"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/versions\?published=2$"))
    assert "v2" in page.locator("table.versions").inner_text()

    # The lead still shows the v1 answer; a new visit gets the v2 price.
    desk.goto(f"{live_server}/staff/leads")
    page.locator("table a[href^='/staff/leads/']").first.click()
    page.wait_for_load_state("networkidle")
    assert v1_total in page.locator("main").inner_text()
    v2_total = visitor_result(visitor, live_server)
    assert wan(v2_total) > wan(v1_total)

    # The editor is usable on a phone too (stacked, no sideways scrolling of the page).
    phone = open_tab("phone")
    sign_in(phone, live_server, ADMIN_USERNAME, ADMIN_PASSWORD)
    phone.goto(f"{live_server}/staff/calculators/renovation")
    phone.screenshot("editor-phone", full_page=False)
    no_horizontal_scroll(phone)
    for tab in (visitor, desk, phone):
        tab.assert_clean()
