"""Bookings in Chromium at phone size (390x844): a visitor taps a tool's call to action, goes
through the phone gate, lands back on the booking, books a slot with a note, changes it,
cancels it, then books another tool in one tap; the sales inbox shows the booking at the top
of the leads page as 待联系 and marks it 已联系 in place. Screenshots in tests/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, PHONE, Tab
from tests.e2e.steps import pass_gate
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in

pytestmark = pytest.mark.e2e

NUMBER = "13900005151"
SHOTS = Path("/tmp/shots/bookings")


def shot(tab: Tab, name: str) -> None:
    path = tab.screenshot(name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def text(tab: Tab, selector: str = "main") -> str:
    return " ".join(tab.page.locator(selector).inner_text().split())


def test_a_visitor_books_changes_and_cancels_then_sales_see_it(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    assert PHONE["viewport"] == {"width": 390, "height": 844}
    tab = open_tab("phone", f"{live_server}/t/grab-demo")
    page = tab.page
    cta = page.locator("#cta")
    assert "预约免费上门量房" in cta.inner_text()
    # Not authorised: the button goes to the booking page, which asks for the phone first.
    with page.expect_navigation():
        cta.get_by_role("link", name="预约免费上门量房").click()
    assert page.url == f"{live_server}/t/grab-demo/book"
    assert page.locator("form.booking-form").count() == 0
    pass_gate(tab, live_server, NUMBER)
    # Back on the booking, with the first open slot chosen.
    assert page.url == f"{live_server}/t/grab-demo/book"
    form = page.locator("form.booking-form")
    assert form.locator("select[name=day]").input_value()
    assert form.locator("input[name=part]:checked").count() == 1
    no_horizontal_scroll(tab)
    shot(tab, "booking-form-phone")

    # Tomorrow, by its label: late in the evening (China time) today has no open slot left,
    # and the first day offered is tomorrow itself.
    tomorrow = form.locator("select[name=day] option", has_text="（明天）")
    form.locator("select[name=day]").select_option(value=tomorrow.get_attribute("value"))
    form.get_by_text("晚上（18:00–21:00）").click()
    form.get_by_label("备注（选填）").fill("三室两厅，下班后在家 <b>")
    with page.expect_navigation():
        form.get_by_role("button", name="预约免费上门量房").click()
    booked = text(tab, "#booking")
    assert "预约成功" in booked and "已预约" in booked and "待联系" in booked
    assert "（明天）" in booked and "周" in booked and "晚上（18:00–21:00）" in booked
    assert "三室两厅，下班后在家 <b>" in booked  # shown as typed, never as markup
    no_horizontal_scroll(tab)
    shot(tab, "booking-confirmed-phone")

    # Change the time.
    page.locator("details.change summary").click()
    change = page.locator("details.change form")
    change.get_by_text("下午（13:00–18:00）").click()
    with page.expect_navigation():
        change.get_by_role("button", name="保存修改").click()
    assert "预约已修改" in text(tab, "#booking")
    assert "下午（13:00–18:00）" in text(tab, "#booked-slot")

    # Cancel it: the form is back, to book again.
    with page.expect_navigation():
        page.get_by_role("button", name="取消预约").click()
    assert "预约已取消" in text(tab)
    assert page.locator("#booking").count() == 0
    assert page.locator("form.booking-form").count() == 1
    shot(tab, "booking-cancelled-phone")

    # Authorised now: the guide's call to action books in one tap.
    tab.goto(f"{live_server}/t/guide-demo")
    guide_cta = page.locator("#cta")
    guide_cta.scroll_into_view_if_needed()
    shot(tab, "booking-guide-cta-phone")
    with page.expect_navigation():
        guide_cta.get_by_role("button", name="预约免费量房").click()
    assert page.url.startswith(f"{live_server}/t/guide-demo/book")
    assert "已预约" in text(tab, "#booking") and "免费量房" in text(tab, "#booking")
    tab.assert_clean()

    # Sales: the booking at the top of the leads page, marked contacted in place.
    staff = open_tab("phone")
    sign_in(staff, live_server, ADMIN_USERNAME, ADMIN_PASSWORD)
    staff.goto(f"{live_server}/staff/leads")
    inbox = staff.page.locator("#bookings")
    row = inbox.locator("tr.booking", has_text="免费量房").first
    row.wait_for()
    assert "待联系" in row.inner_text()
    assert "139****5151" in row.inner_text()
    assert "预约免费上门量房" not in inbox.inner_text()  # the cancelled one is not open
    shot(staff, "booking-inbox-phone")
    with staff.page.expect_response(lambda r: "/staff/bookings/" in r.url) as marked:
        row.get_by_role("button", name="标为已联系").click()
    assert marked.value.status == 200
    staff.page.locator("#bookings tr.booking-contacted").first.wait_for()
    assert "已联系" in text(staff, "#bookings")
    shot(staff, "booking-inbox-marked-phone")
    staff.assert_clean()
