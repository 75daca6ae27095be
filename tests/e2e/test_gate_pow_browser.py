"""The gate's proof of work in a real browser at phone size: the vendored ALTCHA widget appears
only when the server asks for it, solves on its own within the CSP (no inline style or script,
its worker from /static), and the code is then sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import INFO_LOGS, SECRET_KEY, Tab, server_url
from tests.e2e.steps import dev_code

pytestmark = pytest.mark.e2e

PHONE = "13700002222"


# `leadkit serve` whose gate always asks for a proof of work (cheap, for the test).
POW_ENV = {"LEADKIT_OTP_POW_IP_HOURLY": "0", "LEADKIT_OTP_POW_COST": "200"}
pow_server = server_url("e2e-pow", {**POW_ENV, "LEADKIT_SECRET_KEY": SECRET_KEY, **INFO_LOGS})


def test_widget_appears_solves_and_the_code_is_sent(
    pow_server: str, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab("phone", f"{pow_server}/t/guide-demo")
    page = tab.page
    # Not asked yet: the page carries no widget and loads none of its files.
    assert page.locator("altcha-widget").count() == 0
    page.get_by_label("手机号").fill(PHONE)
    page.get_by_role("checkbox").check()
    tab.expect_failed_load(f"{pow_server}/gate/code")  # the 403 that asks for the proof
    page.get_by_role("button", name="获取验证码").click()

    widget = page.locator("form altcha-widget")
    widget.wait_for()
    expect(page.locator("#gate .alert")).to_contain_text("请先完成安全验证")
    # It solves on its own (auto="onload"); "Get code" waits for it.
    expect(widget).to_have_attribute("data-ready", "")
    expect(page.locator("altcha-widget input[name=altcha]")).to_have_count(1, timeout=20_000)
    expect(page.get_by_role("button", name="获取验证码")).to_be_enabled(timeout=20_000)
    expect(widget).to_contain_text("已验证")
    assert "robot" not in widget.inner_text().lower()  # our Chinese texts, not the defaults
    tab.screenshot("gate-pow-phone")

    page.get_by_role("checkbox", name="我已阅读并同意").check()  # consent is ticked anew
    page.get_by_role("button", name="获取验证码").click()
    page.locator("input[name=code]").wait_for()
    assert "137" in page.locator(".sent-to").inner_text()
    code = dev_code(pow_server, PHONE)
    assert len(code) == 6
    # The widget's styles come from /static and nothing was blocked by the CSP.
    tab.assert_clean()
