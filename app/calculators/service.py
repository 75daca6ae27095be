"""Calculators in use: compile a published version once, evaluate a visitor's inputs, keep the
submission, and turn a result into a PDF report."""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Mapping

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.brand.schemas import Brand
from app.calculators.compiled import NO, YES, Evaluation
from app.calculators.compiler import CompiledCalculator, compile_definition
from app.calculators.errors import say
from app.calculators.schemas import CalculatorDef, FieldDef
from app.core.bounds import is_safe_url
from app.core.i18n import N_, current_locale
from app.leads import service as leads
from app.reports.schemas import Report, ReportRow, ReportSection
from app.tools import service as tools
from app.tools.models import Submission
from app.tools.schemas import PublishedTool, PublishedVersion
from app.visitors import service as visitors
from app.visitors.models import Visitor

# Compiled versions, least recently used last, by the version's key (app.tools.schemas): a
# published version never changes. Values are immutable compiled calculators, never rows.
_COMPILED: OrderedDict[tuple[object, ...], CompiledCalculator] = OrderedDict()
_COMPILED_MAX = 256
log = logging.getLogger("leadkit.calculators")


async def load(db: AsyncSession, version: PublishedVersion) -> CompiledCalculator:
    """The version, compiled once per process (its definition is read only the first time)."""
    key = version.key
    calc = _COMPILED.get(key)
    if calc is not None:
        _COMPILED.move_to_end(key)
        return calc
    calc = compile_definition(_published_definition(await tools.definition(db, version)))
    _COMPILED[key] = calc
    while len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    return calc


def _published_definition(data: dict) -> CalculatorDef:
    try:
        return msgspec.convert(data, CalculatorDef)
    except msgspec.ValidationError:
        cta = data.get("cta")
        if not isinstance(cta, dict) or is_safe_url(str(cta.get("url", ""))):
            raise
    # Published before call-to-action links were checked: the page keeps working, without the
    # link (its editor shows the problem until the marketer fixes it).
    log.warning("calculator %r: unsafe call-to-action link dropped", data.get("title"))
    cta = {k: v for k, v in data["cta"].items() if k != "url"}
    return msgspec.convert({**data, "cta": cta}, CalculatorDef)


def _shown(field: FieldDef, value: object) -> str:
    option = next((o.label or str(o.value) for o in field.options if o.value == value), None)
    if option is not None:
        text = option
    elif isinstance(value, bool):
        text = say(YES if value else NO)
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
    tool: PublishedTool,
    version: PublishedVersion,
    visitor: Visitor,
    inputs: Mapping[str, object],
) -> Evaluation:
    """Evaluate ``inputs``; a valid submission is stored (with the lead once there is one,
    whose needs then show these answers)."""
    calc = await load(db, version)
    evaluation = calc.evaluate(inputs)
    if evaluation.errors:
        return evaluation
    await visitors.ensure(db, visitor)
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
    if visitor.lead_id is not None:  # what an authorised visitor asks is the lead's need now
        await leads.refresh_needs(db, await leads.get(db, visitor.lead_id))
    return evaluation


async def latest(
    db: AsyncSession, tool: PublishedTool, visitor_id: int | None
) -> Submission | None:
    """The visitor's latest answers to ``tool`` (none for a visitor not stored yet)."""
    if visitor_id is None:
        return None
    return (
        await db.execute(
            select(Submission)
            .where(Submission.tool_id == tool.id, Submission.visitor_id == visitor_id)
            .order_by(Submission.id.desc())
            .limit(1)
        )
    ).scalar()


def report(
    calc: CompiledCalculator,
    evaluation: Evaluation,
    *,
    brand: Brand,
    watermark: str,
    tool_url: str = "",
) -> Report:
    """The full result as a report: the headline, each group's lines, the inputs, the notes —
    in the request's language, like the answers it shows — and the call to action with the
    business's phone and a QR code of ``tool_url`` (the tool's address)."""
    definition = calc.definition
    sections: list[ReportSection] = []
    head = evaluation.teaser[0] if evaluation.teaser else None
    groups: dict[str, tuple[list[ReportRow], list[str]]] = {}
    for output in evaluation.full:
        group = output.group or say(N_("Result"))
        rows, paragraphs = groups.setdefault(group, ([], []))
        if output.kind == "text":
            # An explanation reads as a paragraph across the page, from the left: in the value
            # column it came out right-aligned, a ragged block beside its label.
            text = output.display
            if output.label != group:
                text = say(N_("%(label)s: %(text)s"), label=output.label, text=text)
            paragraphs.append(text[:2000])
        else:
            rows.append(ReportRow(label=output.label, value=output.display, note=output.note[:500]))
    for index, (group, (rows, paragraphs)) in enumerate(groups.items()):
        sections.append(
            ReportSection(
                heading=group,
                rows=rows,
                paragraphs=paragraphs,
                emphasis=ReportRow(label=head.label, value=head.display)
                if head and index == 0
                else None,
            )
        )
    sections.append(
        ReportSection(
            heading=say(N_("Your answers")),
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
        brand=brand.name,
        logo=brand.logo,
        accent=brand.color,
        generated_at=dt.datetime.now(dt.UTC),
        watermark=watermark,
        sections=sections,
        disclaimer=definition.disclaimer,
        subtitle=definition.intro[:200],
        cta=definition.cta.text or None,
        cta_title=definition.cta.label,
        cta_phone=brand.contact_phone,
        cta_url=tool_url,
        locale=current_locale(),
    )
