"""The privacy pages on a phone: the notice names the business, its contact, the retention
period and the SMS processor; /privacy/manage reads the number back and shows the consent's
time the way every other page does (China time, 137 0000 2222); cancelling the deletion keeps
everything, withdrawing and deleting work."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest

from app.core.clock import CHINA_TZ
from tests.e2e.conftest import PHONE as PHONE_PROFILE
from tests.e2e.conftest import Tab, server_url
from tests.e2e.steps import dev_code, pass_gate
from tests.e2e.test_staff_browser import no_horizontal_scroll

pytestmark = [pytest.mark.e2e, pytest.mark.served]

NUMBER = "13700002222"
BUSINESS = "上海装修家装饰工程有限公司"


PRIVACY_ENV = {
    "LEADKIT_PRIVACY_BUSINESS_NAME": BUSINESS,
    "LEADKIT_PRIVACY_CONTACT": "021-61234567",
    "LEADKIT_PRIVACY_RETENTION_DAYS": "730",
}
# The manage page asks for a second code to the same number right after the gate's.
site = server_url("privacy", {**PRIVACY_ENV, "LEADKIT_OTP_RESEND_SECONDS": "1"})


def _text(tab: Tab) -> str:
    return " ".join(tab.page.locator("main").inner_text().split())


def _become_lead(tab: Tab, base: str) -> None:
    tab.goto(f"{base}/t/guide-demo")
    pass_gate(tab, base, NUMBER)


def test_notice_and_manage_on_a_phone(
    site: str, browser: Any, open_tab: Callable[..., Tab]
) -> None:
    assert PHONE_PROFILE["viewport"] == {"width": 390, "height": 844}
    tab = open_tab("phone")
    page = tab.page
    _become_lead(tab, site)
    verified_at = dt.datetime.now(CHINA_TZ)

    page.get_by_role("link", name="隐私政策").click()
    page.wait_for_url(f"{site}/privacy")
    text = _text(tab)
    assert BUSINESS in text
    assert "730 天" in text
    assert "不会真正发出" in text  # the development server's console "gateway"
    contact = page.locator("#privacy-contact a")
    assert contact.inner_text() == "021 6123 4567"
    assert contact.get_attribute("href") == "tel:+862161234567"
    assert not re.search(r"[A-Za-z]{3,}", text.replace("English", "")), "English on the page"
    no_horizontal_scroll(tab)
    tab.screenshot("privacy-notice-phone")

    page.get_by_role("link", name="撤回同意或删除我的数据").click()
    page.wait_for_url(f"{site}/privacy/manage")
    page.get_by_label("手机号").fill(NUMBER)
    page.get_by_role("checkbox").check()
    page.wait_for_timeout(1_500)  # the (shortened) least time between two codes
    with page.expect_navigation():
        page.get_by_role("button", name="获取验证码").click()
    assert "137 0000 2222" in _text(tab)
    assert "+86" not in _text(tab)
    tab.screenshot("privacy-code-phone")
    page.get_by_label("验证码").fill(dev_code(site, NUMBER))
    with page.expect_navigation():
        page.get_by_role("button", name="验证").click()

    consent = page.locator("ul.consents li").first.inner_text()
    shown = re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", consent)
    assert shown, consent
    at = dt.datetime.strptime(shown[0], "%Y-%m-%d %H:%M").replace(tzinfo=CHINA_TZ)
    assert abs((at - verified_at).total_seconds()) < 180, f"{consent}: not China time"
    no_horizontal_scroll(tab)
    for button in page.locator("main button").all():
        box = button.bounding_box()
        assert box and box["height"] >= 44, button.inner_text()
    tab.screenshot("privacy-manage-phone")

    # Cancelling the deletion deletes nothing.
    questions: list[str] = []

    def dismiss(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="删除我的数据").click()
    page.wait_for_timeout(500)
    assert questions and "删除" in questions[0]
    assert page.url == f"{site}/privacy/manage"
    assert page.locator("ul.consents li").count() == 1

    with page.expect_navigation():
        page.get_by_role("button", name="撤回同意").click()
    assert "不会再联系您" in _text(tab)
    tab.screenshot("privacy-withdrawn-phone")

    tab.goto(f"{site}/privacy/manage")
    assert "已撤回" in page.locator("ul.consents").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="删除我的数据").click()
    assert "已删除" in _text(tab)
    no_horizontal_scroll(tab)
    tab.screenshot("privacy-deleted-phone")
    tab.assert_clean()
