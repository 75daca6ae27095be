"""A marketer edits the renovation price table in Chromium: the live preview follows, a bad cell
is marked beside the input, the draft is saved, the publish page shows the diff and the replayed
submission, and after publishing the visitor's earlier result is unchanged on the lead page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, Tab
from tests.e2e.steps import open_staff, pass_gate
from tests.e2e.test_staff_browser import no_horizontal_scroll, sign_in

pytestmark = pytest.mark.e2e

PHONE = "13500003333"
FLOOR_CELL = 'input[name="tables.unit_price.values.2.1"]'
WALL_CELL = 'input[name="tables.unit_price.values.3.1"]'


def wan(text: str) -> float:
    match = re.search(r"¥([\d.]+)(万?)", text)
    assert match, text
    return float(match.group(1)) * (10_000 if match.group(2) else 1)


def visitor_result(tab: Tab, base: str, slug: str = "renovation") -> str:
    page = tab.page
    tab.goto(f"{base}/t/{slug}")
    page.locator('input[name="area"]').fill("100")
    page.locator("form.calc-form button[type=submit]").click()
    page.locator("#result .headline").wait_for()
    return str(page.locator("#result .headline").first.inner_text())


def test_marketer_edits_previews_and_publishes(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    # A visitor uses v1 and leaves a phone number.
    visitor = open_tab("phone")
    v1_total = visitor_result(visitor, live_server)
    vp = visitor.page
    pass_gate(visitor, live_server, PHONE)
    vp.locator("table.breakdown").wait_for()

    # The marketer opens the editor at a desk.
    desk = open_staff(open_tab, live_server)
    page = desk.page
    desk.goto(f"{live_server}/staff/calculators/")
    page.locator('a[href="/staff/calculators/renovation"]').first.click()
    page.locator(FLOOR_CELL).wait_for()
    headline = page.locator("#preview .preview-headline").first
    before = headline.inner_text()
    desk.screenshot("editor-desktop", full_page=False)

    # Live preview: a 4× flooring price raises the sample estimate without saving anything.
    floor = float(page.locator(FLOOR_CELL).input_value())
    page.locator(FLOOR_CELL).fill(f"{floor * 4:g}")
    page.wait_for_function(
        "(before) => document.querySelector('#preview .preview-headline')?.innerText !== before",
        arg=before,
    )
    assert wan(headline.inner_text()) > wan(before)

    # A cell that is not a number is marked beside the input, and cleared when fixed.
    wall = page.locator(WALL_CELL).input_value()
    page.locator(WALL_CELL).fill("abc")
    page.locator(".js-inline-error").first.wait_for()
    assert page.locator(WALL_CELL).get_attribute("aria-invalid") == "true"
    desk.screenshot("editor-inline-error", full_page=False)
    page.locator(WALL_CELL).fill(wall)
    page.locator("#preview .preview-headline").wait_for()
    page.wait_for_function("() => !document.querySelector('.js-inline-error')")

    # Save the draft (htmx), then review and publish.
    page.locator(".editor-actions button[type=submit]").click()
    page.locator(".editor-actions .notice").wait_for()
    page.locator('.editor-actions a[href$="/publish"]').click()
    page.locator("table.replay").wait_for()
    page.locator("#raw-diff summary").click()
    page.locator("pre.diff .dadd").first.wait_for()
    assert page.locator("table.replay tr.changed").count() >= 1
    assert v1_total in page.locator("table.replay").inner_text()
    desk.screenshot("editor-publish-review")
    page.locator('form[action$="/publish"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/versions\?published=2$"))
    assert "v2" in page.locator("table.versions").inner_text()

    # The lead still shows the v1 answer; a new visit gets the v2 price.
    desk.goto(f"{live_server}/staff/leads")
    page.locator("table a[href^='/staff/leads/']").first.click()
    page.wait_for_load_state("networkidle")
    assert v1_total in page.locator("main").inner_text()
    v2_total = visitor_result(visitor, live_server)
    assert wan(v2_total) > wan(v1_total)

    # The editor is usable on a phone too (stacked, no sideways scrolling of the page).
    phone = open_tab("phone")
    sign_in(phone, live_server, ADMIN_USERNAME, ADMIN_PASSWORD)
    phone.goto(f"{live_server}/staff/calculators/renovation")
    phone.screenshot("editor-phone", full_page=False)
    no_horizontal_scroll(phone)
    for tab in (visitor, desk, phone):
        tab.assert_clean()


# --- issue 12, item 13: an editor for marketers, at a desk (1280 x 800) ----------------------

SHOTS = Path("/tmp/shots/editor")


def shot(tab: Tab, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page, caret="initial")
    tab.screenshot(name, full_page=full_page)


def double_the_floor_price(desk: Tab, base: str, slug: str) -> float:
    """In the editor: the 精装 flooring price doubled and saved; returns the old price."""
    page = desk.page
    desk.goto(f"{base}/staff/calculators/{slug}")
    floor = float(page.locator(FLOOR_CELL).input_value())
    page.locator(FLOOR_CELL).fill(f"{floor * 2:g}")
    page.locator(".editor-actions button[type=submit]").click()
    page.locator(".editor-actions .notice").wait_for()
    return floor


def new_calculator(live_server: str, open_tab: Callable[..., Tab], slug: str) -> Tab:
    """A marketer at a desk with a new renovation calculator (a draft copied from the built-in)
    open in the editor."""
    desk = open_staff(open_tab, live_server)
    desk.goto(f"{live_server}/staff/calculators/")
    page = desk.page
    page.locator('select[name="builtin"]').select_option("renovation")
    page.locator('input[name="slug"]').fill(slug)
    with page.expect_navigation():
        page.get_by_role("button", name="创建草稿").click()
    assert page.url == f"{live_server}/staff/calculators/{slug}", page.url
    page.locator("#preview .preview-headline").wait_for()
    return desk


def press(tab: Tab, op: str, refused: bool = False) -> None:
    """Click the editor button that posts ``op``; wait for the editor to come back."""
    page = tab.page
    # Let the live preview of what was just typed finish first (it waits 400 ms for typing to
    # stop): the answer replaces the whole editor, preview included.
    page.wait_for_timeout(500)
    page.wait_for_load_state("networkidle")
    if refused:
        tab.expect_failed_load(page.url.split("?")[0] + "/draft")
    with page.expect_response(lambda r: r.url.endswith("/draft")) as answer:
        page.locator(f'button[name="op"][value="{op}"]').click()
    assert answer.value.status == (400 if refused else 200), answer.value.status
    page.wait_for_load_state("networkidle")


def test_tables_are_labelled_and_rows_added_and_removed_in_forms(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    desk = new_calculator(live_server, open_tab, "reno-rows")
    page = desk.page
    table = page.locator('fieldset[data-path="tables.unit_price"]')
    # Rows read in words; the key formulas use is the grey detail under it.
    floor_label = table.locator('input[name="tables.unit_price.row_labels.2"]')
    assert floor_label.get_attribute("placeholder") == "地面"
    assert table.locator('tr[data-row="floor"] th code.key').inner_text() == "floor"
    assert page.locator(FLOOR_CELL).get_attribute("aria-label") == "地面 × 精装"
    tiers = page.locator('fieldset[data-path="tables.material_factor"] input.row-label')
    assert tiers.first.get_attribute("placeholder") == "1线城市"
    shot(desk, "tables-labelled")

    # Add a row by its label: it gets a cell per column, starting at 0. A column gets a label
    # of its own on the way (the same save).
    fee = 'input[name="tables.design_fee.values.0.0"]'
    assert page.locator(fee).get_attribute("aria-label") == "简装 × 1线城市"
    page.locator('input[name="tables.design_fee.col_labels.0"]').fill("北上广深")
    page.locator('input[name="new_row.unit_price.label"]').fill("阳台")
    press(desk, "add_row:unit_price")
    assert page.locator(fee).get_attribute("aria-label") == "简装 × 北上广深"
    row = page.locator('tr[data-row="阳台"]')
    assert row.locator("td input[inputmode=decimal]").count() == 3
    assert row.locator("td input[inputmode=decimal]").first.input_value() == "0"
    table.scroll_into_view_if_needed()
    shot(desk, "table-row-added")
    assert page.locator(".editor-actions .notice").is_visible()

    # A row a formula still looks up is refused with the formulas' results named; nothing changes.
    press(desk, "remove_row:unit_price:2", refused=True)
    problem = page.locator('p[data-error-for="remove.unit_price.2"]')
    assert "「地面」" in problem.inner_text() and "没有删除" in problem.inner_text()
    assert table.locator('tr[data-row="floor"]').count() == 1
    shot(desk, "row-remove-refused")
    desk.goto(f"{live_server}/staff/calculators/reno-rows")
    assert table.locator('tr[data-row="floor"]').count() == 1
    assert table.locator('tr[data-row="阳台"]').count() == 1

    # The new row can go again.
    press(desk, "remove_row:unit_price:11")
    assert table.locator('tr[data-row="阳台"]').count() == 0
    desk.assert_clean()


def test_results_are_ticked_added_and_removed_by_label(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    desk = new_calculator(live_server, open_tab, "reno-results")
    page = desk.page
    results = page.locator("table.results-list")
    assert results.locator('tr[data-output="total_range"] th a').inner_text() == "预估装修总价"
    assert page.locator('input[name="teaser"]').count() == 0  # no list of keys to type
    # Tick "设计费单价" before the gate: the preview shows it there at once.
    results.get_by_label("验证前显示：设计费单价").check()
    page.locator("#preview .preview-label", has_text="设计费单价").wait_for()
    shot(desk, "results-ticked")

    # Add a result with a label and a formula; it shows after the gate.
    page.locator('input[name="new_output.label"]').fill("每平方米人工费")
    page.locator('textarea[name="new_output.formula"]').fill("labour_total / area")
    press(desk, "add_output")
    assert results.locator("th a", has_text="每平方米人工费").count() == 1
    assert results.get_by_label("验证前显示：设计费单价").is_checked()
    page.locator("#preview .preview-lines .what", has_text="每平方米人工费").wait_for()

    # A result another result's text shows is refused, named in words; nothing changes.
    press(desk, "remove_output:total", refused=True)
    problem = page.locator('p[data-error-for="remove.total"]')
    assert "「说明」" in problem.inner_text(), problem.inner_text()
    assert results.locator('tr[data-output="total"]').count() == 1
    shot(desk, "result-remove-refused")

    # A bad formula in a new result is refused and the result is not added.
    page.locator('input[name="new_output.label"]').fill("坏的")
    page.locator('textarea[name="new_output.formula"]').fill("area *")
    press(desk, "add_output", refused=True)
    # The refusal is swapped in after its answer arrives: wait for it rather than race it.
    page.locator('p[data-error-for="new_output.formula"]').wait_for(state="visible")
    assert results.locator("th a", has_text="坏的").count() == 0
    desk.goto(f"{live_server}/staff/calculators/reno-results")
    assert results.locator("th a", has_text="坏的").count() == 0
    key = results.locator("tr", has_text="每平方米人工费").get_attribute("data-output")
    press(desk, f"remove_output:{key}")
    assert results.locator("th a", has_text="每平方米人工费").count() == 0
    desk.assert_clean()


def test_questions_are_added_and_removed_in_forms(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    desk = new_calculator(live_server, open_tab, "reno-questions")
    page = desk.page
    page.locator("#p-questions > summary").click()
    page.locator('input[name="new_field.label"]').fill("阳台数量")
    page.locator('select[name="new_field.kind"]').select_option("count")
    page.locator('select[name="new_field.step"]').select_option(label="房屋信息")
    page.locator('input[name="new_field.max"]').fill("3")
    press(desk, "add_field")
    added = page.locator("#p-questions details.item", has_text="阳台数量")
    assert added.count() == 1
    assert page.locator(".sample label", has_text="阳台数量").count() == 1
    shot(desk, "question-added")

    # A question formulas use is refused, with who uses it; nothing changes.
    if not page.locator("#p-questions[open]").count():
        page.locator("#p-questions > summary").click()
    page.locator('details[data-path="fields.area"] > summary').click()
    press(desk, "remove_field:area", refused=True)
    problem = page.locator('p[data-error-for="remove.area"]')
    assert "「建筑面积」" in problem.inner_text() and "没有删除" in problem.inner_text()
    assert page.locator('details[data-path="fields.area"]').count() == 1
    shot(desk, "question-remove-refused")

    key = added.get_attribute("data-path").split(".")[1]  # type: ignore[union-attr]
    page.locator(f'details[data-path="fields.{key}"] > summary').click()
    press(desk, f"remove_field:{key}")
    assert page.locator("#p-questions details.item", has_text="阳台数量").count() == 0
    desk.assert_clean()


def test_formulas_are_grouped_by_the_result_they_compute(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    desk = new_calculator(live_server, open_tab, "reno-formulas")
    page = desk.page
    groups = page.locator("#p-formulas details.formula-group")
    summaries = [s.strip() for s in groups.locator("summary strong").all_inner_texts()]
    assert summaries[:2] == ["预估装修总价", "材料费"], summaries
    assert "地面" in summaries and len(summaries) >= 10
    # Folded: no formula is on screen until its group is opened.
    assert not page.locator('textarea[name="variables.cost_floor"]').is_visible()
    floor = groups.filter(has=page.locator("summary strong", has_text="地面")).first
    floor.locator("summary").click()
    assert page.locator('textarea[name="variables.cost_floor"]').is_visible()
    assert floor.locator("textarea").count() == 4
    floor.scroll_into_view_if_needed()
    shot(desk, "formulas-grouped")
    desk.assert_clean()


def test_preview_is_readable_at_a_desk(live_server: str, open_tab: Callable[..., Tab]) -> None:
    desk = new_calculator(live_server, open_tab, "reno-preview")
    page = desk.page
    pane = page.locator("#preview")
    box = pane.bounding_box()
    assert box is not None and box["width"] >= 400, box
    assert pane.evaluate("e => e.scrollWidth - e.clientWidth") <= 0
    right = box["x"] + box["width"]
    lines = page.locator("#preview .preview-lines li.line")
    assert lines.count() >= 10
    for i in range(lines.count()):
        line = lines.nth(i)
        shape = line.bounding_box()
        assert shape is not None and shape["width"] >= 360, (i, shape)
        assert shape["x"] + shape["width"] <= right, (i, shape, box)
        label = line.locator(".what").bounding_box()
        assert label is not None and label["height"] < 50, (line.inner_text(), label)  # ≤ 2 lines
    page.locator("#preview .preview-lines").scroll_into_view_if_needed()
    shot(desk, "preview-desk")
    desk.assert_clean()


def test_publish_review_shows_what_changes_for_visitors(
    live_server: str, open_tab: Callable[..., Tab]
) -> None:
    desk = new_calculator(live_server, open_tab, "reno-review")
    page = desk.page
    desk.goto(f"{live_server}/staff/calculators/reno-review/publish")
    with page.expect_navigation():
        page.get_by_role("button", name="发布为新版本").click()
    visitor = open_tab("phone")
    answered = visitor_result(visitor, live_server, "reno-review")

    # Double the 精装 flooring price and save.
    floor = double_the_floor_price(desk, live_server, "reno-review")
    desk.goto(f"{live_server}/staff/calculators/reno-review/publish")

    # The button is on the first screen; the figures above everything else.
    button = page.get_by_role("button", name="发布为新版本")
    top = button.bounding_box()
    assert top is not None and top["y"] + top["height"] < 800, top
    summary = page.locator(".publish-summary").inner_text()
    assert "1 个价格有变动" in summary.replace("\n", " "), summary
    shot(desk, "publish-review-top")
    # The price, by its labels, old → new.
    change = page.locator("table.price-changes tbody tr")
    assert change.count() == 1
    cells = change.first.locator("td").all_inner_texts()
    assert cells[1:] == ["地面", "精装", f"{floor:g}", f"{floor * 2:g}"], cells
    # Sample answers and the visitor's real answer get a different result.
    assert page.locator("table.samples tr.changed").count() >= 1
    assert "地面" in page.locator("table.samples").inner_text()
    assert answered in page.locator("table.replay").inner_text()
    assert page.locator("table.replay tr.changed").count() == 1
    # The raw definition diff is folded away.
    assert not page.locator("pre.diff").is_visible()
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 4000, height
    shot(desk, "publish-review", full_page=True)
    with page.expect_navigation():
        button.click()
    assert "/versions?published=2" in page.url
    desk.assert_clean()
    visitor.assert_clean()
