"""The guide's download: its full content as a PDF for a visitor who authorised a phone,
watermarked with their masked phone like a calculator's report. The download is a step of the
guide's funnel, recorded here by the server (the browser may never report a file it opened)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.schemas import cta_of
from app.brand.book import BrandBook
from app.core.errors import NotFound
from app.core.i18n import N_, current_locale
from app.core.state import part
from app.events.schemas import Download
from app.events.service import Tracker, visitor_context
from app.gate.guards import requires_phone
from app.leads import service as leads
from app.reports.schemas import Report, ReportSection
from app.reports.service import ReportRenderer, report_cache_key
from app.reports.web import pdf_answer, tool_url
from app.tools import service as tools
from app.visitors.models import Visitor

# The download's name in the funnel event (``download`` ``item``) and on the lead's timeline.
PDF_ITEM = "guide_pdf"
# Within the report's own caps (app/reports/schemas.py), so a long guide is cut, not refused.
_SHORT, _LONG, _SECTIONS, _PARAGRAPHS = 500, 10_000, 50, 100


def _text(value: Any, cap: int) -> str:
    return value[:cap] if isinstance(value, str) else ""


def guide_report(
    definition: dict[str, Any],
    *,
    brand: str,
    watermark: str,
    phone: str = "",
    tool_url: str = "",
) -> Report:
    """The guide's content as a report: one section per part, its paragraphs as they are;
    its call to action with the business's ``phone`` and a QR code of ``tool_url``."""
    sections = []
    parts = definition.get("content")
    for part_ in parts[:_SECTIONS] if isinstance(parts, list) else []:
        if not isinstance(part_, dict):
            continue
        paragraphs = part_.get("paragraphs")
        sections.append(
            ReportSection(
                heading=_text(part_.get("heading"), _SHORT),
                paragraphs=[
                    _text(p, _LONG)
                    for p in (paragraphs[:_PARAGRAPHS] if isinstance(paragraphs, list) else [])
                    if isinstance(p, str)
                ],
            )
        )
    cta = cta_of(definition)
    return Report(
        title=_text(definition.get("title"), _SHORT),
        subtitle=_text(definition.get("summary"), _SHORT),
        brand=brand[:_SHORT],
        generated_at=dt.datetime.now(dt.UTC),
        watermark=watermark,
        sections=sections,
        cta=(cta.text or None) if cta else None,
        cta_title=cta.label if cta else "",
        cta_phone=phone,
        cta_url=tool_url,
        locale=current_locale(),
    )


@get("/t/{slug:str}/guide.pdf", guards=[requires_phone])
async def guide_pdf(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    tracker: NamedDependency[Tracker],
    visitor: NamedDependency[Visitor],
) -> Response[bytes]:
    """The guide as a PDF, watermarked with the visitor's masked phone."""
    tool, version = await tools.published(db_session, slug)
    if tool.kind != "guide":
        raise NotFound(N_("This tool does not exist or is no longer available."))
    definition = await tools.definition(db_session, version)
    lead = await leads.get(db_session, visitor.lead_id)  # type: ignore[arg-type]
    key = report_cache_key(
        tool=tool.slug,
        version=version.number,
        inputs={"guide": True},
        watermark=lead.phone_masked,
        locale=current_locale(),
    )
    brand = part(request, BrandBook).current()
    report = guide_report(
        definition,
        brand=brand.name,
        watermark=lead.phone_masked,
        phone=brand.contact_phone,
        tool_url=tool_url(request, tool.slug),
    )
    pdf = await part(request, ReportRenderer).pdf(report, key)
    tracker.track(visitor_context(visitor, tool.id, version.number), Download(item=PDF_ITEM))
    return pdf_answer(pdf, f"{tool.slug}.pdf")


ROUTES: list[ControllerRouterHandler] = [guide_pdf]
