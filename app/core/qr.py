"""QR codes as images a page can show: a data: URI, which the CSP allows for images."""

from __future__ import annotations

import segno


def qr_data_uri(text: str) -> str:
    """``text`` as an SVG QR code. make_qr, never make: make() turns a short text into a Micro
    QR, which most phone cameras (and jsQR) cannot read."""
    return str(segno.make_qr(text, error="m").svg_data_uri(scale=6, border=2))
