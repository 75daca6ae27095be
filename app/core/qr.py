"""QR codes as images a page can show: a data: URI, which the CSP allows for images; and as
PNG bytes, for a PDF report (app/reports/render.py)."""

from __future__ import annotations

import io

import segno


def qr_data_uri(text: str) -> str:
    """``text`` as an SVG QR code. make_qr, never make: make() turns a short text into a Micro
    QR, which most phone cameras (and jsQR) cannot read."""
    return str(segno.make_qr(text, error="m").svg_data_uri(scale=6, border=2))


def qr_png(text: str) -> bytes:
    """``text`` as a PNG QR code (a full QR code, never a Micro QR), 8 pixels a module with a
    2-module quiet zone."""
    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()
