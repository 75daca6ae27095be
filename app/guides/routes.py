"""The guide's download: its full content as a PDF for a visitor who authorised a phone,
watermarked with their masked phone like a calculator's report. The download is a step of the
guide's funnel, recorded here by the server (the browser may never report a file it opened)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from app.bookings.schemas import cta_of
from app.core.bundles import bundle
from app.core.errors import NotFound
from app.core.i18n import N_, current_locale
from app.events.schemas import Download
from app.events.service import Tracker, visitor_context
from app.gate.guards import requires_phone
from app.reports.schemas import Report, ReportSection
from app.reports.web import VisitorPdf
from app.tools import service as tools

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


@get("/t/{slug:str}/guide.pdf", guards=[requires_phone], dependencies={"pdf": bundle(VisitorPdf)})
async def guide_pdf(
    slug: FromPath[str], pdf: NamedDependency[VisitorPdf], tracker: NamedDependency[Tracker]
) -> Response[bytes]:
    """The guide as a PDF, watermarked with the visitor's masked phone."""
    tool, version = await tools.published(pdf.db, slug)
    if tool.kind != "guide":
        raise NotFound(N_("This tool does not exist or is no longer available."))
    definition = await tools.definition(pdf.db, version)
    answer = await pdf.answer(
        tool.slug,
        version.number,
        {"guide": True},
        lambda brand, watermark, url: guide_report(
            definition,
            brand=brand.name,
            watermark=watermark,
            phone=brand.contact_phone,
            tool_url=url,
        ),
        f"{tool.slug}.pdf",
    )
    tracker.track(visitor_context(pdf.visitor, tool.id, version.number), Download(item=PDF_ITEM))
    return answer


ROUTES: list[ControllerRouterHandler] = [guide_pdf]
