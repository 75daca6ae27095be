"""The built-in calculators: they load, give realistic numbers, and behave for any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.calculators.builtins import BUILTIN_SLUGS, builtin, builtin_text, compiled_builtin
from app.calculators.compiler import CompiledCalculator, Evaluation, OutputValue, parse_definition
from app.calculators.schemas import CalculatorDef, FieldDef
from app.core.errors import NotFound

ALL_ITEMS = ("kitchen", "bathroom", "flooring", "walls", "ceilings", "electrical", "plumbing")
ALL_ITEMS += ("furniture",)


def by_key(evaluation: Evaluation) -> dict[str, OutputValue]:
    assert evaluation.errors == {}
    assert evaluation.warnings == []
    return {o.key: o for o in [*evaluation.teaser, *evaluation.full]}


def test_builtins_load_and_round_trip() -> None:
    assert BUILTIN_SLUGS == ("renovation", "insurance")
    for slug in BUILTIN_SLUGS:
        definition = builtin(slug)
        assert isinstance(definition, CalculatorDef)
        assert "编辑" in builtin_text(slug) or "EDITABLE EXAMPLE" in builtin_text(slug)
        assert "仅供参考" in definition.disclaimer
        compiled = compiled_builtin(slug)
        assert parse_definition(compiled.to_toml()).definition == definition
        assert compiled.evaluate(compiled.sample_inputs()).errors == {}
    with pytest.raises(NotFound):
        builtin("../pyproject")


def test_renovation_tier1_90sqm_3_bedrooms_fine_finish() -> None:
    calc = compiled_builtin("renovation")
    inputs = {"city": "上海", "area": 90, "bedrooms": 3, "bathrooms": 2, "grade": "精装"}
    result = by_key(
        calc.evaluate({**inputs, "condition": "毛坯房", **dict.fromkeys(ALL_ITEMS, "on")})
    )
    # By hand, tier-1 prices (both city factors 1.0): inner area 72 ㎡, wall 201.6 ㎡, ceiling
    # 25.2 ㎡, 3 wet rooms.
    items = {
        "item_base": 90 * 220,
        "item_floor": 72 * 400,
        "item_wall": 201.6 * 100,
        "item_ceiling": 25.2 * 260,
        "item_electrical": 90 * 150,
        "item_plumbing": 3 * 3500,
        "item_kitchen": 45000,
        "item_bathroom": 2 * 28000,
        "item_furniture": 3 * 15000 + 20000,
    }
    for key, amount in items.items():
        assert result[key].value == pytest.approx(amount, abs=0.5), key
    direct = sum(items.values())  # 265,312
    total = direct + 90 * 150 + direct * 0.08  # + design 150/㎡ + management 8%
    assert result["total"].value == pytest.approx(total, abs=0.5)
    assert result["total"].display == "¥30万"
    low, high = result["total_range"].value
    assert 250_000 <= low < high <= 450_000
    assert result["total_range"].display == "¥27万～¥34.5万"
    assert result["materials"].value + result["labour"].value == pytest.approx(direct, abs=1)
    assert result["design"].value == 13_500
    assert [o.key for o in calc.evaluate({**inputs, "condition": "毛坯房"}).teaser] == [
        "total_range"
    ]
    days = 45 + 90 * 0.3 + 5  # 精装 base + per ㎡ + a second bathroom
    assert result["timeline"].value == [round(0.9 * days), round(1.2 * days)]
    assert result["timeline"].display.endswith("天")
    assert "item_demolition" not in result
    # A tier-1 city: the prices are tier-1 prices, and the page says nothing about factors.
    assert "local_prices" not in result
    assert all("系数" not in (o.note + o.display) for o in result.values())


# Public guidance for a new home of about 100 ㎡ (docs/calculators.md, "Sources of the
# built-ins' figures"): 简装 45–60 days, 精装 60–90, 豪装 90–120 or more.
@pytest.mark.parametrize(
    ("grade", "area", "shortest", "longest"),
    [
        ("简装", 100, 40, 65),
        ("精装", 100, 60, 95),
        ("豪装", 100, 85, 130),
        ("精装", 120, 65, 100),
    ],
)
def test_renovation_timeline_is_what_public_guidance_gives(
    grade: str, area: int, shortest: int, longest: int
) -> None:
    calc = compiled_builtin("renovation")
    inputs = {"city": "北京", "area": area, "bedrooms": 3, "bathrooms": 1, "grade": grade}
    low, high = by_key(calc.evaluate({**inputs, "condition": "毛坯房"}))["timeline"].value
    assert shortest <= low < high <= longest, (grade, area, low, high)
    # An old house takes about a month more (demolition and levelling first).
    old = by_key(calc.evaluate({**inputs, "condition": "旧房翻新"}))["timeline"].value
    assert 20 <= old[0] - low <= 35


def test_renovation_tells_how_local_prices_differ_in_words() -> None:
    calc = compiled_builtin("renovation")
    inputs = {"city": "成都", "area": 90, "bedrooms": 2, "bathrooms": 1, "grade": "精装"}
    result = by_key(calc.evaluate({**inputs, "condition": "毛坯房"}))
    assert result["local_prices"].display == (
        "成都的人工费比一线城市低约 18%，材料费低约 5%，以上金额已按当地行情计算。"
    )
    assert "系数" not in result["materials"].note + result["labour"].note


def test_renovation_small_basic_finish_in_a_small_city() -> None:
    calc = compiled_builtin("renovation")
    inputs = {
        "city": "三四线城市及县城",
        "area": 50,
        "bedrooms": 1,
        "bathrooms": 1,
        "grade": "简装",
    }
    result = by_key(calc.evaluate({**inputs, "condition": "毛坯房"}))
    # Only the base works: 50 ㎡ × 120; labour 60% × 0.6, materials 40% × 0.88; no design fee;
    # management 7%.
    labour, materials = 6000 * 0.6 * 0.6, 6000 * 0.4 * 0.88
    assert result["labour"].value == round(labour)
    assert result["materials"].value == round(materials)
    assert result["design"].value == 0
    assert result["total"].value == round((labour + materials) * 1.07)
    assert result["total"].display == "¥4,571"
    assert {o.group for o in calc.evaluate({**inputs, "condition": "毛坯房"}).full} >= {
        "总价",
        "费用构成",
        "分项预算",
        "工期",
    }
    renovated = by_key(calc.evaluate({**inputs, "condition": "旧房翻新"}))
    assert renovated["item_demolition"].value > 0
    assert renovated["total"].value > result["total"].value


def test_insurance_35_year_old_with_mortgage_and_two_children() -> None:
    calc = compiled_builtin("insurance")
    evaluation = calc.evaluate(
        {"age": 35, "income": 30, "mortgage": 150, "children": 2, "social_insurance": True}
    )
    [teaser] = evaluation.teaser
    assert teaser.key == "life_cover"
    result = by_key(evaluation)
    # D 5万 + I 30万 × 70% × 20 年 + M 150万 + E 2 × 30万 = 635万, rounded up to 10万.
    assert result["life_debts"].value == 50_000
    assert result["life_income"].value == 4_200_000
    assert result["life_mortgage"].value == 1_500_000
    assert result["life_education"].value == 600_000
    assert result["life_cover"].value == 6_400_000
    assert result["life_cover"].display == "¥640万"
    assert 2_000_000 <= teaser.value <= 9_990_000  # "several hundred 万"
    assert result["ci_cover"].value == 900_000
    assert result["accident"].value == 1_500_000
    assert result["premium_budget"].value == [15_000, 30_000]
    assert "medical" in result and "medical_no_si" not in result
    assert "life_parents" not in result and "life_offset" not in result
    assert "支撑家庭 20 年" in result["life_income"].note
    assert all(o.note for o in evaluation.full if o.kind != "text")


def test_insurance_near_retirement_with_cover_already() -> None:
    calc = compiled_builtin("insurance")
    inputs = {"age": 58, "income": 20, "parents": 2, "existing_life": 100, "social_insurance": ""}
    result = by_key(calc.evaluate(inputs))
    # Income replaced only until 60: 2 years; parents 2 × 2万 × 10 years; minus 100万 cover.
    assert result["life_income"].value == 200_000 * 0.7 * 2
    assert result["life_parents"].value == 400_000
    assert result["life_offset"].value == 1_000_000
    assert result["life_cover"].value == 0
    assert result["ci_cover"].value == 600_000
    assert "medical_no_si" in result and "medical" not in result


def test_education_is_asked_only_with_children() -> None:
    calc = compiled_builtin("insurance")
    keys = [f.key for f in calc.visible_fields({"children": 0}, step="family")]
    assert keys == ["children", "parents", "support_years"]
    keys = [f.key for f in calc.visible_fields({"children": "2"}, step="family")]
    assert keys == ["children", "education", "parents", "support_years"]


# Property tests -------------------------------------------------------------------------------


def field_values(field: FieldDef) -> st.SearchStrategy[object]:
    if field.kind == "checkbox":
        return st.booleans()
    if field.kind in ("select", "radio", "city"):
        return st.sampled_from([o.value for o in field.options])
    assert field.min is not None and field.max is not None
    if field.kind == "count":
        return st.integers(int(field.min), int(field.max))
    floats = st.floats(field.min, field.max, allow_nan=False)
    return st.one_of(floats, floats.map(str), st.sampled_from([field.min, field.max]))


def valid_inputs(calc: CompiledCalculator) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({f.key: field_values(f) for f in calc.definition.fields})


def check_outputs(calc: CompiledCalculator, evaluation: Evaluation) -> None:
    assert evaluation.errors == {}
    assert evaluation.warnings == []
    assert evaluation.teaser
    kinds = {o.key: o.kind for o in calc.definition.outputs}
    for output in [*evaluation.teaser, *evaluation.full]:
        assert output.kind == kinds[output.key]
        if output.kind in ("number", "currency"):
            assert isinstance(output.value, float) and math.isfinite(output.value)
            assert output.value >= 0
        elif output.kind == "range":
            assert isinstance(output.value, list) and len(output.value) == 2
            low, high = output.value
            assert math.isfinite(low) and math.isfinite(high) and 0 <= low <= high
        else:
            assert isinstance(output.value, str) and output.value
        assert output.display and "{" not in output.display and "{" not in output.note


@pytest.mark.parametrize("slug", BUILTIN_SLUGS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_valid_input_gives_finite_outputs_of_the_declared_kinds(
    slug: str, data: st.DataObject
) -> None:
    calc = compiled_builtin(slug)
    check_outputs(calc, calc.evaluate(data.draw(valid_inputs(calc))))


def invalid_value(field: FieldDef) -> st.SearchStrategy[object]:
    junk = st.sampled_from(
        ["", "abc", "nan", "inf", "1e999", None, [1], {"a": 1}, "x" * 5000, 10**400]
    )
    if field.kind == "checkbox":
        return st.sampled_from(["maybe", 2, [True], {"a": 1}])
    if field.kind in ("select", "radio", "city"):
        options = {o.value for o in field.options}
        return st.one_of(junk, st.text(max_size=40).filter(lambda t: t.strip() not in options))
    assert field.min is not None and field.max is not None
    below = st.floats(max_value=field.min, exclude_max=True, allow_nan=False, allow_infinity=False)
    above = st.floats(min_value=field.max, exclude_min=True, allow_nan=False, allow_infinity=False)
    wrong = st.one_of(below, above, below.map(str), above.map(str), junk)
    if field.kind == "count":
        wrong = st.one_of(wrong, st.sampled_from([0.5, "1.5"]))
    return wrong


@pytest.mark.parametrize("slug", BUILTIN_SLUGS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_bad_inputs_give_errors_not_exceptions(slug: str, data: st.DataObject) -> None:
    calc = compiled_builtin(slug)
    inputs = data.draw(valid_inputs(calc))
    if slug == "insurance":
        inputs["children"] = max(1, int(str(inputs["children"])))  # so education is shown
    field = data.draw(st.sampled_from(calc.definition.fields))
    bad = data.draw(invalid_value(field))
    if bad in (None, "") and field.default is not None:
        return  # a missing value takes the default
    evaluation = calc.evaluate({**inputs, field.key: bad})
    assert field.key in evaluation.errors
    assert evaluation.teaser == [] and evaluation.full == []
