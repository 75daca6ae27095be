"""The calculator editor for marketers (issue 12, item 13): tables, rows and results named in
words, structure edited in forms (a question, a table row, a result; which results show before
and after the gate), formulas grouped by the result they compute, and a publish review of what
changes for a visitor. A refused edit names the problem in words and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from app.calculators import editor, editor_map, editor_ops
from app.calculators.builtins import compiled_builtin
from app.calculators.errors import InvalidDefinition
from tests.helpers import Browserish, soup
from tests.test_calc_editor import EDITOR, FLOOR_CELL, editor_form, marketer, one, tool_row

__all__ = ["marketer"]  # the fixture, used by name


def renovation() -> dict[str, Any]:
    return editor.definition_data(compiled_builtin("renovation"))


def save(client: Browserish, form: dict[str, str], status: int = 200) -> Any:
    answer = client.submit(f"{EDITOR}/draft", form, page=EDITOR, headers={"HX-Request": "true"})
    assert answer.status_code == status, (answer.status_code, answer.text[:600])
    return soup(answer)


def refused(client: Browserish, form: dict[str, str]) -> Any:
    """Posts the editor ``form``, which must be refused (400) with the draft as it was."""
    before = tool_row(client).draft
    doc = save(client, form, status=400)
    assert tool_row(client).draft == before
    return doc


def with_op(client: Browserish, op: str) -> dict[str, str]:
    """The editor's form as it stands, posted by the button for ``op``."""
    return {**editor_form(client), "op": op}


def press(client: Browserish, op: str, fields: dict[str, str] | None = None) -> Any:
    """Saves the editor's form posted by the button for ``op``, with ``fields`` filled in."""
    return save(client, {**with_op(client, op), **(fields or {})})


def problem(doc: Any, path: str) -> str:
    return str(one(doc, f'p[data-error-for="{path}"]').get_text())


def refused_op(client: Browserish, op: str, path: str) -> str:
    """The button for ``op`` is refused (nothing changes): the reason it shows at ``path``."""
    return problem(refused(client, with_op(client, op)), path)


# --- pure: names in words ---------------------------------------------------------------------


def test_formulas_are_grouped_by_the_result_they_compute() -> None:
    found = editor_map.variable_groups(renovation())
    groups = {g.label: g.names for g in found}
    assert found[0].label == "预估装修总价" and found[0].names[0] == "grand_total"
    assert groups["地面"] == ("inner_area", "cost_floor", "labour_floor", "mat_floor")
    assert groups["拆旧及找平"][0] == "old_house"  # read by the result's "show only if"
    every = [n for names in groups.values() for n in names]
    assert sorted(every) == sorted(renovation()["variables"])  # each exactly once

    draft = renovation()
    draft["variables"]["spare"] = "area * 2"
    last = editor_map.variable_groups(draft)[-1]
    assert last.output is None and last.names == ("spare",)


def test_table_keys_are_named_in_words() -> None:
    draft = renovation()
    labels = editor_map.TableLabels(draft)
    unit_price = draft["tables"][0]
    assert [labels.row(unit_price, i) for i in (0, 2, 10)] == ["基础工程", "地面", "全屋定制柜"]
    assert labels.col(unit_price, 1) == "精装"  # already words
    design_fee = next(t for t in draft["tables"] if t["key"] == "design_fee")
    assert labels.col(design_fee, 0) in ("Tier 1 cities", "1线城市")  # by the city's tier
    unit_price["row_labels"] = ["基础", *[""] * 10]
    assert labels.row(unit_price, 0) == "基础" and labels.row(unit_price, 2) == "地面"


def test_labels_must_match_the_keys() -> None:
    draft = renovation()
    draft["tables"][0]["row_labels"] = ["只有一个"]
    with pytest.raises(InvalidDefinition) as refused:
        editor.check(draft)
    assert "tables.unit_price.row_labels" in refused.value.fields
    draft["tables"][0]["row_labels"] = ["x" * 41, *[""] * 10]
    with pytest.raises(InvalidDefinition):
        editor.check(draft)


def test_operations_refuse_in_words() -> None:
    for op, form, path, words in (
        ("remove_field:area", {}, "remove.area", "「建筑面积」"),
        ("remove_output:total", {}, "remove.total", "「说明」"),
        ("remove_row:unit_price:2", {}, "remove.unit_price.2", "「地面"),
        ("remove_row:design_fee:0", {}, "remove.design_fee.0", "简装"),
        ("remove_row:unit_price:99", {}, "op", ""),
        ("add_field", {"new_field.label": "", "new_field.kind": "count"}, "new_field.label", ""),
        ("add_field", {"new_field.label": "x", "new_field.kind": "sql"}, "new_field.kind", ""),
        (
            "add_row:unit_price",
            {"new_row.unit_price.label": "floor"},
            "new_row.unit_price.label",
            "",
        ),
        (
            "add_output",
            {"new_output.label": "x", "new_output.kind": "currency"},
            "new_output.formula",
            "",
        ),
        ("explode", {}, "op", ""),
        (
            "add_output",
            {"new_output.label": "x", "new_output.kind": "number", "new_output.formula": "area *"},
            "new_output.formula",
            "",
        ),
        (
            "add_field",
            {"new_field.label": "x", "new_field.kind": "count", "new_field.step": "house"}
            | {"new_field.min": "0.5"},
            "new_field.label",
            "",
        ),
    ):
        draft = renovation()
        with pytest.raises(InvalidDefinition) as refused:
            editor_ops.apply_op(draft, op, form)
        assert path in refused.value.fields, (op, refused.value.fields)
        assert words in str(refused.value.fields[path])
        assert draft == renovation(), op  # nothing changed


# --- through the editor -----------------------------------------------------------------------


def test_editor_names_rows_and_saves_a_label(marketer: Browserish) -> None:
    doc = soup(marketer.get(EDITOR))
    label = one(doc, 'input[name="tables.unit_price.row_labels.2"]')
    assert label["placeholder"] == "地面" and label.get("value", "") == ""
    assert one(doc, f'input[name="{FLOOR_CELL}"]')["aria-label"] == "地面 × 精装"
    assert not doc.select('input[name="teaser"]')  # no list of keys to type
    form = editor_form(marketer)
    form["tables.unit_price.row_labels.2"] = "地面铺装"
    save(marketer, form)
    assert tool_row(marketer).draft["tables"][0]["row_labels"][2] == "地面铺装"
    assert tool_row(marketer).draft["tables"][0]["row_labels"][0] == ""
    form = editor_form(marketer)
    form["tables.design_fee.col_labels.1"] = "新一线"
    save(marketer, form)
    fee = next(t for t in tool_row(marketer).draft["tables"] if t["key"] == "design_fee")
    assert fee["col_labels"] == ["", "新一线", "", ""]
    assert "row_labels" not in fee
    form = editor_form(marketer)
    form["tables.unit_price.row_labels.3"] = "长" * 41
    refused(marketer, form)


def test_rows_are_added_and_removed(marketer: Browserish) -> None:
    doc = press(marketer, "add_row:unit_price", {"new_row.unit_price.label": "阳台"})
    table = tool_row(marketer).draft["tables"][0]
    assert table["rows"][-1] == "阳台" and table["values"][-1] == [0, 0, 0]
    assert "row_labels" not in table  # its key is its label
    assert doc.select('tr[data-row="阳台"]')

    assert "没有删除" in refused_op(marketer, "remove_row:unit_price:2", "remove.unit_price.2")
    press(marketer, "remove_row:unit_price:11")
    assert "阳台" not in tool_row(marketer).draft["tables"][0]["rows"]


def test_results_are_ticked_added_and_removed(marketer: Browserish) -> None:
    form = editor_form(marketer)
    assert form["teaser.total_range"] == "1" and "teaser.total" not in form
    form["teaser.design_per_sqm"] = "1"
    del form["full.summary"]
    save(marketer, form)
    draft = tool_row(marketer).draft
    assert draft["teaser"] == ["total_range", "design_per_sqm"]
    assert "summary" not in draft["full"] and draft["full"][0] == "total"

    output = {"new_output.label": "人工单价", "new_output.kind": "currency"}
    output.update({"new_output.formula": "labour_total / area", "new_output.place": "full"})
    press(marketer, "add_output", output)
    draft = tool_row(marketer).draft
    added = draft["outputs"][-1]
    assert added == {
        "key": "r1",
        "label": "人工单价",
        "kind": "currency",
        "formula": "labour_total / area",
    }
    assert draft["full"][-1] == "r1"

    nothing = {k: v for k, v in editor_form(marketer).items() if not k.startswith("teaser.")}
    doc = refused(marketer, nothing)
    assert "请至少勾选" in doc.get_text()
    bad = {**with_op(marketer, "add_output"), "new_output.label": "坏"}
    bad.update({"new_output.kind": "currency", "new_output.formula": "area *"})
    refused(marketer, bad)
    press(marketer, "remove_output:r1")
    assert "r1" not in {o["key"] for o in tool_row(marketer).draft["outputs"]}
    assert "r1" not in tool_row(marketer).draft["full"]


def test_questions_are_added_and_removed(marketer: Browserish) -> None:
    field = {"new_field.label": "朝向", "new_field.kind": "radio"}
    field.update({"new_field.step": "house", "new_field.options": "南\n北\n南\n"})
    doc = press(marketer, "add_field", field)
    draft = tool_row(marketer).draft
    assert draft["fields"][-1] == {
        "key": "q1",
        "label": "朝向",
        "kind": "radio",
        "options": [{"value": "南"}, {"value": "北"}],
    }
    assert draft["steps"][0]["fields"][-1] == "q1"
    assert "朝向" in one(doc, ".sample").get_text()

    assert "「建筑面积」" in refused_op(marketer, "remove_field:area", "remove.area")
    press(marketer, "remove_field:q1")
    assert "q1" not in tool_row(marketer).draft["steps"][0]["fields"]


def test_publish_review_shows_what_changes_for_a_visitor(marketer: Browserish) -> None:
    form = editor_form(marketer)
    old = float(form[FLOOR_CELL])
    form[FLOOR_CELL] = str(old * 2)
    save(marketer, form)
    doc = soup(marketer.get(f"{EDITOR}/publish"))
    # The button comes before every section of the review; the raw diff is folded away.
    text = str(doc)
    assert text.index('action="/staff/calculators/renovation/publish"') < text.index('id="prices"')
    assert one(doc, "details#raw-diff pre.diff") is not None
    assert "open" not in one(doc, "details#raw-diff").attrs
    cells = [td.get_text() for td in one(doc, "table.price-changes tbody tr").select("td")]
    assert cells[1:] == ["地面", "精装", f"{old:g}", f"{old * 2:g}"]
    assert len(doc.select("table.price-changes tbody tr")) == 1
    samples = doc.select("table.samples tbody tr")
    assert len(samples) >= 4 and "changed" in samples[0]["class"]
    assert "地面" in samples[0].get_text() and "→" in samples[0].get_text()
    assert "装修档次：豪装" in doc.select_one("table.samples").get_text()
