"""A compiled calculator and its evaluation for a visitor's inputs.

``CompiledCalculator`` is what ``app.calculators.compiler`` returns once a definition has been
checked. It evaluates inputs without raising: bad inputs come back as per-field messages in the
request's language, run-time trouble (division by zero, a missing table key) as a defined result
plus a warning.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from app.calculators import errors
from app.calculators import format as fmt_
from app.calculators.errors import say
from app.calculators.formula import Expression, Value, canonical_key, round_half_up
from app.calculators.schemas import CalculatorDef, FieldDef, OutputDef, OutputValue
from app.calculators.toml_writer import dumps as toml_dumps
from app.core.errors import NotFound
from app.core.i18n import N_

MAX_INPUT_CHARS = 32
# What a checkbox's answer may be, as forms and API clients send it (input, not text shown:
# a Chinese client may type 是/否, "yes"/"no").
_TRUE = frozenset({"on", "true", "1", "yes", "y", "是"})
_FALSE = frozenset({"", "off", "false", "0", "no", "n", "否"})
YES, NO = N_("Yes"), N_("No")  # a checkbox's answer in text
CHOICE_KINDS = frozenset({"select", "radio", "city"})
NUMERIC_KINDS = frozenset({"number", "count"})


class Evaluation(msgspec.Struct, kw_only=True):
    """The outcome of one evaluation. When ``errors`` is not empty, there are no results."""

    inputs: dict[str, Any]  # coerced values of the visible fields, defaults filled in
    errors: dict[str, str]  # field key -> message, in the request's language
    teaser: list[OutputValue]
    full: list[OutputValue]
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class CompiledField:
    definition: FieldDef
    show_if: Expression | None
    fallback: Value  # the formula value when hidden or invalid
    tiers: Mapping[str, float]  # city option value -> tier
    labels: Mapping[str, str]  # option value -> label


@dataclass(frozen=True, slots=True)
class CompiledOutput:
    definition: OutputDef
    formula: Expression | None
    low: Expression | None
    high: Expression | None
    show_if: Expression | None
    note: fmt_.Template | None
    text: fmt_.Template | None


class CompiledCalculator:
    """A checked definition with its compiled formulas. Immutable; safe to share and cache."""

    def __init__(
        self,
        definition: CalculatorDef,
        fields: list[CompiledField],
        variables: list[tuple[str, Expression]],
        outputs: list[CompiledOutput],
        template_names: frozenset[str],
    ) -> None:
        self.definition = definition
        self._fields = fields
        self._by_key = {f.definition.key: f.definition for f in fields}
        self._variables = variables
        self._outputs = outputs
        self._template_names = template_names
        self._shown = set(definition.teaser) | set(definition.full)
        canonical = msgspec.json.encode(definition, order="deterministic")
        self.definition_hash = hashlib.sha256(canonical).hexdigest()

    def fields_for_step(self, step_key: str) -> list[FieldDef]:
        """The fields of one step, in order (visible or not)."""
        for step in self.definition.steps:
            if step.key == step_key:
                return [self._by_key[key] for key in step.fields]
        raise NotFound(fields={"step": step_key[:40]})

    def visible_fields(
        self, inputs: Mapping[str, object], step: str | None = None
    ) -> list[FieldDef]:
        """The fields whose ``show_if`` holds for ``inputs`` (of one step, if given)."""
        wanted = {f.key for f in self.fields_for_step(step)} if step is not None else None
        _, _, _, visible = self._resolve(inputs)
        return [f for f in visible if wanted is None or f.key in wanted]

    def sample_inputs(self) -> dict[str, object]:
        """Inputs that pass validation: each field's default, else its first option or minimum."""
        sample: dict[str, object] = {}
        for field in self._fields:
            d = field.definition
            if d.default is not None:
                sample[d.key] = d.default
            elif d.kind in CHOICE_KINDS:
                sample[d.key] = d.options[0].value
            elif d.kind == "checkbox":
                sample[d.key] = False
            else:
                sample[d.key] = d.min
        return sample

    def to_toml(self) -> str:
        return toml_dumps(msgspec.to_builtins(self.definition))

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.definition)

    def evaluate(self, inputs: Mapping[str, object]) -> Evaluation:
        """Validate ``inputs`` and compute the teaser and full results. Never raises."""
        values, shown, problems, _ = self._resolve(inputs)
        if problems:
            return Evaluation(inputs=shown, errors=problems, teaser=[], full=[], warnings=[])
        warnings: list[str] = []
        for name, expression in self._variables:
            values[name] = expression.evaluate(values, warnings)
        results: dict[str, OutputValue] = {}
        numbers: dict[str, float] = {}
        pending: list[tuple[CompiledOutput, OutputValue]] = []
        for output in self._outputs:
            d = output.definition
            if d.key not in self._shown and d.key not in self._template_names:
                continue
            if output.show_if is not None and not output.show_if.evaluate(values, warnings):
                continue
            result = self._compute(output, values, warnings)
            results[d.key] = result
            if isinstance(result.value, float):
                numbers[d.key] = result.value
            if output.note is not None or output.text is not None:
                pending.append((output, result))
        if pending:
            texts = self._texts(values, shown, results, numbers)
            for output, result in pending:
                if output.text is not None:
                    result.value = result.display = output.text.render(texts, numbers)
                    texts[output.definition.key] = result.display
                if output.note is not None:
                    result.note = output.note.render(texts, numbers)
        teaser = [results[k] for k in self.definition.teaser if k in results]
        full = [results[k] for k in self.definition.full if k in results]
        return Evaluation(
            inputs=shown,
            errors={},
            teaser=teaser,
            full=full,
            warnings=list(dict.fromkeys(warnings)),
        )

    def _resolve(
        self, inputs: Mapping[str, object]
    ) -> tuple[dict[str, Value], dict[str, Any], dict[str, str], list[FieldDef]]:
        values: dict[str, Value] = {}
        shown: dict[str, Any] = {}
        problems: dict[str, str] = {}
        visible: list[FieldDef] = []
        for field in self._fields:
            d = field.definition
            if field.show_if is not None and not field.show_if.evaluate(values):
                values[d.key] = field.fallback
                continue
            visible.append(d)
            try:
                value, formula_value = _coerce(field, inputs.get(d.key))
            except _BadInput as exc:
                problems[d.key] = str(exc)
                values[d.key] = field.fallback
                continue
            shown[d.key] = value
            values[d.key] = formula_value
        return values, shown, problems, visible

    def _compute(
        self, output: CompiledOutput, values: dict[str, Value], warnings: list[str]
    ) -> OutputValue:
        d = output.definition
        unit = d.unit
        value: float | list[float] | str
        if d.kind == "text":
            value = display = ""
        elif d.kind == "range":
            assert output.low is not None and output.high is not None
            low = float(output.low.evaluate(values, warnings))
            high = float(output.high.evaluate(values, warnings))
            low, high = min(low, high), max(low, high)
            if d.style == "currency":
                low, high = round_half_up(low, 0), round_half_up(high, 0)
                places = 1 if d.decimals is None else d.decimals
                display = fmt_.range_text(fmt_.currency(low, places), fmt_.currency(high, places))
            else:
                places = d.decimals or 0
                low, high = round_half_up(low, places), round_half_up(high, places)
                display = fmt_.range_text(fmt_.number(low, places), fmt_.number(high, places))
            value, display = [low, high], display + unit
        else:
            assert output.formula is not None
            number = float(output.formula.evaluate(values, warnings))
            if d.kind == "currency":
                value = round_half_up(number, 0)
                display = fmt_.currency(value, 1 if d.decimals is None else d.decimals) + unit
            else:
                value = round_half_up(number, d.decimals or 0)
                display = fmt_.number(value, d.decimals or 0) + unit
        return OutputValue(
            key=d.key, label=d.label, kind=d.kind, value=value, display=display, group=d.group
        )

    def _texts(
        self,
        values: Mapping[str, Value],
        shown: Mapping[str, Any],
        results: Mapping[str, OutputValue],
        numbers: dict[str, float],
    ) -> dict[str, str]:
        texts: dict[str, str] = {}
        for name in self._template_names:
            if name in results:
                texts[name] = results[name].display
                continue
            if name not in values:
                continue
            value = values[name]
            field = self._by_key.get(name)
            if field is not None and field.kind in CHOICE_KINDS:
                choice = shown.get(name, value if field.kind != "city" else "")
                texts[name] = _option_label(field, str(choice))
            elif isinstance(value, bool):
                texts[name] = say(YES if value else NO)
            elif isinstance(value, str):
                texts[name] = value
            else:
                numbers.setdefault(name, value)
                texts[name] = fmt_.plain(value)
        return texts


def _option_label(field: FieldDef, value: str) -> str:
    for option in field.options:
        if option.value == value:
            return option.label or option.value
    return value


class _BadInput(Exception):
    pass


def _coerce(field: CompiledField, raw: object) -> tuple[Any, Value]:
    """(the value to keep as the visitor's input, the value formulas see)."""
    d = field.definition
    label = d.label
    if isinstance(raw, str):
        raw = raw[: MAX_INPUT_CHARS + 1].strip()
    if d.kind == "checkbox":
        if raw is None:
            return False, False
        if isinstance(raw, bool):
            return raw, raw
        if isinstance(raw, int | float) and raw in (0, 1):
            return bool(raw), bool(raw)
        if isinstance(raw, str) and raw.lower() in _TRUE:
            return True, True
        if isinstance(raw, str) and raw.lower() in _FALSE:
            return False, False
        raise _BadInput(say(errors.MSG_NOT_A_BOOLEAN, label=label))
    if raw is None or raw == "":
        if d.default is None:
            template = errors.MSG_CHOOSE if d.kind in CHOICE_KINDS else errors.MSG_REQUIRED
            raise _BadInput(say(template, label=label))
        raw = d.default
    if d.kind in CHOICE_KINDS:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise _BadInput(say(errors.MSG_NOT_AN_OPTION, label=label))
        if isinstance(raw, str):
            choice = raw
        else:
            key = _to_number(raw)
            choice = canonical_key(key) if key is not None else ""
        if choice not in field.labels:
            raise _BadInput(say(errors.MSG_NOT_AN_OPTION, label=label))
        return choice, field.tiers[choice] if d.kind == "city" else choice
    number = _to_number(raw)
    if number is None:
        raise _BadInput(say(errors.MSG_NOT_A_NUMBER, label=label))
    if d.kind == "count" and not number.is_integer():
        raise _BadInput(say(errors.MSG_NOT_AN_INTEGER, label=label))
    assert d.min is not None and d.max is not None
    if number < d.min:
        raise _BadInput(say(errors.MSG_TOO_SMALL, label=label, limit=fmt_.plain(d.min) + d.unit))
    if number > d.max:
        raise _BadInput(say(errors.MSG_TOO_LARGE, label=label, limit=fmt_.plain(d.max) + d.unit))
    if d.kind == "count":
        return int(number), number
    return number, number


_NUMBER_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$")


def _to_number(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:  # an int too large for a float
            return None
    elif isinstance(raw, str) and len(raw) <= MAX_INPUT_CHARS:
        # Full-width digits and commas, as some phone keyboards type them.
        text = unicodedata.normalize("NFKC", raw).replace(",", "")
        if not _NUMBER_TEXT.match(text):
            return None
        number = float(text)
    else:
        return None
    return number if math.isfinite(number) else None
