"""Staff pages of the calculator editor (role marketer): list, edit with a live preview, raw
TOML, publish after a diff and a replay of real submissions, history, roll back.

A refused edit is shown again with its problems (``catch_refusal``): its 4xx status makes the
unit of work roll back whatever the attempt wrote."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators import editor, editor_forms
from app.calculators.builtins import BUILTIN_SLUGS, compiled_builtin
from app.calculators.compiler import CompiledCalculator, parse_definition
from app.core.errors import DomainError
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.core.params import OptionalQueryNumber, PathNumber, QueryNumber
from app.staff.auth import requires_role
from app.staff.schemas import Staff
from app.tools.models import Tool

# Fields of the forms that are not part of the definition.
_CONTROL = frozenset({"_csrf_token", "base", "n"})


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    values: dict[str, str] = {}
    for key in list(form.keys())[: editor_forms.MAX_FORM_VALUES + 1]:
        value = form.get(key)
        values[key] = value if isinstance(value, str) else ""
    return values


def _messages(exc: DomainError) -> dict[str, str]:
    """The problems by field, in the request's language: most were worded when found, the
    few that are bare msgids are translated here; without fields, the error's message."""
    if exc.fields:
        return {str(k): _(str(v)) for k, v in exc.fields.items()}
    return {"definition": exc.translated}


def _editor_context(
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
) -> dict[str, Any]:
    evaluation = None
    if calc is not None and not errors:
        values = values if values is not None else calc.sample_inputs()
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
        "form": {},
        "toml_errors": {},
        "open_toml": False,
    }


async def _index_page(
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


async def _versions_page(
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


class CalculatorEditor(Controller):
    path = "/staff/calculators"
    guards = [requires_role("marketer")]  # noqa: RUF012

    @get("/")
    async def index(
        self, db_session: NamedDependency[AsyncSession], staff: NamedDependency[Staff]
    ) -> Template:
        return await _index_page(db_session, staff)

    @post("/", status_code=200)
    async def create(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
    ) -> Template | Redirect:
        form = await _form(request)
        async with catch_refusal(db_session) as refused:
            tool = await editor.create_from_builtin(
                db_session,
                builtin=form.get("builtin", ""),
                slug=form.get("slug", "")[:100],
                title=form.get("title", "")[:200],
            )
        if refused.error is not None:
            return await _index_page(
                db_session, staff, errors=_messages(refused.error), form=form, status=refused.status
            )
        return Redirect(f"/staff/calculators/{tool.slug}", status_code=303)

    @get("/{slug:str}")
    async def edit(
        self,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        saved: FromQuery[bool] = False,
    ) -> Template:
        tool = await editor.calculator(db_session, slug)
        calc = editor.check(tool.draft)
        return Template(
            "editor/calculator.html",
            context=_editor_context(tool, tool.draft, calc, saved=saved, staff=staff),
        )

    @post("/{slug:str}/preview", status_code=200)
    async def preview(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
    ) -> Template:
        """The live preview of the form as it stands (nothing is saved), with every problem."""
        tool = await editor.calculator(db_session, slug)
        form = await _form(request)
        async with catch_refusal() as refused:
            draft = editor_forms.apply_form(tool.draft, form)
            calc = editor.check(draft)
        if refused.error is not None:  # the preview names the problems (a 200: nothing saved)
            return Template(
                "editor/_preview.html",
                context=_editor_context(tool, tool.draft, None, errors=_messages(refused.error)),
            )
        return Template(
            "editor/_preview.html",
            context=_editor_context(
                tool, draft, calc, values=editor_forms.sample_values(calc, form)
            ),
        )

    @post("/{slug:str}/draft", status_code=200)
    async def save(
        self,
        request: HTMXRequest,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
    ) -> Template | Redirect:
        """Save the forms into the draft when the result checks; otherwise change nothing."""
        tool = await editor.calculator(db_session, slug)
        form = await _form(request)
        base = form.get("base", "")
        async with catch_refusal() as refused:
            draft = editor_forms.apply_form(tool.draft, form)
            if form.get("new_variable.name") or form.get("new_variable.formula"):
                draft = editor_forms.add_variable(
                    draft, form.get("new_variable.name", ""), form.get("new_variable.formula", "")
                )
            calc = await editor.save_draft(db_session, tool, draft, base=base)
        if refused.error is not None:
            return self._refused(tool, form, refused.error, staff)
        if not request.htmx:
            return Redirect(f"/staff/calculators/{tool.slug}?saved=true", status_code=303)
        return Template(
            "editor/_editor.html",
            context=_editor_context(
                tool,
                tool.draft,
                calc,
                values=editor_forms.sample_values(calc, form),
                saved=True,
                staff=staff,
            ),
        )

    def _refused(
        self, tool: Tool, form: dict[str, str], exc: DomainError, staff: Staff
    ) -> Template:
        # Show the forms as the marketer left them, with the problems beside the inputs.
        try:
            shown = editor_forms.apply_form(tool.draft, form)
        except DomainError:
            shown = tool.draft
        try:
            calc: CompiledCalculator | None = editor.check(shown)
        except DomainError:
            calc = None
        return Template(
            "editor/calculator.html",
            context={
                **_editor_context(
                    tool, shown, calc, errors=_messages(exc), base=form.get("base"), staff=staff
                ),
                "form": form,
                "definition": calc.definition if calc else editor.check(tool.draft).definition,
            },
            status_code=exc.status,
        )

    @post("/{slug:str}/toml", status_code=200)
    async def save_toml(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
    ) -> Template | Redirect:
        """Replace the draft with the raw TOML, when it checks."""
        tool = await editor.calculator(db_session, slug)
        form = await _form(request)
        text = form.get("toml", "")
        async with catch_refusal() as refused:
            calc = parse_definition(text)
            await editor.save_draft(
                db_session, tool, editor.definition_data(calc), base=form.get("base", "")
            )
        if refused.error is not None:
            calc_now = editor.check(tool.draft)
            return Template(
                "editor/calculator.html",
                context={
                    **_editor_context(
                        tool,
                        tool.draft,
                        calc_now,
                        toml_text=text,
                        base=form.get("base"),
                        staff=staff,
                    ),
                    "toml_errors": _messages(refused.error),
                    "open_toml": True,
                },
                status_code=refused.status,
            )
        return Redirect(f"/staff/calculators/{tool.slug}?saved=true", status_code=303)

    @get("/{slug:str}/replay")
    async def replay(
        self, slug: FromPath[str], db_session: NamedDependency[AsyncSession], n: QueryNumber = 20
    ) -> Template:
        tool = await editor.calculator(db_session, slug)
        calc = editor.check(tool.draft)
        rows = await editor.replay(db_session, tool, calc, n)
        return Template("editor/_replay.html", context={"tool": tool, "rows": rows, "n": n})

    @get("/{slug:str}/publish")
    async def review(
        self,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        n: QueryNumber = 20,
    ) -> Template:
        """Before publishing: what changes against the live version, and for whom."""
        tool = await editor.calculator(db_session, slug)
        calc = editor.check(tool.draft)
        live = await editor.live_definition(db_session, tool)
        return Template(
            "editor/publish.html",
            context={
                "staff": staff,
                "tool": tool,
                "diff": editor.diff(live, tool.draft, f"v{tool.current_version}", _("draft")),
                "same": live == tool.draft,
                "rows": await editor.replay(db_session, tool, calc, n),
                "n": n,
                "base": editor.draft_hash(tool.draft),
                "error": None,
            },
        )

    @post("/{slug:str}/publish", status_code=200)
    async def publish(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
    ) -> Template | Redirect:
        tool = await editor.calculator(db_session, slug)
        form = await _form(request)
        async with catch_refusal() as refused:
            version = await editor.publish(
                db_session, tool, base=form.get("base", ""), by=staff.username
            )
        if refused.error is not None:
            return Template(
                "editor/publish.html",
                context={
                    "staff": staff,
                    "tool": tool,
                    "diff": [],
                    "same": True,
                    "rows": [],
                    "n": 0,
                    "base": editor.draft_hash(tool.draft),
                    "error": next(iter(_messages(refused.error).values())),
                },
                status_code=refused.status,
            )
        return Redirect(
            f"/staff/calculators/{tool.slug}/versions?published={version.number}", status_code=303
        )

    @get("/{slug:str}/versions")
    async def history(
        self,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        published: OptionalQueryNumber = None,
    ) -> Template:
        tool = await editor.calculator(db_session, slug)
        return await _versions_page(db_session, staff, tool, published=published)

    @get("/{slug:str}/diff")
    async def diff(
        self,
        slug: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
        a: QueryNumber,
        b: FromQuery[str] = "draft",
    ) -> Template:
        """Version ``a`` against version ``b`` (a number, or ``draft``)."""
        tool = await editor.calculator(db_session, slug)
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
        self,
        slug: FromPath[str],
        number: PathNumber,
        db_session: NamedDependency[AsyncSession],
        staff: NamedDependency[Staff],
    ) -> Template | Redirect:
        tool = await editor.calculator(db_session, slug)
        async with catch_refusal(db_session) as refused:
            version = await editor.rollback(db_session, tool, number, by=staff.username)
        if refused:
            return await _versions_page(
                db_session, staff, tool, error=refused.message, status=refused.status
            )
        return Redirect(
            f"/staff/calculators/{tool.slug}/versions?published={version.number}", status_code=303
        )


ROUTES: list[ControllerRouterHandler] = [CalculatorEditor]
