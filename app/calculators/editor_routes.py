"""Staff pages of the calculator editor (role marketer): list, edit with a live preview (the
save button also carries structure edits, ``op``: ``editor_ops``), raw TOML, publish after a
review of what changes for a visitor (``editor_pages.review_page``), history, roll back.

A refused edit is shown again with its problems (``catch_refusal``): its 4xx status makes the
unit of work roll back whatever the attempt wrote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators import editor, editor_forms, editor_ops
from app.calculators.compiler import CompiledCalculator, parse_definition
from app.calculators.editor_pages import (
    editor_context,
    index_page,
    messages,
    review_page,
    versions_page,
)
from app.core.errors import DomainError
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.core.params import OptionalQueryNumber, PathNumber, QueryNumber
from app.staff.auth import requires_role
from app.staff.pages import StaffPage
from app.staff.schemas import Staff
from app.tools.models import Tool

# Fields of the forms that are not part of the definition.
_CONTROL = frozenset({"_csrf_token", "base", "n"})


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The posted form's values (at most MAX_FORM_VALUES + 1 of them), as text."""
    form = await request.form()
    values: dict[str, str] = {}
    for key in list(form.keys())[: editor_forms.MAX_FORM_VALUES + 1]:
        value = form.get(key)
        values[key] = value if isinstance(value, str) else ""
    return values


async def _calculator(slug: FromPath[str], db_session: NamedDependency[AsyncSession]) -> Tool:
    """The calculator the path names (404 when there is none)."""
    return await editor.calculator(db_session, slug)


def _edited(tool: Tool, form: dict[str, str]) -> dict[str, Any]:
    """The draft with the forms' values and list ticks put in (nothing is saved)."""
    draft = editor_forms.apply_form(tool.draft, form)
    editor_ops.apply_lists(draft, form)
    return draft


def _see_saved(tool: Tool) -> Redirect:
    return Redirect(f"/staff/calculators/{tool.slug}?saved=true", status_code=303)


def _see_versions(tool: Tool, published: int) -> Redirect:
    return Redirect(
        f"/staff/calculators/{tool.slug}/versions?published={published}", status_code=303
    )


@dataclass(frozen=True, slots=True)
class Editing(StaffPage):
    """The calculator ``{slug}`` names, as the marketer signed in edits it."""

    tool: Tool


class CalculatorEditor(Controller):
    path = "/staff/calculators"
    guards = [requires_role("marketer")]  # noqa: RUF012
    # ``tool``: the calculator ``{slug}`` names; ``form``: the posted values (``_form``);
    # ``editing``: the tool with the request, its session and the staff member (``Editing``).
    dependencies = {  # noqa: RUF012
        "tool": Provide(_calculator),
        "form": Provide(_form),
        "editing": Editing.dependency(),
    }

    @get("/")
    async def index(
        self, db_session: NamedDependency[AsyncSession], staff: NamedDependency[Staff]
    ) -> Template:
        return await index_page(db_session, staff)

    @post("/", status_code=200)
    async def create(
        self,
        form: NamedDependency[dict[str, str]],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
    ) -> Template | Redirect:
        async with catch_refusal(db_session) as refused:
            tool = await editor.create_from_builtin(
                db_session,
                builtin=form.get("builtin", ""),
                slug=form.get("slug", "")[:100],
                title=form.get("title", "")[:200],
            )
        if refused.error is not None:
            return await index_page(
                db_session, staff, errors=messages(refused.error), form=form, status=refused.status
            )
        return Redirect(f"/staff/calculators/{tool.slug}", status_code=303)

    @get("/{slug:str}")
    async def edit(
        self, editing: NamedDependency[Editing], saved: FromQuery[bool] = False
    ) -> Template:
        tool = editing.tool
        calc = editor.check(tool.draft)
        return Template(
            "editor/calculator.html",
            context=editor_context(tool, tool.draft, calc, saved=saved, staff=editing.staff),
        )

    @post("/{slug:str}/preview", status_code=200)
    async def preview(
        self, tool: NamedDependency[Tool], form: NamedDependency[dict[str, str]]
    ) -> Template:
        """The live preview of the form as it stands (nothing is saved), with every problem."""
        async with catch_refusal() as refused:
            draft = _edited(tool, form)
            calc = editor.check(draft)
        if refused.error is not None:  # the preview names the problems (a 200: nothing saved)
            return Template(
                "editor/_preview.html",
                context=editor_context(tool, tool.draft, None, errors=messages(refused.error)),
            )
        return Template(
            "editor/_preview.html",
            context=editor_context(
                tool, draft, calc, values=editor_forms.sample_values(calc, form)
            ),
        )

    @post("/{slug:str}/draft", status_code=200)
    async def save(
        self, editing: NamedDependency[Editing], form: NamedDependency[dict[str, str]]
    ) -> Template | Redirect:
        """Save the forms into the draft when the result checks; otherwise change nothing."""
        tool, staff, htmx = editing.tool, editing.staff, bool(editing.request.htmx)
        base = form.get("base", "")
        async with catch_refusal() as refused:
            draft = _edited(tool, form)
            if form.get("op"):
                draft = editor_ops.apply_op(draft, form["op"][:200], form)
            if form.get("new_variable.name") or form.get("new_variable.formula"):
                draft = editor_forms.add_variable(
                    draft, form.get("new_variable.name", ""), form.get("new_variable.formula", "")
                )
            calc = await editor.save_draft(editing.db, tool, draft, base=base)
        if refused.error is not None:
            return self._refused(tool, form, refused.error, staff, partial=htmx)
        if not htmx:
            return _see_saved(tool)
        return Template(
            "editor/_editor.html",
            context=editor_context(
                tool,
                tool.draft,
                calc,
                values=editor_forms.sample_values(calc, form),
                saved=True,
                staff=staff,
            ),
        )

    def _refused(
        self, tool: Tool, form: dict[str, str], exc: DomainError, staff: Staff, *, partial: bool
    ) -> Template:
        # Show the forms as the marketer left them, with the problems beside the inputs.
        try:
            shown = _edited(tool, form)
        except DomainError:
            shown = tool.draft
        try:
            calc: CompiledCalculator | None = editor.check(shown)
        except DomainError:
            calc = None
        return Template(
            "editor/_editor.html" if partial else "editor/calculator.html",
            context={
                **editor_context(
                    tool, shown, calc, errors=messages(exc), base=form.get("base"), staff=staff
                ),
                "form": form,
                "definition": calc.definition if calc else editor.check(tool.draft).definition,
            },
            status_code=exc.status,
        )

    @post("/{slug:str}/toml", status_code=200)
    async def save_toml(
        self, editing: NamedDependency[Editing], form: NamedDependency[dict[str, str]]
    ) -> Template | Redirect:
        """Replace the draft with the raw TOML, when it checks."""
        tool, staff = editing.tool, editing.staff
        text = form.get("toml", "")
        async with catch_refusal() as refused:
            calc = parse_definition(text)
            await editor.save_draft(
                editing.db, tool, editor.definition_data(calc), base=form.get("base", "")
            )
        if refused.error is not None:
            calc_now = editor.check(tool.draft)
            return Template(
                "editor/calculator.html",
                context={
                    **editor_context(
                        tool,
                        tool.draft,
                        calc_now,
                        toml_text=text,
                        base=form.get("base"),
                        staff=staff,
                    ),
                    "toml_errors": messages(refused.error),
                    "open_toml": True,
                },
                status_code=refused.status,
            )
        return _see_saved(tool)

    @get("/{slug:str}/replay")
    async def replay(
        self,
        tool: NamedDependency[Tool],
        db_session: NamedDependency[AsyncSession],
        n: QueryNumber = 20,
    ) -> Template:
        calc = editor.check(tool.draft)
        rows = await editor.replay(db_session, tool, calc, n)
        return Template("editor/_replay.html", context={"tool": tool, "rows": rows, "n": n})

    @get("/{slug:str}/publish")
    async def review(self, editing: NamedDependency[Editing], n: QueryNumber = 20) -> Template:
        """Before publishing: what changes for a visitor against the live version."""
        return await review_page(editing.db, editing.staff, editing.tool, n=n)

    @post("/{slug:str}/publish", status_code=200)
    async def publish(
        self, editing: NamedDependency[Editing], form: NamedDependency[dict[str, str]]
    ) -> Template | Redirect:
        db_session, staff, tool = editing.db, editing.staff, editing.tool
        async with catch_refusal(db_session) as refused:
            version = await editor.publish(
                db_session, tool, base=form.get("base", ""), by=staff.username
            )
        if refused.error is not None:
            error = next(iter(messages(refused.error).values()))
            return await review_page(db_session, staff, tool, error=error, status=refused.status)
        return _see_versions(tool, version.number)

    @get("/{slug:str}/versions")
    async def history(
        self, editing: NamedDependency[Editing], published: OptionalQueryNumber = None
    ) -> Template:
        return await versions_page(editing.db, editing.staff, editing.tool, published=published)

    @get("/{slug:str}/diff")
    async def diff(
        self, editing: NamedDependency[Editing], a: QueryNumber, b: FromQuery[str] = "draft"
    ) -> Template:
        """Version ``a`` against version ``b`` (a number, or ``draft``)."""
        db_session, staff, tool = editing.db, editing.staff, editing.tool
        old = await editor.version_definition(db_session, tool, a)
        if b == "draft":
            new, new_name = tool.draft, _("draft")
        else:
            number = int(b) if b.isascii() and b.isdigit() and len(b) < 9 else -1
            new, new_name = await editor.version_definition(db_session, tool, number), f"v{number}"
        return Template(
            "editor/diff.html",
            context={
                "staff": staff,
                "tool": tool,
                "old_name": f"v{a}",
                "new_name": new_name,
                "diff": editor.diff(old, new, f"v{a}", new_name),
            },
        )

    @post("/{slug:str}/versions/{number:int}/rollback", status_code=200)
    async def rollback(
        self, editing: NamedDependency[Editing], number: PathNumber
    ) -> Template | Redirect:
        db_session, staff, tool = editing.db, editing.staff, editing.tool
        async with catch_refusal(db_session) as refused:
            version = await editor.rollback(db_session, tool, number, by=staff.username)
        if refused:
            return await versions_page(
                db_session, staff, tool, error=refused.message, status=refused.status
            )
        return _see_versions(tool, version.number)


ROUTES: list[ControllerRouterHandler] = [CalculatorEditor]
