"""The visitor's path through a calculator and the phone gate at phone size (390×844), where a
visitor loses their place (issue 12, items 1, 2 and 6): where the page lands after each step,
the gate surviving a reload, and what the pages and the PDF say."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    STAFF_ENV,
    Tab,
    server_url,
)
from tests.e2e.steps import ask_code, dev_code, enter_code, grab_form, pass_gate, staff_with_grab

pytestmark = pytest.mark.e2e


# A server of this module's own: its visitors ask for more codes from one address than the
# proof of work lets through by default (LEADKIT_OTP_POW_IP_HOURLY).
live_server = server_url("visitor-path", {**STAFF_ENV, "LEADKIT_OTP_POW_IP_HOURLY": "1000"})


SHOTS = Path("/tmp/shots/visitor")
HEIGHT = 844


def shot(tab: Tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / f"{name}.png"), caret="initial")


def in_view(page: Any, selector: str) -> bool:
    """The top of the first element matching ``selector`` is on the screen."""
    box = page.locator(selector).first.bounding_box()  # relative to the viewport
    assert box is not None, selector
    seen = -2 <= box["y"] < HEIGHT - 40
    assert seen, (selector, box, page.evaluate("window.scrollY"))
    return seen


def fully_in_view(page: Any, selector: str) -> bool:
    """The whole of the first element matching ``selector`` is on the screen."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    seen = box["y"] >= -2 and box["y"] + box["height"] <= HEIGHT
    assert seen, (selector, box, page.evaluate("window.scrollY"))
    return seen


def to_teaser(tab: Tab, base: str, slug: str) -> None:
    tab.goto(f"{base}/t/{slug}")
    tab.page.get_by_role("button", name="开始测算").click()
    tab.page.locator("#result .headline").wait_for()


@pytest.mark.parametrize(
    ("slug", "phone"), [("renovation", "13500003331"), ("insurance", "13500003332")]
)
def test_the_page_lands_on_the_result_it_just_unlocked(
    live_server: str, tab: Tab, slug: str, phone: str
) -> None:
    page = tab.page
    to_teaser(tab, live_server, slug)
    # The teaser comes into view after 开始测算, and the gate's heading under it (the insurance
    # form is long: they were below the fold).
    assert fully_in_view(page, "#result .headline")
    assert fully_in_view(page, "#gate h2")
    shot(tab, f"{slug}-teaser")
    pass_gate(tab, live_server, phone)
    page.locator("table.breakdown").wait_for()
    page.wait_for_load_state("networkidle")
    # The page loads again on the result, not at the top of the form ~1,800 px above it.
    assert page.evaluate("window.scrollY") > 300
    assert in_view(page, "#result")
    assert in_view(page, "table.breakdown")
    assert page.url.endswith(f"/t/{slug}#result")
    shot(tab, f"{slug}-full-landed")
    tab.assert_clean()


def test_without_javascript_the_gate_lands_on_the_result_too(
    live_server: str, browser: Any
) -> None:
    from tests.e2e.conftest import PHONE

    context = browser.new_context(**PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server}/t/renovation")
        page.get_by_role("button", name="开始测算").click()
        page.wait_for_load_state()
        # A plain post lands on the teaser through the form's #land.
        assert page.url.endswith("/t/renovation/evaluate#land")
        assert in_view(page, "#result")
        page.get_by_label("手机号").fill("13500003333")
        page.get_by_role("checkbox", name="我已阅读并同意").check()
        page.get_by_role("button", name="获取验证码").click()
        page.wait_for_load_state()
        page.locator("input[name=code]").fill(dev_code(live_server, "13500003333"))
        page.get_by_role("button", name="验证并查看").click()
        page.wait_for_load_state()
        assert page.url.endswith("/t/renovation#result")
        assert in_view(page, "#result") and in_view(page, "table.breakdown")
        page.screenshot(path=str(SHOTS / "renovation-full-no-js.png"))
    finally:
        context.close()


def test_a_refused_answer_keeps_what_was_typed_and_is_shown(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    tab = open_tab("phone", f"{live_server}/t/renovation")
    page = tab.page
    # Some web-views do not check forms before sending them: the server refuses instead.
    page.evaluate("document.querySelector('form.calc-form').noValidate = true")
    page.get_by_label("建筑面积").fill("600")
    tab.expect_failed_load(f"{live_server}/t/renovation/evaluate")
    page.get_by_role("button", name="开始测算").click()
    page.locator(".field.invalid").first.wait_for()
    page.wait_for_timeout(300)
    field = page.locator(".field.invalid").first
    assert "500" in field.locator(".field-error").inner_text()
    assert page.get_by_label("建筑面积").input_value() == "600"
    assert in_view(page, ".field.invalid")
    assert page.evaluate("document.activeElement && document.activeElement.name") == "area"
    shot(tab, "renovation-refused-answer")
    tab.assert_clean()


def test_the_gate_survives_a_reload_with_the_code_on_its_way(live_server: str, tab: Tab) -> None:
    page = tab.page
    phone = "13500003334"
    to_teaser(tab, live_server, "renovation")
    ask_code(page, phone)
    # The web-view reloads while the visitor reads the SMS in another app.
    page.reload(wait_until="networkidle")
    code_box = page.locator("input[name=code]")
    assert code_box.is_visible()
    assert "135****3334" in page.locator("#gate .sent-to").inner_text()
    resend = page.get_by_role("button", name=re.compile("重新发送"))
    assert resend.is_disabled()
    match = re.search(r"\((\d+)s\)", resend.inner_text())
    assert match and 30 < int(match.group(1)) <= 60, resend.inner_text()
    shot(tab, "gate-after-reload")
    # A mistyped number can be changed: the number form, and the same number brings the box
    # of the code already sent back (not "a code was just sent").
    page.get_by_role("button", name="换个号码").click()
    page.get_by_role("button", name="获取验证码").wait_for()
    assert page.locator("input[name=code]").count() == 0
    ask_code(page, phone)
    assert page.locator("#gate .alert").count() == 0
    enter_code(page, live_server, phone)  # the same code box
    page.locator("table.breakdown").wait_for()
    # Authorised: nothing pending any more.
    page.reload(wait_until="networkidle")
    assert page.locator("#gate").count() == 0
    tab.assert_clean()


def test_a_refusal_keeps_the_consent_ticked(live_server: str, tab: Tab) -> None:
    page = tab.page
    to_teaser(tab, live_server, "insurance")
    page.get_by_label("手机号").fill("12345")
    page.get_by_role("checkbox", name="我已阅读并同意").check()
    tab.expect_failed_load(f"{live_server}/gate/code")
    page.get_by_role("button", name="获取验证码").click()
    page.locator("#gate .alert").wait_for()
    assert page.get_by_role("checkbox", name="我已阅读并同意").is_checked()
    assert page.get_by_label("手机号").input_value() == "12345"
    shot(tab, "gate-refused-consent-kept")
    tab.assert_clean()


def test_each_kind_says_what_its_gate_is_for(live_server: str, tab: Tab) -> None:
    page = tab.page
    to_teaser(tab, live_server, "renovation")
    calculator = page.locator("#gate").inner_text()
    assert "验证手机号，查看完整测算结果" in calculator
    assert "发送结果" not in calculator and "PDF" in calculator
    # The note under 材料费 speaks to a homeowner: no coefficient.
    tab.goto(f"{live_server}/t/guide-demo")
    guide = page.locator("#gate").inner_text()
    assert "阅读完整指南" in guide and "发送结果" not in guide
    assert guide != calculator
    # The gate's own forms keep the kind's words (asking for a code re-renders the partial).
    ask_code(page, "13500003335")
    assert "阅读完整指南" in page.locator("#gate").inner_text()
    shot(tab, "guide-gate-copy")
    # The guide lands on the guide it unlocked.
    enter_code(page, live_server, "13500003335")
    page.locator("#result").wait_for()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/t/guide-demo#result")
    assert in_view(page, "#result")
    shot(tab, "guide-landed")
    tab.assert_clean()


def test_renovation_notes_and_timeline_read_right(live_server: str, tab: Tab) -> None:
    page = tab.page
    phone = "13500003336"
    tab.goto(f"{live_server}/t/renovation")
    page.get_by_label("所在城市").select_option("北京")
    page.get_by_label("建筑面积").fill("120")
    page.get_by_role("radio", name="精装").check()
    page.get_by_role("button", name="开始测算").click()
    page.locator("#result .headline").wait_for()
    pass_gate(tab, live_server, phone)
    page.locator("table.breakdown").wait_for()
    table = page.locator("table.breakdown").inner_text()
    assert "系数" not in table
    timeline = page.locator("tr", has_text="预计工期").locator("td").inner_text()
    days = re.fullmatch(r"(\d+)～(\d+)天", timeline.strip())
    assert days, timeline
    low, high = int(days.group(1)), int(days.group(2))
    assert 60 <= low < high <= 100, (low, high)
    page.locator("tr", has_text="预计工期").scroll_into_view_if_needed()
    shot(tab, "renovation-120-timeline")

    # The PDF: the explanation (说明) starts at the left margin like the labels, not ragged
    # at the right of the value column.
    response = tab.context.request.get(f"{live_server}/t/renovation/report.pdf")
    assert response.status == 200
    pdf = response.body()
    (SHOTS / "renovation-report.pdf").write_bytes(pdf)
    words = pdf_words(pdf)
    label_x = min(x for x, text in words if text.startswith("预计工期"))
    summary = [x for x, text in words if text.startswith("以上按")]
    assert summary, [t for _, t in words][:80]
    assert abs(summary[0] - label_x) < 5, (summary, label_x)
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", str(SHOTS / "renovation-report.pdf"), str(SHOTS / "pdf")],
        check=True,
    )
    tab.assert_clean()


def test_the_grab_says_what_to_do_in_its_state(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    form = grab_form("e2e-grab-words", 3, dt.timedelta(seconds=12), hours=1, prefix="W")
    staff_with_grab(open_tab, live_server, form)

    tab = open_tab("phone")
    page = tab.page
    page.goto(f"{live_server}/t/e2e-grab-words", wait_until="load")  # SSE: never network-idle
    note = page.locator(".grab-gate-note:visible").first
    expect(note).to_have_text("先验证手机号，开抢时即可一键抢。", use_inner_text=True)
    gate = page.locator("#gate").inner_text()
    assert "发送结果" not in gate and "验证手机号" in gate
    shot(tab, "grab-scheduled-gate")
    # Once it opens, nothing says "after it opens" any more.
    expect(page.locator("#grab-panel")).to_have_attribute("data-state", "open", timeout=40_000)
    expect(note).to_have_text("验证手机号后即可立即抢。", use_inner_text=True)
    assert "开抢后" not in page.locator("#grab-panel").inner_text()
    shot(tab, "grab-open-gate")
    # A reload renders the open state's words on the server as well.
    page.reload(wait_until="load")
    expect(page.locator(".grab-gate-note:visible").first).to_have_text(
        "验证手机号后即可立即抢。", use_inner_text=True
    )
    # A code asked for on the grab survives a reload too (the visitor went to read the SMS).
    # (A number of its own: the guide test's number is still within its resend wait.)
    ask_code(page, "13500003337")
    page.reload(wait_until="load")
    expect(page.locator("input[name=code]")).to_be_visible()
    assert "135****3337" in page.locator("#gate .sent-to").inner_text()
    shot(tab, "grab-gate-after-reload")
    tab.assert_clean()


def pdf_words(pdf: bytes) -> list[tuple[float, str]]:
    """(x of the left edge in pt, text) of each line of the PDF, from pdftotext's boxes."""
    html = subprocess.run(
        ["pdftotext", "-bbox-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode("utf-8")
    lines = []
    for match in re.finditer(r'<line xMin="([\d.]+)"[^>]*>(.*?)</line>', html, re.S):
        text = "".join(re.findall(r">([^<]*)</word>", match.group(2)))
        lines.append((float(match.group(1)), text))
    return lines
