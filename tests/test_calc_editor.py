"""The marketer's calculator editor: drafts, live preview, raw TOML, publish, replay, history,
roll back — and that nothing a refused edit sends changes the draft or what visitors see."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from app.calculators import editor
from app.demo.service import seed_tools
from app.tools.models import Submission, Tool, ToolVersion
from tests import helpers
from tests.helpers import Browserish, soup
from tests.test_calc_flow import authorise, form_values

EDITOR = "/staff/calculators/renovation"
# The tier-1 unit price of 精装 flooring: row "floor", column "精装" of table unit_price.
FLOOR_CELL = "tables.unit_price.values.2.1"


@pytest.fixture
def marketer(client: Browserish) -> Browserish:
    client.run(seed_tools)
    return client.sign_in("mia", "marketer")


def tool_row(client: Browserish, slug: str = "renovation") -> Tool:
    async def work(db: Any) -> Tool:
        return (await db.execute(select(Tool).where(Tool.slug == slug))).scalar_one()

    return client.run(work)  # type: ignore[no-any-return]


def version_numbers(client: Browserish, slug: str = "renovation") -> list[int]:
    async def work(db: Any) -> list[int]:
        tool = (await db.execute(select(Tool).where(Tool.slug == slug))).scalar_one()
        rows = await db.execute(
            select(ToolVersion.number)
            .where(ToolVersion.tool_id == tool.id)
            .order_by(ToolVersion.number)
        )
        return list(rows.scalars())

    return client.run(work)  # type: ignore[no-any-return]


def editor_form(client: Browserish, path: str = EDITOR) -> dict[str, str]:
    """Every value the editor page would post, as a browser would."""
    page = soup(client.get(path))
    form = one(page, "form#editor-form")
    assert form is not None
    return helpers.form_values(form)


def one(doc: Any, selector: str) -> Any:
    node = doc.select_one(selector)
    assert node is not None, selector
    return node


def headline(response: Any) -> str:
    node = one(soup(response), ".preview-headline")
    assert node is not None, response.text[:2000]
    return node.get_text(strip=True)


def money_low(text: str) -> float:
    """'¥25.3万～¥38.1万' → 253000.0"""
    match = re.search(r"¥([\d.]+)(万?)", text)
    assert match, text
    return float(match.group(1)) * (10_000 if match.group(2) else 1)


# --- access ----------------------------------------------------------------------------------


def test_only_marketers_and_admins_edit(client: Browserish) -> None:
    client.run(seed_tools)
    anonymous = client.get("/staff/calculators/", follow_redirects=False)
    assert anonymous.status_code in (302, 303) and "/staff/login" in anonymous.headers["location"]
    client.sign_in("sam", "sales")
    assert client.get("/staff/calculators/").status_code == 403
    assert client.get(EDITOR).status_code == 403


def test_list_and_editor_render(marketer: Browserish) -> None:
    listing = marketer.get("/staff/calculators/")
    assert listing.status_code == 200
    assert "/t/renovation" in listing.text and "/t/insurance" in listing.text
    page = marketer.get(EDITOR)
    assert page.status_code == 200
    doc = soup(page)
    assert doc.select_one(f'input[name="{FLOOR_CELL}"]') is not None
    assert one(doc, 'textarea[name="toml"]') is not None
    assert one(doc, ".preview-headline") is not None  # sample inputs already evaluated
    assert marketer.get("/staff/calculators/nope").status_code == 404


# --- creating --------------------------------------------------------------------------------


def test_create_from_builtin(marketer: Browserish) -> None:
    page = "/staff/calculators/"
    made = marketer.submit(
        page,
        {"builtin": "insurance", "slug": "cover-2026", "title": "家庭保额测算"},
        page=page,
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/staff/calculators/cover-2026"
    tool = tool_row(marketer, "cover-2026")
    assert tool.status == "draft" and tool.current_version is None
    assert tool.draft["title"] == "家庭保额测算"
    assert marketer.get("/t/cover-2026").status_code == 404  # nothing published yet
    before = marketer.count("tool")
    for data, status in (
        ({"builtin": "insurance", "slug": "cover-2026"}, 409),
        ({"builtin": "insurance", "slug": "Bad Slug!"}, 400),
        ({"builtin": "nope", "slug": "fine-slug"}, 400),
        ({"builtin": "renovation", "slug": "x" * 500}, 400),
        ({"builtin": "renovation", "slug": "ok-slug", "title": "长" * 300}, 400),
        ({}, 400),
    ):
        refused = marketer.submit(page, data, page=page)
        assert refused.status_code == status, (data, refused.status_code)
        assert one(soup(refused), ".alert") is not None
    assert marketer.count("tool") == before


# --- preview ---------------------------------------------------------------------------------


def test_preview_follows_a_price_change_without_saving(marketer: Browserish) -> None:
    form = editor_form(marketer)
    before = headline(marketer.submit(f"{EDITOR}/preview", form, page=EDITOR))
    form[FLOOR_CELL] = str(float(form[FLOOR_CELL]) * 3)
    after = headline(marketer.submit(f"{EDITOR}/preview", form, page=EDITOR))
    assert money_low(after) > money_low(before)
    assert tool_row(marketer).draft == editor.definition_data(
        editor.check(tool_row(marketer).draft)
    )
    assert tool_row(marketer).draft["tables"][0]["values"][2][1] != float(form[FLOOR_CELL])


def test_preview_sample_inputs_change_the_result(marketer: Browserish) -> None:
    form = editor_form(marketer)
    small = headline(
        marketer.submit(f"{EDITOR}/preview", {**form, "sample.area": "40"}, page=EDITOR)
    )
    large = headline(
        marketer.submit(f"{EDITOR}/preview", {**form, "sample.area": "200"}, page=EDITOR)
    )
    assert money_low(large) > money_low(small)
    refused = marketer.submit(f"{EDITOR}/preview", {**form, "sample.area": "abc"}, page=EDITOR)
    assert "需要填写数字" in refused.text


def test_problems_are_named_in_the_editors_language(marketer: Browserish) -> None:
    """What the checker says about a draft is worded in the editor's language."""
    form = editor_form(marketer)
    shown = {}
    for lang in ("zh_CN", "en"):
        for name, value in (("variables.grand_total", "no_such_name * 2"), (FLOOR_CELL, "abc")):
            preview = marketer.submit(
                f"{EDITOR}/preview?lang={lang}", {**form, name: value}, page=EDITOR
            )
            assert preview.status_code == 200
            shown[lang, name] = " ".join(
                li.get_text(" ", strip=True)
                for li in soup(preview).select(f'[data-error-for="{name}"]')
            )
    assert "不认识的名字 no_such_name（第 1 个字符）" in shown["zh_CN", "variables.grand_total"]
    assert "Unknown name no_such_name (at character 1)" in shown["en", "variables.grand_total"]
    assert "“abc”不是数字" in shown["zh_CN", FLOOR_CELL]
    assert "“abc” is not a number" in shown["en", FLOOR_CELL]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("variables.grand_total", "__import__('os').system('id')", "variables.grand_total"),
        ("variables.grand_total", "item_base.__class__", "variables.grand_total"),
        ("variables.grand_total", "9**9**9", "variables.grand_total"),
        ("variables.grand_total", "(" * 200 + "1" + ")" * 200, "variables.grand_total"),
        ("variables.grand_total", "no_such_name * 2", "variables.grand_total"),
        ("outputs.total_range.low", "total *", "outputs.total_range.low"),
        (FLOOR_CELL, "abc", FLOOR_CELL),
        (FLOOR_CELL, "1e400", FLOOR_CELL),
        ("fields.area.min", "500", "fields.area"),
        ("fields.area.max", "ten", "fields.area.max"),
        ("title", "", "title"),
        ("intro", "长" * 3000, "intro"),
    ],
)
def test_bad_edits_are_named_in_the_preview_and_change_nothing(
    marketer: Browserish, name: str, value: str, expected: str
) -> None:
    before = tool_row(marketer).draft
    form = {**editor_form(marketer), name: value}
    preview = marketer.submit(f"{EDITOR}/preview", form, page=EDITOR)
    assert preview.status_code == 200
    paths = [li["data-error-for"] for li in soup(preview).select("[data-error-for]")]
    assert any(str(p).startswith(expected) for p in paths), (paths, preview.text[:800])
    saved = marketer.submit(f"{EDITOR}/draft", form, page=EDITOR)
    assert saved.status_code in (400, 409, 422)
    assert one(soup(saved), ".alert") is not None
    assert tool_row(marketer).draft == before


# --- saving ----------------------------------------------------------------------------------


def test_save_draft_keeps_the_live_version(marketer: Browserish) -> None:
    live_before = form_values(marketer, "/t/renovation")
    live_result = marketer.post("/t/renovation/evaluate", data=live_before)
    form = editor_form(marketer)
    form[FLOOR_CELL] = "999"
    saved = marketer.submit(f"{EDITOR}/draft", form, page=EDITOR, headers={"HX-Request": "true"})
    assert saved.status_code == 200
    assert one(soup(saved), ".notice") is not None
    draft = tool_row(marketer).draft
    assert draft["tables"][0]["values"][2][1] == 999
    assert version_numbers(marketer) == [1]
    again = marketer.post("/t/renovation/evaluate", data=live_before)
    assert (
        one(soup(again), ".headline").get_text() == one(soup(live_result), ".headline").get_text()
    )


def test_stale_editor_is_refused(marketer: Browserish) -> None:
    first = editor_form(marketer)
    second = editor_form(marketer)
    first[FLOOR_CELL] = "500"
    assert marketer.submit(f"{EDITOR}/draft", first, page=EDITOR).status_code in (200, 303)
    second[FLOOR_CELL] = "600"
    refused = marketer.submit(f"{EDITOR}/draft", second, page=EDITOR)
    assert refused.status_code == 409
    assert tool_row(marketer).draft["tables"][0]["values"][2][1] == 500


def test_add_and_remove_a_variable(marketer: Browserish) -> None:
    form = {
        **editor_form(marketer),
        "new_variable.name": "vip_discount",
        "new_variable.formula": "grand_total * 0.05",
    }
    assert marketer.submit(f"{EDITOR}/draft", form, page=EDITOR).status_code in (200, 303)
    assert tool_row(marketer).draft["variables"]["vip_discount"] == "grand_total * 0.05"
    clash = {
        **editor_form(marketer),
        "new_variable.name": "vip_discount",
        "new_variable.formula": "1",
    }
    assert marketer.submit(f"{EDITOR}/draft", clash, page=EDITOR).status_code == 400
    form = {**editor_form(marketer), "variables.vip_discount": ""}
    assert marketer.submit(f"{EDITOR}/draft", form, page=EDITOR).status_code in (200, 303)
    assert "vip_discount" not in tool_row(marketer).draft["variables"]


def test_raw_toml(marketer: Browserish) -> None:
    page = soup(marketer.get(EDITOR))
    text = one(page, 'textarea[name="toml"]').text
    base = one(page, 'form[action$="/toml"] input[name="base"]')["value"]
    changed = text.replace('title = "装修预算计算器"', 'title = "装修报价 2026"', 1)
    assert changed != text
    ok = marketer.submit(
        f"{EDITOR}/toml", {"toml": changed, "base": base}, page=EDITOR, follow_redirects=False
    )
    assert ok.status_code == 303
    assert tool_row(marketer).draft["title"] == "装修报价 2026"
    before = tool_row(marketer).draft
    base = editor.draft_hash(before)
    for bad in (
        "title = ",
        'title = "x"',
        changed.replace("grand_total * range_low", "grand_total.__class__"),
    ):
        refused = marketer.submit(f"{EDITOR}/toml", {"toml": bad, "base": base}, page=EDITOR)
        assert refused.status_code in (400, 422), bad[:40]
        assert one(soup(refused), "details#toml .alert") is not None
        assert one(soup(refused), 'textarea[name="toml"]').text == bad  # kept for fixing
    assert tool_row(marketer).draft == before


def test_hostile_formulas_are_refused_by_the_editor_never_a_500(marketer: Browserish) -> None:
    """Formulas whose checks, weakened, crash the checker (IndexError, AttributeError,
    ValueError): each is a 4xx naming the formula, and the draft does not change."""
    page = soup(marketer.get(EDITOR))
    text = one(page, 'textarea[name="toml"]').text
    before = tool_row(marketer).draft
    base = editor.draft_hash(before)
    for formula in (
        "lookup()",
        "lookup(1, grand_total)",
        "lookup(unit_price, 'floor')",
        "lookup(labour_share, 'floor', 1)",
        "grand_total in range_low",
        "grand_total in (1, range_low)",
        "grand_total.x(1)",
        "max(*grand_total)",
        "round(1, 2, 3)",
        "2 ** 1000000",
    ):
        bad = text.replace("grand_total * range_low", formula, 1)
        refused = marketer.submit(f"{EDITOR}/toml", {"toml": bad, "base": base}, page=EDITOR)
        assert refused.status_code == 400, (formula, refused.status_code)
        alert = one(soup(refused), "details#toml .alert").get_text(" ", strip=True)
        assert "outputs.total_range.low" in alert, (formula, alert[:300])
    assert tool_row(marketer).draft == before


# --- publish, replay, history ----------------------------------------------------------------


def test_publish_with_replay_then_history_and_rollback(marketer: Browserish) -> None:
    # A real visitor's submission on v1, with a lead.
    answers = form_values(marketer, "/t/renovation")
    answers.update({"area": "100", "flooring": "true"})
    authorise(marketer)
    v1_page = marketer.post("/t/renovation/evaluate", data=answers)
    v1_total = one(soup(v1_page), ".headline").get_text()

    form = editor_form(marketer)
    form[FLOOR_CELL] = str(float(form[FLOOR_CELL]) * 4)
    assert marketer.submit(f"{EDITOR}/draft", form, page=EDITOR).status_code in (200, 303)

    replay = marketer.get(f"{EDITOR}/replay?n=5")
    assert replay.status_code == 200
    rows = soup(replay).select("table.replay tbody tr")
    assert len(rows) == 1 and "changed" in rows[0]["class"]
    assert v1_total in rows[0].get_text()

    review = marketer.get(f"{EDITOR}/publish")
    assert review.status_code == 200
    doc = soup(review)
    assert doc.select(".diff .dadd") and doc.select(".diff .ddel")
    assert doc.select("table.replay tr.changed")
    base = one(doc, 'form[action$="/publish"] input[name="base"]')["value"]
    published = marketer.submit(
        f"{EDITOR}/publish", {"base": base}, page=f"{EDITOR}/publish", follow_redirects=False
    )
    assert published.status_code == 303
    assert version_numbers(marketer) == [1, 2]
    assert tool_row(marketer).current_version == 2

    # New answers use v2; the old submission keeps its v1 result, on the lead page too.
    v2_page = marketer.post("/t/renovation/evaluate", data=answers)
    assert money_low(one(soup(v2_page), ".headline").get_text()) > money_low(v1_total)

    async def submissions(db: Any) -> list[tuple[int, dict]]:
        rows = await db.execute(
            select(Submission.tool_version, Submission.summary).order_by(Submission.id)
        )
        return [(v, s) for v, s in rows.all()]

    stored = marketer.run(submissions)
    assert [v for v, _ in stored] == [1, 2]
    assert v1_total in stored[0][1].values()

    # Publishing the same draft again is refused.
    again = marketer.submit(
        f"{EDITOR}/publish",
        {"base": editor.draft_hash(tool_row(marketer).draft)},
        page=f"{EDITOR}/publish",
    )
    assert again.status_code == 409
    assert version_numbers(marketer) == [1, 2]

    history = marketer.get(f"{EDITOR}/versions")
    assert history.status_code == 200 and "v1" in history.text and "v2" in history.text
    diff = marketer.get(f"{EDITOR}/diff?a=1&b=2")
    assert diff.status_code == 200 and soup(diff).select(".diff .dadd")
    assert marketer.get(f"{EDITOR}/diff?a=9&b=2").status_code == 404
    assert marketer.get(f"{EDITOR}/diff?a=1&b=evil").status_code == 404

    rolled = marketer.submit(
        f"{EDITOR}/versions/1/rollback", {}, page=f"{EDITOR}/versions", follow_redirects=False
    )
    assert rolled.status_code == 303
    assert version_numbers(marketer) == [1, 2, 3]
    v3_page = marketer.post("/t/renovation/evaluate", data=answers)
    assert one(soup(v3_page), ".headline").get_text() == v1_total
    # Rolling back to the live version is refused; unknown versions are 404.
    assert (
        marketer.submit(f"{EDITOR}/versions/3/rollback", {}, page=f"{EDITOR}/versions").status_code
        == 409
    )
    assert (
        marketer.submit(f"{EDITOR}/versions/42/rollback", {}, page=f"{EDITOR}/versions").status_code
        == 404
    )


def test_publish_needs_csrf_and_a_current_base(marketer: Browserish) -> None:
    assert marketer.raw.post(f"{EDITOR}/publish", data={"base": "x"}).status_code == 403
    stale = marketer.submit(f"{EDITOR}/publish", {"base": "0" * 32}, page=f"{EDITOR}/publish")
    assert stale.status_code == 409
    assert version_numbers(marketer) == [1]


def test_hostile_text_is_kept_as_text_and_floods_are_refused(marketer: Browserish) -> None:
    form = {**editor_form(marketer), "fields.area.label": "<script>alert(1)</script>面积"}
    assert marketer.submit(f"{EDITOR}/draft", form, page=EDITOR).status_code in (200, 303)
    page = marketer.get(EDITOR)
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;面积" in page.text
    before = tool_row(marketer).draft
    flood = {**editor_form(marketer), **{f"junk.{i}": "x" for i in range(6000)}}
    refused = marketer.submit(f"{EDITOR}/draft", flood, page=EDITOR)
    assert refused.status_code in (400, 413)
    assert tool_row(marketer).draft == before
    # Unknown paths and values of the wrong shape are ignored or named, never a 500.
    odd = {**editor_form(marketer), "tables.nope.values.0": "1", "fields.area.options": "x|y|z"}
    assert marketer.submit(f"{EDITOR}/preview", odd, page=EDITOR).status_code == 200
