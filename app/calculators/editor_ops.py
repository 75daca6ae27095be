"""Structure edits from the editor's forms: add or remove a question, a table row, a result, and
which results show before and after the gate — without typing a key.

The editor's save button posts ``op`` beside the form's values: ``add_field``,
``remove_field:KEY``, ``add_row:TABLE``, ``remove_row:TABLE:INDEX``, ``add_output``,
``remove_output:KEY``. ``apply_op`` returns the draft with the change made, or raises
``InvalidDefinition`` naming, in words, what stands in the way (a formula that still reads a
question, a result still shown in another's text); the editor then checks the whole draft
(``editor.check``) before anything is saved. New keys are made up (``q1``, ``r1``): people see
labels; a new table row's key is its label unless one is given.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from app.calculators import editor_map
from app.calculators.editor import check
from app.calculators.errors import InvalidDefinition, say
from app.calculators.schemas import MAX_NUMBER
from app.core.i18n import N_

NEW_FIELD_KINDS = ("number", "count", "select", "radio", "checkbox")
NEW_OUTPUT_KINDS = ("currency", "number", "text")
_SEPARATOR = "、"


def apply_op(draft: dict[str, Any], op: str, form: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``draft`` with the operation ``op`` applied; ``draft`` itself never changes."""
    draft = copy.deepcopy(draft)
    name, _, arg = op.partition(":")
    if name == "add_field":
        _add_field(draft, form)
    elif name == "remove_field":
        _remove_field(draft, arg)
    elif name == "add_row":
        _add_row(draft, arg, form)
    elif name == "remove_row":
        table, _, index = arg.partition(":")
        _remove_row(draft, table, index)
    elif name == "add_output":
        _add_output(draft, form)
    elif name == "remove_output":
        _remove_output(draft, arg)
    else:
        _refuse("op", N_("Unknown action"))
    return draft


def apply_lists(draft: dict[str, Any], form: Mapping[str, str]) -> None:
    """The teaser and full lists from the results' check boxes (``teaser.KEY``, ``full.KEY``):
    ticked results keep their place, newly ticked ones follow in the results' order."""
    if form.get("lists._present") != "1":
        return
    keys = [str(o.get("key")) for o in draft.get("outputs", [])]
    for section in ("teaser", "full"):
        ticked = {k for k in keys if form.get(f"{section}.{k}")}
        kept = [k for k in draft.get(section, []) if k in ticked]
        draft[section] = kept + [k for k in keys if k in ticked and k not in kept]
    if not draft["teaser"]:
        _refuse("teaser", N_("Tick at least one result to show before the phone check"))
    if not draft["full"]:
        _refuse("full", N_("Tick at least one result to show after the phone check"))


def _refuse(path: str, message: str, **params: object) -> NoReturn:
    raise InvalidDefinition(fields={path: say(message, **params)})


def _keyed(
    draft: Mapping[str, Any], section: str, key: object, path: str, missing: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The draft's ``section`` and its item whose key is ``key``; refused at ``path`` if none."""
    items: list[dict[str, Any]] = draft.get(section, [])
    item = next((i for i in items if i.get("key") == key), None)
    if item is None:
        _refuse(path, missing)
    return items, item


def _taken(draft: Mapping[str, Any]) -> set[str]:
    names = {str(k) for k in draft.get("variables", {})}
    for section in ("fields", "tables", "outputs", "steps"):
        names |= {str(item.get("key")) for item in draft.get(section, [])}
    return names


def _new_key(draft: Mapping[str, Any], prefix: str) -> str:
    taken = _taken(draft)
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def _label(form: Mapping[str, str], name: str, limit: int = 80) -> str:
    label = form.get(name, "").strip()
    if not label:
        _refuse(name, N_("Please write a label"))
    if len(label) > limit:
        _refuse(name, N_("At most %(limit)s characters"), limit=limit)
    return label


def _number(form: Mapping[str, str], name: str, default: float) -> float:
    text = form.get(name, "").strip().replace(",", "").replace("，", "")
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        raise InvalidDefinition(
            fields={name: say(N_("“%(text)s” is not a number"), text=text[:20])}
        ) from None
    if not abs(number) <= MAX_NUMBER:
        _refuse(name, N_("The number is too large"))
    return int(number) if number.is_integer() else number


def _add_field(draft: dict[str, Any], form: Mapping[str, str]) -> None:
    label = _label(form, "new_field.label")
    kind = form.get("new_field.kind", "")
    if kind not in NEW_FIELD_KINDS:
        _refuse("new_field.kind", N_("Choose what kind of answer the question takes"))
    _, step = _keyed(
        draft,
        "steps",
        form.get("new_field.step"),
        "new_field.step",
        N_("Choose the step the question goes in"),
    )
    field: dict[str, Any] = {"key": _new_key(draft, "q"), "label": label, "kind": kind}
    if kind in ("number", "count"):
        low = _number(form, "new_field.min", 0)
        high = _number(form, "new_field.max", 100)
        if low > high:
            _refuse("new_field.max", N_("The maximum must not be below the minimum"))
        field.update(min=low, max=high)
    elif kind in ("select", "radio"):
        values = [line.strip() for line in form.get("new_field.options", "").splitlines()]
        options = [{"value": v} for v in dict.fromkeys(v for v in values if v)]
        if not options:
            _refuse("new_field.options", N_("Write the answers to choose from, one per line"))
        if any(len(o["value"]) > 32 for o in options):
            _refuse("new_field.options", N_("An answer is at most 32 characters"))
        field["options"] = options
    draft.setdefault("fields", []).append(field)
    step["fields"] = [*step.get("fields", []), field["key"]]
    _own_problems(draft, f"fields.{field['key']}", "new_field.label")


def _still_read(draft: Mapping[str, Any], name: str, what: str) -> None:
    """Refuse removing ``name`` while a formula or text reads it, naming who does."""
    users = editor_map.readers(draft).get(name, [])
    users = [(section, key) for section, key in users if key != name]
    if users:
        named = _SEPARATOR.join(
            dict.fromkeys(f"「{editor_map.label_of(draft, s, k)}」" for s, k in users[:6])
        )
        _refuse(
            f"remove.{name}",
            N_("%(what)s is still used by %(users)s: change those first. Nothing was removed."),
            what=what,
            users=named,
        )


def _remove_field(draft: dict[str, Any], key: str) -> None:
    fields, field = _keyed(
        draft, "fields", key, "op", N_("This question is not in the draft any more")
    )
    if len(fields) == 1:
        _refuse(f"remove.{key}", N_("A calculator needs at least one question"))
    _still_read(draft, key, f"「{field.get('label') or key}」")
    draft["fields"] = [f for f in fields if f.get("key") != key]
    steps = []
    for step in draft.get("steps", []):
        step["fields"] = [k for k in step.get("fields", []) if k != key]
        if step["fields"]:
            steps.append(step)
    draft["steps"] = steps


def _table(draft: Mapping[str, Any], key: str) -> dict[str, Any]:
    _, table = _keyed(draft, "tables", key, "op", N_("This table is not in the draft any more"))
    return table


def _add_row(draft: dict[str, Any], key: str, form: Mapping[str, str]) -> None:
    table = _table(draft, key)
    label = _label(form, f"new_row.{key}.label", limit=40)
    typed = form.get(f"new_row.{key}.key", "").strip()
    row: str | int = typed or label
    if len(str(row)) > 32:
        _refuse(f"new_row.{key}.key", N_("At most %(limit)s characters"), limit=32)
    if isinstance(row, str) and row.isdigit() and len(row) < 9:
        row = int(row)
    rows = list(table.get("rows", []))
    if str(row) in {str(r) for r in rows}:
        _refuse(f"new_row.{key}.label", N_("The table already has the row %(row)s"), row=row)
    cols = table.get("cols", [])
    table["values"] = [*table.get("values", []), [0] * len(cols) if cols else 0]
    if table.get("row_labels") or str(row) != label:
        labels = list(table.get("row_labels") or [""] * len(rows))
        table["row_labels"] = [*labels, label]
    table["rows"] = [*rows, row]


def _remove_row(draft: dict[str, Any], key: str, index_text: str) -> None:
    table = _table(draft, key)
    rows = list(table.get("rows", []))
    index = int(index_text) if index_text.isdigit() and len(index_text) < 4 else -1
    if not 0 <= index < len(rows):
        _refuse("op", N_("This row is not in the table any more"))
    row = str(rows[index])
    shown = editor_map.TableLabels(draft).row(table, index)
    path = f"remove.{key}.{index}"
    if len(rows) == 1:
        _refuse(path, N_("A table needs at least one row"))
    users = [
        editor_map.label_of(draft, section, name)
        for section, name, source in _formulas(draft)
        if (key, row) in editor_map.literal_lookups(source)
    ]
    if users:
        _refuse(
            path,
            N_(
                "The row %(row)s is looked up by %(users)s: change those first. Nothing was "
                "removed."
            ),
            row=f"「{shown}」",
            users=_SEPARATOR.join(dict.fromkeys(f"「{u}」" for u in users[:6])),
        )
    for field in draft.get("fields", []):
        if row in {str(o.get("value")) for o in field.get("options", [])} and _looked_up_by(
            draft, key, str(field.get("key"))
        ):
            _refuse(
                path,
                N_(
                    "%(row)s is an answer of %(field)s: visitors who choose it would find no "
                    "value. Remove the answer first. Nothing was removed."
                ),
                row=f"「{shown}」",
                field=f"「{field.get('label')}」",
            )
    table["rows"] = rows[:index] + rows[index + 1 :]
    table["values"] = [v for i, v in enumerate(table.get("values", [])) if i != index]
    if table.get("row_labels"):
        table["row_labels"] = [v for i, v in enumerate(table["row_labels"]) if i != index]


def _formulas(draft: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    found = [("variables", str(k), str(v)) for k, v in draft.get("variables", {}).items()]
    for output in draft.get("outputs", []):
        for attribute in ("formula", "low", "high", "show_if"):
            found.append(("outputs", str(output.get("key")), str(output.get(attribute, ""))))
    return found


def _looked_up_by(draft: Mapping[str, Any], table: str, field: str) -> bool:
    pattern = re.compile(rf"lookup\(\s*{re.escape(table)}\s*,[^()]*\b{re.escape(field)}\b")
    return any(pattern.search(source) for _, _, source in _formulas(draft))


def _add_output(draft: dict[str, Any], form: Mapping[str, str]) -> None:
    label = _label(form, "new_output.label")
    kind = form.get("new_output.kind", "")
    if kind not in NEW_OUTPUT_KINDS:
        _refuse("new_output.kind", N_("Choose what kind of result it is"))
    text = form.get("new_output.formula", "").strip()
    if not text:
        what = N_("Please write the text") if kind == "text" else N_("Please write a formula")
        _refuse("new_output.formula", what)
    output: dict[str, Any] = {"key": _new_key(draft, "r"), "label": label, "kind": kind}
    if kind == "text":
        output["text"] = text
    else:
        output["formula"] = text
    draft.setdefault("outputs", []).append(output)
    place = form.get("new_output.place", "full")
    if place in ("teaser", "full"):
        draft[place] = [*draft.get(place, []), output["key"]]
    _own_problems(draft, f"outputs.{output['key']}", "new_output.formula")


def _own_problems(draft: dict[str, Any], prefix: str, path: str) -> None:
    """Check the draft with the new item: its problems are put on the form that adds it (the
    item is not on the page until it is added)."""
    try:
        check(draft)
    except InvalidDefinition as exc:
        mine = [m for p, m in (exc.fields or {}).items() if str(p).startswith(prefix)]
        if mine:
            raise InvalidDefinition(fields={path: str(mine[0])}) from None


def _remove_output(draft: dict[str, Any], key: str) -> None:
    outputs, output = _keyed(
        draft, "outputs", key, "op", N_("This result is not in the draft any more")
    )
    _still_read(draft, key, f"「{output.get('label') or key}」")
    if draft.get("teaser") == [key]:
        _refuse(
            f"remove.{key}",
            N_("It is the only result shown before the phone check: tick another one first"),
        )
    if draft.get("full") == [key] or len(outputs) == 1:
        _refuse(f"remove.{key}", N_("A calculator needs at least one result after the check"))
    draft["outputs"] = [o for o in outputs if o.get("key") != key]
    for section in ("teaser", "full"):
        draft[section] = [k for k in draft.get(section, []) if k != key]
