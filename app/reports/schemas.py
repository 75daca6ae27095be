"""What a PDF report says: plain text only, laid out by templates/reports/report.html.

Every string here may come from a marketer or a visitor; the template escapes all of it, so
none of it ever becomes markup, CSS or a URL.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

# Generous caps, checked when a worker decodes the report: they bound the work one report can
# ask of a worker (a page of 5,000-character strings still renders in about a second).
Short = Annotated[str, msgspec.Meta(max_length=500)]
Long = Annotated[str, msgspec.Meta(max_length=10_000)]
Watermark = Annotated[str, msgspec.Meta(max_length=64)]
# The brand's logo: a PNG leadkit encoded itself (app/brand/logo.py), and its colour, #rrggbb.
Logo = Annotated[bytes, msgspec.Meta(max_length=1_048_576)]
Accent = Annotated[str, msgspec.Meta(pattern=r"^(#[0-9a-fA-F]{6})?\Z")]


class ReportRow(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a section's table: ``value`` is right-aligned, ``note`` sits under the label."""

    label: Long
    value: Long
    note: Long = ""


class ReportSection(msgspec.Struct, frozen=True, kw_only=True):
    """A heading, an optional headline figure (``emphasis``), a table and paragraphs."""

    heading: Short
    rows: Annotated[list[ReportRow], msgspec.Meta(max_length=500)] = msgspec.field(
        default_factory=list
    )
    paragraphs: Annotated[list[Long], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )
    emphasis: ReportRow | None = None


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """One visitor's report.

    ``watermark`` is the visitor's masked phone ("138****5678"), repeated across every page so a
    forwarded copy still shows whose it was. ``generated_at`` is printed in China time (a time
    without a zone is taken as UTC, as stored times are). ``locale`` picks the catalog for the
    report's own labels.
    """

    title: Short
    brand: Short
    generated_at: dt.datetime
    watermark: Watermark
    sections: Annotated[list[ReportSection], msgspec.Meta(max_length=50)]
    subtitle: Short = ""
    disclaimer: Long = ""
    # The call to action: ``cta`` its words, ``cta_title`` its button's label, ``cta_phone``
    # the business's number (E.164, shown as people read it) and ``cta_url`` the tool's
    # address, printed as a QR code (app/reports/render.py).
    cta: Long | None = None
    cta_title: Short = ""
    cta_phone: Annotated[str, msgspec.Meta(max_length=20)] = ""
    cta_url: Annotated[str, msgspec.Meta(max_length=512, pattern=r"^(https?://\S+)?\Z")] = ""
    locale: str = "zh_CN"
    logo: Logo = b""
    accent: Accent = ""
