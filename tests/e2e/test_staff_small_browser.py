"""Small things a new staff member trips over, at a desk (1280 x 800): a success message looks
like a success (green), never like an error; a new staff member or API token starts at the
least privilege; the links table names each link's tool by its title and shows what the link
brought (clicks, leads)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Tab
from tests.e2e.steps import open_staff, pass_gate

pytestmark = pytest.mark.e2e

NUMBER = "13700004444"
GREEN_TEXT = "rgb(23, 105, 58)"
GREEN_BACKGROUND = "rgb(238, 248, 241)"
RED_TEXT = "rgb(217, 48, 38)"


def _style(tab: Tab, selector: str) -> tuple[str, str]:
    color, background = tab.page.locator(selector).evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
    )
    return color, background


def _visitor_through_live01(base: str, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab("phone")
    tab.goto(f"{base}/s/live01")
    pass_gate(tab, base, NUMBER)
    tab.assert_clean()


def test_messages_roles_and_links_at_a_desk(live_server: str, open_tab: Callable[..., Tab]) -> None:
    _visitor_through_live01(live_server, open_tab)
    admin = open_staff(open_tab, live_server)
    page = admin.page

    # A lead's follow-up saved: "已保存。" in the success style.
    admin.goto(f"{live_server}/staff/leads")
    with page.expect_navigation():
        page.locator("tr", has_text="137****4444").get_by_role("link").first.click()
    manage = page.locator("#lead-manage")
    manage.get_by_label("添加备注").fill("周六上午方便量房")
    manage.get_by_role("button", name="保存").click()
    saved = page.locator("#lead-manage .notice", has_text="已保存。")
    saved.wait_for()
    assert _style(admin, "#lead-manage .notice") == (GREEN_TEXT, GREEN_BACKGROUND)
    assert page.locator("#lead-manage .alert").count() == 0
    admin.screenshot("lead-saved-desktop", full_page=False)

    # A new staff member starts as sales; admin must be chosen.
    admin.goto(f"{live_server}/staff/admin/users")
    form = page.locator("form[hx-post='/staff/admin/users']")
    assert form.get_by_label("角色").input_value() == "sales"
    assert form.get_by_label("角色").locator("option:checked").inner_text() == "销售"
    form.get_by_label("用户名").fill("e2e.newcomer")
    form.get_by_label("密码").fill("e2e-newcomer-password")
    form.get_by_role("button", name="添加").click()
    row = page.locator("#staff-list tbody tr", has_text="e2e.newcomer")
    row.wait_for()
    assert row.locator("select[name=role]").input_value() == "sales"
    admin.screenshot("users-default-role-desktop", full_page=False)
    admin.goto(f"{live_server}/staff/admin/tokens")
    assert page.get_by_label("角色").input_value() == "sales"

    # The links table: titles, clicks and leads; a created link in the success style.
    deadline = time.monotonic() + 10
    while True:
        admin.goto(f"{live_server}/staff/links")
        row = page.locator(
            "#link-list tbody tr", has=page.locator("td.code code", has_text="live01")
        )
        clicks, leads = (
            int(row.locator("td.clicks").inner_text()),
            int(row.locator("td.leads").inner_text()),
        )
        if clicks >= 1 and leads >= 1:
            break
        assert time.monotonic() < deadline, f"live01 shows {clicks} clicks, {leads} leads"
        time.sleep(0.5)  # funnel events are written in batches (LEADKIT_EVENTS_FLUSH_SECONDS)
    assert row.locator("td.tool").inner_text() == "2026 装修避坑指南：预算、合同、验收 30 条"
    headings = page.locator("#link-list thead th").all_inner_texts()
    assert "点击" in headings and "线索" in headings
    assert "guide-demo" not in page.locator("#link-list").inner_text()
    link_form = page.locator("#link-form")
    link_form.get_by_label("目标工具").select_option(label="装修预算计算器")
    link_form.get_by_label("编码").fill("e2e-small")
    link_form.get_by_role("button", name="创建渠道码").click()
    created = page.locator("#link-created")
    created.wait_for()
    color, background = _style(admin, "#link-created")
    assert (color, background) == (GREEN_TEXT, GREEN_BACKGROUND)
    assert color != RED_TEXT
    new_row = page.locator(
        "#link-list tbody tr", has=page.locator("td.code code", has_text="e2e-small")
    )
    assert new_row.locator("td.tool").inner_text() == "装修预算计算器"
    assert new_row.locator("td.clicks").inner_text() == "0"
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the links page scrolls sideways by {overflow}px at a desk"
    admin.screenshot("links-desktop")
    admin.assert_clean()
