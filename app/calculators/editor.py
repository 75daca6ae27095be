"""The marketer's calculator editor: drafts, checks, previews, publishing, history, replay.

A calculator tool keeps one **draft** (``Tool.draft``, the definition as plain data) and a list of
immutable **versions** (``ToolVersion``). Editing changes only the draft, and only when the whole
draft still checks (``compile_definition``): a refused edit changes nothing. Publishing freezes
the draft as the next version; rolling back publishes an old version's definition again as a new
version, so history only grows and every submission keeps pointing at what it was computed with.

The editor's forms, which put values into a draft, are in ``editor_forms``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators import service
from app.calculators.builtins import BUILTIN_SLUGS, builtin_text
from app.calculators.compiled import Evaluation
from app.calculators.compiler import CompiledCalculator, compile_definition, parse_definition
from app.calculators.errors import InvalidDefinition, schema_problem
from app.calculators.schemas import CalculatorDef
from app.calculators.toml_writer import dumps as toml_dumps
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_
from app.tools import service as tools
from app.tools.models import Submission, Tool, ToolVersion

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
REPLAY_DEFAULT = 20
REPLAY_MAX = 200


class DraftConflict(
    Conflict,
    code="draft_conflict",
    message=N_(
        "Someone else saved this draft after you opened it. Reload the editor to see their "
        "changes; yours were not saved."
    ),
):
    """The draft was saved by someone else since this editor loaded it."""


class NothingToPublish(
    Conflict,
    code="nothing_to_publish",
    message=N_("The draft is the same as the published version: nothing to publish."),
):
    """Publishing a draft equal to the live version, or the current version again."""


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalculatorRow:
    tool: Tool
    versions: int
    last_published: dt.datetime | None
    unpublished: bool


async def calculator(db: AsyncSession, slug: str) -> Tool:
    if not slug or len(slug) > 64:
        raise NotFound()
    tool = (
        await db.execute(select(Tool).where(Tool.slug == slug, Tool.kind == "calculator"))
    ).scalar()
    if tool is None:
        raise NotFound()
    return tool


async def list_calculators(db: AsyncSession) -> list[CalculatorRow]:
    stats = (
        select(
            ToolVersion.tool_id,
            func.count().label("n"),
            func.max(ToolVersion.published_at).label("last"),
        )
        .group_by(ToolVersion.tool_id)
        .subquery()
    )
    rows = await db.execute(
        select(Tool, stats.c.n, stats.c.last)
        .outerjoin(stats, stats.c.tool_id == Tool.id)
        .where(Tool.kind == "calculator")
        .order_by(Tool.id)
    )
    tools = [(tool, n or 0, last) for tool, n, last in rows.all()]
    current = await _current_definitions(db, [t for t, _, _ in tools])
    return [
        CalculatorRow(tool, n, last, unpublished=current.get(tool.id) != tool.draft)
        for tool, n, last in tools
    ]


async def _current_definitions(db: AsyncSession, tools: list[Tool]) -> dict[int, dict]:
    wanted = [(t.id, t.current_version) for t in tools if t.current_version]
    if not wanted:
        return {}
    rows = await db.execute(
        select(ToolVersion.tool_id, ToolVersion.number, ToolVersion.definition).where(
            ToolVersion.tool_id.in_([tool_id for tool_id, _ in wanted])
        )
    )
    numbers = dict(wanted)
    return {tid: d for tid, number, d in rows.all() if numbers.get(tid) == number}


async def versions(db: AsyncSession, tool: Tool) -> list[ToolVersion]:
    rows = await db.execute(
        select(ToolVersion)
        .where(ToolVersion.tool_id == tool.id)
        .order_by(ToolVersion.number.desc())
    )
    return list(rows.scalars())


async def version_definition(db: AsyncSession, tool: Tool, number: int) -> dict:
    return await tools.definition(db, await tools.version(db, tool.id, number))


async def live_definition(db: AsyncSession, tool: Tool) -> dict | None:
    if not tool.current_version:
        return None
    return await version_definition(db, tool, tool.current_version)


def draft_hash(draft: Mapping[str, Any]) -> str:
    """Identifies a draft's content: the editor sends it back to detect a concurrent save."""
    return hashlib.sha256(msgspec.json.encode(draft, order="sorted")).hexdigest()[:32]


def check(draft: Mapping[str, Any]) -> CompiledCalculator:
    """The draft, decoded and compiled; InvalidDefinition/InvalidFormula with paths otherwise."""
    try:
        definition = msgspec.convert(draft, CalculatorDef)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at ")
        path = _key_path(draft, where.strip("`"))
        raise InvalidDefinition(fields={path: schema_problem(message, path)}) from None
    return compile_definition(definition)


def _key_path(draft: Mapping[str, Any], where: str) -> str:
    """msgspec's ``$.fields[3].max`` → the editor's ``fields.area.max``."""
    parts = re.findall(r"\.(\w+)|\[(\d+)\]", where)
    out: list[str] = []
    node: Any = draft
    for name, index in parts:
        if name:
            out.append(name)
            node = node.get(name) if isinstance(node, Mapping) else None
        else:
            item = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
            key = item.get("key") if isinstance(item, Mapping) else None
            out.append(str(key) if key else index)
            node = item
    return ".".join(out) or "definition"


def as_toml(draft: Mapping[str, Any]) -> str:
    return toml_dumps(draft)


def definition_data(calc: CompiledCalculator) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(calc.definition)
    return data


# --- writing ---------------------------------------------------------------------------------


async def create_from_builtin(db: AsyncSession, *, builtin: str, slug: str, title: str) -> Tool:
    """A new calculator tool whose draft is a copy of a built-in (nothing published yet)."""
    slug = slug.strip().lower()
    title = title.strip()
    problems: dict[str, str] = {}
    if builtin not in BUILTIN_SLUGS:
        problems["builtin"] = N_("Choose one of the built-in calculators.")
    if not SLUG_RE.match(slug):
        problems["slug"] = N_(
            "2 to 64 characters: lower-case letters, digits and '-', starting with a letter "
            "or digit."
        )
    if len(title) > 80:
        problems["title"] = N_("At most 80 characters.")
    if problems:
        raise InvalidInput(fields=problems)
    if await db.scalar(select(Tool.id).where(Tool.slug == slug)) is not None:
        raise Conflict(N_("This slug is already taken."), fields={"slug": slug})
    calc = parse_definition(builtin_text(builtin))
    data = definition_data(calc)
    if title:
        data["title"] = title
        calc = check(data)
    tool = Tool(
        slug=slug,
        kind="calculator",
        title=calc.definition.title,
        status="draft",
        current_version=None,
        draft=data,
    )
    db.add(tool)
    await db.flush()
    return tool


async def save_draft(
    db: AsyncSession, tool: Tool, draft: Mapping[str, Any], *, base: str
) -> CompiledCalculator:
    """Store ``draft`` if it checks and nobody saved in between; else change nothing."""
    calc = check(draft)
    await _lock_draft(db, tool, base)
    tool.draft = definition_data(calc)
    tool.title = calc.definition.title
    await db.flush()
    return calc


async def _lock_draft(db: AsyncSession, tool: Tool, base: str) -> dict[str, Any]:
    # Re-read the row (FOR UPDATE on PostgreSQL) so two saves cannot both pass the check.
    current = (
        await db.execute(select(Tool.draft).where(Tool.id == tool.id).with_for_update())
    ).scalar()
    if draft_hash(current or {}) != base:
        raise DraftConflict()
    return dict(current or {})


async def publish(db: AsyncSession, tool: Tool, *, base: str, by: str) -> ToolVersion:
    """Freeze the draft as the next version and make it live."""
    calc = check(await _lock_draft(db, tool, base))
    definition = definition_data(calc)
    if definition == await live_definition(db, tool):
        raise NothingToPublish()
    return await _new_version(db, tool, definition, by)


async def rollback(db: AsyncSession, tool: Tool, number: int, *, by: str) -> ToolVersion:
    """Publish version ``number``'s definition again, as a new version; the draft follows."""
    definition = await version_definition(db, tool, number)
    check(definition)
    if tool.current_version == number:
        raise NothingToPublish()
    return await _new_version(db, tool, definition, by)


async def _new_version(
    db: AsyncSession, tool: Tool, definition: dict[str, Any], by: str
) -> ToolVersion:
    return await tools.publish_version(db, tool, definition, by)


# --- comparing -------------------------------------------------------------------------------


def diff(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], old_name: str, new_name: str
) -> list[tuple[str, str]]:
    """A unified diff of the two definitions as TOML: [(kind, line)], kind in + - @ or space."""
    before = as_toml(old).splitlines() if old else []
    after = as_toml(new).splitlines()
    lines = []
    for line in difflib.unified_diff(before, after, old_name, new_name, n=2, lineterm=""):
        if line.startswith(("+++", "---")):
            continue
        lines.append((line[:1] if line[:1] in "+-@" else " ", line))
    return lines


@dataclass(frozen=True, slots=True)
class ReplayRow:
    submission_id: int
    created_at: dt.datetime
    version: int
    answers: dict[str, str]
    before: list[tuple[str, str]]  # (label, display) as computed with its own version
    after: list[tuple[str, str]]  # … and with the draft
    errors: dict[str, str]  # the draft refuses these inputs
    change: float | None  # relative change of the first teaser figure, if numeric

    @property
    def changed(self) -> bool:
        return bool(self.errors) or self.before != self.after


async def replay(
    db: AsyncSession, tool: Tool, draft: CompiledCalculator, limit: int = REPLAY_DEFAULT
) -> list[ReplayRow]:
    """The last ``limit`` real submissions, computed again with the draft."""
    limit = max(1, min(limit, REPLAY_MAX))
    submissions = (
        await db.execute(
            select(Submission)
            .where(Submission.tool_id == tool.id)
            .order_by(Submission.id.desc())
            .limit(limit)
        )
    ).scalars()
    used: dict[int, CompiledCalculator] = {}
    rows = []
    for submission in submissions:
        if submission.tool_version not in used:
            used[submission.tool_version] = await service.load(
                db, await tools.version(db, tool.id, submission.tool_version)
            )
        old_calc = used[submission.tool_version]
        old = old_calc.evaluate(submission.inputs)
        new = draft.evaluate(submission.inputs)
        rows.append(
            ReplayRow(
                submission_id=submission.id,
                created_at=submission.created_at,
                version=submission.tool_version,
                answers=service.answers(old_calc, submission.inputs),
                before=_shown(old),
                after=_shown(new),
                errors=new.errors,
                change=_change(old, new),
            )
        )
    return rows


def _shown(evaluation: Evaluation) -> list[tuple[str, str]]:
    return [(o.label, o.display) for o in evaluation.teaser]


def _change(old: Evaluation, new: Evaluation) -> float | None:
    if old.errors or new.errors or not old.teaser or not new.teaser:
        return None
    a, b = _figure(old.teaser[0].value), _figure(new.teaser[0].value)
    if a is None or b is None or a == 0:
        return None
    return (b - a) / abs(a)


def _figure(value: float | list[float] | str) -> float | None:
    if isinstance(value, list):
        return sum(value) / len(value) if value else None
    if isinstance(value, int | float):
        return float(value)
    return None
