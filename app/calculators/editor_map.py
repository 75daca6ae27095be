"""What the editor shows people instead of identifiers, and who reads what.

A definition names things by key (``cost_floor``, ``unit_price``, ``floor``); a marketer thinks
in results and prices (地面, 单价). This module finds, from the definition alone:

- ``readers``: for each name, the places whose formulas or texts read it, so that removing a
  field or a result can be refused with the labels of what still needs it;
- ``variable_groups``: the named formulas grouped by the result they compute — each variable
  joins the group of the result that reads it most directly (a result's formula, range, "show
  only if" or text; ties go to the earlier result), and the rest are "not used by any result";
- ``row_label``/``col_label``: a table key's label — the one the definition gives, else the key
  itself when it is already words (简装), else the group of the formula that looks it up
  (``lookup(unit_price, "floor", grade)`` in ``cost_floor`` → 地面), else the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any

from app.calculators import formula
from app.calculators.formula import InvalidFormula
from app.core.i18n import gettext as _

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


def formula_names(source: str) -> set[str]:
    """The names and tables a formula reads; nothing when it does not parse."""
    if not source.strip():
        return set()
    try:
        parsed = formula.parse(source, "formula")
    except InvalidFormula:
        return set()
    return set(parsed.names) | set(parsed.tables)


def template_names(source: str) -> set[str]:
    """The placeholders of a note or text (``{total}``, ``{area:.0f}``)."""
    try:
        return {name for _, name, _, _ in Formatter().parse(source) if name}
    except ValueError:
        return set()


def output_reads(output: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for attribute in ("formula", "low", "high", "show_if"):
        names |= formula_names(str(output.get(attribute, "")))
    for attribute in ("note", "text"):
        names |= template_names(str(output.get(attribute, "")))
    return names


def readers(draft: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """name → [(section, key)] of the fields, variables and results that read it."""
    found: dict[str, list[tuple[str, str]]] = {}

    def note(section: str, key: str, names: Iterable[str]) -> None:
        for name in names:
            found.setdefault(name, []).append((section, key))

    for field in draft.get("fields", []):
        note("fields", str(field.get("key")), formula_names(str(field.get("show_if", ""))))
    for name, source in draft.get("variables", {}).items():
        note("variables", name, formula_names(str(source)))
    for output in draft.get("outputs", []):
        note("outputs", str(output.get("key")), output_reads(output))
    return found


def label_of(draft: Mapping[str, Any], section: str, key: str) -> str:
    """A field's or result's label; a variable by the result it computes, then its name
    (``地面（cost_floor）``); anything unlabelled by its key."""
    if section == "variables":
        for group in variable_groups(draft):
            if group.output and key in group.names:
                return f"{group.label}（{key}）"
        return key
    for item in draft.get(section, []) if section in ("fields", "outputs", "tables") else []:
        if item.get("key") == key:
            return str(item.get("label") or key)
    return key


@dataclass(frozen=True, slots=True)
class VariableGroup:
    output: str | None  # the result's key; None: not used by any result
    label: str  # the result's label ("" for the unused group)
    names: tuple[str, ...]


def variable_groups(draft: Mapping[str, Any]) -> list[VariableGroup]:
    variables: Mapping[str, str] = draft.get("variables", {})
    reads = {name: formula_names(str(source)) for name, source in variables.items()}
    group_of: dict[str, str] = {}
    frontier: list[tuple[str, str]] = []  # (variable, result key) assigned at the last level
    outputs = list(draft.get("outputs", []))
    for output in outputs:
        key = str(output.get("key"))
        for name in sorted(output_reads(output), key=_order(variables)):
            if name in variables and name not in group_of:
                group_of[name] = key
                frontier.append((name, key))
    while frontier:
        level, frontier = frontier, []
        for name, key in level:
            for used in sorted(reads[name], key=_order(variables)):
                if used in variables and used not in group_of:
                    group_of[used] = key
                    frontier.append((used, key))
    groups = []
    for output in outputs:
        key = str(output.get("key"))
        names = tuple(n for n in variables if group_of.get(n) == key)
        if names:
            groups.append(VariableGroup(key, str(output.get("label") or key), names))
    unused = tuple(n for n in variables if n not in group_of)
    if unused:
        groups.append(VariableGroup(None, "", unused))
    return groups


def _order(variables: Mapping[str, str]) -> Any:
    position = {name: i for i, name in enumerate(variables)}
    return lambda name: position.get(name, len(position))


class TableLabels:
    """The labels of every table's rows and columns, as the editor shows them."""

    def __init__(self, draft: Mapping[str, Any]) -> None:
        self.draft = draft
        self._looked_up: dict[tuple[str, str], str] | None = None

    def row(self, table: Mapping[str, Any], index: int) -> str:
        return self._label(table, "rows", "row_labels", index)

    def col(self, table: Mapping[str, Any], index: int) -> str:
        return self._label(table, "cols", "col_labels", index)

    def given(self, table: Mapping[str, Any], which: str, index: int) -> str:
        labels = table.get(which, [])
        return str(labels[index]) if index < len(labels) else ""

    def suggested(self, table: Mapping[str, Any], keys: str, index: int) -> str:
        """The label the editor shows for a key without one of its own."""
        key = str(table.get(keys, [])[index])
        if not _IDENTIFIER.match(key):
            return key  # already words: 简装, 北京
        if key.isdigit() and str(table.get("key")) in self._by_city():
            return _("Tier %(tier)s cities") % {"tier": key}
        return self._lookups().get((str(table.get("key")), key), key)

    def _by_city(self) -> set[str]:
        """The tables some formula looks up by a city field (whose value is its tier)."""
        cities = {f.get("key") for f in self.draft.get("fields", []) if f.get("kind") == "city"}
        found = set()
        for source in self.draft.get("variables", {}).values():
            for match in _LOOKUP.finditer(str(source)):
                if cities & {a.strip() for a in match.group(2).split(",")}:
                    found.add(match.group(1))
        for output in self.draft.get("outputs", []):
            for attribute in ("formula", "low", "high"):
                for match in _LOOKUP.finditer(str(output.get(attribute, ""))):
                    if cities & {a.strip() for a in match.group(2).split(",")}:
                        found.add(match.group(1))
        return found

    def _label(self, table: Mapping[str, Any], keys: str, which: str, index: int) -> str:
        return self.given(table, which, index) or self.suggested(table, keys, index)

    def _lookups(self) -> dict[tuple[str, str], str]:
        if self._looked_up is None:
            group = {
                name: g.label for g in variable_groups(self.draft) if g.output for name in g.names
            }
            found: dict[tuple[str, str], str] = {}
            for name, source in self.draft.get("variables", {}).items():
                if name not in group:
                    continue
                for table, key in literal_lookups(str(source)):
                    found.setdefault((table, key), group[name])
            self._looked_up = found
        return self._looked_up


_LOOKUP = re.compile(r"""lookup\(\s*([a-z][a-z0-9_]*)\s*,([^()]*)\)""")
_LITERAL = re.compile(r""""([^"]{1,32})"|'([^']{1,32})'""")


def literal_lookups(source: str) -> list[tuple[str, str]]:
    """(table, key) for each quoted key of each lookup in a formula."""
    found = []
    for match in _LOOKUP.finditer(source):
        for double, single in _LITERAL.findall(match.group(2)):
            found.append((match.group(1), double or single))
    return found
