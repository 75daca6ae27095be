"""A calculator at phone size: answers, the teaser, the gate, then the full result."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Tab
from tests.e2e.test_spine_browser import dev_code
from tests.e2e.test_staff_browser import no_horizontal_scroll

pytestmark = pytest.mark.e2e

PHONE = "13500002222"


def test_renovation_calculator(live_server: str, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab("phone")
    page = tab.page
    tab.goto(f"{live_server}/t/renovation")
    no_horizontal_scroll(tab)
    tab.screenshot("calculator-phone")
    page.get_by_role("button", name="开始测算").click()
    page.locator("#result .headline").wait_for()
    assert "万" in page.locator("#result .headline").first.inner_text()
    assert page.locator("table.breakdown").count() == 0
    tab.screenshot("calculator-teaser-phone")
    page.get_by_label("手机号").fill(PHONE)
    page.get_by_role("checkbox", name="我已阅读并同意").check()
    page.get_by_role("button", name="获取验证码").click()
    page.locator("input[name=code]").wait_for()
    page.locator("input[name=code]").fill(dev_code(live_server, PHONE))
    with page.expect_navigation():
        page.get_by_role("button", name="验证并查看").click()
    page.locator("table.breakdown").wait_for()
    no_horizontal_scroll(tab)
    tab.screenshot("calculator-full-phone", full_page=True)
    tab.assert_clean()
