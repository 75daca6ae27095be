"""The calculator editor's page contexts (the routes are in ``editor_routes``)."""

from __future__ import annotations

from typing import Any

from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators import editor, editor_map, editor_ops, editor_review
from app.calculators.builtins import BUILTIN_SLUGS, compiled_builtin
from app.calculators.compiler import CompiledCalculator
from app.core.errors import DomainError
from app.core.i18n import N_
from app.core.i18n import gettext as _
from app.staff.schemas import Staff
from app.tools.models import Tool

# The kinds' names as msgids (the templates translate them).
FIELD_KINDS = {
    "number": N_("Number"),
    "count": N_("Count"),
    "select": N_("List to choose from"),
    "radio": N_("Buttons to choose from"),
    "checkbox": N_("Tick box (yes or no)"),
    "city": N_("City"),
}
OUTPUT_KINDS = {
    "currency": N_("Amount of money"),
    "number": N_("Number"),
    "range": N_("Range"),
    "text": N_("Text"),
}


def messages(exc: DomainError) -> dict[str, str]:
    """The problems by field, in the request's language: most were worded when found, the
    few that are bare msgids are translated here; without fields, the error's message."""
    if exc.fields:
        return {str(k): _(str(v)) for k, v in exc.fields.items()}
    return {"definition": exc.translated}


def editor_context(
    tool: Tool,
    draft: dict[str, Any],
    calc: CompiledCalculator | None,
    *,
    values: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    toml_text: str | None = None,
    base: str | None = None,
    staff: Staff | None = None,
    form: dict[str, str] | None = None,
) -> dict[str, Any]:
    evaluation = None
    if calc is not None:
        values = values if values is not None else calc.sample_inputs()
        if not errors:
            evaluation = calc.evaluate(values)
    return {
        "staff": staff,
        "tool": tool,
        "draft": draft,
        "definition": calc.definition if calc is not None else None,
        "fields": {f.key: f for f in calc.definition.fields} if calc is not None else {},
        "values": values or {},
        "evaluation": evaluation,
        "errors": errors or {},
        "saved": saved,
        "toml_text": toml_text if toml_text is not None else editor.as_toml(draft),
        "base": base or editor.draft_hash(tool.draft),
        "form": form or {},
        "toml_errors": {},
        "open_toml": False,
        "labels": editor_map.TableLabels(draft),
        "groups": editor_map.variable_groups(draft),
        "problems": _problems(errors or {}, _where(draft)),
        "open_questions": _about_questions(errors or {}, draft),
        "open_blocks": {".".join(path.split(".")[:n]) for path in errors or {} for n in (2, 3)},
        "field_kinds": FIELD_KINDS,
        "new_field_kinds": editor_ops.NEW_FIELD_KINDS,
        "output_kinds": OUTPUT_KINDS,
        "new_output_kinds": editor_ops.NEW_OUTPUT_KINDS,
    }


def _where(draft: dict[str, Any]) -> dict[str, str]:
    """Each problem path's place in words: 结果「地面」, 表格「单价」, 问题「面积」."""
    places: dict[str, str] = {}
    for section, what in (
        ("fields", _("Question")),
        ("outputs", _("Result")),
        ("tables", _("Table")),
        ("steps", _("Step")),
    ):
        for item in draft.get(section, []):
            label = item.get("label") or item.get("title") or item.get("key")
            places[f"{section}.{item.get('key')}"] = f"{what}「{label}」"
    for name in draft.get("variables", {}):
        places[f"variables.{name}"] = f"{_('Formula')} {name}"
    return places


def _about_questions(errors: dict[str, str], draft: dict[str, Any]) -> bool:
    fields = {f"remove.{f.get('key')}" for f in draft.get("fields", [])}
    return any(
        path.split(".")[0] in ("fields", "steps", "new_field") or path in fields for path in errors
    )


def _problems(errors: dict[str, str], where: dict[str, str]) -> list[tuple[str, str, str]]:
    """(anchor path, place in words, message) for each problem: the place is the nearest
    labelled block of the path (``outputs.total.low`` → 结果「预估总价」)."""
    found = []
    for path, message in errors.items():
        anchor, place = path, ""
        head, _dot, rest = path.partition(".")
        tries = [f"{s}.{rest}" for s in ("fields", "outputs", "tables")] if head == "remove" else []
        for candidate in [path, *tries]:
            parts = candidate.split(".")
            while parts and not place:
                prefix = ".".join(parts)
                if prefix in where:
                    anchor, place = prefix, where[prefix]
                parts.pop()
        found.append((anchor, place, message))
    return found


async def index_page(
    db: AsyncSession,
    staff: Staff,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    return Template(
        "editor/index.html",
        context={
            "staff": staff,
            "rows": await editor.list_calculators(db),
            "builtins": [(slug, compiled_builtin(slug).definition.title) for slug in BUILTIN_SLUGS],
            "errors": errors or {},
            "form": form or {},
        },
        status_code=status,
    )


async def versions_page(
    db: AsyncSession,
    staff: Staff,
    tool: Tool,
    *,
    published: int | None = None,
    error: str | None = None,
    status: int = 200,
) -> Template:
    return Template(
        "editor/versions.html",
        context={
            "staff": staff,
            "tool": tool,
            "versions": await editor.versions(db, tool),
            "published": published,
            "error": error,
        },
        status_code=status,
    )


async def review_page(
    db: AsyncSession,
    staff: Staff,
    tool: Tool,
    *,
    n: int = editor.REPLAY_DEFAULT,
    error: str | None = None,
    status: int = 200,
) -> Template:
    """Before publishing: what changes for a visitor against the live version."""
    calc = editor.check(tool.draft)
    live = await editor.live_definition(db, tool)
    live_calc = editor.check(live) if live is not None else None
    rows = await editor.replay(db, tool, calc, n)
    return Template(
        "editor/publish.html",
        context={
            "staff": staff,
            "tool": tool,
            "diff": editor.diff(live, tool.draft, f"v{tool.current_version}", _("draft")),
            "same": live == tool.draft,
            "prices": editor_review.price_changes(live, tool.draft),
            "others": editor_review.other_changes(live, tool.draft),
            "samples": editor_review.sample_rows(live_calc, calc),
            "rows": rows,
            "n": n,
            "base": editor.draft_hash(tool.draft),
            "error": error,
        },
        status_code=status,
    )
