"""Checked formulas turned into closures: ``build`` and the ``Expression`` it returns.

``syntax.parse`` looks at one formula alone (whitelist, size limits) and collects the names it
uses; ``build`` then resolves those names against the definition (their types, the lookup
tables), checks types and returns an ``Expression``, a tree of small closures. This two-stage
checking lets a whole definition be checked together. Evaluation never raises for a checked
formula: division by zero, an impossible power, a missing table key or an overflow give a defined
result and a warning.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping

from app.calculators.errors import say
from app.calculators.formula.errors import (
    WARN_BAD_POWER,
    WARN_DIVISION_BY_ZERO,
    WARN_LOOKUP_MISS,
    WARN_NOT_FINITE,
    InvalidFormula,
)
from app.calculators.formula.syntax import Parsed, Value, constant, literal_number, parse
from app.calculators.formula.values import (
    MAX_POW_BASE,
    MAX_POW_EXPONENT,
    Symbol,
    Table,
    ValueType,
    canonical_key,
    ceil,
    floor,
    power,
    round_half_up,
)
from app.core.i18n import N_

_ARITHMETIC_PLACE = N_("Arithmetic")
_TEXT_AND_NUMBER = N_("Text and numbers cannot be compared")
_KEY_SEPARATOR = N_(", ")  # between the keys a table lacks

Env = Mapping[str, Value]
Fn = Callable[[Env, list[str]], Value]

_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}
_ZERO_CHECKED: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Value, Value], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class Expression:
    """A checked formula, ready to evaluate."""

    __slots__ = ("_fn", "names", "options", "path", "source", "tables", "type")

    def __init__(
        self,
        *,
        source: str,
        path: str,
        type: ValueType,
        options: frozenset[str] | None,
        names: frozenset[str],
        tables: frozenset[str],
        fn: Fn,
    ) -> None:
        self.source = source
        self.path = path
        self.type: ValueType = type
        self.options = options
        self.names = names
        self.tables = tables
        self._fn = fn

    def evaluate(self, values: Env, warnings: list[str] | None = None) -> Value:
        """The value for ``values`` (one per name the formula uses). A number result is always a
        finite float: anything else becomes 0.0 with a warning appended to ``warnings``."""
        sink = warnings if warnings is not None else []
        result = self._fn(values, sink)
        if self.type == "number":
            number = float(result)
            if not math.isfinite(number):
                sink.append(say(WARN_NOT_FINITE, path=self.path))
                return 0.0
            return number
        if self.type == "bool":
            return bool(result)
        return str(result)

    def __repr__(self) -> str:
        return f"Expression({self.path}: {self.source!r})"


def build(parsed: Parsed, symbols: Mapping[str, Symbol], tables: Mapping[str, Table]) -> Expression:
    """Resolve names, check types and turn the tree into closures."""
    builder = _Builder(parsed, symbols, tables)
    fn, kind = builder.build(parsed.tree)
    return Expression(
        source=parsed.source,
        path=parsed.path,
        type=kind,
        options=builder.options(parsed.tree),
        names=frozenset(parsed.names),
        tables=frozenset(parsed.tables),
        fn=fn,
    )


def compile_expression(
    source: str,
    symbols: Mapping[str, Symbol],
    tables: Mapping[str, Table] | None = None,
    path: str = "formula",
) -> Expression:
    """Parse, check and build one formula in one go."""
    return build(parse(source, path), symbols, tables or {})


def _is_numeric(kind: ValueType) -> bool:
    return kind != "text"


class _Builder:
    """Type checking and closure building for a tree that already passed ``_Checker``."""

    def __init__(
        self, parsed: Parsed, symbols: Mapping[str, Symbol], tables: Mapping[str, Table]
    ) -> None:
        self.parsed = parsed
        self.symbols = symbols
        self.tables = tables
        self.path = parsed.path

    def fail(self, node: ast.expr, message: str, **params: object) -> InvalidFormula:
        return self.parsed.fail(node, message, **params)

    def numeric(self, node: ast.expr, what: str, **params: object) -> Fn:
        """The closure of ``node``, which must not be text; ``what`` (an msgid with
        ``params``) names the place in the refusal."""
        fn, kind = self.build(node)
        if not _is_numeric(kind):
            raise self.fail(
                node, N_("%(what)s: a number is needed here, not text"), what=say(what, **params)
            )
        return fn

    def options(self, node: ast.expr) -> frozenset[str] | None:
        """The keys a value can take, when they can be known before it runs."""
        if isinstance(node, ast.Constant):
            return frozenset({canonical_key(constant(node))})
        if isinstance(node, ast.Name):
            return self.symbols[node.id].options  # only asked once the name has been built
        if isinstance(node, ast.IfExp):
            body, orelse = self.options(node.body), self.options(node.orelse)
            return body | orelse if body is not None and orelse is not None else None
        return None

    def build(self, node: ast.expr) -> tuple[Fn, ValueType]:
        method: Callable[[ast.expr], tuple[Fn, ValueType]] = getattr(
            self, f"build_{type(node).__name__}"
        )
        return method(node)

    def build_Constant(self, node: ast.Constant) -> tuple[Fn, ValueType]:
        value = constant(node)
        kind: ValueType = (
            "bool" if isinstance(value, bool) else "text" if isinstance(value, str) else "number"
        )
        return (lambda env, warn: value), kind

    def build_Name(self, node: ast.Name) -> tuple[Fn, ValueType]:
        name = node.id
        symbol = self.symbols.get(name)
        if symbol is None:
            if name in self.tables:
                raise self.fail(
                    node,
                    N_("Unknown name %(name)s; it is a table: look it up with lookup(%(name)s, …)"),
                    name=name,
                )
            raise self.fail(node, N_("Unknown name %(name)s"), name=name)
        return (lambda env, warn: env[name]), symbol.type

    def build_BinOp(self, node: ast.BinOp) -> tuple[Fn, ValueType]:
        left = self.numeric(node.left, _ARITHMETIC_PLACE)
        right = self.numeric(node.right, _ARITHMETIC_PLACE)
        op_type = type(node.op)
        path = self.path
        if op_type in _ARITHMETIC:
            op = _ARITHMETIC[op_type]
            return (lambda env, warn: op(left(env, warn), right(env, warn))), "number"  # type: ignore[arg-type]
        if op_type in _ZERO_CHECKED:
            zop = _ZERO_CHECKED[op_type]

            def divide(env: Env, warn: list[str]) -> Value:
                a, b = left(env, warn), right(env, warn)
                if b == 0:
                    warn.append(say(WARN_DIVISION_BY_ZERO, path=path))
                    return 0.0
                return zop(a, b)  # type: ignore[arg-type]

            return divide, "number"
        exponent = literal_number(node.right)
        assert exponent is not None  # the checker allows ** only with a literal exponent

        def literal_power(env: Env, warn: list[str]) -> Value:
            return _power(float(left(env, warn)), exponent, warn, path)

        return literal_power, "number"

    def build_UnaryOp(self, node: ast.UnaryOp) -> tuple[Fn, ValueType]:
        if isinstance(node.op, ast.Not):
            operand = self.numeric(node.operand, N_("After not"))
            return (lambda env, warn: not operand(env, warn)), "bool"
        operand = self.numeric(node.operand, N_("After a sign"))
        if isinstance(node.op, ast.USub):
            return (lambda env, warn: -operand(env, warn)), "number"  # type: ignore[operator]
        return (lambda env, warn: +operand(env, warn)), "number"  # type: ignore[operator]

    def build_BoolOp(self, node: ast.BoolOp) -> tuple[Fn, ValueType]:
        parts = tuple(self.numeric(value, N_("Both sides of and/or")) for value in node.values)
        if isinstance(node.op, ast.And):

            def all_of(env: Env, warn: list[str]) -> Value:
                return all(part(env, warn) for part in parts)

            return all_of, "bool"

        def any_of(env: Env, warn: list[str]) -> Value:
            return any(part(env, warn) for part in parts)

        return any_of, "bool"

    def _check_choice(self, subject: ast.expr, value: ast.Constant) -> None:
        known = self.options(subject)
        if known is not None and isinstance(value.value, str) and value.value not in known:
            if isinstance(subject, ast.Name):
                raise self.fail(
                    value,
                    N_("“%(value)s” is not an option of %(name)s"),
                    value=value.value,
                    name=subject.id,
                )
            raise self.fail(value, N_("“%(value)s” is not one of its options"), value=value.value)

    def build_Compare(self, node: ast.Compare) -> tuple[Fn, ValueType]:
        if isinstance(node.ops[0], ast.In | ast.NotIn):
            subject, kind = self.build(node.left)
            choices = node.comparators[0]
            assert isinstance(choices, ast.Tuple | ast.List | ast.Set)
            members: set[Value] = set()
            for item in choices.elts:
                assert isinstance(item, ast.Constant)
                if isinstance(item.value, str) != (kind == "text"):
                    raise self.fail(item, _TEXT_AND_NUMBER)
                self._check_choice(node.left, item)
                members.add(constant(item))
            frozen = frozenset(members)
            if isinstance(node.ops[0], ast.In):
                return (lambda env, warn: subject(env, warn) in frozen), "bool"
            return (lambda env, warn: subject(env, warn) not in frozen), "bool"
        operands = [node.left, *node.comparators]
        built = [self.build(operand) for operand in operands]
        for index, op in enumerate(node.ops):
            (_, left_kind), (_, right_kind) = built[index], built[index + 1]
            left, right = operands[index], operands[index + 1]
            if (left_kind == "text") != (right_kind == "text"):
                raise self.fail(right, _TEXT_AND_NUMBER)
            if left_kind == "text" and not isinstance(op, ast.Eq | ast.NotEq):
                raise self.fail(right, N_("Text can only be compared with == or !="))
            if isinstance(right, ast.Constant):
                self._check_choice(left, right)
            if isinstance(left, ast.Constant):
                self._check_choice(right, left)
        fns = tuple(fn for fn, _ in built)
        ops = tuple(_COMPARE[type(op)] for op in node.ops)
        if len(ops) == 1:
            first, second, only = fns[0], fns[1], ops[0]
            return (lambda env, warn: only(first(env, warn), second(env, warn))), "bool"

        def chain(env: Env, warn: list[str]) -> Value:
            current = fns[0](env, warn)
            for index, op in enumerate(ops, start=1):
                following = fns[index](env, warn)
                if not op(current, following):
                    return False
                current = following
            return True

        return chain, "bool"

    def build_IfExp(self, node: ast.IfExp) -> tuple[Fn, ValueType]:
        test = self.numeric(node.test, N_("The condition"))
        body, body_kind = self.build(node.body)
        orelse, else_kind = self.build(node.orelse)
        if (body_kind == "text") != (else_kind == "text"):
            raise self.fail(node.orelse, N_("Both results of if must be text, or both numbers"))
        kind: ValueType = body_kind if body_kind == else_kind else "number"
        return (lambda env, warn: body(env, warn) if test(env, warn) else orelse(env, warn)), kind

    def build_Call(self, node: ast.Call) -> tuple[Fn, ValueType]:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        if name == "lookup":
            return self._lookup(node)
        args = tuple(
            self.numeric(arg, N_("The arguments of %(name)s"), name=name) for arg in node.args
        )
        path = self.path
        if name in ("min", "max", "sum"):
            combine: Callable[[list[Value]], Value] = {"min": min, "max": max, "sum": sum}[name]  # type: ignore[assignment]
            if len(args) == 1:
                return args[0], "number"
            return (lambda env, warn: combine([arg(env, warn) for arg in args])), "number"
        if name == "round":
            value = args[0]
            if len(args) == 1:
                return (lambda env, warn: round_half_up(float(value(env, warn)), 0.0)), "number"
            digits = args[1]
            return (
                lambda env, warn: round_half_up(float(value(env, warn)), float(digits(env, warn)))
            ), "number"
        if name in ("ceil", "floor", "abs"):
            unary: Callable[[float], float] = ceil if name == "ceil" else floor
            if name == "abs":
                unary = abs
            only = args[0]
            return (lambda env, warn: unary(float(only(env, warn)))), "number"
        if name == "clamp":
            value, low, high = args
            return (
                lambda env, warn: min(max(value(env, warn), low(env, warn)), high(env, warn))
            ), "number"
        assert name == "pow"
        base, exponent = args

        def bounded_pow(env: Env, warn: list[str]) -> Value:
            x, y = float(base(env, warn)), float(exponent(env, warn))
            if abs(y) > MAX_POW_EXPONENT or abs(x) > MAX_POW_BASE:
                warn.append(say(WARN_BAD_POWER, path=path))
                return 0.0
            return _power(x, y, warn, path)

        return bounded_pow, "number"

    def _lookup(self, node: ast.Call) -> tuple[Fn, ValueType]:
        table_node = node.args[0]
        assert isinstance(table_node, ast.Name)
        table = self.tables.get(table_node.id)
        if table is None:
            raise self.fail(table_node, N_("Unknown table %(name)s"), name=table_node.id)
        key_nodes = node.args[1:]
        if len(key_nodes) != len(table.axes):
            raise self.fail(
                node,
                N_("Table %(name)s has %(count)s dimensions: it needs %(count)s keys"),
                name=table.key,
                count=len(table.axes),
            )
        keys = tuple(self.build(key)[0] for key in key_nodes)
        if table.default is None:
            for index, axis in enumerate(table.axes):
                key_node = key_nodes[index]
                known = self.options(key_node)
                missing = sorted(known - axis) if known is not None else []
                if missing:
                    raise self.fail(
                        key_node,
                        N_("Table %(name)s lacks the keys %(keys)s"),
                        name=table.key,
                        keys=say(_KEY_SEPARATOR).join(missing),
                    )
        cells, default = table.cells, table.default
        path = self.path

        def find(env: Env, warn: list[str]) -> Value:
            found = tuple(canonical_key(key(env, warn)) for key in keys)
            value = cells.get(found)
            if value is not None:
                return value
            if default is not None:
                return default
            warn.append(say(WARN_LOOKUP_MISS, path=path, table=table.key, keys=" × ".join(found)))
            return 0.0

        return find, "number"


def _power(base: float, exponent: float, warn: list[str], path: str) -> float:
    result = power(base, exponent)
    if result is None:
        warn.append(say(WARN_BAD_POWER, path=path))
        return 0.0
    return result
