"""The formula language's syntax whitelist: what a formula may contain, checked when saved.

A formula is parsed with ``ast.parse(mode="eval")`` and walked against a whitelist: numbers,
short strings, names, arithmetic, comparisons, ``and/or/not``, ``a if c else b``, ``x in (…)``
and the functions in ``FUNCTIONS``. Anything else is refused with its position, and so is a
formula past the size limits. The source never reaches ``eval``/``exec``/``compile``.
``app.calculators.formula.build`` resolves names, checks types and builds the closures.
Refusals are English msgids (``N_``), translated when raised (``InvalidFormula``).
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field

from app.calculators.formula.errors import InvalidFormula
from app.core.i18n import N_

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
_NAMES = " ".join(FUNCTIONS)  # as the refusals list them
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
_COMPREHENSION = N_("Comprehensions are not allowed")
_F_STRING = N_("f-strings are not allowed")
_YIELD = N_("Unsupported construct: yield")
_REFUSED: dict[type[ast.AST], str] = {
    ast.Subscript: N_("Subscripts [ ] are not allowed"),
    ast.Lambda: N_("lambda is not allowed"),
    ast.ListComp: _COMPREHENSION,
    ast.SetComp: _COMPREHENSION,
    ast.DictComp: _COMPREHENSION,
    ast.GeneratorExp: _COMPREHENSION,
    ast.NamedExpr: N_("Assignment := is not allowed"),
    ast.JoinedStr: _F_STRING,
    ast.FormattedValue: _F_STRING,
    ast.Starred: N_("Unpacking with * is not allowed"),
    ast.Await: N_("Unsupported construct: await"),
    ast.Yield: _YIELD,
    ast.YieldFrom: _YIELD,
    ast.Dict: N_("Dictionaries { } are not allowed"),
    ast.Slice: N_("Slices are not allowed"),
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

    def fail(self, node: ast.expr, message: str, **params: object) -> InvalidFormula:
        return InvalidFormula(self.path, self.column(node), message, **params)


def parse(source: str, path: str = "formula") -> Parsed:
    """Check one formula against the whitelist and the limits; raise ``InvalidFormula``."""
    if len(source) > MAX_SOURCE:
        raise InvalidFormula(
            path,
            MAX_SOURCE,
            N_("The formula is too long (at most %(limit)s characters)"),
            limit=MAX_SOURCE,
        )
    stripped = source.lstrip()
    offset = len(source) - len(stripped)
    if not stripped.strip():
        raise InvalidFormula(path, 0, N_("The formula is empty"))
    _check_brackets(source, path)
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        # SyntaxError counts lines from 1 and characters within the line from 1.
        before = sum(len(line) for line in _lines(stripped)[: (exc.lineno or 1) - 1])
        column = offset + before + max(0, (exc.offset or 1) - 1)
        raise InvalidFormula(path, column, N_("Syntax error: %(error)s"), error=exc.msg) from None
    except (ValueError, RecursionError, MemoryError):
        raise InvalidFormula(
            path,
            0,
            N_("The formula cannot be read (a character that is not allowed, or nested too deep)"),
        ) from None
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
                raise InvalidFormula(
                    path,
                    index,
                    N_("Brackets nested too deep (at most %(limit)s levels)"),
                    limit=MAX_BRACKETS,
                )
        elif char in ")]}":
            depth -= 1


class _Checker:
    """The whitelist walk: every node type is either handled here or refused with its position."""

    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.nodes = 0

    def fail(self, node: ast.expr, message: str, **params: object) -> InvalidFormula:
        return self.parsed.fail(node, message, **params)

    def check(self, node: ast.expr, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                node, N_("The formula is too complex (at most %(limit)s parts)"), limit=MAX_NODES
            )
        if depth > MAX_DEPTH:
            raise self.fail(node, N_("Nested too deep (at most %(limit)s levels)"), limit=MAX_DEPTH)
        refused = _REFUSED.get(type(node))
        if refused:
            raise self.fail(node, refused)
        method = getattr(self, f"check_{type(node).__name__}", None)
        if method is None:
            raise self.fail(
                node, N_("Unsupported construct (%(construct)s)"), construct=type(node).__name__
            )
        method(node, depth)

    def check_Constant(self, node: ast.Constant, depth: int) -> None:
        value = node.value
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            if abs(value) > MAX_LITERAL:  # 1e400 is inf, past it too
                raise self.fail(
                    node,
                    N_("The number is too large (at most %(limit)s in absolute value)"),
                    limit=f"{MAX_LITERAL:.0e}",
                )
            return
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise self.fail(
                    node, N_("The text is too long (at most %(limit)s characters)"), limit=MAX_TEXT
                )
            return
        raise self.fail(node, N_("Unsupported constant %(value)s"), value=f"{value!r:.20}")

    def check_Name(self, node: ast.Name, depth: int) -> None:
        if node.id.startswith("_"):
            raise self.fail(
                node,
                N_("Names starting with an underscore are not allowed: %(name)s"),
                name=node.id,
            )
        if node.id in FUNCTIONS:
            raise self.fail(
                node,
                N_("The function %(name)s is called with brackets, for example %(name)s(…)"),
                name=node.id,
            )
        self.parsed.names.setdefault(node.id, self.parsed.column(node))

    def check_Attribute(self, node: ast.Attribute, depth: int) -> None:
        # Point at the dot before the name, which ends the node (on its last line, in bytes).
        # The parser always sets a node's end; the types say it may not.
        end_line: int = node.end_lineno  # type: ignore[assignment]
        end: int = node.end_col_offset  # type: ignore[assignment]
        column = self.parsed.at(end_line, end - len(node.attr.encode())) - 1
        raise InvalidFormula(
            self.parsed.path,
            column,
            N_("Attributes are not allowed (.%(attribute)s)"),
            attribute=node.attr,
        )

    def check_BinOp(self, node: ast.BinOp, depth: int) -> None:
        if isinstance(node.op, ast.Pow):
            exponent = literal_number(node.right)
            if exponent is None or abs(exponent) > MAX_LITERAL_EXPONENT:
                raise self.fail(
                    node.right,
                    N_(
                        "The exponent of ** must be a number of at most %(limit)s in absolute "
                        "value; for a variable exponent use pow(base, exponent)"
                    ),
                    limit=MAX_LITERAL_EXPONENT,
                )
            self.check(node.left, depth + 1)
            self.check(node.right, depth + 1)
            return
        group = PRECEDENCE.get(type(node.op))
        if group is None:
            raise self.fail(node, N_("Unsupported operator (only + - * / // % ** are allowed)"))
        # A chain a + b - c nests to the left; count it as one level, as it reads.
        left = node.left
        chained = isinstance(left, ast.BinOp) and PRECEDENCE.get(type(left.op)) == group
        self.check(left, depth if chained else depth + 1)
        self.check(node.right, depth + 1)

    def check_UnaryOp(self, node: ast.UnaryOp, depth: int) -> None:
        if not isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            raise self.fail(node, N_("Unsupported operator ~"))
        self.check(node.operand, depth + 1)

    def check_BoolOp(self, node: ast.BoolOp, depth: int) -> None:
        for value in node.values:
            self.check(value, depth + 1)

    def check_Compare(self, node: ast.Compare, depth: int) -> None:
        membership = [op for op in node.ops if isinstance(op, ast.In | ast.NotIn)]
        if membership:
            if len(node.ops) != 1:
                raise self.fail(node, N_("in cannot be chained with other comparisons"))
            self.check(node.left, depth + 1)
            choices = node.comparators[0]
            if not isinstance(choices, ast.Tuple | ast.List | ast.Set) or not all(
                isinstance(item, ast.Constant) for item in choices.elts
            ):
                raise self.fail(
                    choices,
                    N_(
                        "in must be followed by a group of constants, "
                        'for example ("fine", "luxury")'
                    ),
                )
            self.nodes += 1
            for item in choices.elts:
                self.check(item, depth + 2)
            return
        for op in node.ops:
            if not isinstance(op, COMPARE_OPS):
                raise self.fail(
                    node, N_("Unsupported comparison (only == != < <= > >= in are allowed)")
                )
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
            raise self.fail(
                node,
                N_("Only the built-in functions can be called: %(functions)s"),
                functions=_NAMES,
            )
        if func.id not in FUNCTIONS:
            raise self.fail(
                func,
                N_("Unsupported function %(name)s (available: %(functions)s)"),
                name=func.id,
                functions=_NAMES,
            )
        if node.keywords:
            raise self.fail(
                node.keywords[0].value,
                N_("The arguments of %(name)s cannot be named"),
                name=func.id,
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, _REFUSED[ast.Starred])
        fewest, most = FUNCTIONS[func.id]
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            if fewest == most:
                wanted = N_("%(name)s takes %(fewest)s arguments, here there are %(count)s")
            elif most is None:
                wanted = N_("%(name)s takes %(fewest)s or more arguments, here there are %(count)s")
            else:
                wanted = N_(
                    "%(name)s takes %(fewest)s to %(most)s arguments, here there are %(count)s"
                )
            raise self.fail(node, wanted, name=func.id, fewest=fewest, most=most, count=count)
        args = node.args
        if func.id == "lookup":
            table = args[0]
            if not isinstance(table, ast.Name) or table.id.startswith("_"):
                raise self.fail(table, N_("The first argument of lookup is a table's name"))
            self.nodes += 1
            self.parsed.tables.setdefault(table.id, self.parsed.column(table))
            args = args[1:]
        for arg in args:
            self.check(arg, depth + 1)

    def check_Tuple(self, node: ast.Tuple, depth: int) -> None:
        raise self.fail(
            node,
            N_('A group of values can only follow in, for example grade in ("fine", "luxury")'),
        )

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
