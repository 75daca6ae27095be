"""A calculator definition's structure, checked before any formula is compiled: names unique
and not reserved, every field in exactly one step, the teaser and full lists, each field's
limits, default and options, each output's attributes.

Problems are reported through ``problem(path, msgid, **params)`` (the compiler keeps the first
of each path, translated).
"""

from __future__ import annotations

import math
from typing import Protocol

from app.calculators.compiled import NUMERIC_KINDS
from app.calculators.formula import RESERVED
from app.calculators.schemas import CalculatorDef, FieldDef, OutputDef
from app.core.i18n import N_


class Problem(Protocol):
    def __call__(self, path: str, message: str, **params: object) -> None: ...


def check_structure(d: CalculatorDef, problem: Problem) -> None:
    """Names, steps and the teaser/full lists of ``d``; each field and output."""
    seen: dict[str, str] = {}
    named = [
        *(("fields", f.key) for f in d.fields),
        *(("tables", t.key) for t in d.tables),
        *(("variables", k) for k in d.variables),
        *(("outputs", o.key) for o in d.outputs),
    ]
    for section, key in named:
        path = f"{section}.{key}"
        if key in RESERVED:
            problem(
                path,
                N_("%(name)s is reserved (a function name or keyword): choose another name"),
                name=key,
            )
        elif key in seen:
            problem(
                path,
                N_("The name %(name)s is used twice (already in %(section)s)"),
                name=key,
                section=seen[key],
            )
        else:
            seen[key] = section
    for table in d.tables:
        for labels, count, name in (
            (table.row_labels, len(table.rows), "row_labels"),
            (table.col_labels, len(table.cols), "col_labels"),
        ):
            if labels and len(labels) != count:
                problem(
                    f"tables.{table.key}.{name}",
                    N_("Give one label per key (%(count)s), or none"),
                    count=count,
                )
    for field in d.fields:
        check_field(field, problem)
    placed: dict[str, str] = {}
    step_keys: set[str] = set()
    field_keys = {f.key for f in d.fields}
    for step in d.steps:
        if step.key in step_keys:
            problem(f"steps.{step.key}", N_("The step %(name)s is there twice"), name=step.key)
        step_keys.add(step.key)
        for key in step.fields:
            if key not in field_keys:
                problem(f"steps.{step.key}.fields", N_("There is no field %(name)s"), name=key)
            elif key in placed:
                problem(
                    f"steps.{step.key}.fields",
                    N_("The field %(name)s is already in the step %(step)s"),
                    name=key,
                    step=placed[key],
                )
            else:
                placed[key] = step.key
    for key in field_keys - placed.keys():
        problem(f"fields.{key}", N_("This field is in no step"))
    for output in d.outputs:
        check_output(output, problem)
    output_keys = {o.key for o in d.outputs}
    for section, keys in (("teaser", d.teaser), ("full", d.full)):
        for key in keys:
            if key not in output_keys:
                problem(section, N_("There is no result %(name)s"), name=key)
        if len(set(keys)) != len(keys):
            problem(section, N_("A result is listed twice"))


def check_field(f: FieldDef, problem: Problem) -> None:
    """A field's limits, default and options, by its kind."""
    path = f"fields.{f.key}"
    if f.kind in NUMERIC_KINDS:
        if f.min is None or f.max is None:
            problem(path, N_("A number field needs min and max"))
            return
        if not (math.isfinite(f.min) and math.isfinite(f.max)) or f.min > f.max:
            problem(path, N_("min and max must be finite numbers, and min no larger than max"))
            return
        if f.kind == "count" and not (f.min.is_integer() and f.max.is_integer()):
            problem(path, N_("The min and max of a count field must be whole numbers"))
        if f.step is not None and not (math.isfinite(f.step) and f.step > 0):
            problem(path, N_("step must be a positive number"))
        if f.options:
            problem(path, N_("A number field cannot have options"))
        if f.default is not None:
            if isinstance(f.default, bool) or not isinstance(f.default, float):
                problem(path, N_("The default must be a number"))
            elif not f.min <= f.default <= f.max:
                problem(path, N_("The default is not between min and max"))
            elif f.kind == "count" and not f.default.is_integer():
                problem(path, N_("The default of a count field must be a whole number"))
        return
    if f.min is not None or f.max is not None or f.step is not None:
        problem(path, N_("Only number fields can have min, max and step"))
    if f.kind == "checkbox":
        if f.options:
            problem(path, N_("A checkbox cannot have options"))
        if f.default is not None and not isinstance(f.default, bool):
            problem(path, N_("The default of a checkbox must be true or false"))
        return
    values = [o.value for o in f.options]
    if not values:
        problem(path, N_("A choice field needs at least one option"))
    if len(set(values)) != len(values):
        problem(path, N_("Two options have the same value"))
    for option in f.options:
        if (option.tier is None) == (f.kind == "city"):
            if f.kind == "city":
                problem(f"{path}.options", N_("A city option needs a tier"))
            else:
                problem(f"{path}.options", N_("Only city options can have a tier"))
    if f.default is not None and f.default not in values:
        problem(path, N_("The default must be the value of one of the options"))


def check_output(o: OutputDef, problem: Problem) -> None:
    """An output has the attributes of its kind, and only those."""
    path = f"outputs.{o.key}"
    needs = {
        "number": ("formula",),
        "currency": ("formula",),
        "range": ("low", "high"),
        "text": ("text",),
    }[o.kind]
    for attribute in ("formula", "low", "high", "text"):
        needed, given = attribute in needs, bool(getattr(o, attribute).strip())
        if needed != given:
            message = (
                N_("A %(kind)s result needs %(attribute)s")
                if needed
                else N_("A %(kind)s result has no %(attribute)s")
            )
            problem(path, message, kind=o.kind, attribute=attribute)
