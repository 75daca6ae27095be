"""The formula language's syntax whitelist: what a formula may contain, checked when saved.

A formula is parsed with ``ast.parse(mode="eval")`` and walked against a whitelist: numbers,
short strings, names, arithmetic, comparisons, ``and/or/not``, ``a if c else b``, ``x in (…)``
and the functions in ``FUNCTIONS``. Anything else is refused with its position, and so is a
formula past the size limits. The source never reaches ``eval``/``exec``/``compile``.
``app.calculators.expr`` resolves names, checks types and builds the closures.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field

from app.calculators.errors import InvalidFormula

MAX_SOURCE = 500  # characters in one formula
MAX_DEPTH = 30  # nesting of operations (a left-to-right chain like a + b + c counts once)
MAX_BRACKETS = 30  # nesting of ( [ {
MAX_NODES = 200  # expression nodes in one formula
MAX_TEXT = 32  # characters in a string literal (a select value or a table key)
MAX_LITERAL = 1e15  # magnitude of a number literal
MAX_LITERAL_EXPONENT = 10  # |n| in x ** n; n must be a literal

Value = float | bool | str

# name -> (fewest, most) arguments; None is "any number".
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "min": (1, None),
    "max": (1, None),
    "sum": (1, None),
    "round": (1, 2),
    "ceil": (1, 1),
    "floor": (1, 1),
    "abs": (1, 1),
    "clamp": (3, 3),
    "pow": (2, 2),
    "lookup": (2, 3),
}
RESERVED = frozenset(FUNCTIONS) | frozenset(keyword.kwlist) | {"True", "False", "None"}
COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)

PRECEDENCE: dict[type[ast.operator], int] = {
    ast.Add: 1,
    ast.Sub: 1,
    ast.Mult: 2,
    ast.Div: 2,
    ast.FloorDiv: 2,
    ast.Mod: 2,
}
_REFUSED: dict[type[ast.AST], str] = {
    ast.Subscript: "不允许使用下标 [ ]",
    ast.Lambda: "不允许使用 lambda",
    ast.ListComp: "不允许使用推导式",
    ast.SetComp: "不允许使用推导式",
    ast.DictComp: "不允许使用推导式",
    ast.GeneratorExp: "不允许使用推导式",
    ast.NamedExpr: "不允许使用赋值 :=",
    ast.JoinedStr: "不允许使用 f-string",
    ast.FormattedValue: "不允许使用 f-string",
    ast.Starred: "不允许使用 * 展开",
    ast.Await: "不支持的写法 await",
    ast.Yield: "不支持的写法 yield",
    ast.YieldFrom: "不支持的写法 yield",
    ast.Dict: "不允许使用字典 { }",
    ast.Slice: "不允许使用切片",
}


# A line as Python's tokenizer counts them: only \r\n, \r and \n end one (str.splitlines also
# splits at \x0c, \x1c, \u2028, …, which a string literal may hold).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")


def _lines(source: str) -> list[str]:
    """The lines of ``source`` with their line ends, the last one possibly without."""
    lines = _LINE.findall(source)
    return [*lines, source[sum(map(len, lines)) :]]


def _char_column(source: str, lineno: int, byte_col: int) -> int:
    """ast columns are UTF-8 byte offsets within a line; editors want characters from the start."""
    lines = _lines(source)
    before = sum(len(line) for line in lines[: lineno - 1])
    return before + len(lines[lineno - 1].encode()[:byte_col].decode(errors="ignore"))


@dataclass(slots=True)
class Parsed:
    """A formula that passed the syntax whitelist and the size limits; names not yet resolved."""

    source: str
    path: str
    tree: ast.expr
    offset: int  # characters stripped from the front before parsing
    names: dict[str, int] = field(default_factory=dict)  # name -> column of first use
    tables: dict[str, int] = field(default_factory=dict)  # table -> column of first use

    def at(self, lineno: int, byte_col: int) -> int:
        """The character offset in ``source`` of an ast position (line, UTF-8 byte column)."""
        return self.offset + _char_column(self.source[self.offset :], lineno, byte_col)

    def column(self, node: ast.expr) -> int:
        return self.at(node.lineno, node.col_offset)

    def fail(self, node: ast.expr, reason: str, column: int | None = None) -> InvalidFormula:
        return InvalidFormula(self.path, self.column(node) if column is None else column, reason)


def parse(source: str, path: str = "formula") -> Parsed:
    """Check one formula against the whitelist and the limits; raise ``InvalidFormula``."""
    if len(source) > MAX_SOURCE:
        raise InvalidFormula(path, MAX_SOURCE, f"公式太长（最多 {MAX_SOURCE} 个字符）")
    stripped = source.lstrip()
    offset = len(source) - len(stripped)
    if not stripped.strip():
        raise InvalidFormula(path, 0, "公式不能为空")
    _check_brackets(source, path)
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        # SyntaxError counts lines from 1 and characters within the line from 1.
        before = sum(len(line) for line in _lines(stripped)[: (exc.lineno or 1) - 1])
        column = offset + before + max(0, (exc.offset or 1) - 1)
        raise InvalidFormula(path, column, f"写法有误：{exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise InvalidFormula(path, 0, "公式无法解析（含有不允许的字符或嵌套太深）") from None
    parsed = Parsed(source=source, path=path, tree=tree.body, offset=offset)
    _Checker(parsed).check(tree.body, 1)
    return parsed


def _check_brackets(source: str, path: str) -> None:
    depth = 0
    quote = ""
    escaped = False
    for index, char in enumerate(source):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
            if depth > MAX_BRACKETS:
                raise InvalidFormula(path, index, f"括号嵌套太深（最多 {MAX_BRACKETS} 层）")
        elif char in ")]}":
            depth -= 1


class _Checker:
    """The whitelist walk: every node type is either handled here or refused with its position."""

    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.nodes = 0

    def fail(self, node: ast.expr, reason: str, column: int | None = None) -> InvalidFormula:
        return self.parsed.fail(node, reason, column)

    def check(self, node: ast.expr, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"公式太复杂（最多 {MAX_NODES} 个运算单元）")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"嵌套太深（最多 {MAX_DEPTH} 层）")
        refused = _REFUSED.get(type(node))
        if refused:
            raise self.fail(node, refused)
        method = getattr(self, f"check_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"不支持的写法（{type(node).__name__}）")
        method(node, depth)

    def check_Constant(self, node: ast.Constant, depth: int) -> None:
        value = node.value
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            if abs(value) > MAX_LITERAL:  # 1e400 is inf, past it too
                raise self.fail(node, f"数字太大（绝对值最多 {MAX_LITERAL:.0e}）")
            return
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise self.fail(node, f"文字太长（最多 {MAX_TEXT} 个字符）")
            return
        raise self.fail(node, f"不支持的常量 {value!r:.20}")

    def check_Name(self, node: ast.Name, depth: int) -> None:
        if node.id.startswith("_"):
            raise self.fail(node, f"不允许使用以下划线开头的名字 {node.id}")
        if node.id in FUNCTIONS:
            raise self.fail(node, f"函数 {node.id} 需要加括号调用，例如 {node.id}(…)")
        self.parsed.names.setdefault(node.id, self.parsed.column(node))

    def check_Attribute(self, node: ast.Attribute, depth: int) -> None:
        # Point at the dot before the name, which ends the node (on its last line, in bytes).
        name_start = (node.end_col_offset or 0) - len(node.attr.encode())
        column = self.parsed.at(node.end_lineno or node.lineno, name_start) - 1
        raise self.fail(node, f"不允许访问属性（.{node.attr}）", column)

    def check_BinOp(self, node: ast.BinOp, depth: int) -> None:
        if isinstance(node.op, ast.Pow):
            exponent = literal_number(node.right)
            if exponent is None or abs(exponent) > MAX_LITERAL_EXPONENT:
                raise self.fail(
                    node.right,
                    f"** 的指数只能是绝对值不超过 {MAX_LITERAL_EXPONENT} 的数字；"
                    "变量做指数请用 pow(底数, 指数)",
                )
            self.check(node.left, depth + 1)
            self.check(node.right, depth + 1)
            return
        group = PRECEDENCE.get(type(node.op))
        if group is None:
            raise self.fail(node, "不支持的运算符（只能用 + - * / // % **）")
        # A chain a + b - c nests to the left; count it as one level, as it reads.
        left = node.left
        chained = isinstance(left, ast.BinOp) and PRECEDENCE.get(type(left.op)) == group
        self.check(left, depth if chained else depth + 1)
        self.check(node.right, depth + 1)

    def check_UnaryOp(self, node: ast.UnaryOp, depth: int) -> None:
        if not isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            raise self.fail(node, "不支持的运算符 ~")
        self.check(node.operand, depth + 1)

    def check_BoolOp(self, node: ast.BoolOp, depth: int) -> None:
        for value in node.values:
            self.check(value, depth + 1)

    def check_Compare(self, node: ast.Compare, depth: int) -> None:
        membership = [op for op in node.ops if isinstance(op, ast.In | ast.NotIn)]
        if membership:
            if len(node.ops) != 1:
                raise self.fail(node, "in 不能和其他比较连写")
            self.check(node.left, depth + 1)
            choices = node.comparators[0]
            if not isinstance(choices, ast.Tuple | ast.List | ast.Set) or not all(
                isinstance(item, ast.Constant) for item in choices.elts
            ):
                raise self.fail(choices, 'in 后面要写一组常量，例如 ("精装", "豪装")')
            self.nodes += 1
            for item in choices.elts:
                self.check(item, depth + 2)
            return
        for op in node.ops:
            if not isinstance(op, COMPARE_OPS):
                raise self.fail(node, "不支持的比较（只能用 == != < <= > >= in）")
        self.check(node.left, depth + 1)
        for comparator in node.comparators:
            self.check(comparator, depth + 1)

    def check_IfExp(self, node: ast.IfExp, depth: int) -> None:
        self.check(node.test, depth + 1)
        self.check(node.body, depth + 1)
        self.check(node.orelse, depth + 1)

    def check_Call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            self.check_Attribute(func, depth)
        if not isinstance(func, ast.Name):
            raise self.fail(node, "只能调用内置函数：" + " ".join(FUNCTIONS))
        if func.id not in FUNCTIONS:
            raise self.fail(func, f"不支持的函数 {func.id}（可用：{' '.join(FUNCTIONS)}）")
        if node.keywords:
            raise self.fail(node.keywords[0].value, f"{func.id} 的参数不能带名字")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, _REFUSED[ast.Starred])
        fewest, most = FUNCTIONS[func.id]
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            wanted = f"{fewest}" if fewest == most else f"{fewest}～{most or '多'}"
            raise self.fail(node, f"{func.id} 需要 {wanted} 个参数，这里有 {count} 个")
        args = node.args
        if func.id == "lookup":
            table = args[0]
            if not isinstance(table, ast.Name) or table.id.startswith("_"):
                raise self.fail(table, "lookup 的第一个参数要写表名")
            self.nodes += 1
            self.parsed.tables.setdefault(table.id, self.parsed.column(table))
            args = args[1:]
        for arg in args:
            self.check(arg, depth + 1)

    def check_Tuple(self, node: ast.Tuple, depth: int) -> None:
        raise self.fail(node, '一组值只能写在 in 后面，例如 grade in ("精装", "豪装")')

    check_List = check_Tuple
    check_Set = check_Tuple


def literal_number(node: ast.expr) -> float | None:
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sign * float(constant(node))
    return None


def constant(node: ast.Constant) -> Value:
    """A checked literal as a run-time value: numbers are floats."""
    value = node.value
    if isinstance(value, bool | str):
        return value
    assert isinstance(value, int | float)
    return float(value)
