"""Steps the browser tests share: a visitor passing the phone gate, a marketer (the admin at a
desk) signed in, and a grab made through the marketer's form."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Callable
from typing import Any

from app.core.clock import CHINA_TZ
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab
from tests.e2e.test_staff_browser import sign_in


def dev_code(base: str, phone: str) -> str:
    """The code the dev SMS sender last sent to this number."""
    with urllib.request.urlopen(f"{base}/dev/sms?phone={phone}", timeout=5) as response:  # noqa: S310
        return str(json.load(response)["code"])


def ask_code(page: Any, phone: str) -> None:
    """The gate's first form: number and consent; waits for the code box."""
    page.get_by_label("手机号").fill(phone)
    page.get_by_role("checkbox", name="我已阅读并同意").check()
    page.get_by_role("button", name="获取验证码").click()
    page.locator("input[name=code]").wait_for()


def enter_code(page: Any, base: str, phone: str) -> None:
    """The gate's second form: the code sent; waits for the page the gate leads to."""
    page.locator("input[name=code]").fill(dev_code(base, phone))
    with page.expect_navigation():
        page.get_by_role("button", name="验证并查看").click()


def pass_gate(tab: Tab, base: str, phone: str) -> None:
    """The gate on the page: number, consent, code."""
    ask_code(tab.page, phone)
    enter_code(tab.page, base, phone)


def open_staff(open_tab: Callable[..., Tab], base: str) -> Tab:
    """A desk (1280 x 800) signed in as the admin."""
    staff = open_tab("desktop")
    sign_in(staff, base, ADMIN_USERNAME, ADMIN_PASSWORD)
    return staff


ONE_MINUTE = dt.timedelta(minutes=1)


def grab_form(
    slug: str,
    stock: int,
    starts_in: dt.timedelta,
    *,
    title: str | None = None,
    hours: int = 2,
    offer: str = "设计师一对一出方案",
    prefix: str = "H",
) -> dict[str, str]:
    """What the marketer's grab form posts: a grab starting `starts_in` from now (China time),
    by default titled "限量 {stock} 份：免费设计方案"."""
    start = dt.datetime.now(CHINA_TZ).replace(microsecond=0, tzinfo=None) + starts_in
    return {
        "slug": slug,
        "title": title or f"限量 {stock} 份：免费设计方案",
        "offer": offer,
        "stock": str(stock),
        "per_phone_limit": "1",
        "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=hours)).isoformat(),
        "voucher_prefix": prefix,
        "voucher_valid_days": "30",
        "voucher_where": "体验店前台",
    }


def make_grab(staff: Tab, base: str, form: dict[str, str], path: str = "/staff/grabs/new") -> None:
    """Posts the grab form (new, or an edit at `path`) as the signed-in staff member."""
    staff.goto(f"{base}/staff/grabs/")
    token = staff.page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    answer = staff.page.request.post(
        f"{base}{path}", form={"_csrf_token": token, **form}, max_redirects=0
    )
    assert answer.status == 303, answer.text()


def staff_with_grab(open_tab: Callable[..., Tab], base: str, form: dict[str, str]) -> Tab:
    """A desk signed in as the admin that has just made a grab from `form`."""
    staff = open_staff(open_tab, base)
    make_grab(staff, base, form)
    return staff


def staff_with_open_grab(
    open_tab: Callable[..., Tab], base: str, slug: str, stock: int, title: str
) -> Tab:
    """staff_with_grab for a grab ``slug`` of ``stock`` that opened a minute ago."""
    return staff_with_grab(open_tab, base, grab_form(slug, stock, -ONE_MINUTE, title=title))
