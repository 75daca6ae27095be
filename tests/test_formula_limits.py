"""The formula language's rules, each stated once: every limit at exactly the limit and one past
it, every refusal with its exact reason and position, the type of every construct, and run-time
trouble anywhere in a formula turning into a warning. A formula is refused with
``InvalidFormula`` (a 4xx problem for the editor), never with another exception (a 500).

The numbers below are the documented limits (docs/calculators.md), written out on purpose: a
change to a limit must change this file too.
"""

from __future__ import annotations

import ast
import re

import pytest

from app.calculators.formula import (
    Expression,
    InvalidFormula,
    Symbol,
    Table,
    Value,
    canonical_key,
    compile_expression,
    round_half_up,
    syntax,
)
from app.calculators.formula.syntax import FUNCTIONS, parse
from tests import test_calc_formula as formula_tests

# The formula tests' names and values, and a free-text field (no options to check against).
SYMBOLS = {**formula_tests.SYMBOLS, "note": Symbol("text")}
VALUES: dict[str, Value] = {**formula_tests.VALUES, "note": ""}
TABLES = {
    "factor": Table("factor", (frozenset({"1", "2", "3", "4"}),), {("2",): 0.2, ("3",): 0.3}),
    "price": Table(
        "price",
        (frozenset({"简装", "精装", "豪装"}), frozenset({"1", "2", "3", "4"})),
        {("精装", "2"): 600.0},
    ),
    "partial": Table("partial", (frozenset({"a"}),), {("a",): 1.0}),
    "with_default": Table("with_default", (frozenset({"a"}),), {("a",): 1.0}, default=7.0),
}
FUNCTION_LIST = "min max sum round ceil floor abs clamp pow lookup"

DIV0 = "formula：除数为 0，结果按 0 计"
BAD_POWER = "formula：乘方超出允许范围，结果按 0 计"
NOT_FINITE = "formula：结果超出可计算范围，按 0 计"


def compile_(source: str) -> Expression:
    return compile_expression(source, SYMBOLS, TABLES)


def run(source: str, **values: Value) -> tuple[Value, list[str]]:
    warnings: list[str] = []
    result = compile_(source).evaluate({**VALUES, **values}, warnings)
    return result, warnings


def refusal(source: str, *, syntax_only: bool = False) -> InvalidFormula:
    """The InvalidFormula a formula is refused with; any other exception fails the test."""
    with pytest.raises(InvalidFormula) as caught:
        if syntax_only:
            parse(source, "variables.total")
        else:
            compile_expression(source, SYMBOLS, TABLES, path="variables.total")
    error = caught.value
    assert error.path == "variables.total"
    assert error.fields == {"variables.total": f"{error.reason}（第 {error.column + 1} 个字符）"}
    return error


def ids(sources: list[str]) -> list[str]:
    """Test ids in printable ASCII: pytest escapes other characters in explicit ids once more
    each time one process collects them again (mutmut's fork server does), and then cannot
    find the tests it is asked to run."""
    return [re.sub(r"[^ -\[\]-~]", "?", source)[:30] for source in sources]


def assert_refused(source: str, reason: str, column: int, *, syntax_only: bool = False) -> None:
    error = refusal(source, syntax_only=syntax_only)
    assert (error.reason, error.column) == (reason, column)


# --- limits: exactly at the limit is accepted, one past it is refused --------------------------


def test_formula_text_at_most_500_characters() -> None:
    at_limit = "1" + " " * 499
    assert len(at_limit) == 500
    parse(at_limit)
    assert_refused(at_limit + " ", "公式太长（最多 500 个字符）", 500)
    # Counted in characters, not bytes: 330 Chinese characters (990 bytes) in 500.
    chinese = " or ".join([f"note == '{'精' * 30}'"] * 11) + " " * 20
    assert len(chinese) == 500
    parse(chinese)


def test_brackets_nest_at_most_30_deep() -> None:
    parse("(" * 30 + "x" + ")" * 30)
    assert_refused("(" * 31 + "x" + ")" * 31, "括号嵌套太深（最多 30 层）", 30)
    # [ and { count as brackets too, whatever they hold.
    assert_refused("(" * 30 + "x in [1]" + ")" * 30, "括号嵌套太深（最多 30 层）", 35)
    assert_refused("(" * 30 + "{1}" + ")" * 30, "括号嵌套太深（最多 30 层）", 30)
    # A closed bracket no longer counts: forty groups side by side are one level deep.
    parse("+".join(["(1)"] * 40))


def test_brackets_inside_text_do_not_count() -> None:
    parse("note == '" + "(" * 31 + "'")
    parse('note == "' + "(" * 31 + '"')
    # An escaped quote does not end the text; an escaped backslash does not escape the quote.
    parse("note == '\\'" + "(" * 31 + "'")
    assert_refused(
        "note == '\\\\' + " + "(" * 31 + "x" + ")" * 31,
        "括号嵌套太深（最多 30 层）",
        len("note == '\\\\' + ") + 30,
    )
    # A quote of the other kind inside text is just a character.
    parse('note == "\'" or ' + "(" * 30 + "flag" + ")" * 30)


def nest(inner: str, levels: int) -> str:
    """``inner`` under ``levels`` unary minus signs: its top node is at depth levels + 1."""
    return "-" * levels + "(" + inner + ")"


# (formula, depth of its deepest node when the formula itself is at depth 1)
DEPTHS = [
    ("x", 1),
    ("x + y", 2),
    ("x + y - x + y", 2),  # a chain of one precedence level reads as one level
    ("x * y / x // y % x", 2),
    ("x * y + x", 3),  # a product inside a sum is one level deeper
    ("x + y * x", 3),
    ("x ** 2", 2),
    ("(x ** 2) ** 2", 3),
    ("-x", 2),
    ("not x", 2),
    ("x and y and x", 2),
    ("(x and y) or x", 3),
    ("x < y", 2),
    ("x < y <= x", 2),
    ("x in (1, 2)", 3),  # the list is a level of its own
    ("x if y else x", 2),
    ("-x if y else x", 3),  # each part of a conditional is one level down
    ("x if -y else x", 3),
    ("x if y else -x", 3),
    ("max(x, y)", 2),
    ("lookup(factor, x)", 2),
]


@pytest.mark.parametrize(("inner", "depth"), DEPTHS, ids=ids([d[0] for d in DEPTHS]))
def test_operations_nest_at_most_30_deep(inner: str, depth: int) -> None:
    parse(nest(inner, 30 - depth))
    error = refusal(nest(inner, 31 - depth), syntax_only=True)
    assert error.reason == "嵌套太深（最多 30 层）"


def test_nesting_refusal_points_at_the_first_node_too_deep() -> None:
    assert_refused("-" * 30 + "x", "嵌套太深（最多 30 层）", 30, syntax_only=True)
    assert_refused("x + " + "-" * 29 + "(y + 1)", "嵌套太深（最多 30 层）", 34, syntax_only=True)


def test_at_most_200_operations() -> None:
    # Every operation, name and literal is one: -1 is two, each further +1 two more.
    parse("-1" + "+1" * 99)  # 200
    assert_refused("1" + "+1" * 100, "公式太复杂（最多 200 个运算单元）", 200, syntax_only=True)


def test_an_in_list_and_a_lookup_table_count_as_operations() -> None:
    # 1 + 96 × (+1) is 193; "+ (x in (1, 2, 3))" adds the +, the comparison, x, the list and
    # its three items: 200. The part checked last, so nothing counted before it can be lost.
    parse("1" + "+1" * 96 + "+(x in (1, 2, 3))")
    error = refusal("1" + "+1" * 96 + "+(x in (1, 2, 3, 4))", syntax_only=True)
    assert error.reason == "公式太复杂（最多 200 个运算单元）"
    # 1 + 97 × (+1) is 195; "+ lookup(factor, x, x)" adds the +, the call, the table and two keys.
    parse("1" + "+1" * 97 + "+lookup(factor, x, x)")
    error = refusal("1" + "+1" * 97 + "+lookup(factor, -x, x)", syntax_only=True)
    assert error.reason == "公式太复杂（最多 200 个运算单元）"


def test_text_literals_at_most_32_characters() -> None:
    parse("note == '" + "精" * 32 + "'")
    assert_refused("x + ('" + "精" * 33 + "' == note)", "文字太长（最多 32 个字符）", 5)


@pytest.mark.parametrize(
    ("literal", "allowed"),
    [
        ("1e15", True),
        ("1000000000000000", True),
        ("1000000000000001", False),
        ("1.0000000000000002e15", False),
        ("1e400", False),  # inf
        ("0.000000001", True),
    ],
)
def test_number_literals_at_most_1e15(literal: str, allowed: bool) -> None:
    source = f"x + {literal}"
    if allowed:
        assert compile_(source).evaluate(VALUES) == 4.0 + float(literal)
        assert compile_(f"-{literal}").evaluate(VALUES) == -float(literal)
    else:
        assert_refused(source, "数字太大（绝对值最多 1e+15）", 4)


EXPONENT_REFUSED = "** 的指数只能是绝对值不超过 10 的数字；变量做指数请用 pow(底数, 指数)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x ** 10", 4.0**10),
        ("x ** -10", 4.0**-10),
        ("x ** 0.5", 2.0),
        ("x ** --2", 16.0),  # signs in front of the exponent multiply
        ("x ** +2", 16.0),
        ("x ** -+2", 1 / 16),
        ("x ** +-2", 1 / 16),
    ],
)
def test_power_exponent_literal_up_to_10(source: str, expected: float) -> None:
    result, warnings = run(source)
    assert (result, warnings) == (pytest.approx(expected), [])


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("x + x ** 11", 9),
        ("x + x ** -11", 9),
        ("x + x ** 10.5", 9),
        ("x + x ** y", 9),  # a variable exponent: pow() is for that
        ("x + x ** (1 + 1)", 10),
        ("x + x ** True", 9),  # True is not a number here
        ("x + 9 ** 9 ** 9", 9),
    ],
)
def test_power_exponent_past_10_or_not_a_number_is_refused(source: str, column: int) -> None:
    assert_refused(source, EXPONENT_REFUSED, column)


@pytest.mark.parametrize(
    ("source", "x", "expected", "warned"),
    [
        ("pow(x, 100)", 1.5, 1.5**100, False),
        ("pow(x, -100)", 1.5, 1.5**-100, False),
        ("pow(x, 101)", 1.0, 0.0, True),
        ("pow(x, -101)", 1.0, 0.0, True),
        ("pow(x, 2)", 1e6, 1e12, False),
        ("pow(x, 1)", -1e6, -1e6, False),
        ("pow(x, 1)", 1_000_000.5, 0.0, True),
        ("pow(x, 1)", -1_000_000.5, 0.0, True),
        ("pow(x, 0.5)", -4.0, 0.0, True),  # a complex root
        ("pow(x, -1)", 0.0, 0.0, True),  # 1 / 0
        ("pow(x, 100)", 1e6, 0.0, True),  # overflow
    ],
)
def test_pow_exponent_up_to_100_and_base_up_to_1e6_at_run_time(
    source: str, x: float, expected: float, warned: bool
) -> None:
    result, warnings = run(source, x=x)
    assert result == pytest.approx(expected)
    assert warnings == ([BAD_POWER] if warned else [])


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("10", 1.2345678901),
        ("11", 1.2345678901),  # more than 10 places: 10
        ("2.9", 1.23),  # a fraction of a place: cut to whole places
        ("x * x * x", 1.0),  # not finite (inf): 0 places
    ],
)
def test_round_places_between_minus_10_and_10(digits: str, expected: float) -> None:
    result, _ = run(f"round(1.23456789012345, {digits})", x=1e300)
    assert result == expected


def test_round_to_tens_of_billions_at_most() -> None:
    assert run("round(60000000000, -10)")[0] == 60_000_000_000.0
    assert run("round(60000000000, -11)")[0] == 60_000_000_000.0  # -11 is -10
    assert run("round(65000000000, -10)")[0] == 70_000_000_000.0


def test_round_half_up_for_every_finite_value() -> None:
    assert round_half_up(2.5, 0) == 3.0
    assert round_half_up(-2.5, 0) == -3.0
    assert round_half_up(1e15 + 0.5, 0) == 1e15 + 1  # large values are rounded too
    assert round_half_up(1e300, 2) == 1e300  # more digits than Decimal has: unchanged
    assert round_half_up(1e20, 10) == 1e20
    assert round_half_up(float("inf"), 2) == float("inf")
    assert run("round(x, 2)", x=1e300) == (1e300, [])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_takes_its_number_of_arguments(name: str) -> None:
    fewest, most = FUNCTIONS[name]
    wanted = f"{fewest}" if fewest == most else f"{fewest}～{most or '多'}"

    def call(count: int) -> str:
        first = ["factor"] if name == "lookup" else []
        return f"x + {name}({', '.join(first + ['x'] * (count - len(first)))})"

    parse(call(fewest))
    parse(call(most or 50))
    assert_refused(
        call(fewest - 1),
        f"{name} 需要 {wanted} 个参数，这里有 {fewest - 1} 个",
        4,
        syntax_only=True,
    )
    if most is not None:
        assert_refused(
            call(most + 1),
            f"{name} 需要 {wanted} 个参数，这里有 {most + 1} 个",
            4,
            syntax_only=True,
        )


def test_function_arities_are_the_documented_ones() -> None:
    # Written out from docs/calculators.md (None: any number), not read from the code.
    documented = {
        **dict.fromkeys(("min", "max", "sum"), (1, None)),
        **dict.fromkeys(("ceil", "floor", "abs"), (1, 1)),
        "round": (1, 2),
        "clamp": (3, 3),
        "pow": (2, 2),
        "lookup": (2, 3),
    }
    assert documented == FUNCTIONS


# --- refusals: the exact reason and the column of what is wrong --------------------------------

SYNTAX_REFUSED = [
    ("x + __import__('os')", f"不支持的函数 __import__（可用：{FUNCTION_LIST}）", "__import__"),
    ("x + open(1)", f"不支持的函数 open（可用：{FUNCTION_LIST}）", "open"),
    ("x + ().__class__", "不允许访问属性（.__class__）", ".__class__"),
    ("x + x.y(1)", "不允许访问属性（.y）", ".y"),
    ("x + x.价格", "不允许访问属性（.价格）", ".价格"),
    ("x + (x\n  .y)", "不允许访问属性（.y）", ".y"),
    ("x + (1)(2)", f"只能调用内置函数：{FUNCTION_LIST}", "(1)"),
    ("x + max(x)(1)", f"只能调用内置函数：{FUNCTION_LIST}", "max"),
    ("x + max(x, key=1)", "max 的参数不能带名字", "1)"),
    ("x + max(*x)", "不允许使用 * 展开", "*x"),
    ("x + lookup()", "lookup 需要 2～3 个参数，这里有 0 个", "lookup"),
    ("x + lookup(1, x)", "lookup 的第一个参数要写表名", "1, x"),
    ("x + lookup(_t, x)", "lookup 的第一个参数要写表名", "_t"),
    ("x + lookup(t.u, x)", "lookup 的第一个参数要写表名", "t.u"),
    ("x + lookup(factor(1), x)", "lookup 的第一个参数要写表名", "factor"),
    ("x + _y", "不允许使用以下划线开头的名字 _y", "_y"),
    ("x + min", "函数 min 需要加括号调用，例如 min(…)", "min"),
    ("x + (y := 1)", "不允许使用赋值 :=", "y :="),
    ("x + (lambda: 1)", "不允许使用 lambda", "lambda"),
    ("x + [i for i in (1, 2)]", "不允许使用推导式", "[i"),
    ("x + {i for i in (1, 2)}", "不允许使用推导式", "{i"),
    ("x + {i: 1 for i in (1, 2)}", "不允许使用推导式", "{i"),
    ("x + sum(i for i in (1, 2))", "不允许使用推导式", "(i"),
    ("x + x[0]", "不允许使用下标 [ ]", "x[0]"),
    ("x + f'{x}'", "不允许使用 f-string", "f'"),
    ("x + {1: 2}", "不允许使用字典 { }", "{"),
    ("x + await y", "不支持的写法 await", "await"),
    ("x + (yield)", "不支持的写法 yield", "yield"),
    ("x + (yield from y)", "不支持的写法 yield", "yield"),
    ("x + (1, 2)", '一组值只能写在 in 后面，例如 grade in ("精装", "豪装")', "(1, 2)"),
    ("x + [1, 2]", '一组值只能写在 in 后面，例如 grade in ("精装", "豪装")', "[1, 2]"),
    ("x + {1, 2}", '一组值只能写在 in 后面，例如 grade in ("精装", "豪装")', "{1, 2}"),
    ("x + None", "不支持的常量 None", "None"),
    ("x + 1j", "不支持的常量 1j", "1j"),
    ("x + b'a'", "不支持的常量 b'a'", "b'a'"),
    ("x + ...", "不支持的常量 Ellipsis", "..."),
    ("x + 1e400", "数字太大（绝对值最多 1e+15）", "1e400"),
    ("x + ~x", "不支持的运算符 ~", "~x"),
    ("x + (x @ y)", "不支持的运算符（只能用 + - * / // % **）", "x @"),
    ("x + (x << y)", "不支持的运算符（只能用 + - * / // % **）", "x <<"),
    ("x + (x | y)", "不支持的运算符（只能用 + - * / // % **）", "x |"),
    ("x + (x is y)", "不支持的比较（只能用 == != < <= > >= in）", "x is"),
    ("x + (x < y is not x)", "不支持的比较（只能用 == != < <= > >= in）", "x <"),
    ("x + (x in y)", 'in 后面要写一组常量，例如 ("精装", "豪装")', "y)"),
    ("x + (x in (1, y))", 'in 后面要写一组常量，例如 ("精装", "豪装")', "(1, y)"),
    ("x + (x in [y])", 'in 后面要写一组常量，例如 ("精装", "豪装")', "[y]"),
    ("x + (x < y in (1, 2))", "in 不能和其他比较连写", "x <"),
    ("x + 1 +* 2", "写法有误：invalid syntax", "* 2"),
    ("x + (1", "写法有误：'(' was never closed", "(1"),
    ("   ", "公式不能为空", None),
]


@pytest.mark.parametrize(
    ("source", "reason", "marker"), SYNTAX_REFUSED, ids=ids([s[0] for s in SYNTAX_REFUSED])
)
def test_refused_with_the_reason_at_the_column(
    source: str, reason: str, marker: str | None
) -> None:
    column = source.index(marker) if marker is not None else 0
    assert_refused(source, reason, column, syntax_only=True)


def test_checking_order_names_the_first_problem() -> None:
    # An attribute call is refused as an attribute (the dot), not as an unknown function.
    assert_refused("x.y(1) + _z", "不允许访问属性（.y）", 1, syntax_only=True)


def test_an_unknown_kind_of_syntax_is_refused_not_crashed_on() -> None:
    """A later Python may parse a new kind of expression (3.14: t-strings); it is refused."""

    class Future(ast.expr):
        _fields = ()

    node = Future(lineno=1, col_offset=4)
    parsed = syntax.Parsed(source="x + ?", path="variables.total", tree=node, offset=0)
    with pytest.raises(InvalidFormula) as caught:
        syntax._Checker(parsed).check(node, 1)
    assert (caught.value.reason, caught.value.column) == ("不支持的写法（Future）", 4)


@pytest.mark.parametrize("trouble", [ValueError, RecursionError, MemoryError])
def test_parser_trouble_is_a_refusal(monkeypatch: pytest.MonkeyPatch, trouble: type) -> None:
    def parser_fails(*args: object, **kwargs: object) -> None:
        raise trouble("parser")

    monkeypatch.setattr(syntax.ast, "parse", parser_fails)
    assert_refused("x + 1", "公式无法解析（含有不允许的字符或嵌套太深）", 0, syntax_only=True)


TYPE_REFUSED = [
    ("x + grade", "计算需要数字，不能用文字", "grade"),
    ("x + (grade * 2)", "计算需要数字，不能用文字", "grade"),
    ("x + (not grade)", "not 后面需要数字，不能用文字", "grade"),
    ("x + -grade", "正负号后面需要数字，不能用文字", "grade"),
    ("x + +grade", "正负号后面需要数字，不能用文字", "grade"),
    ("x + (flag and grade)", "and/or 两边需要数字，不能用文字", "grade"),
    ("x + (flag or grade)", "and/or 两边需要数字，不能用文字", "grade"),
    ("x + (1 if grade else 2)", "条件需要数字，不能用文字", "grade"),
    ("x + round(grade)", "round 的参数需要数字，不能用文字", "grade"),
    ("x + max(1, grade)", "max 的参数需要数字，不能用文字", "grade"),
    ("x + (grade < '精装')", "文字只能用 == 或 != 比较", "'精装'"),
    ("x + (grade == 1)", "不能比较文字和数字", "1)"),
    ("x + (1 == grade)", "不能比较文字和数字", "grade"),
    ("x < y == grade", "不能比较文字和数字", "grade"),
    ("x + (grade in (1, 2))", "不能比较文字和数字", "1,"),
    ("x + (tier in (2, 'a'))", "不能比较文字和数字", "'a'"),
    ("x + (1 if flag else 'a')", "if 两边的结果要同是文字或同是数字", "'a'"),
    ("x + zz", "不认识的名字 zz", "zz"),
    ("x + factor", "不认识的名字 factor；factor 是表，要用 lookup(factor, …) 查", "factor"),
    ("x + lookup(nope, 1)", "不认识的表 nope", "nope"),
    ("x + lookup(factor, 1, 2)", "表 factor 是 1 维的，需要 1 个键", "lookup"),
    ("x + lookup(price, grade)", "表 price 是 2 维的，需要 2 个键", "lookup"),
    ("x + lookup(partial, 'b')", "表 partial 缺少键 b", "'b'"),
    ("x + lookup(partial, grade)", "表 partial 缺少键 简装、精装、豪装", "grade"),
    ("x + lookup(partial, 'a' if flag else 'b')", "表 partial 缺少键 b", "'a'"),
    ("x + lookup(price, '精装', 5)", "表 price 缺少键 5", "5"),
    ("x + (grade == '中装')", "「中装」不是 grade 的可选值", "'中装'"),
    ("x + ('中装' == grade)", "「中装」不是 grade 的可选值", "'中装'"),
    ("x + (grade in ('精装', '中装'))", "「中装」不是 grade 的可选值", "'中装'"),
    ("x + (('a' if flag else 'b') == 'c')", "「c」不是 它 的可选值", "'c'"),
]


@pytest.mark.parametrize(
    ("source", "reason", "marker"), TYPE_REFUSED, ids=ids([s[0] for s in TYPE_REFUSED])
)
def test_type_and_name_problems_are_refused_at_the_column(
    source: str, reason: str, marker: str
) -> None:
    assert_refused(source, reason, source.index(marker))


def test_what_is_accepted_beside_the_refusals() -> None:
    compile_("x + lookup(with_default, grade)")  # a table with a default takes any key
    compile_("x + lookup(partial, note if flag else 'a')")  # keys not known when saved
    compile_("x + (tier == 5)")  # only text is checked against the options
    compile_("note == '任何文字'")  # text without options
    compile_("x in [1, 2] or x in {3}")


# --- positions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "marker"),
    [
        ("'精装' == grade and zz", "zz"),
        ("(x +\n  lookup(with_default, 'é') + zz)", "zz"),
        ("(zz +\n  x)", "zz"),  # on the first of two lines
        ("(x +\r\n  zz)", "zz"),
        ("(x +\r  zz)", "zz"),
        ("note == 'a\x0cb' or zz", "zz"),  # a form feed inside text does not end a line
        ("note == 'a\u2028b' or zz", "zz"),
        ("  x + zz", "zz"),  # leading spaces are kept in the count
        ("\n  x + zz", "zz"),
    ],
)
def test_positions_count_characters_as_an_editor_shows_them(source: str, marker: str) -> None:
    assert refusal(source).column == source.index(marker)


def test_syntax_error_positions_span_lines() -> None:
    source = "(x +\n  1 +* 2)"
    assert refusal(source).column == source.index("* 2")
    source = "  \n(x +\r\n 精 +* 2)"
    assert refusal(source).column == source.index("* 2")


def test_parse_notes_each_name_and_table_at_its_first_use() -> None:
    parsed = parse("x + lookup(factor, tier) * x + lookup(factor, y)")
    assert parsed.names == {"x": 0, "tier": 19, "y": 46}
    assert parsed.tables == {"factor": 11}


def test_an_expression_knows_its_source_names_tables_and_options() -> None:
    expression = compile_("lookup(factor, tier) + x")
    assert expression.source == "lookup(factor, tier) + x"
    assert expression.path == "formula"
    assert expression.names == frozenset({"tier", "x"})
    assert expression.tables == frozenset({"factor"})
    assert expression.options is None
    assert compile_("'a' if flag else 'b'").options == frozenset({"a", "b"})
    assert compile_("grade").options == frozenset({"简装", "精装", "豪装"})
    assert compile_("grade if flag else '毛坯'").options == frozenset(
        {"简装", "精装", "豪装", "毛坯"}
    )
    assert compile_("grade if flag else note").options is None
    assert compile_("note if flag else grade").options is None
    assert compile_("2").options == frozenset({"2"})
    assert repr(expression) == "Expression(formula: 'lookup(factor, tier) + x')"


# --- types and values --------------------------------------------------------------------------


# The type a construct has is the type of its value: bool, number (float) or text (str).
KINDS: dict[type, str] = {bool: "bool", float: "number", str: "text"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("True", True),
        ("flag", True),
        ("not flag", False),
        ("not x", False),
        ("x > 1", True),
        ("x in (1, 4)", True),
        ("x not in (1, 4)", False),
        ("flag and x", True),
        ("flag or x", True),
        ("(x > 1) if flag else (x < 1)", True),
        ("1 < x < 5", True),
        ("1 < x < 3", False),
        ("5 > x < 3", False),
        ("1 < x > 3 > y", True),
        ("1 < x > 3 > 5", False),
        ("flag if x > 9 else 2", 2.0),
        ("flag if x > 1 else 2", 1.0),
        ("2 if x > 9 else flag", 1.0),
        ("+flag", 1.0),
        ("-flag", -1.0),
        ("+x", 4.0),
        ("-x", -4.0),
        ("max(flag)", 1.0),
        ("min(x)", 4.0),
        ("sum(x)", 4.0),
        ("max(x, 9)", 9.0),
        ("min(x, 1)", 1.0),
        ("sum(x, 1)", 5.0),
        ("abs(-x)", 4.0),
        ("ceil(x / 3)", 2.0),
        ("floor(x / 3)", 1.0),
        ("clamp(x, 1, 3)", 3.0),
        ("clamp(x, 5, 9)", 5.0),
        ("clamp(x, 1, 9)", 4.0),
        ("round(x / 3)", 1.0),
        ("round(x / 3, 1)", 1.3),
        ("lookup(factor, tier)", 0.2),
        ("lookup(price, grade, tier)", 600.0),
        ("x ** 2", 16.0),
        ("x // 3", 1.0),
        ("x % 3", 1.0),
        ("x / 8", 0.5),
        ("'精装'", "精装"),
        ("grade", "精装"),
        ("grade if flag else '毛坯'", "精装"),
    ],
)
def test_each_construct_has_a_type_and_a_value(source: str, expected: Value) -> None:
    expression = compile_(source)
    assert expression.type == KINDS[type(expected)]
    result = expression.evaluate(VALUES)
    assert type(result) is type(expected)
    assert result == pytest.approx(expected) if isinstance(expected, float) else result == expected


# Each formula divides by zero (y is 0) in one position of one construct: the warning always
# reaches the caller, wherever the trouble is.
TROUBLE = "(x / y)"
WARNING_POSITIONS = [
    f"{TROUBLE} + 1",
    f"1 + {TROUBLE}",
    f"{TROUBLE} // 1",
    f"1 % (1 + {TROUBLE})",
    f"{TROUBLE} ** 2",
    f"-{TROUBLE}",
    f"+{TROUBLE}",
    f"not {TROUBLE}",
    f"{TROUBLE} and flag",
    f"flag and {TROUBLE}",
    f"{TROUBLE} or flag",
    f"0 or {TROUBLE}",
    f"{TROUBLE} in (0, 1)",
    f"{TROUBLE} not in (0, 1)",
    f"{TROUBLE} < 1",
    f"1 > {TROUBLE}",
    f"{TROUBLE} < 1 < 2",
    f"-1 < {TROUBLE} < 2",
    f"-2 < -1 < {TROUBLE}",
    f"1 if {TROUBLE} == 0 else 2",
    f"{TROUBLE} if flag else 2",
    f"2 if not flag else {TROUBLE}",
    f"max({TROUBLE})",
    f"max(1, {TROUBLE})",
    f"sum({TROUBLE}, 1)",
    f"round({TROUBLE})",
    f"round({TROUBLE}, 1)",
    f"round(1, {TROUBLE})",
    f"ceil({TROUBLE})",
    f"floor({TROUBLE})",
    f"abs({TROUBLE})",
    f"clamp({TROUBLE}, 0, 1)",
    f"clamp(0, {TROUBLE}, 1)",
    f"clamp(0, 1, {TROUBLE})",
    f"pow({TROUBLE}, 2)",
    f"pow(2, {TROUBLE})",
    f"lookup(with_default, {TROUBLE})",
    f"lookup(price, '精装', {TROUBLE} + 2)",
]


@pytest.mark.parametrize("source", WARNING_POSITIONS)
def test_run_time_trouble_anywhere_is_a_warning(source: str) -> None:
    result, warnings = run(source)
    assert DIV0 in warnings
    assert result is not None


def test_evaluating_without_a_warning_list_still_never_raises() -> None:
    assert compile_("x / y").evaluate(VALUES) == 0.0
    assert compile_("lookup(factor, x)").evaluate(VALUES) == 0.0


def test_results_out_of_range_are_zero_with_a_warning() -> None:
    assert run("floor(x * x * x)", x=1e300) == (0.0, [NOT_FINITE])
    assert run("abs(x * x * x)", x=1e300) == (0.0, [NOT_FINITE])
    assert run("x ** -1", x=0.0) == (0.0, [BAD_POWER])
    assert run("x ** 0.5", x=-4.0) == (0.0, [BAD_POWER])
    assert run("x ** 10", x=1e300) == (0.0, [BAD_POWER])


def test_a_missed_lookup_names_every_key() -> None:
    assert run("lookup(price, '简装', x)") == (
        0.0,
        ["formula：表 price 中没有 简装 × 4，结果按 0 计"],
    )
    assert run("lookup(with_default, x)") == (7.0, [])


def test_canonical_keys_of_every_literal_number() -> None:
    assert canonical_key(False) == "false"
    assert canonical_key(True) == "true"
    assert canonical_key(1e15) == canonical_key("1000000000000000") == "1000000000000000"
    assert canonical_key(-1e15) == "-1000000000000000"
    assert canonical_key(1e16) == "1e+16"
    assert canonical_key(0.5) == "0.5"
    assert run("lookup(with_default, 1e15)")[0] == 7.0
