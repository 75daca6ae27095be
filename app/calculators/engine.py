"""Checking a calculator definition once: ``parse_definition`` and ``compile_definition``.

They check the structure, compile every formula and note template, resolve every reference
(fields, variables, tables) and order the variables by what they use, refusing cycles. The result
is a ``CompiledCalculator`` (``app.calculators.compiled``), re-exported here with ``Evaluation``
and ``OutputValue`` so callers need only this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import msgspec

from app.calculators import expr
from app.calculators import format as fmt_
from app.calculators.compiled import (
    CHOICE_KINDS,
    NUMERIC_KINDS,
    CompiledCalculator,
    CompiledField,
    CompiledOutput,
    Evaluation,
    OutputValue,
)
from app.calculators.errors import InvalidDefinition, InvalidFormula, schema_problem
from app.calculators.schemas import CalculatorDef, FieldDef, OutputDef

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
        raise InvalidDefinition(
            fields={"definition": f"定义太大（最多 {MAX_DEFINITION_CHARS} 个字符）"}
        )
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
        raise InvalidDefinition(fields={"definition": f"{name} 写法有误：{exc}"}) from None
    return compile_definition(definition)


def compile_definition(definition: CalculatorDef) -> CompiledCalculator:
    """Check a decoded definition and compile its formulas; see ``parse_definition``."""
    return _Compiler(definition).run()


class _Compiler:
    def __init__(self, definition: CalculatorDef) -> None:
        self.d = definition
        self.problems: dict[str, str] = {}
        self.formula_errors: list[InvalidFormula] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.setdefault(path, message)

    def run(self) -> CompiledCalculator:
        self.check_structure()
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

    def parse(self, source: str, path: str) -> expr.Parsed | None:
        try:
            return expr.parse(source, path)
        except InvalidFormula as exc:
            self.formula_errors.append(exc)
            return None

    def build(
        self,
        parsed: expr.Parsed | None,
        symbols: Mapping[str, expr.Symbol],
        tables: Mapping[str, expr.Table],
    ) -> expr.Expression | None:
        if parsed is None:
            return None
        try:
            return expr.build(parsed, symbols, tables)
        except InvalidFormula as exc:
            self.formula_errors.append(exc)
            return None

    # Structure ----------------------------------------------------------------------------

    def check_structure(self) -> None:
        d = self.d
        seen: dict[str, str] = {}
        named = [
            *(("fields", f.key) for f in d.fields),
            *(("tables", t.key) for t in d.tables),
            *(("variables", k) for k in d.variables),
            *(("outputs", o.key) for o in d.outputs),
        ]
        for section, key in named:
            path = f"{section}.{key}"
            if key in expr.RESERVED:
                self.problem(path, f"{key} 是保留字（函数名或关键字），请换一个名字")
            elif key in seen:
                self.problem(path, f"名字 {key} 重复了（{seen[key]} 已经用过）")
            else:
                seen[key] = section
        for field in d.fields:
            self.check_field(field)
        placed: dict[str, str] = {}
        step_keys: set[str] = set()
        field_keys = {f.key for f in d.fields}
        for step in d.steps:
            if step.key in step_keys:
                self.problem(f"steps.{step.key}", f"步骤 {step.key} 重复了")
            step_keys.add(step.key)
            for key in step.fields:
                if key not in field_keys:
                    self.problem(f"steps.{step.key}.fields", f"没有名为 {key} 的字段")
                elif key in placed:
                    self.problem(f"steps.{step.key}.fields", f"字段 {key} 已在步骤 {placed[key]}")
                else:
                    placed[key] = step.key
        for key in field_keys - placed.keys():
            self.problem(f"fields.{key}", "这个字段不在任何步骤里")
        for output in d.outputs:
            self.check_output(output)
        output_keys = {o.key for o in d.outputs}
        for section, keys in (("teaser", d.teaser), ("full", d.full)):
            for key in keys:
                if key not in output_keys:
                    self.problem(section, f"没有名为 {key} 的结果")
            if len(set(keys)) != len(keys):
                self.problem(section, "有重复的结果")

    def check_field(self, f: FieldDef) -> None:
        path = f"fields.{f.key}"
        if f.kind in NUMERIC_KINDS:
            if f.min is None or f.max is None:
                self.problem(path, "数字字段需要 min 和 max")
                return
            if not (math.isfinite(f.min) and math.isfinite(f.max)) or f.min > f.max:
                self.problem(path, "min 和 max 需要是有限的数字，且 min 不大于 max")
                return
            if f.kind == "count" and not (f.min.is_integer() and f.max.is_integer()):
                self.problem(path, "计数字段的 min 和 max 需要是整数")
            if f.step is not None and not (math.isfinite(f.step) and f.step > 0):
                self.problem(path, "step 需要是正数")
            if f.options:
                self.problem(path, "数字字段不能有 options")
            if f.default is not None:
                if isinstance(f.default, bool) or not isinstance(f.default, float):
                    self.problem(path, "默认值需要是数字")
                elif not f.min <= f.default <= f.max:
                    self.problem(path, "默认值不在 min 和 max 之间")
                elif f.kind == "count" and not f.default.is_integer():
                    self.problem(path, "计数字段的默认值需要是整数")
            return
        if f.min is not None or f.max is not None or f.step is not None:
            self.problem(path, "只有数字字段能设 min、max、step")
        if f.kind == "checkbox":
            if f.options:
                self.problem(path, "勾选字段不能有 options")
            if f.default is not None and not isinstance(f.default, bool):
                self.problem(path, "勾选字段的默认值需要是 true 或 false")
            return
        values = [o.value for o in f.options]
        if not values:
            self.problem(path, "选择字段至少需要一个选项")
        if len(set(values)) != len(values):
            self.problem(path, "选项的 value 重复了")
        for option in f.options:
            if (option.tier is None) == (f.kind == "city"):
                message = "城市选项需要 tier" if f.kind == "city" else "只有城市选项能设 tier"
                self.problem(f"{path}.options", message)
        if f.default is not None and f.default not in values:
            self.problem(path, "默认值需要是某个选项的 value")

    def check_output(self, o: OutputDef) -> None:
        path = f"outputs.{o.key}"
        needs = {
            "number": ("formula",),
            "currency": ("formula",),
            "range": ("low", "high"),
            "text": ("text",),
        }[o.kind]
        for attribute in ("formula", "low", "high", "text"):
            given = bool(getattr(o, attribute).strip())
            if attribute in needs and not given:
                self.problem(path, f"{o.kind} 结果需要 {attribute}")
            elif attribute not in needs and given:
                self.problem(path, f"{o.kind} 结果不用 {attribute}")

    # Tables, fields, variables, outputs ---------------------------------------------------

    def build_tables(self) -> dict[str, expr.Table]:
        tables: dict[str, expr.Table] = {}
        for t in self.d.tables:
            path = f"tables.{t.key}"
            rows = [expr.canonical_key(k) for k in t.rows]
            cols = [expr.canonical_key(k) for k in t.cols]
            if len(set(rows)) != len(rows) or len(set(cols)) != len(cols):
                self.problem(path, "表的行或列的键重复了")
                continue
            if len(t.values) != len(rows):
                self.problem(path, f"values 需要 {len(rows)} 行（和 rows 一样多）")
                continue
            cells: dict[tuple[str, ...], float] = {}
            for row, entry in zip(rows, t.values, strict=True):
                if cols:
                    if not isinstance(entry, list) or len(entry) != len(cols):
                        self.problem(path, f"第 {row} 行需要 {len(cols)} 个数（和 cols 一样多）")
                        break
                    cells.update(((row, col), v) for col, v in zip(cols, entry, strict=True))
                elif isinstance(entry, list):
                    self.problem(path, "一维表（没有 cols）的 values 每行是一个数")
                    break
                else:
                    cells[(row,)] = entry
            if not all(math.isfinite(v) for v in cells.values()) or (
                t.default is not None and not math.isfinite(t.default)
            ):
                self.problem(path, "表里的数需要是有限的数字")
            axes = (frozenset(rows), frozenset(cols)) if cols else (frozenset(rows),)
            tables[t.key] = expr.Table(t.key, axes, cells, t.default)
        return tables

    def build_fields(self, tables: Mapping[str, expr.Table]) -> list[CompiledField]:
        fields: list[CompiledField] = []
        earlier: dict[str, expr.Symbol] = {}
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
                                f"show_if 只能用排在前面的字段，{later[0]} 在后面",
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

    def condition(self, expression: expr.Expression | None) -> expr.Expression | None:
        if expression is not None and expression.type == "text":
            self.formula_errors.append(
                InvalidFormula(expression.path, 0, "条件需要是真假或数字，不能是文字")
            )
        return expression

    def build_variables(
        self, symbols: dict[str, expr.Symbol], tables: Mapping[str, expr.Table]
    ) -> list[tuple[str, expr.Expression]]:
        parsed = {
            name: self.parse(source, f"variables.{name}")
            for name, source in self.d.variables.items()
        }
        uses = {
            name: [n for n in p.names if n in parsed] if p is not None else []
            for name, p in parsed.items()
        }
        order = self.topological(uses, parsed)
        compiled: list[tuple[str, expr.Expression]] = []
        for name in order:
            expression = self.build(parsed[name], symbols, tables)
            if expression is None:
                symbols[name] = expr.Symbol("number")
                continue
            symbols[name] = expr.Symbol(expression.type, expression.options)
            compiled.append((name, expression))
        return compiled

    def topological(
        self, uses: Mapping[str, list[str]], parsed: Mapping[str, expr.Parsed | None]
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
                                f"variables.{name}", column, "循环引用：" + " → ".join(cycle)
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
        self, symbols: Mapping[str, expr.Symbol], tables: Mapping[str, expr.Table]
    ) -> list[CompiledOutput]:
        outputs: list[CompiledOutput] = []
        known = set(symbols) | {o.key for o in self.d.outputs}
        text_outputs = {o.key for o in self.d.outputs if o.kind == "text"}
        for o in self.d.outputs:
            path = f"outputs.{o.key}"
            built: dict[str, expr.Expression | None] = {}
            for attribute in ("formula", "low", "high", "show_if"):
                source = getattr(o, attribute)
                if not source.strip():
                    built[attribute] = None
                    continue
                expression = self.build(self.parse(source, f"{path}.{attribute}"), symbols, tables)
                if expression is not None and expression.type == "text":
                    self.formula_errors.append(
                        InvalidFormula(expression.path, 0, "这里需要数字或条件，不能是文字")
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
                except ValueError as exc:
                    self.problem(f"{path}.{attribute}", str(exc))
                    continue
                if template.names & text_outputs:
                    name = sorted(template.names & text_outputs)[0]
                    self.problem(f"{path}.{attribute}", f"不能引用文字结果 {{{name}}}")
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


def _field_symbol(f: FieldDef) -> expr.Symbol:
    if f.kind in NUMERIC_KINDS:
        return expr.Symbol("number")
    if f.kind == "checkbox":
        return expr.Symbol("bool")
    if f.kind == "city":
        tiers = frozenset(expr.canonical_key(float(o.tier)) for o in f.options if o.tier)
        return expr.Symbol("number", tiers)
    return expr.Symbol("text", frozenset(o.value for o in f.options))


def _fallback(f: FieldDef) -> expr.Value:
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
