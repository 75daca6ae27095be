"""Every question the app asks before it acts, answered "cancel" in Chromium at phone size
(390x844): nothing changes (issue 12, item 9: cancelling 确定现在关闭这个抢购吗？ once closed
the grab anyway, because the hand-written confirm handler could not stop htmx).

An htmx form asks with htmx's own ``hx-confirm``; a plain form (a full page post) with
``data-confirm`` (static/js/leadkit.js), which htmx never sees. The templates are read for
every question, so a new one fails here until it is tested. Answering OK is tested where the
action is (closing a grab: tests/e2e/test_host_console_browser.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from app.grabs.host import CLOSE_NOW, FOLLOW_SCHEDULE, OPEN_NOW
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab
from tests.e2e.test_editor_browser import double_the_floor_price, new_calculator
from tests.e2e.test_held_vouchers_browser import redeem_at_the_store, win
from tests.e2e.test_host_console_browser import (
    api_state,
    csrf,
    grab_form,
    host_tab,
    make_grab,
    open_host,
    shot,
)
from tests.e2e.test_staff_browser import sign_in

pytestmark = pytest.mark.e2e

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
QUESTION = re.compile(r"""(hx|data)-confirm="\{\{ _\(['"](.+?)['"](?:,|\))""")
# Each question and the test that cancels it (here unless named with its file).
CANCELLED_IN = {
    "Close this grab now?": "test_cancelling_leaves_everything_as_it_was",
    "Lift this limit?": "test_cancelling_leaves_everything_as_it_was",
    "Revoke this token?": "test_cancelling_leaves_everything_as_it_was",
    "Publish version %(n)s again as a new version?": "test_cancelling_a_roll_back",
    "Undo this redemption?": "test_cancelling_an_undo",
    "Delete all your data? This cannot be undone.": (
        "test_privacy_browser.py::test_notice_and_manage_on_a_phone"
    ),
}


def questions_in_templates() -> set[str]:
    """Each question the templates ask; the host console's come from its actions."""
    found: set[str] = set()
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        found.update(question for _, question in QUESTION.findall(text))
        if path.name == "_host.html":
            assert 'hx-confirm="{{ _(action.confirm) }}"' in text
            found.update(a.confirm for a in (OPEN_NOW, CLOSE_NOW, FOLLOW_SCHEDULE) if a.confirm)
    return found


def test_every_question_is_cancelled_somewhere() -> None:
    assert questions_in_templates() == set(CANCELLED_IN)
    confirms = sum(p.read_text().count("confirm=") for p in TEMPLATES.rglob("*.html"))
    assert confirms == len(CANCELLED_IN), "a question the reader above does not see"


def test_an_htmx_form_asks_the_htmx_way() -> None:
    """data-confirm on an htmx form asks, and htmx posts whatever the answer."""
    wrong = []
    for path in TEMPLATES.rglob("*.html"):
        for tag in re.findall(r"<form\b[^>]*>", path.read_text(), flags=re.S):
            if "data-confirm" in tag and re.search(r"\shx-(post|get|put|patch|delete|boost)", tag):
                wrong.append(f"{path.name}: {tag[:80]}")
    assert wrong == []


def cancel(tab: Tab, button: Any, expected: str) -> None:
    """Tap ``button``, answer its question "cancel", give a request time to land."""
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    tab.page.once("dialog", dismiss)
    button.click()
    tab.page.wait_for_timeout(1000)
    assert asked == [expected]


def test_cancelling_leaves_everything_as_it_was(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    admin = host_tab(open_tab, live_server)  # a phone
    page = admin.page

    # Closing an open grab.
    make_grab(admin, live_server, grab_form("confirm-open", 3, -dt.timedelta(minutes=1)))
    open_host(admin, live_server, "confirm-open")
    cancel(admin, page.locator("button[data-mode=closed]"), "确定现在关闭这个抢购吗？")
    assert api_state(admin, live_server, "confirm-open") == "open"
    expect(page.locator("[data-host-state]")).to_have_text("进行中")

    # Revoking an API token.
    admin.goto(f"{live_server}/staff/admin/tokens")
    page.locator("input[name=name]").fill("confirm-token")
    with page.expect_navigation():
        page.locator("form[action='/staff/admin/tokens'] button[type=submit]").click()
    admin.goto(f"{live_server}/staff/admin/tokens")
    row = page.locator("tr", has_text="confirm-token")
    cancel(admin, row.locator("form[action$='/revoke'] button"), "确定吊销此令牌吗？")
    admin.goto(f"{live_server}/staff/admin/tokens")
    expect(row.locator("form[action$='/revoke'] button")).to_be_visible()  # still active

    # Lifting a sign-in limit: four wrong passwords for one name slow that name down.
    stranger = open_tab("phone")
    stranger.goto(f"{live_server}/staff/login")
    for _ in range(4):
        stranger.expect_failed_load(f"{live_server}/staff/login")
        stranger.page.request.post(
            f"{live_server}/staff/login",
            form={"_csrf_token": csrf(stranger), "username": "confirm-x", "password": "wrong"},
        )
    admin.goto(f"{live_server}/staff/admin/lockouts")
    limit = page.locator("#lockout-list tr[data-username='confirm-x']").first
    expect(limit).to_be_visible()
    cancel(admin, limit.locator("button"), "确定解除此限制？")
    admin.goto(f"{live_server}/staff/admin/lockouts")
    expect(page.locator("#lockout-list tr[data-username='confirm-x']").first).to_be_visible()
    shot(admin, "confirm-lockouts-phone")
    admin.assert_clean()


def test_cancelling_a_roll_back(live_server: str, open_tab: Callable[..., Tab]) -> None:
    desk = new_calculator(live_server, open_tab, "confirm-calc")  # the editor is a desk's
    page = desk.page
    for change in (False, True):  # version 1, then version 2 with a price changed
        if change:
            double_the_floor_price(desk, live_server, "confirm-calc")
        desk.goto(f"{live_server}/staff/calculators/confirm-calc/publish")
        with page.expect_navigation():
            page.get_by_role("button", name="发布为新版本").click()

    admin = open_tab("phone")
    sign_in(admin, live_server, ADMIN_USERNAME, ADMIN_PASSWORD)
    admin.goto(f"{live_server}/staff/calculators/confirm-calc/versions")
    rows = admin.page.locator("table tbody tr").count()
    rollback = admin.page.locator("form[action$='/versions/1/rollback'] button")
    cancel(admin, rollback, "把版本 1 重新发布为一个新版本？")
    assert admin.page.url == f"{live_server}/staff/calculators/confirm-calc/versions"
    admin.goto(f"{live_server}/staff/calculators/confirm-calc/versions")
    assert admin.page.locator("table tbody tr").count() == rows == 2  # no version 3
    shot(admin, "confirm-versions-phone")
    admin.assert_clean()


def test_cancelling_an_undo(live_server: str, open_tab: Callable[..., Tab]) -> None:
    counter = host_tab(open_tab, live_server)
    make_grab(counter, live_server, grab_form("confirm-win", 3, -dt.timedelta(minutes=1)))
    visitor = open_tab("phone")
    code = win(visitor, live_server, "confirm-win", "13700003333")
    redeem_at_the_store(counter, live_server, code)
    undo = counter.page.locator("form[action$='/undo'] button").first
    cancel(counter, undo, "确定撤销这次核销吗？")
    counter.goto(f"{live_server}/staff/vouchers")
    expect(counter.page.locator("form[action$='/undo'] button").first).to_be_visible()
    shot(counter, "confirm-vouchers-phone")
    counter.assert_clean()
