"""Calculator pages for visitors: evaluate (teaser, then the gate, then the full result), the
PDF report, and the JSON evaluate API."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators import service
from app.calculators.compiler import CompiledCalculator
from app.calculators.schemas import EvaluateAnswer
from app.calculators.views import page_context
from app.core.api import path_param, problems
from app.core.bundles import bundle
from app.core.errors import DomainError, NotFound
from app.core.i18n import N_
from app.core.pages import page_or_partial
from app.events.schemas import GateShown, ResultShown, StepCompleted, TeaserShown
from app.events.service import Tracker, visitor_context
from app.gate.guards import requires_phone
from app.gate.pending import pending_for
from app.reports.web import VisitorPdf
from app.settings import Settings
from app.tools import service as tools
from app.tools.schemas import PublishedTool, PublishedVersion
from app.visitors.models import Visitor

MAX_FIELDS = 100
# A hint, not a credential: "this browser has answered a calculator". Tool pages look for the
# visitor's latest answers only when it is there, which spares every first view a query; a
# forged or stale hint costs one query and shows nothing that is not the visitor's own.
ANSWERED_COOKIE = "lk_ans"


def answered_cookie(settings: Settings) -> Cookie:
    return Cookie(
        key=ANSWERED_COOKIE,
        value="1",
        path="/",
        max_age=settings.visitor_cookie_days * 86_400,
        httponly=True,
        secure=settings.is_prod,
        samesite="lax",
    )


class InputErrors(
    DomainError, status=422, code="invalid_inputs", message=N_("Some answers need a second look.")
):
    """A calculator's answers were refused (too many, or values its rules reject)."""


class EvaluateRequest(msgspec.Struct, kw_only=True, frozen=True):
    # float, not int | float: JSON has one number type, and the schema's oneOf of integer and
    # number would call every whole number invalid (it matches both).
    inputs: dict[str, str | float | bool | None]


async def _calculator(
    db: AsyncSession, slug: str
) -> tuple[PublishedTool, PublishedVersion, CompiledCalculator]:
    tool, version = await tools.published(db, slug)
    if tool.kind != "calculator":
        raise NotFound()
    return tool, version, await service.load(db, version)


@post("/t/{slug:str}/evaluate", status_code=200)
async def evaluate_form(
    request: HTMXRequest,
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
) -> Template:
    """The calculator form: the teaser (and the full result once the phone is authorised)."""
    tool, version, calc = await _calculator(db_session, slug)
    form = await request.form()
    inputs = {key: form.get(key) for key in list(form.keys())[:MAX_FIELDS] if key != "_csrf_token"}
    evaluation = await service.submit(db_session, tool, version, visitor, inputs)
    authorised = visitor.lead_id is not None
    ctx = visitor_context(visitor, tool.id, version.number)
    status = 200
    if evaluation.errors:
        status = 422
    else:
        tracker.track(ctx, StepCompleted(step="inputs"))
        tracker.track(ctx, TeaserShown())
        tracker.track(ctx, ResultShown() if authorised else GateShown())
    page = page_context(
        tool,
        version,
        calc,
        evaluation,
        authorised,
        settings,
        typed=inputs,
        pending=None if authorised else pending_for(request, visitor.public_id),
    )
    return page_or_partial(
        request,
        "tools/calculator.html",
        page,
        partial="tools/_calc_body.html",
        status_code=status,
        cookies=[] if evaluation.errors else [answered_cookie(settings)],
    )


@get("/t/{slug:str}/report.pdf", guards=[requires_phone], dependencies={"pdf": bundle(VisitorPdf)})
async def report_pdf(slug: FromPath[str], pdf: NamedDependency[VisitorPdf]) -> Response[bytes]:
    """The full result as a branded PDF, watermarked with the visitor's masked phone."""
    tool, _, _ = await _calculator(pdf.db, slug)
    submission = await service.latest(pdf.db, tool, pdf.visitor.id)
    if submission is None:
        raise NotFound(N_("Fill in the calculator first."))
    used = await tools.version(pdf.db, tool.id, submission.tool_version)
    calc = await service.load(pdf.db, used)
    evaluation = calc.evaluate(submission.inputs)
    return await pdf.answer(
        tool.slug,
        submission.tool_version,
        evaluation.inputs,
        lambda brand, watermark, url: service.report(
            calc, evaluation, brand=brand, watermark=watermark, tool_url=url
        ),
        f"{tool.slug}-report.pdf",
    )


@post(
    "/api/v1/calculators/{slug:str}/evaluate",
    status_code=200,
    summary="Evaluate a calculator",
    tags=["calculators"],
    responses=problems(400, 404, 413, 415, 422, why={404: "No published calculator by that slug."}),
)
async def evaluate_api(
    slug: Annotated[str, path_param("A published calculator.", "renovation", "insurance")],
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
    data: JSONBody[EvaluateRequest],
) -> Response[EvaluateAnswer]:
    """The teaser, plus the full result only for an authorised visitor (visitor cookie); 422
    with the field errors."""
    tool, version, _ = await _calculator(db_session, slug)
    if len(data.inputs) > MAX_FIELDS:
        raise InputErrors(fields={"inputs": "too many"})
    evaluation = await service.submit(db_session, tool, version, visitor, data.inputs)
    if evaluation.errors:
        raise InputErrors(fields=evaluation.errors)
    authorised = visitor.lead_id is not None
    ctx = visitor_context(visitor, tool.id, version.number)
    tracker.track(ctx, TeaserShown())
    tracker.track(ctx, ResultShown() if authorised else GateShown())
    body = EvaluateAnswer(
        tool=tool.slug,
        version=version.number,
        authorised=authorised,
        teaser=evaluation.teaser,
        full=evaluation.full if authorised else None,
    )
    return Response(body, cookies=[answered_cookie(settings)])


ROUTES: list[ControllerRouterHandler] = [evaluate_form, report_pdf, evaluate_api]
