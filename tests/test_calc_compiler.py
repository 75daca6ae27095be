"""The definition checker and the evaluator, on a small hand-written calculator."""

from __future__ import annotations

import msgspec
import pytest

from app.calculators import format as fmt
from app.calculators.compiler import (
    CompiledCalculator,
    Evaluation,
    compile_definition,
    parse_definition,
)
from app.calculators.errors import InvalidDefinition
from app.calculators.formula import InvalidFormula
from app.calculators.schemas import CalculatorDef
from app.core.errors import InvalidInput, NotFound

SMALL = """
title = "小测试"
teaser = ["total"]
full = ["total", "spread", "per_room", "gift", "summary"]

[cta]
label = "联系我们"

[[steps]]
key = "one"
title = "第一步"
fields = ["area", "rooms", "grade"]

[[steps]]
key = "two"
title = "第二步"
fields = ["city", "extra", "extra_area"]

[[fields]]
key = "area"
label = "面积"
kind = "number"
unit = "㎡"
min = 10
max = 200
default = 50

[[fields]]
key = "rooms"
label = "房间数"
kind = "count"
min = 0
max = 5

[[fields]]
key = "grade"
label = "档次"
kind = "select"
default = "b"
options = [{ value = "a", label = "普通" }, { value = "b", label = "高档" }, { value = "（全角）" }]

[[fields]]
key = "city"
label = "城市"
kind = "city"
options = [{ value = "北京", tier = 1 }, { value = "其他", tier = 2 }]

[[fields]]
key = "extra"
label = "加项"
kind = "checkbox"

[[fields]]
key = "extra_area"
label = "加项面积"
kind = "number"
min = 1
max = 20
default = 5
show_if = "extra"

[[tables]]
key = "price"
rows = ["a", "b", "（全角）"]
cols = [1, 2]
values = [[100, 80], [200, 160], [300, 240]]

[variables]
base = "area * lookup(price, grade, city)"
bonus = "extra * extra_area * 10"
total_cost = "base + bonus"

[[outputs]]
key = "total"
label = "总价"
kind = "currency"
formula = "total_cost"
note = "{area}㎡，{grade}，{city}，单价 {unit_price:currency}"

[[outputs]]
key = "unit_price"
label = "单价"
kind = "currency"
formula = "lookup(price, grade, city)"

[[outputs]]
key = "spread"
label = "区间"
kind = "range"
low = "total_cost * 1.1"
high = "total_cost * 0.9"

[[outputs]]
key = "per_room"
label = "每间"
kind = "number"
formula = "total_cost / rooms"
decimals = 1
unit = "元"

[[outputs]]
key = "gift"
label = "赠品"
kind = "currency"
formula = "1000"
show_if = "total_cost > 15000"

[[outputs]]
key = "summary"
label = "说明"
kind = "text"
text = "合计 {total}，加项：{extra}"
"""

GOOD = {"area": 100, "rooms": 2, "grade": "a", "city": "其他"}


@pytest.fixture(scope="module")
def small() -> CompiledCalculator:
    return parse_definition(SMALL)


def outputs(evaluation: Evaluation) -> dict[str, object]:
    return {o.key: o.display for o in evaluation.full}


def test_evaluate_computes_teaser_and_full(small: CompiledCalculator) -> None:
    result = small.evaluate(GOOD)
    assert result.errors == {}
    assert result.warnings == []
    assert result.inputs == {
        "area": 100.0,
        "rooms": 2,
        "grade": "a",
        "city": "其他",
        "extra": False,
    }
    [total] = result.teaser
    assert (total.key, total.kind, total.value, total.display) == (
        "total",
        "currency",
        8000.0,
        "¥8,000",
    )
    assert total.note == "100㎡，普通，其他，单价 ¥80"
    assert outputs(result) == {
        "total": "¥8,000",
        "spread": "¥7,200～¥8,800",
        "per_room": "4,000.0元",
        "summary": "合计 ¥8,000，加项：否",
    }
    spread = next(o for o in result.full if o.key == "spread")
    assert spread.value == [7200.0, 8800.0]  # low/high swapped into order


def test_show_if_on_fields_and_outputs(small: CompiledCalculator) -> None:
    keys = [f.key for f in small.visible_fields(GOOD)]
    assert keys == ["area", "rooms", "grade", "city", "extra"]
    with_extra = {**GOOD, "extra": "on", "grade": "b", "city": "北京", "extra_area": "20"}
    assert [f.key for f in small.visible_fields(with_extra, step="two")] == [
        "city",
        "extra",
        "extra_area",
    ]
    result = small.evaluate(with_extra)
    assert result.inputs["extra_area"] == 20.0
    assert result.teaser[0].value == 100 * 200 + 20 * 10
    assert "gift" in outputs(result)
    # A hidden field is not validated and formulas see its default.
    hidden = small.evaluate({**GOOD, "extra_area": "999"})
    assert hidden.errors == {} and "extra_area" not in hidden.inputs


def test_steps(small: CompiledCalculator) -> None:
    assert [f.key for f in small.fields_for_step("one")] == ["area", "rooms", "grade"]
    with pytest.raises(NotFound):
        small.fields_for_step("nope")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"area": 5}, "area", "面积不能小于 10㎡"),
        ({"area": "1e9"}, "area", "面积不能大于 200㎡"),
        ({"area": "abc"}, "area", "面积需要填写数字"),
        ({"area": "nan"}, "area", "面积需要填写数字"),
        ({"area": float("inf")}, "area", "面积需要填写数字"),
        ({"area": True}, "area", "面积需要填写数字"),
        ({"area": [1]}, "area", "面积需要填写数字"),
        ({"area": 10**400}, "area", "面积需要填写数字"),
        ({"city": 10**400}, "city", "城市的选项无效，请重新选择"),
        ({"city": float("nan")}, "city", "城市的选项无效，请重新选择"),
        ({"rooms": None}, "rooms", "请填写房间数"),
        ({"rooms": 1.5}, "rooms", "房间数需要填写整数"),
        ({"grade": "c"}, "grade", "档次的选项无效，请重新选择"),
        ({"city": ""}, "city", "请选择城市"),
        ({"extra": "maybe"}, "extra", "加项的取值无效"),
        ({"extra": True, "extra_area": 0}, "extra_area", "加项面积不能小于 1"),
    ],
)
def test_bad_inputs_give_messages_not_exceptions(
    small: CompiledCalculator, change: dict[str, object], field: str, message: str
) -> None:
    result = small.evaluate({**GOOD, **change})
    assert result.errors == {field: message}
    assert result.teaser == [] and result.full == []


def test_inputs_are_normalised(small: CompiledCalculator) -> None:
    # Full-width digits, as some phone keyboards type them.
    result = small.evaluate({"area": "１２０", "rooms": "3", "city": "北京"})
    assert result.errors == {}
    assert result.inputs["area"] == 120.0
    assert result.inputs["rooms"] == 3
    assert result.inputs["grade"] == "b"  # the default
    assert small.evaluate({**GOOD, "area": " 1,00 "}).inputs["area"] == 100.0
    assert small.evaluate({**GOOD, "area": "１，０００"}).errors == {"area": "面积不能大于 200㎡"}
    assert small.evaluate({**GOOD, "grade": " （全角） "}).inputs["grade"] == "（全角）"
    assert small.evaluate({**GOOD, "city": 1}).errors == {"city": "城市的选项无效，请重新选择"}


def test_division_by_zero_gives_zero_and_a_warning(small: CompiledCalculator) -> None:
    result = small.evaluate({**GOOD, "rooms": 0})
    assert result.warnings == ["outputs.per_room.formula：除数为 0，结果按 0 计"]
    assert next(o for o in result.full if o.key == "per_room").value == 0.0


def test_sample_inputs_evaluate(small: CompiledCalculator) -> None:
    assert small.evaluate(small.sample_inputs()).errors == {}


def test_toml_and_json_round_trips_and_hash(small: CompiledCalculator) -> None:
    again = parse_definition(small.to_toml())
    assert again.definition == small.definition
    assert again.definition_hash == small.definition_hash
    via_json = parse_definition(small.to_json().decode(), fmt="json")
    assert via_json.definition == small.definition
    decoded = msgspec.json.decode(msgspec.json.encode(small.definition), type=CalculatorDef)
    assert compile_definition(decoded).definition_hash == small.definition_hash
    edited = parse_definition(SMALL.replace('title = "小测试"', 'title = "小测试2"'))
    assert edited.definition_hash != small.definition_hash
    assert len(small.definition_hash) == 64


def test_toml_writer_escapes_text() -> None:
    tricky = SMALL.replace('label = "联系我们"', 'label = "联系\\"我们\\"\\\\ \\n\\t\\u007f"')
    calc = parse_definition(tricky)
    assert parse_definition(calc.to_toml()).definition == calc.definition


def refused(text: str) -> InvalidDefinition:
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(text)
    assert isinstance(caught.value, InvalidInput)
    return caught.value


def refused_at(old: str, new: str, path: str) -> InvalidDefinition:
    """SMALL, with `old` (which it has) replaced once by `new`, is refused naming `path`."""
    assert old in SMALL
    error = refused(SMALL.replace(old, new, 1))
    assert path in error.fields, error.fields
    return error


# What the cases below change more than once.
TEXT = 'text = "合计 {total}，加项：{extra}"'
STEP_TWO = 'fields = ["city", "extra", "extra_area"]'
PRICES = "values = [[100, 80], [200, 160], [300, 240]]"
SUMMARY = "outputs.summary.text"
BASE = 'base = "area'
TOTAL = 'formula = "total_cost"'
SHOW_IF = 'show_if = "extra"'
LOOKUP = 'lookup(price, grade, city)"\nbonus'
CYCLE = "base → total_cost → base"


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("min = 10", 'min = "ten"', "$.fields[0].min", "Expected `float | null`, got `str`"),
        ('key = "area"', 'key = "Area"', "$.fields[0].key", "matching regex"),
        ('title = "小测试"', 'titel = "小测试"', "$", "unknown field `titel`"),
        ("min = 10", "min = 300", "fields.area", "min 和 max"),
        ('default = "b"', 'default = "z"', "fields.grade", "默认值"),
        ('{ value = "其他", tier = 2 }', '{ value = "其他" }', "fields.city.options", "tier"),
        (STEP_TWO, 'fields = ["city", "extra"]', "fields.extra_area", "步骤"),
        (STEP_TWO, STEP_TWO.replace('"]', '", "area"]'), "steps.two.fields", "已在步骤 one"),
        ('teaser = ["total"]', 'teaser = ["nope"]', "teaser", "nope"),
        ('key = "rooms"', 'key = "min"', "fields.min", "保留字"),
        ('key = "rooms"', 'key = "base"', "variables.base", "重复"),
        (PRICES, "values = [[100], [200, 160], [300, 240]]", "tables.price", "2 个数"),
        (PRICES, "values = [100, 200, 300]", "tables.price", "2 个数"),
        ('formula = "1000"', 'formula = "1000"\nlow = "1"', "outputs.gift", "不用 low"),
        (TEXT, 'text = "{total.__class__}"', SUMMARY, "只能写名字"),
        (TEXT, 'text = "{nope}"', SUMMARY, "nope"),
        (TEXT, 'text = "{total!r}"', SUMMARY, "只能写名字"),
        (TEXT, 'text = "{total:>99999}"', SUMMARY, "格式"),
        (TEXT, 'text = "{total"', SUMMARY, "花括号"),
        ('note = "{area}', 'note = "{summary}', "outputs.total.note", "文字结果"),
    ],
)
def test_structural_problems_name_their_path(old: str, new: str, path: str, message: str) -> None:
    assert message in refused_at(old, new, path).fields[path]


def test_syntax_and_size_problems() -> None:
    assert "TOML" in refused("title = ").fields["definition"]
    assert "definition" in refused("[[[").fields
    assert "JSON" in refused_json("{")
    assert "definition" in refused("#" * 300_000).fields


def refused_json(text: str) -> str:
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(text, fmt="json")
    return caught.value.fields["definition"]


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        (BASE, 'base = "zz + area', "variables.base", "不认识的名字 zz"),
        (BASE, 'base = "total_cost + area', "variables.total_cost", f"循环引用：{CYCLE}"),
        ('bonus = "extra', 'bonus = "bonus + extra', "variables.bonus", "循环引用：bonus → bonus"),
        (TOTAL, 'formula = "grade"', "outputs.total.formula", "需要数字"),
        (TOTAL, 'formula = "total"', "outputs.total.formula", "不认识的名字 total"),
        (SHOW_IF, 'show_if = "extra_area > 3"', "fields.extra_area.show_if", "排在前面"),
        ('key = "area"', 'key = "area"\nshow_if = "rooms > 1"', "fields.area.show_if", "排在前面"),
        (SHOW_IF, 'show_if = "grade"', "fields.extra_area.show_if", "不能是文字"),
        (BASE, 'base = "__import__(1) + area', "variables.base", "__import__"),
        (LOOKUP, LOOKUP.replace(", city", ""), "variables.base", "2 维"),
    ],
)
def test_formula_problems_name_the_formula_and_position(
    old: str, new: str, path: str, reason: str
) -> None:
    error = refused_at(old, new, path)
    assert isinstance(error, InvalidFormula)
    assert reason in error.fields[path]
    assert error.column >= 0


def test_all_formula_problems_are_reported_together() -> None:
    text = SMALL.replace('bonus = "extra', 'bonus = "zz + extra').replace(
        'formula = "1000"', 'formula = "open(1)"'
    )
    with pytest.raises(InvalidFormula) as caught:
        parse_definition(text)
    assert {"variables.bonus", "outputs.gift.formula"} <= set(caught.value.fields)


@pytest.mark.parametrize(
    ("amount", "decimals", "expected"),
    [
        (0, 1, "¥0"),
        (8500.4, 1, "¥8,500"),
        (9999.6, 1, "¥1万"),
        (123_456, 1, "¥12.3万"),
        (120_000, 1, "¥12万"),
        (123_456, 2, "¥12.35万"),
        (12_345_678, 1, "¥1,234.6万"),
        (123_456_789, 1, "¥1.2亿"),
        (-5000, 1, "-¥5,000"),
    ],
)
def test_currency_format(amount: float, decimals: int, expected: str) -> None:
    assert fmt.currency(amount, decimals) == expected
