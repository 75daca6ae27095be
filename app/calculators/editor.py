"""The marketer's calculator editor: drafts, checks, previews, publishing, history, replay.

A calculator tool keeps one **draft** (``Tool.draft``, the definition as plain data) and a list of
immutable **versions** (``ToolVersion``). Editing changes only the draft, and only when the whole
draft still checks (``compile_definition``): a refused edit changes nothing. Publishing freezes
the draft as the next version; rolling back publishes an old version's definition again as a new
version, so history only grows and every submission keeps pointing at what it was computed with.

Form edits address the definition by key, the same paths the checker reports problems on:
``fields.area.max``, ``tables.unit_price.values.2.1``, ``variables.total``,
``outputs.total_range.low``. Structure (adding fields, steps, table rows) is edited in the raw TOML
view; the forms edit every value inside it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
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
from app.calculators.engine import CompiledCalculator, compile_definition, parse_definition
from app.calculators.errors import InvalidDefinition, schema_problem
from app.calculators.schemas import MAX_NUMBER, CalculatorDef
from app.calculators.toml_writer import dumps as toml_dumps
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_
from app.tools import service as tools
from app.tools.models import Submission, Tool, ToolVersion

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
MAX_FORM_VALUES = 5_000
MAX_VALUE_CHARS = 2_000
REPLAY_DEFAULT = 20
REPLAY_MAX = 200
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


class DraftConflict(Conflict):
    code = "draft_conflict"
    default_message = N_(
        "Someone else saved this draft after you opened it. Reload the editor to see their "
        "changes; yours were not saved."
    )


class NothingToPublish(Conflict):
    code = "nothing_to_publish"
    default_message = N_("The draft is the same as the published version: nothing to publish.")


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
    last = await db.scalar(
        select(func.max(ToolVersion.number)).where(ToolVersion.tool_id == tool.id)
    )
    version = ToolVersion(
        tool_id=tool.id,
        number=(last or 0) + 1,
        definition=definition,
        published_at=dt.datetime.now(dt.UTC),
        published_by=by[:64],
    )
    db.add(version)
    tool.current_version = version.number
    tool.status = "published"
    tools.forget(db, tool.slug)
    tool.draft = definition
    tool.title = str(definition.get("title", tool.title))[:128]
    await db.flush()
    return version


# --- forms -----------------------------------------------------------------------------------


def apply_form(draft: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The draft with the form's values put in. Unknown names are ignored; values that are not
    numbers where numbers are needed raise InvalidInput naming the path."""
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(draft))
    if len(form) > MAX_FORM_VALUES:
        raise InvalidInput(fields={"definition": "表单项太多"})
    problems: dict[str, str] = {}
    by_key = {
        section: {str(item.get("key")): item for item in data.get(section, [])}
        for section in ("steps", "fields", "tables", "outputs")
    }
    for name, raw in form.items():
        value = raw.replace("\r\n", "\n")
        if len(value) > MAX_VALUE_CHARS:
            problems[name[:120]] = f"太长了（最多 {MAX_VALUE_CHARS} 个字符）"
            continue
        parts = name.split(".")
        try:
            _apply(data, by_key, parts, value)
        except _FormValueError as exc:
            problems[name[:120]] = str(exc)
    if problems:
        raise InvalidDefinition(fields=problems)
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
        raise _FormValueError(f"“{text[:20]}”不是数字") from None
    if not math.isfinite(number) or abs(number) > MAX_NUMBER:
        raise _FormValueError("数字太大了")
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
                raise _FormValueError("城市等级需要是整数")
            option["tier"] = int(tier)
        options.append(option)
    return options


def _set_table_value(table: dict[str, Any], where: list[str], value: str) -> None:
    values = table.get("values", [])
    try:
        indexes = [int(i) for i in where]
    except ValueError:
        return
    number = _number(value)
    if number is None:
        raise _FormValueError("表里的每一格都需要一个数")
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
                "new_variable.name": "名字用小写字母开头，只含小写字母、数字和下划线，最多 40 个"
            }
        )
    if not formula:
        raise InvalidDefinition(fields={"new_variable.formula": "请写公式"})
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(draft))
    if name in data.get("variables", {}):
        raise InvalidDefinition(fields={"new_variable.name": f"变量 {name} 已经有了"})
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
