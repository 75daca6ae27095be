"""The calculator kind: its page (questions → teaser → gate → full result), its routes
(evaluate, the PDF report, the marketer's editor), its funnel and the built-ins as demo."""

from __future__ import annotations

import msgspec
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators import service
from app.calculators.builtins import BUILTIN_SLUGS, builtin
from app.calculators.editor_routes import ROUTES as EDITOR_ROUTES
from app.calculators.routes import ANSWERED_COOKIE, ROUTES
from app.calculators.views import GATE, blank_form, page_context
from app.core.i18n import N_
from app.core.web import cookie
from app.events.schemas import GateShown, ResultShown
from app.gate.pending import pending_for
from app.tools import service as tools
from app.tools.kinds import Kind, ToolPage, gated_funnel


async def render(page: ToolPage) -> Template:
    """The questions, and — for a browser that answered this version before — the teaser
    behind the gate or the full result."""
    calc = await service.load(page.db, page.version)
    # The answered-hint cookie spares every first view the look-up of earlier answers.
    answered = cookie(page.request.scope, ANSWERED_COOKIE) is not None
    submission = await service.latest(page.db, page.tool, page.visitor.id) if answered else None
    if submission is None or submission.tool_version != page.version.number:
        # Unanswered: the version's blank form, rendered once per language.
        form = blank_form(page.request, page.tool, page.version, calc, page.settings)
        context = {"tool": page.tool, "definition": calc.definition, "form": form}
        return Template("tools/calculator.html", context=context)
    evaluation = calc.evaluate(submission.inputs)
    page.tracker.track(page.ctx, ResultShown() if page.authorised else GateShown())
    pending = None if page.authorised else pending_for(page.request, page.visitor.public_id)
    context = page_context(
        page.tool, page.version, calc, evaluation, page.authorised, page.settings, pending=pending
    )
    return Template("tools/calculator.html", context=context)


async def seed_demo(db: AsyncSession) -> None:
    """The built-in calculators (renovation, insurance), published once."""
    for slug in BUILTIN_SLUGS:
        definition = msgspec.to_builtins(builtin(slug))
        await tools.seed_once(
            db, slug=slug, kind="calculator", title=definition["title"], definition=definition
        )


KIND = Kind(
    name="calculator",
    label=N_("Calculator"),
    summary_field="intro",
    gate=GATE,
    render=render,
    funnel=gated_funnel("result_shown", "download", before=("step_started", "teaser_shown")),
    routes=[*ROUTES, *EDITOR_ROUTES],
    seed_demo=seed_demo,
)
