"""The calculator editor's forms: a draft with the form's values put in.

Form edits address the definition by key, the same paths the checker reports problems on:
``fields.area.max``, ``tables.unit_price.values.2.1``, ``tables.unit_price.row_labels.2``,
``variables.total``, ``outputs.total_range.low``. Adding and removing questions, rows and results
is in ``editor_ops``. Nothing here checks the whole draft: the editor (``editor.check``) does,
after.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from app.calculators.compiler import CompiledCalculator
from app.calculators.errors import InvalidDefinition, say
from app.calculators.schemas import MAX_NUMBER
from app.core.errors import InvalidInput
from app.core.i18n import N_

MAX_FORM_VALUES = 5_000
MAX_VALUE_CHARS = 2_000
# Attributes the forms may set, per section; anything else in a form is ignored.
_TEXT = {
    "top": ("title", "intro", "disclaimer"),
    "cta": ("label", "text", "url"),
    "steps": ("title", "help"),
    "fields": ("label", "help", "unit", "show_if"),
    "tables": ("label",),
    "outputs": ("label", "formula", "low", "high", "text", "unit", "group", "note", "show_if"),
}
_NUMBERS = {
    "fields": ("min", "max", "step"),
    "tables": ("default",),
    "outputs": ("decimals",),
}


def apply_form(draft: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The draft with the form's values put in. Unknown names are ignored; values that are not
    numbers where numbers are needed raise InvalidInput naming the path."""
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(draft))
    if len(form) > MAX_FORM_VALUES:
        raise InvalidInput(fields={"definition": say(N_("Too many form values"))})
    problems: dict[str, str] = {}
    by_key = {
        section: {str(item.get("key")): item for item in data.get(section, [])}
        for section in ("steps", "fields", "tables", "outputs")
    }
    for name, raw in form.items():
        value = raw.replace("\r\n", "\n")
        if len(value) > MAX_VALUE_CHARS:
            problems[name[:120]] = say(
                N_("Too long (at most %(limit)s characters)"), limit=MAX_VALUE_CHARS
            )
            continue
        parts = name.split(".")
        try:
            _apply(data, by_key, parts, value)
        except _FormValueError as exc:
            problems[name[:120]] = str(exc)
    if problems:
        raise InvalidDefinition(fields=problems)
    for table in data.get("tables", []):
        for which in ("row_labels", "col_labels"):
            if which in table and not any(table[which]):
                del table[which]  # no label given: the editor shows the keys' own words
    return data


class _FormValueError(ValueError):
    pass


def _apply(
    data: dict[str, Any],
    by_key: Mapping[str, Mapping[str, dict[str, Any]]],
    parts: list[str],
    value: str,
) -> None:
    head = parts[0]
    if len(parts) == 1:
        if head in _TEXT["top"]:
            data[head] = value.strip()
        elif head in ("teaser", "full"):
            # Keys typed with ASCII or full-width commas (as Chinese keyboards type them).
            data[head] = [k for k in re.split(r"[\s,，]+", value) if k]
        return
    if head == "cta" and len(parts) == 2 and parts[1] in _TEXT["cta"]:
        _set_text(data.setdefault("cta", {}), parts[1], value)
        return
    if head == "variables" and len(parts) == 2:
        if parts[1] not in data.get("variables", {}):
            return
        if value.strip():
            data["variables"][parts[1]] = value.strip()
        else:
            del data["variables"][parts[1]]
        return
    if head == "new_variable":
        return  # handled by add_variable
    item = by_key.get(head, {}).get(parts[1]) if len(parts) >= 3 else None
    if item is None:
        return
    attribute = parts[2]
    if head == "tables" and attribute == "values":
        _set_table_value(item, parts[3:], value)
    elif head == "tables" and attribute in ("row_labels", "col_labels") and len(parts) == 4:
        _set_key_label(item, attribute, parts[3], value)
    elif attribute in _TEXT.get(head, ()):
        _set_text(item, attribute, value)
    elif attribute in _NUMBERS.get(head, ()):
        number = _number(value)
        if number is None:
            item.pop(attribute, None)
        else:
            item[attribute] = int(number) if attribute == "decimals" else number
    elif head == "fields" and attribute == "default":
        _set_default(item, value)
    elif head == "fields" and attribute == "options":
        item["options"] = _options(value)
    elif head == "outputs" and attribute == "style" and value in ("currency", "number"):
        item["style"] = value


def _set_text(item: dict[str, Any], attribute: str, value: str) -> None:
    text = value.strip() if attribute not in ("note", "text", "help") else value.strip("\n ")
    if text:
        item[attribute] = text
    else:
        item.pop(attribute, None)


def _number(value: str) -> float | None:
    text = value.strip().replace(",", "").replace("，", "")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise _FormValueError(say(N_("“%(text)s” is not a number"), text=text[:20])) from None
    if not math.isfinite(number) or abs(number) > MAX_NUMBER:
        raise _FormValueError(say(N_("The number is too large")))
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _set_default(item: dict[str, Any], value: str) -> None:
    text = value.strip()
    kind = item.get("kind")
    if not text:
        item.pop("default", None)
    elif kind in ("number", "count"):
        item["default"] = _number(text)
    elif kind == "checkbox":
        item["default"] = text.lower() in ("true", "1", "yes", "是", "on")
    else:
        item["default"] = text


def _options(value: str) -> list[dict[str, Any]]:
    """One option per line: ``value | label | tier`` (label and tier optional)."""
    options = []
    for line in value.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if not cells[0]:
            continue
        option: dict[str, Any] = {"value": cells[0]}
        if len(cells) > 1 and cells[1]:
            option["label"] = cells[1]
        if len(cells) > 2 and cells[2]:
            tier = _number(cells[2])
            if tier is None or tier != int(tier):
                raise _FormValueError(say(N_("A city's tier must be a whole number")))
            option["tier"] = int(tier)
        options.append(option)
    return options


def _set_key_label(table: dict[str, Any], which: str, index_text: str, value: str) -> None:
    keys = table.get("rows" if which == "row_labels" else "cols", [])
    index = int(index_text) if index_text.isdigit() and len(index_text) < 4 else -1
    if not 0 <= index < len(keys):
        return
    label = value.strip()
    if len(label) > 40:
        raise _FormValueError(say(N_("At most %(limit)s characters"), limit=40))
    labels = list(table.get(which) or [])
    labels += [""] * (len(keys) - len(labels))
    labels[index] = label
    table[which] = labels


def _set_table_value(table: dict[str, Any], where: list[str], value: str) -> None:
    values = table.get("values", [])
    try:
        indexes = [int(i) for i in where]
    except ValueError:
        return
    number = _number(value)
    if number is None:
        raise _FormValueError(say(N_("Every cell of a table needs a number")))
    if (
        len(indexes) == 1
        and 0 <= indexes[0] < len(values)
        and not isinstance(values[indexes[0]], list)
    ):
        values[indexes[0]] = number
    elif (
        len(indexes) == 2
        and 0 <= indexes[0] < len(values)
        and isinstance(values[indexes[0]], list)
        and 0 <= indexes[1] < len(values[indexes[0]])
    ):
        values[indexes[0]][indexes[1]] = number


def add_variable(draft: Mapping[str, Any], name: str, formula: str) -> dict[str, Any]:
    """The draft with one more named variable (checked with the rest by ``check``)."""
    name, formula = name.strip(), formula.strip()
    if not re.match(r"^[a-z][a-z0-9_]{0,39}$", name):
        raise InvalidDefinition(
            fields={
                "new_variable.name": say(
                    N_(
                        "A name starts with a lower-case letter and holds only lower-case "
                        "letters, digits and underscores, at most 40"
                    )
                )
            }
        )
    if not formula:
        raise InvalidDefinition(fields={"new_variable.formula": say(N_("Please write a formula"))})
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(draft))
    if name in data.get("variables", {}):
        raise InvalidDefinition(
            fields={"new_variable.name": say(N_("The variable %(name)s already exists"), name=name)}
        )
    data.setdefault("variables", {})[name] = formula
    return data


def sample_values(calc: CompiledCalculator, form: Mapping[str, str]) -> dict[str, object]:
    """The preview's sample inputs: the form's ``sample.KEY`` values over the calculator's own
    sample. An unticked checkbox sends nothing, so the form marks which samples it carries."""
    values = calc.sample_inputs()
    if form.get("sample._present") == "1":
        for field in calc.definition.fields:
            if field.kind == "checkbox":
                values[field.key] = form.get(f"sample.{field.key}", "") == "true"
    for name, value in form.items():
        if name.startswith("sample.") and name[7:] in values:
            values[name[7:]] = value
    return values
