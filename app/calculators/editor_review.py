"""The publish review: what changes for a visitor when the draft goes live.

- ``price_changes``: every table cell whose number differs between the live version and the
  draft, named by the table's and the keys' labels (old → new), rows added and removed;
- ``other_changes``: questions, results and texts added, removed or changed, by label;
- ``sample_rows``: the calculator's sample answers (each question's default, then each other
  answer of every choice question and one city per tier) computed with the live version and
  with the draft, and which result lines change.

The replay of real stored submissions is ``editor.replay``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.calculators import editor_map, service
from app.calculators.compiled import Evaluation
from app.calculators.compiler import CompiledCalculator
from app.core.i18n import gettext as _

MAX_SAMPLES = 8


@dataclass(frozen=True, slots=True)
class PriceChange:
    table: str  # the table's label
    row: str  # the row's label
    col: str  # the column's label; "" in a one-column table
    old: float | None  # None: the row is new
    new: float | None  # None: the row was removed


def price_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[PriceChange]:
    if old is None:
        return []
    old_labels, new_labels = editor_map.TableLabels(old), editor_map.TableLabels(new)
    before = {str(t.get("key")): t for t in old.get("tables", [])}
    changes: list[PriceChange] = []
    for table in new.get("tables", []):
        previous = before.get(str(table.get("key")))
        if previous is None:
            continue
        name = str(table.get("label") or table.get("key"))
        old_cells = _cells(previous)
        new_cells = _cells(table)
        rows = {str(r): i for i, r in enumerate(table.get("rows", []))}
        old_rows = {str(r): i for i, r in enumerate(previous.get("rows", []))}
        cols = {str(c): i for i, c in enumerate(table.get("cols", []))}
        for (row, col), value in new_cells.items():
            was = old_cells.get((row, col))
            if was != value:
                col_label = new_labels.col(table, cols[col]) if col else ""
                changes.append(
                    PriceChange(name, new_labels.row(table, rows[row]), col_label, was, value)
                )
        for (row, col), value in old_cells.items():
            if (row, col) not in new_cells and row in old_rows:
                old_cols = {str(c): i for i, c in enumerate(previous.get("cols", []))}
                col_label = old_labels.col(previous, old_cols[col]) if col in old_cols else ""
                changes.append(
                    PriceChange(
                        name, old_labels.row(previous, old_rows[row]), col_label, value, None
                    )
                )
    return changes


def _cells(table: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    cells: dict[tuple[str, str], float] = {}
    cols = [str(c) for c in table.get("cols", [])]
    for row, entry in zip(table.get("rows", []), table.get("values", []), strict=False):
        if cols and isinstance(entry, list):
            cells.update(((str(row), c), float(v)) for c, v in zip(cols, entry, strict=False))
        elif not cols and not isinstance(entry, list):
            cells[(str(row), "")] = float(entry)
    return cells


def other_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Sentences naming what else changed, by label: questions, results, texts, formulas."""
    if old is None:
        return []
    lines: list[str] = []
    for section, added, removed, changed in (
        ("fields", _("New question"), _("Question removed"), _("Question changed")),
        ("outputs", _("New result"), _("Result removed"), _("Result changed")),
    ):
        before = {str(i.get("key")): i for i in old.get(section, [])}
        after = {str(i.get("key")): i for i in new.get(section, [])}
        for key, item in after.items():
            if key not in before:
                lines.append(f"{added}：{item.get('label') or key}")
            elif before[key] != item:
                lines.append(f"{changed}：{item.get('label') or key}")
        lines += [f"{removed}：{i.get('label') or k}" for k, i in before.items() if k not in after]
    for key, what in (
        ("title", _("Title")),
        ("intro", _("Introduction")),
        ("disclaimer", _("Disclaimer")),
        ("cta", _("Call to action")),
        ("steps", _("Steps")),
    ):
        if old.get(key) != new.get(key):
            lines.append(f"{_('Changed')}：{what}")
    if old.get("teaser") != new.get("teaser") or old.get("full") != new.get("full"):
        lines.append(_("Which results show before and after the phone check"))
    variables = [
        name
        for name in {*old.get("variables", {}), *new.get("variables", {})}
        if old.get("variables", {}).get(name) != new.get("variables", {}).get(name)
    ]
    if variables:
        lines.append(_("%(count)s formulas changed") % {"count": len(variables)})
    tables_before = {str(t.get("key")) for t in old.get("tables", [])}
    for table in new.get("tables", []):
        if str(table.get("key")) not in tables_before:
            lines.append(f"{_('New table')}：{table.get('label') or table.get('key')}")
    return lines


@dataclass(slots=True)
class SampleRow:
    answers: list[tuple[str, str]]  # (question, answer) that differ from the default sample
    before: list[tuple[str, str]] | None  # (label, shown) before the gate, live version
    after: list[tuple[str, str]]  # … with the draft
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (label, old, new)
    errors: list[str] = field(default_factory=list)  # the draft refuses these answers

    @property
    def changed(self) -> bool:
        return bool(self.errors or self.lines)


def samples(calc: CompiledCalculator) -> list[dict[str, object]]:
    """The default answers, then one variation per other answer of each choice question (a
    city: one per other tier), at most ``MAX_SAMPLES`` in all."""
    base = calc.sample_inputs()
    found = [base]
    for definition in calc.definition.fields:
        if definition.kind not in ("select", "radio", "city"):
            continue
        seen_tiers = {o.tier for o in definition.options if o.value == base.get(definition.key)}
        for option in definition.options:
            if option.value == base.get(definition.key):
                continue
            if definition.kind == "city":
                if option.tier in seen_tiers:
                    continue
                seen_tiers.add(option.tier)
            found.append({**base, definition.key: option.value})
            if len(found) >= MAX_SAMPLES:
                return found
    return found


def sample_rows(live: CompiledCalculator | None, draft: CompiledCalculator) -> list[SampleRow]:
    rows = []
    default_answers: dict[str, str] | None = None
    for inputs in samples(draft):
        new = draft.evaluate(inputs)
        old = live.evaluate(inputs) if live is not None else None
        answers = service.answers(draft, inputs)
        if default_answers is None:
            default_answers = answers
            shown: list[tuple[str, str]] = []
        else:
            shown = [(k, v) for k, v in answers.items() if default_answers.get(k) != v]
        row = SampleRow(
            answers=shown,
            before=_teaser(old) if old is not None and not old.errors else None,
            after=_teaser(new),
            errors=list(new.errors.values()),
        )
        if old is not None and not old.errors and not new.errors:
            row.lines = _changed_lines(old, new)
        rows.append(row)
    return rows


def _teaser(evaluation: Evaluation) -> list[tuple[str, str]]:
    return [(o.label, o.display) for o in evaluation.teaser]


def _changed_lines(old: Evaluation, new: Evaluation) -> list[tuple[str, str, str]]:
    # Text results repeat the figures in words: the figures themselves say what changed.
    before = {o.key: (o.label, o.display) for o in (*old.teaser, *old.full) if o.kind != "text"}
    after = {o.key: (o.label, o.display) for o in (*new.teaser, *new.full) if o.kind != "text"}
    lines = []
    for key, (label, display) in after.items():
        was = before.get(key, ("", "—"))[1]
        if was != display:
            lines.append((label, was, display))
    lines += [(label, display, "—") for key, (label, display) in before.items() if key not in after]
    return lines
