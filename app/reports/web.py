"""How a report reaches the visitor: the PDF answered inline, never stored by a cache (it
carries the visitor's masked phone), and the tool's address printed on it."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response


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
