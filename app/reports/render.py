"""A Report to PDF bytes: Jinja (templates/reports/report.html) then WeasyPrint, offline.

Synchronous and CPU-bound: the service runs it in worker processes, never on the event loop.
The parsed stylesheet and the Jinja environment are built once per process.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import msgspec
from jinja2 import Environment
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from app.core import i18n
from app.core.clock import china_time
from app.core.qr import qr_png
from app.core.templating import ROOT, STATIC, make_environment
from app.reports.layout import STYLESHEET, TEMPLATE
from app.reports.schemas import Report, ReportRow, ReportSection

# The brand's logo in the report's header: answered from the report's bytes by LocalFetcher.
LOGO_URL = "leadkit-report:brand-logo.png"
# The QR code of the call to action (the tool's address), answered the same way.
QR_URL = "leadkit-report:cta-qr.png"
# Enough copies of the watermark to cover an A4 page once the grid is rotated.
WATERMARK_ROWS = 14
WATERMARK_COLUMNS = 4


class LocalFetcher(URLFetcher):
    """Fetches only files under static/; refuses every other URL (http, https, data, ftp, …).

    Report text is escaped, so no URL should reach this at all; this is the second wall.
    The one exception is LOGO_URL, answered from the report's own logo bytes (``inline``).
    ``asked`` records every URL WeasyPrint asked for, for tests.
    """

    def __init__(self) -> None:
        super().__init__(allowed_protocols=["file"], allow_redirects=False)
        self.asked: list[str] = []
        self.inline: dict[str, bytes] = {}

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        self.asked.append(url)
        if url in self.inline:
            return URLFetcherResponse(url, self.inline[url], {"Content-Type": "image/png"})
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"report resources are local files only, not {url[:80]!r}")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(STATIC.resolve()):
            raise ValueError(f"report resources must live under static/, not {path}")
        return super().fetch(path.as_uri(), headers)


@cache
def _environment() -> Environment:
    return make_environment()


@cache
def _stylesheet() -> CSS:
    return CSS(filename=str(STYLESHEET), url_fetcher=LocalFetcher())


def render_html(report: Report) -> str:
    """The report as an HTML string, in the report's locale; every text is escaped."""
    previous = i18n.current_locale()
    i18n.set_locale(report.locale)
    try:
        return (
            _environment()
            .get_template(TEMPLATE)
            .render(
                report=report,
                generated=china_time(report.generated_at),
                logo_url=LOGO_URL if report.logo else "",
                qr_url=QR_URL if report.cta_url else "",
                watermark_rows=range(WATERMARK_ROWS),
                watermark_columns=range(WATERMARK_COLUMNS),
            )
        )
    finally:
        i18n.set_locale(previous)


def render_pdf(report: Report, *, url_fetcher: LocalFetcher | None = None) -> bytes:
    """The report as PDF bytes (A4, CJK fonts embedded as subsets, nothing fetched remotely)."""
    fetcher = url_fetcher or LocalFetcher()
    if report.logo:
        fetcher.inline[LOGO_URL] = report.logo
    if report.cta_url:
        fetcher.inline[QR_URL] = qr_png(report.cta_url)
    document = HTML(string=render_html(report), base_url=str(ROOT), url_fetcher=fetcher)
    pdf = document.write_pdf(stylesheets=[_stylesheet()])
    assert pdf is not None  # write_pdf returns bytes when given no target
    return pdf


_WARM_UP = Report(
    title="预热",
    brand="leadkit",
    generated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    watermark="138****0000",
    sections=[
        ReportSection(
            heading="预热 Warm-up 0123456789",
            emphasis=ReportRow(label="合计", value="1.0 万元"),
            rows=[ReportRow(label="项目", value="¥1,000", note="说明")],
            paragraphs=["段落"],
        )
    ],
    disclaimer="免责声明",
    cta="联系我们",
    cta_title="预约",
    cta_phone="+864008208820",
    cta_url="https://example.com/t/warm-up",
)


def warm_up() -> None:
    """Imports, fonts, template and stylesheet loaded once, so a worker's first real report
    costs what every later one does."""
    render_pdf(_WARM_UP)


def render_payload(payload: bytes) -> bytes:
    """The worker's entry point: a msgpack-encoded Report in, PDF bytes out."""
    return render_pdf(msgspec.msgpack.decode(payload, type=Report))
