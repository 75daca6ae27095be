"""The formula language: what it computes, what it refuses when saved, and that it never raises."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.calculators.formula import (
    MAX_NODES,
    InvalidFormula,
    Symbol,
    Table,
    Value,
    canonical_key,
    compile_expression,
)
from app.core.i18n import set_locale

SYMBOLS = {
    "x": Symbol("number"),
    "y": Symbol("number"),
    "flag": Symbol("bool"),
    "grade": Symbol("text", frozenset({"简装", "精装", "豪装"})),
    "tier": Symbol("number", frozenset({"1", "2", "3", "4"})),
}
VALUES: dict[str, Value] = {"x": 4.0, "y": 0.0, "flag": True, "grade": "精装", "tier": 2.0}
TABLES = {
    "factor": Table(
        "factor", (frozenset({"1", "2", "3", "4"}),), {(str(t),): t / 10 for t in (1, 2, 3, 4)}
    ),
    "price": Table(
        "price",
        (frozenset({"简装", "精装", "豪装"}), frozenset({"1", "2", "3", "4"})),
        {
            (g, str(t)): base * (5 - t)
            for g, base in (("简装", 100), ("精装", 200), ("豪装", 400))
            for t in (1, 2, 3, 4)
        },
    ),
    "partial": Table("partial", (frozenset({"a"}),), {("a",): 1.0}),
    "with_default": Table("with_default", (frozenset({"a"}),), {("a",): 1.0}, default=7.0),
}


def run(source: str, values: dict[str, Value] | None = None) -> tuple[Value, list[str]]:
    expression = compile_expression(source, SYMBOLS, TABLES)
    warnings: list[str] = []
    return expression.evaluate({**VALUES, **(values or {})}, warnings), warnings


def value(source: str, **values: Value) -> Value:
    result, warnings = run(source, values)
    assert warnings == []
    return result


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("10 - 4 - 3", 3.0),
        ("2 * 3 % 4", 2.0),
        ("7 // 2", 3.0),
        ("-2 ** 2", -4.0),
        ("x ** 2 + 1", 17.0),
        ("x ** -1", 0.25),
        ("x / 8", 0.5),
        ("flag * 5 + (not flag) * 3", 5.0),
        ("1 < x < 10", True),
        ("1 < x < 3", False),
        ("x >= 4 and y == 0", True),
        ("x > 5 or not flag", False),
        ("100 if grade == '精装' else 50", 100.0),
        ("grade in ('精装', '豪装')", True),
        ("grade not in ('精装', '豪装')", False),
        ("tier in (1, 2)", True),
        ("'精装' if x > 1 else '简装'", "精装"),
    ],
)
def test_operators_and_precedence(source: str, expected: Value) -> None:
    assert value(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("min(3, x, 5)", 3.0),
        ("max(3, x, 5)", 5.0),
        ("sum(1, 2, x)", 7.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("round(2.675, 2)", 2.68),
        ("round(123456, -3)", 123000.0),
        ("ceil(1.2)", 2.0),
        ("floor(-1.2)", -2.0),
        ("clamp(x, 0, 3)", 3.0),
        ("clamp(x, 5, 9)", 5.0),
        ("abs(-x)", 4.0),
        ("pow(1.05, 10)", 1.05**10),
        ("pow(x, 0.5)", 2.0),
    ],
)
def test_functions(source: str, expected: float) -> None:
    assert value(source) == pytest.approx(expected)


def test_lookup_one_and_two_dimensions() -> None:
    assert value("lookup(factor, tier)") == pytest.approx(0.2)
    assert value("lookup(factor, 3)") == pytest.approx(0.3)
    assert value("lookup(price, grade, tier)") == 600.0
    assert value("lookup(price, '豪装', 1)") == 1600.0
    assert value("lookup(with_default, 'zzz' if x > 100 else 'a')") == 1.0


def test_lookup_missing_key_gives_zero_and_a_warning_or_the_default() -> None:
    result, warnings = run("lookup(factor, x + 10)")
    assert result == 0.0
    assert warnings == ["formula：表 factor 中没有 14，结果按 0 计"]
    assert value("lookup(with_default, 'b' if x > 1 else 'a')") == 7.0


def test_lookup_keys_known_when_saved_are_checked() -> None:
    with pytest.raises(InvalidFormula, match="缺少键 简装、精装、豪装"):
        compile_expression("lookup(partial, grade)", SYMBOLS, TABLES)
    with pytest.raises(InvalidFormula, match="缺少键 b"):
        compile_expression("lookup(partial, 'b')", SYMBOLS, TABLES)
    with pytest.raises(InvalidFormula, match="2 维的，需要 2 个键"):
        compile_expression("lookup(price, grade)", SYMBOLS, TABLES)
    with pytest.raises(InvalidFormula, match="不认识的表 nope"):
        compile_expression("lookup(nope, 1)", SYMBOLS, TABLES)
    with pytest.raises(InvalidFormula, match="要用 lookup"):
        compile_expression("factor + 1", SYMBOLS, TABLES)
    # A table with a default accepts any key.
    compile_expression("lookup(with_default, grade)", SYMBOLS, TABLES)


def test_select_values_are_checked_when_saved() -> None:
    with pytest.raises(InvalidFormula, match="「精 装」不是 grade 的可选值"):
        compile_expression("grade == '精 装'", SYMBOLS)
    with pytest.raises(InvalidFormula, match="不是 grade 的可选值"):
        compile_expression("grade in ('精装', '中装')", SYMBOLS)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("grade + 1", "需要数字"),
        ("grade < '精装'", "只能用 == 或 !="),
        ("grade == 1", "不能比较文字和数字"),
        ("1 if grade else 2", "条件需要数字"),
        ("1 if flag else 'a'", "同是文字或同是数字"),
        ("round(grade)", "round 的参数需要数字"),
    ],
)
def test_type_errors_are_refused_when_saved(source: str, reason: str) -> None:
    with pytest.raises(InvalidFormula, match=reason):
        compile_expression(source, SYMBOLS, TABLES)


def test_runtime_trouble_gives_a_defined_result_and_a_warning() -> None:
    assert run("x / y") == (0.0, ["formula：除数为 0，结果按 0 计"])
    assert run("x % y")[0] == 0.0
    assert run("x // y")[0] == 0.0
    assert run("x * x * x", {"x": 1e300}) == (0.0, ["formula：结果超出可计算范围，按 0 计"])
    assert run("pow(10, 101)")[1] == ["formula：乘方超出允许范围，结果按 0 计"]
    assert run("pow(-8, 0.5)")[0] == 0.0
    assert run("x ** 0.5", {"x": -4.0})[0] == 0.0
    assert run("y ** -1")[0] == 0.0
    assert run("ceil(x * x * x)", {"x": 1e300})[0] == 0.0
    assert run("round(x * x * x, 2)", {"x": 1e300})[0] == 0.0


HOSTILE = [
    ("__import__('os')", "__import__", 0),
    ("().__class__", ".__class__", 2),
    ("x.y", ".y", 1),
    ("x.__class__.__bases__", "属性", None),
    ("9**9**9", "指数", 3),
    ("2**1000000", "指数", 3),
    ("(" * 200 + "1" + ")" * 200, "括号嵌套太深", 30),
    ("-" * 60 + "1", "嵌套太深", None),
    ("'" + "a" * 100_000 + "'", "公式太长", 500),
    ("'" + "a" * 40 + "'", "文字太长", 0),
    ("lambda: 1", "lambda", 0),
    ("[i for i in (1, 2)]", "推导式", 0),
    ("sum(i for i in (1, 2))", "推导式", None),
    ("x[0]", "下标", 0),
    ("(y := 1)", ":=", 1),
    ("f'{x}'", "f-string", 0),
    ("max(*x)", "* 展开", 4),
    ("max(x, key=1)", "不能带名字", 11),
    ("open(1)", "不支持的函数 open", 0),
    ("zzz + 1", "不认识的名字 zzz", 0),
    ("_x", "下划线", 0),
    ("min", "加括号", 0),
    ("{1: 2}", "字典", 0),
    ("(1, 2)", "in 后面", 0),
    ("1e400", "数字太大", 0),
    ("None", "常量", 0),
    ("1 +* 2", "写法有误", 3),
    ("", "不能为空", 0),
    ("1\x00", "写法有误", None),
    ("~x", "~", 0),
    ("x @ y", "不支持的运算符", 0),
    ("x is y", "不支持的比较", 0),
    ("+".join(["1"] * 150), "太复杂", None),
]


# Ids in printable ASCII (see tests/test_formula_limits.py ids()): "1\x00" is not.
@pytest.mark.parametrize(
    ("source", "reason", "column"), HOSTILE, ids=[repr(h[0])[1:25] for h in HOSTILE]
)
def test_hostile_formulas_are_refused_with_their_position(
    source: str, reason: str, column: int | None
) -> None:
    with pytest.raises(InvalidFormula) as caught:
        compile_expression(source, SYMBOLS, TABLES, path="variables.total")
    error = caught.value
    assert reason in error.reason
    assert error.path == "variables.total"
    assert error.fields == {"variables.total": f"{error.reason}（第 {error.column + 1} 个字符）"}
    if column is not None:
        assert error.column == column


def test_positions_count_characters_not_bytes_and_span_lines() -> None:
    with pytest.raises(InvalidFormula) as caught:
        compile_expression("'精装' == grade and zz", SYMBOLS)
    assert caught.value.column == len("'精装' == grade and ")
    with pytest.raises(InvalidFormula) as caught:
        compile_expression("(x +\n  lookup(with_default, 'é') + zz)", SYMBOLS, TABLES)
    assert caught.value.column == len("(x +\n  lookup(with_default, 'é') + ")
    with pytest.raises(InvalidFormula) as caught:
        compile_expression("  x + zz", SYMBOLS)
    assert caught.value.column == 6


def test_limits_leave_room_for_ordinary_formulas() -> None:
    assert value(" + ".join(["x"] * 60)) == 240.0  # a long sum is one level deep
    assert value("-(" * 14 + "x" + ")" * 14) == 4.0
    with pytest.raises(InvalidFormula, match="嵌套太深"):
        compile_expression("-(" * 30 + "x" + ")" * 30, SYMBOLS)
    assert value("+".join(["1"] * (MAX_NODES // 2))) == MAX_NODES // 2


def test_canonical_keys() -> None:
    assert canonical_key(2.0) == canonical_key(2) == canonical_key("2") == "2"
    assert canonical_key(True) == "true"
    assert canonical_key(2.5) == "2.5"


# Random expression trees within the limits: they compile or are refused with InvalidFormula,
# and evaluating never raises and gives a finite number.
LEAVES = st.one_of(
    st.sampled_from(["x", "y", "flag", "tier", "0", "1", "-1", "0.5", "1e15", "1e-9"]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(repr),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%"]), children)
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(["2", "3", "-2", "0.5", "10"])).map(
            lambda t: f"({t[0]}) ** {t[1]}"
        ),
        children.map(lambda c: f"-({c})"),
        st.tuples(st.sampled_from(["min", "max", "sum", "pow", "round"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(st.sampled_from(["ceil", "floor", "abs", "round"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(children, children, children).map(lambda t: f"clamp({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(children, children, children).map(
            lambda t: f"({t[0]} if {t[1]} > {t[2]} else 1)"
        ),
        children.map(lambda c: f"lookup(factor, {c})"),
    )


EXPRESSIONS = st.recursive(LEAVES, _combine, max_leaves=40)
NUMBERS = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(EXPRESSIONS, NUMBERS, NUMBERS, st.booleans(), st.sampled_from([1.0, 2.0, 3.0, 4.0]))
def test_random_expressions_never_raise_at_run_time(
    source: str, x: float, y: float, flag: bool, tier: float
) -> None:
    try:
        expression = compile_expression(source, SYMBOLS, TABLES)
    except InvalidFormula:
        return
    warnings: list[str] = []
    result = expression.evaluate({"x": x, "y": y, "flag": flag, "tier": tier}, warnings)
    assert isinstance(result, float)
    assert math.isfinite(result)


@pytest.fixture
def english() -> Iterator[None]:
    """The request's language is English for the test (the default is Chinese)."""
    set_locale("en")
    try:
        yield
    finally:
        set_locale("zh_CN")


def test_refusals_and_warnings_speak_the_requests_language(english: None) -> None:
    with pytest.raises(InvalidFormula) as refused:
        compile_expression("x + zzz", SYMBOLS, TABLES, path="variables.total")
    assert refused.value.reason == "Unknown name zzz"
    assert refused.value.fields == {"variables.total": "Unknown name zzz (at character 5)"}
    with pytest.raises(InvalidFormula) as refused:
        compile_expression("x + grade", SYMBOLS, TABLES)
    assert refused.value.reason == "Arithmetic: a number is needed here, not text"
    with pytest.raises(InvalidFormula) as refused:
        compile_expression("min(x, grade)", SYMBOLS, TABLES)
    assert refused.value.reason == "The arguments of min: a number is needed here, not text"
    with pytest.raises(InvalidFormula) as refused:
        compile_expression("lookup(price, grade)", SYMBOLS, TABLES)
    assert refused.value.reason == "Table price has 2 dimensions: it needs 2 keys"
    assert run("x / y + lookup(partial, x)") == (
        0.0,
        [
            "formula: division by zero, counted as 0",
            "formula: table partial has no 4, counted as 0",
        ],
    )


def test_a_compiled_formula_warns_in_the_language_of_each_evaluation() -> None:
    """Published calculators are compiled once per process and shared by every request:
    a warning is worded when it is given, not when the formula was compiled."""
    expression = compile_expression("x / y", SYMBOLS, TABLES)
    chinese: list[str] = []
    expression.evaluate(VALUES, chinese)
    set_locale("en")
    try:
        english: list[str] = []
        expression.evaluate(VALUES, english)
    finally:
        set_locale("zh_CN")
    assert chinese == ["formula：除数为 0，结果按 0 计"]
    assert english == ["formula: division by zero, counted as 0"]
