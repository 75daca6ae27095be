"""The calculator compiler: a definition checked once, ``parse_definition`` and
``compile_definition``.

They check the structure, compile every formula (app/calculators/formula/) and note template,
resolve every reference (fields, variables, tables) and order the variables by what they use,
refusing cycles. The result is a ``CompiledCalculator`` (``app.calculators.compiled``),
re-exported here with ``Evaluation`` and ``OutputValue`` so callers need only this module.
Problems are English msgids, translated as they are found (``say``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import msgspec

from app.calculators import format as fmt_
from app.calculators import formula
from app.calculators.compiled import (
    CHOICE_KINDS,
    NUMERIC_KINDS,
    CompiledCalculator,
    CompiledField,
    CompiledOutput,
    Evaluation,
    OutputValue,
)
from app.calculators.errors import InvalidDefinition, say, schema_problem
from app.calculators.formula import InvalidFormula
from app.calculators.schemas import CalculatorDef, FieldDef
from app.calculators.structure import check_structure
from app.core.i18n import N_

__all__ = [
    "CompiledCalculator",
    "Evaluation",
    "OutputValue",
    "compile_definition",
    "parse_definition",
]

MAX_DEFINITION_CHARS = 200_000


def parse_definition(text: str, fmt: Literal["toml", "json"] = "toml") -> CompiledCalculator:
    """Decode a TOML (or JSON) definition, check it and compile it. Raises ``InvalidDefinition``
    with {path: message}, or ``InvalidFormula`` naming the formula and the column."""
    if len(text) > MAX_DEFINITION_CHARS:
        too_big = N_("The definition is too large (at most %(limit)s characters)")
        raise InvalidDefinition(fields={"definition": say(too_big, limit=MAX_DEFINITION_CHARS)})
    try:
        if fmt == "toml":
            definition = msgspec.toml.decode(text, type=CalculatorDef)
        else:
            definition = msgspec.json.decode(text, type=CalculatorDef)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at ")
        path = where.replace("`", "") or "$"
        raise InvalidDefinition(fields={path: schema_problem(message, path)}) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        name = "TOML" if fmt == "toml" else "JSON"
        problem = say(N_("%(format)s syntax error: %(error)s"), format=name, error=str(exc))
        raise InvalidDefinition(fields={"definition": problem}) from None
    return compile_definition(definition)


def compile_definition(definition: CalculatorDef) -> CompiledCalculator:
    """Check a decoded definition and compile its formulas; see ``parse_definition``."""
    return _Compiler(definition).run()


class _Compiler:
    def __init__(self, definition: CalculatorDef) -> None:
        self.d = definition
        self.problems: dict[str, str] = {}
        self.formula_errors: list[InvalidFormula] = []

    def problem(self, path: str, message: str, **params: object) -> None:
        """Note the first problem of ``path``: ``message`` is an msgid, ``params`` its
        parameters."""
        if path not in self.problems:
            self.problems[path] = say(message, **params)

    def run(self) -> CompiledCalculator:
        check_structure(self.d, self.problem)
        self.raise_if_any()
        tables = self.build_tables()
        self.raise_if_any()
        fields = self.build_fields(tables)
        symbols = {f.definition.key: _field_symbol(f.definition) for f in fields}
        variables = self.build_variables(symbols, tables)
        outputs = self.build_outputs(symbols, tables)
        self.raise_if_any()
        template_names = frozenset(
            name
            for output in outputs
            for template in (output.note, output.text)
            if template is not None
            for name in template.names
        )
        return CompiledCalculator(self.d, fields, variables, outputs, template_names)

    def raise_if_any(self) -> None:
        if self.formula_errors:
            first = self.formula_errors[0]
            for other in self.formula_errors[1:]:
                first.fields.setdefault(other.path, other.fields[other.path])
            for path, message in self.problems.items():
                first.fields.setdefault(path, message)
            raise first
        if self.problems:
            raise InvalidDefinition(fields=dict(self.problems))

    def parse(self, source: str, path: str) -> formula.Parsed | None:
        try:
            return formula.parse(source, path)
        except InvalidFormula as exc:
            self.formula_errors.append(exc)
            return None

    def build(
        self,
        parsed: formula.Parsed | None,
        symbols: Mapping[str, formula.Symbol],
        tables: Mapping[str, formula.Table],
    ) -> formula.Expression | None:
        if parsed is None:
            return None
        try:
            return formula.build(parsed, symbols, tables)
        except InvalidFormula as exc:
            self.formula_errors.append(exc)
            return None

    # Tables, fields, variables, outputs ---------------------------------------------------

    def build_tables(self) -> dict[str, formula.Table]:
        tables: dict[str, formula.Table] = {}
        for t in self.d.tables:
            path = f"tables.{t.key}"
            rows = [formula.canonical_key(k) for k in t.rows]
            cols = [formula.canonical_key(k) for k in t.cols]
            if len(set(rows)) != len(rows) or len(set(cols)) != len(cols):
                self.problem(path, N_("A key is there twice in the table's rows or columns"))
                continue
            if len(t.values) != len(rows):
                self.problem(
                    path, N_("values needs %(count)s rows (as many as rows)"), count=len(rows)
                )
                continue
            cells: dict[tuple[str, ...], float] = {}
            for row, entry in zip(rows, t.values, strict=True):
                if cols:
                    if not isinstance(entry, list) or len(entry) != len(cols):
                        self.problem(
                            path,
                            N_("The row %(row)s needs %(count)s numbers (as many as cols)"),
                            row=row,
                            count=len(cols),
                        )
                        break
                    cells.update(((row, col), v) for col, v in zip(cols, entry, strict=True))
                elif isinstance(entry, list):
                    self.problem(
                        path,
                        N_("In a one-dimensional table (no cols) each row of values is a number"),
                    )
                    break
                else:
                    cells[(row,)] = entry
            if not all(math.isfinite(v) for v in cells.values()) or (
                t.default is not None and not math.isfinite(t.default)
            ):
                self.problem(path, N_("The numbers of a table must be finite"))
            axes = (frozenset(rows), frozenset(cols)) if cols else (frozenset(rows),)
            tables[t.key] = formula.Table(t.key, axes, cells, t.default)
        return tables

    def build_fields(self, tables: Mapping[str, formula.Table]) -> list[CompiledField]:
        fields: list[CompiledField] = []
        earlier: dict[str, formula.Symbol] = {}
        for f in self.d.fields:
            show_if = None
            if f.show_if.strip():
                path = f"fields.{f.key}.show_if"
                parsed = self.parse(f.show_if, path)
                if parsed is not None:
                    later = [n for n in parsed.names if n not in earlier and n in self.field_keys]
                    if later:
                        self.formula_errors.append(
                            InvalidFormula(
                                path,
                                parsed.names[later[0]],
                                N_("show_if can only use earlier fields: %(name)s comes later"),
                                name=later[0],
                            )
                        )
                        parsed = None
                show_if = self.condition(self.build(parsed, earlier, tables))
            tiers = {o.value: float(o.tier) for o in f.options if o.tier is not None}
            labels = {o.value: o.label or o.value for o in f.options}
            fields.append(CompiledField(f, show_if, _fallback(f), tiers, labels))
            earlier[f.key] = _field_symbol(f)
        return fields

    @property
    def field_keys(self) -> set[str]:
        return {f.key for f in self.d.fields}

    def condition(self, expression: formula.Expression | None) -> formula.Expression | None:
        if expression is not None and expression.type == "text":
            self.formula_errors.append(
                InvalidFormula(
                    expression.path, 0, N_("A condition must be true/false or a number, not text")
                )
            )
        return expression

    def build_variables(
        self, symbols: dict[str, formula.Symbol], tables: Mapping[str, formula.Table]
    ) -> list[tuple[str, formula.Expression]]:
        parsed = {
            name: self.parse(source, f"variables.{name}")
            for name, source in self.d.variables.items()
        }
        uses = {
            name: [n for n in p.names if n in parsed] if p is not None else []
            for name, p in parsed.items()
        }
        order = self.topological(uses, parsed)
        compiled: list[tuple[str, formula.Expression]] = []
        for name in order:
            expression = self.build(parsed[name], symbols, tables)
            if expression is None:
                symbols[name] = formula.Symbol("number")
                continue
            symbols[name] = formula.Symbol(expression.type, expression.options)
            compiled.append((name, expression))
        return compiled

    def topological(
        self, uses: Mapping[str, list[str]], parsed: Mapping[str, formula.Parsed | None]
    ) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done
        for start in uses:
            if state.get(start):
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            trail: list[str] = []
            while stack:
                name, index = stack.pop()
                if index == 0:
                    state[name] = 1
                    trail.append(name)
                deps = uses[name]
                if index < len(deps):
                    stack.append((name, index + 1))
                    dep = deps[index]
                    if state.get(dep) == 1:
                        cycle = [*trail[trail.index(dep) :], dep]
                        p = parsed[name]
                        column = p.names[dep] if p is not None else 0
                        self.formula_errors.append(
                            InvalidFormula(
                                f"variables.{name}",
                                column,
                                N_("Circular reference: %(cycle)s"),
                                cycle=" → ".join(cycle),
                            )
                        )
                    elif not state.get(dep):
                        stack.append((dep, 0))
                    continue
                state[name] = 2
                trail.pop()
                order.append(name)
        return order

    def build_outputs(
        self, symbols: Mapping[str, formula.Symbol], tables: Mapping[str, formula.Table]
    ) -> list[CompiledOutput]:
        outputs: list[CompiledOutput] = []
        known = set(symbols) | {o.key for o in self.d.outputs}
        text_outputs = {o.key for o in self.d.outputs if o.kind == "text"}
        for o in self.d.outputs:
            path = f"outputs.{o.key}"
            built: dict[str, formula.Expression | None] = {}
            for attribute in ("formula", "low", "high", "show_if"):
                source = getattr(o, attribute)
                if not source.strip():
                    built[attribute] = None
                    continue
                expression = self.build(self.parse(source, f"{path}.{attribute}"), symbols, tables)
                if expression is not None and expression.type == "text":
                    self.formula_errors.append(
                        InvalidFormula(
                            expression.path,
                            0,
                            N_("A number or a condition is needed here, not text"),
                        )
                    )
                built[attribute] = expression
            templates: dict[str, fmt_.Template | None] = {}
            for attribute in ("note", "text"):
                source = getattr(o, attribute)
                templates[attribute] = None
                if not source:
                    continue
                try:
                    template = fmt_.Template(source, known.__contains__)
                except fmt_.TemplateError as exc:
                    self.problem(f"{path}.{attribute}", exc.message, **exc.params)
                    continue
                if template.names & text_outputs:
                    name = sorted(template.names & text_outputs)[0]
                    self.problem(
                        f"{path}.{attribute}",
                        N_("A text result cannot be used here: %(placeholder)s"),
                        placeholder=f"{{{name}}}",
                    )
                    continue
                templates[attribute] = template
            outputs.append(
                CompiledOutput(
                    o,
                    built["formula"],
                    built["low"],
                    built["high"],
                    built["show_if"],
                    templates["note"],
                    templates["text"],
                )
            )
        return outputs


def _field_symbol(f: FieldDef) -> formula.Symbol:
    if f.kind in NUMERIC_KINDS:
        return formula.Symbol("number")
    if f.kind == "checkbox":
        return formula.Symbol("bool")
    if f.kind == "city":
        tiers = frozenset(formula.canonical_key(float(o.tier)) for o in f.options if o.tier)
        return formula.Symbol("number", tiers)
    return formula.Symbol("text", frozenset(o.value for o in f.options))


def _fallback(f: FieldDef) -> formula.Value:
    if f.kind == "checkbox":
        return bool(f.default) if f.default is not None else False
    if f.kind in CHOICE_KINDS:
        value = f.default if isinstance(f.default, str) else (f.options[0].value)
        if f.kind == "city":
            tier = next((o.tier for o in f.options if o.value == value), 1)
            return float(tier or 1)
        return value
    if isinstance(f.default, float):
        return f.default
    return f.min if f.min is not None else 0.0
