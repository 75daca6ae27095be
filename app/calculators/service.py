"""Calculators in use: compile a published version once, evaluate a visitor's inputs, keep the
submission, and turn a result into a PDF report."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Mapping

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators.compiled import Evaluation
from app.calculators.engine import CompiledCalculator, compile_definition
from app.calculators.schemas import CalculatorDef, FieldDef
from app.reports.schemas import Report, ReportRow, ReportSection
from app.tools import service as tools
from app.tools.models import Submission, Tool, ToolVersion
from app.visitors.models import Visitor

# Compiled versions, least recently used last. A published version never changes, so its row
# (id, tool, number, publication time) identifies the definition; the time keeps two databases
# in one process (tests) from sharing an entry.
_COMPILED: OrderedDict[tuple[object, ...], CompiledCalculator] = OrderedDict()
_COMPILED_MAX = 256


def _key(version: ToolVersion) -> tuple[object, ...]:
    return (version.id, version.tool_id, version.number, version.published_at)


def _remember(key: tuple[object, ...], calc: CompiledCalculator) -> CompiledCalculator:
    _COMPILED[key] = calc
    while len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    return calc


def compiled(version: ToolVersion) -> CompiledCalculator:
    """The version, compiled once per process. Its definition must be loaded unless ``load``
    has already compiled it (``tools.published`` leaves the definition out)."""
    key = _key(version)
    calc = _COMPILED.get(key)
    if calc is not None:
        _COMPILED.move_to_end(key)
        return calc
    return _remember(key, compile_definition(msgspec.convert(version.definition, CalculatorDef)))


async def load(db: AsyncSession, version: ToolVersion) -> CompiledCalculator:
    """``compiled`` for a version whose definition may not be loaded yet."""
    key = _key(version)
    calc = _COMPILED.get(key)
    if calc is not None:
        return calc
    definition = await tools.definition(db, version)
    return _remember(key, compile_definition(msgspec.convert(definition, CalculatorDef)))


def _shown(field: FieldDef, value: object) -> str:
    option = next((o.label or str(o.value) for o in field.options if o.value == value), None)
    if option is not None:
        text = option
    elif isinstance(value, bool):
        text = "是" if value else "否"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return f"{text} {field.unit}".strip()


def answers(calc: CompiledCalculator, inputs: Mapping[str, object]) -> dict[str, str]:
    """What the visitor entered, as field label → shown value."""
    fields = {field.key: field for field in calc.definition.fields}
    return {
        fields[key].label: _shown(fields[key], value)
        for key, value in inputs.items()
        if key in fields
    }


def summary(calc: CompiledCalculator, evaluation: Evaluation) -> dict[str, str]:
    """For the lead page: what they entered, then what they were told before the gate."""
    return answers(calc, evaluation.inputs) | {o.label: o.display for o in evaluation.teaser}


async def submit(
    db: AsyncSession,
    tool: Tool,
    version: ToolVersion,
    visitor: Visitor,
    inputs: Mapping[str, object],
) -> Evaluation:
    """Evaluate ``inputs``; a valid submission is stored (with the lead once there is one)."""
    calc = compiled(version)
    evaluation = calc.evaluate(inputs)
    if evaluation.errors:
        return evaluation
    db.add(
        Submission(
            tool_id=tool.id,
            tool_version=version.number,
            visitor_id=visitor.id,
            lead_id=visitor.lead_id,
            created_at=dt.datetime.now(dt.UTC),
            inputs=evaluation.inputs,
            outputs={o.key: o.value for o in [*evaluation.teaser, *evaluation.full]},
            summary=summary(calc, evaluation),
        )
    )
    await db.flush()
    return evaluation


async def latest(db: AsyncSession, tool: Tool, visitor: Visitor) -> Submission | None:
    return (
        await db.execute(
            select(Submission)
            .where(Submission.tool_id == tool.id, Submission.visitor_id == visitor.id)
            .order_by(Submission.id.desc())
            .limit(1)
        )
    ).scalar()


def report(
    calc: CompiledCalculator, evaluation: Evaluation, *, brand: str, watermark: str
) -> Report:
    """The full result as a report: the headline, each group's lines, the inputs, the notes."""
    definition = calc.definition
    sections: list[ReportSection] = []
    head = evaluation.teaser[0] if evaluation.teaser else None
    groups: dict[str, list[ReportRow]] = {}
    for output in evaluation.full:
        groups.setdefault(output.group or "结果", []).append(
            ReportRow(label=output.label, value=output.display, note=output.note[:500])
        )
    for index, (group, rows) in enumerate(groups.items()):
        sections.append(
            ReportSection(
                heading=group,
                rows=rows,
                emphasis=ReportRow(label=head.label, value=head.display)
                if head and index == 0
                else None,
            )
        )
    sections.append(
        ReportSection(
            heading="您填写的信息",
            rows=[
                ReportRow(label=label, value=value)
                for label, value in summary(
                    calc,
                    Evaluation(
                        inputs=evaluation.inputs, errors={}, teaser=[], full=[], warnings=[]
                    ),
                ).items()
            ],
        )
    )
    return Report(
        title=definition.title,
        brand=brand,
        generated_at=dt.datetime.now(dt.UTC),
        watermark=watermark,
        sections=sections,
        disclaimer=definition.disclaimer,
        subtitle=definition.intro[:200],
        cta=definition.cta.text or definition.cta.label,
    )
