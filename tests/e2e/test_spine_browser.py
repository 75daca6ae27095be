"""The visitor spine in a real browser: a tracked link at phone size, the gate, the dev SMS
inbox, the unlocked guide; then staff see the lead with its account, channel and timeline."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Tab
from tests.e2e.steps import enter_code, open_staff
from tests.e2e.test_staff_browser import no_horizontal_scroll

pytestmark = pytest.mark.e2e

PHONE = "13700001111"


def test_tracked_link_to_lead(live_server: str, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab("phone", f"{live_server}/s/video01")
    page = tab.page
    assert page.url == f"{live_server}/t/guide-demo"
    assert page.get_by_role("heading", name="验证手机号，阅读完整指南").is_visible()
    assert page.locator("#result").count() == 0
    consent = page.get_by_role("checkbox")
    assert not consent.is_checked()
    no_horizontal_scroll(tab)
    tab.screenshot("gate-phone")

    page.get_by_label("手机号").fill(PHONE)
    # The browser refuses to send without consent (required checkbox); nothing is sent.
    page.get_by_role("button", name="获取验证码").click()
    assert page.locator("input[name=code]").count() == 0
    consent.check()
    page.get_by_role("button", name="获取验证码").click()
    page.locator("input[name=code]").wait_for()
    assert "137" in page.locator(".sent-to").inner_text()
    # The countdown runs (gate.js starts it when htmx swaps the partial in).
    resend = page.locator("button.link", has_text="重新发送")  # beside 换个号码
    expect(resend).to_be_disabled()
    expect(resend).to_contain_text("重新发送")
    tab.screenshot("gate-code-phone")

    enter_code(page, live_server, PHONE)
    page.locator("#result").wait_for()
    assert page.locator("#gate").count() == 0
    no_horizontal_scroll(tab)
    tab.screenshot("guide-unlocked-phone")
    tab.assert_clean()

    staff = open_staff(open_tab, live_server)
    staff.goto(f"{live_server}/staff/leads")
    row = staff.page.locator("tr", has_text="137****1111")
    assert row.count() == 1
    assert "设计师小林" in row.inner_text()
    assert "短视频" in row.inner_text()
    staff.screenshot("leads-desktop")
    with staff.page.expect_navigation():
        row.get_by_role("link").first.click()
    timeline = staff.page.locator("body").inner_text()
    for label in (
        "打开了渠道链接",
        "浏览了工具",
        "看到了手机号验证",
        "已发送验证码",
        "已验证手机号",
        "新建线索",
        "查看了完整结果",
    ):
        assert label in timeline, label
    staff.screenshot("lead-desktop")
    staff.assert_clean()
