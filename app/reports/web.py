"""How a report reaches the visitor: the PDF answered inline, never stored by a cache (it
carries the visitor's masked phone), and the tool's address printed on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.brand.book import BrandBook
from app.brand.schemas import Brand
from app.core.i18n import current_locale
from app.core.state import part
from app.leads import service as leads
from app.reports.schemas import Report
from app.reports.service import ReportRenderer, report_cache_key
from app.visitors.models import Visitor


def pdf_answer(pdf: bytes, filename: str) -> Response[bytes]:
    """``pdf`` shown in the browser as ``filename``; private, never cached."""
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


def tool_url(request: Request[Any, Any, Any], slug: str) -> str:
    """The tool's public address on this site (a report's call to action links back to it)."""
    return f"{str(request.base_url).rstrip('/')}/t/{slug}"


@dataclass(frozen=True, slots=True)
class VisitorPdf:
    """A report for the authorised visitor asking (behind ``requires_phone``), watermarked with
    their masked phone: the one dependency of a PDF download (``bundle(VisitorPdf)``)."""

    request: Request[Any, Any, Any]
    db: AsyncSession
    visitor: Visitor

    async def answer(
        self,
        tool: str,
        version: int,
        inputs: Mapping[str, object],
        build: Callable[[Brand, str, str], Report],
        filename: str,
    ) -> Response[bytes]:
        """``build(brand, watermark, tool_url)`` as a PDF named ``filename``, cached per
        ``tool`` version, ``inputs``, watermark and language."""
        lead = await leads.get(self.db, self.visitor.lead_id)  # type: ignore[arg-type]
        watermark = lead.phone_masked
        key = report_cache_key(
            tool=tool, version=version, inputs=inputs, watermark=watermark, locale=current_locale()
        )
        report = build(
            part(self.request, BrandBook).current(), watermark, tool_url(self.request, tool)
        )
        pdf = await part(self.request, ReportRenderer).pdf(report, key)
        return pdf_answer(pdf, filename)
