"""Real Chromium against a real server: the pages render in Chinese on a phone, run within the
CSP (no inline script or style, so no console errors), htmx forms swap in place, and roles hold.

Screenshots go to tests/artifacts/ for a human look.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab

pytestmark = pytest.mark.e2e

SALES_USERNAME = "e2e.sales"
SALES_NAME = "销售 小陈"
SALES_PASSWORD = "e2e-sales-password-2026"


def sign_in(tab: Tab, base: str, username: str, password: str) -> None:
    tab.goto(f"{base}/staff/login")
    page = tab.page
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    assert page.url == f"{base}/staff/", page.url


def no_horizontal_scroll(tab: Tab) -> None:
    overflow = tab.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{tab.page.url} scrolls sideways by {overflow}px on a phone"


def test_visitor_pages_on_a_phone(live_server: str, tab: Tab) -> None:
    page = tab.page

    tab.goto(f"{live_server}/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "实用小工具，一分钟出结果"
    # The stylesheet applied (served from /static, allowed by the CSP).
    assert page.locator("body").evaluate("e => getComputedStyle(e).margin") == "0px"
    no_horizontal_scroll(tab)
    tab.screenshot("home-phone")

    tab.goto(f"{live_server}/staff/login")
    assert page.get_by_role("heading", name="员工登录").is_visible()
    no_horizontal_scroll(tab)
    tab.screenshot("login-phone")

    tab.goto(f"{live_server}/no/such/page", status=404)
    assert page.get_by_role("heading", name="页面不存在").is_visible()
    assert page.get_by_role("link", name="返回首页").is_visible()
    no_horizontal_scroll(tab)
    tab.screenshot("not-found-phone")

    tab.assert_clean()


def test_admin_adds_a_sales_user_who_cannot_administer(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    admin = open_tab("desktop")
    page = admin.page
    sign_in(admin, live_server, ADMIN_USERNAME, ADMIN_PASSWORD)

    page.locator("header nav").get_by_role("link", name="员工管理").click()
    page.wait_for_url(f"{live_server}/staff/admin/users")
    assert page.get_by_role("heading", name="员工管理", level=1).is_visible()
    assert page.locator("header nav a[aria-current=page]").inner_text() == "员工管理"
    # htmx loaded from /static and initialised (the CSP allows only same-origin scripts).
    page.wait_for_function("() => window.htmx && window.htmx.version.startsWith('2.')")

    # A marker on the window survives an htmx swap but not a page load.
    page.evaluate("window.__e2eMarker = 'same-page'")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    form = page.locator("form[hx-post='/staff/admin/users']")
    form.get_by_label("用户名").fill(SALES_USERNAME)
    form.get_by_label("显示名称").fill(SALES_NAME)
    form.get_by_label("角色").select_option("sales")
    form.get_by_label("密码").fill(SALES_PASSWORD)
    with page.expect_response(
        lambda r: r.url == f"{live_server}/staff/admin/users" and r.request.method == "POST"
    ) as posted:
        form.get_by_role("button", name="添加").click()
    response = posted.value
    assert response.status == 200
    assert response.request.headers.get("hx-request") == "true"
    assert response.request.headers.get("x-csrftoken"), "htmx request sent no CSRF header"

    row = page.locator("#staff-list tbody tr", has_text=SALES_USERNAME)
    row.wait_for()
    assert row.locator("select[name=role]").input_value() == "sales"
    assert row.locator("input[name=display_name]").input_value() == SALES_NAME
    assert page.evaluate("window.__e2eMarker") == "same-page", "the form reloaded the page"
    assert navigations == [], f"unexpected navigation: {navigations}"
    # The form was swapped for a fresh, empty one.
    assert form.get_by_label("用户名").input_value() == ""

    # Adding the same username again shows the Chinese error in the panel, still in place.
    form.get_by_label("用户名").fill(SALES_USERNAME)
    form.get_by_label("角色").select_option("sales")
    form.get_by_label("密码").fill(SALES_PASSWORD)
    admin.expect_failed_load(f"{live_server}/staff/admin/users")
    with page.expect_response(
        lambda r: r.url == f"{live_server}/staff/admin/users" and r.request.method == "POST"
    ) as posted:
        form.get_by_role("button", name="添加").click()
    assert posted.value.status == 409
    page.locator("#staff-panel .alert", has_text="该用户名已被占用").wait_for()
    assert page.evaluate("window.__e2eMarker") == "same-page"
    assert page.locator("#staff-list tbody tr", has_text=SALES_USERNAME).count() == 1

    admin.goto(f"{live_server}/staff/admin/users")
    admin.screenshot("users-desktop")

    # The same page on a phone, signed in with the admin's cookies.
    phone = open_tab("phone")
    phone.context.add_cookies(admin.context.cookies())
    phone.goto(f"{live_server}/staff/admin/users")
    assert phone.page.locator("#staff-list tbody tr", has_text=SALES_USERNAME).count() == 1
    no_horizontal_scroll(phone)
    phone.screenshot("users-phone")

    # API tokens on a phone: create one (a plain form post) and see it once.
    phone.page.locator("header nav").get_by_role("link", name="API 令牌").click()
    phone.page.wait_for_url(f"{live_server}/staff/admin/tokens")
    phone.page.get_by_label("名称").fill("CRM 同步")
    phone.page.get_by_label("角色").select_option("sales")
    with phone.page.expect_navigation():
        phone.page.get_by_role("button", name="创建令牌").click()
    assert phone.page.locator("#new-token").inner_text().strip()
    assert phone.page.locator("table.list tbody tr", has_text="CRM 同步").count() == 1
    no_horizontal_scroll(phone)
    phone.screenshot("tokens-phone")
    phone.assert_clean()

    with page.expect_navigation():
        page.get_by_role("button", name="退出登录").click()
    assert page.url.startswith(f"{live_server}/staff/login"), page.url
    admin.goto(f"{live_server}/staff/admin/users")
    assert re.search(r"/staff/login\?next=", page.url), "signed out, yet the page opened"
    admin.assert_clean()

    sales = open_tab("phone")
    sign_in(sales, live_server, SALES_USERNAME, SALES_PASSWORD)
    header = sales.page.locator("header.bar")
    assert SALES_NAME in header.inner_text()
    assert "销售" in header.inner_text()
    assert sales.page.locator("a[href^='/staff/admin']").count() == 0
    assert "员工管理" not in sales.page.content()
    sales.screenshot("dashboard-sales-phone")

    sales.goto(f"{live_server}/staff/admin/users", status=403)
    assert "没有权限" in sales.page.locator("main").inner_text()
    assert sales.page.get_by_role("link", name="返回工作台").get_attribute("href") == "/staff/"
    assert sales.page.locator("#staff-list").count() == 0
    no_horizontal_scroll(sales)
    sales.screenshot("forbidden-phone")
    sales.assert_clean()
