"""The public API every live tool kind (grabs, draws) answers alike, as route arguments: a
tool's status JSON at ``/api/v1/{kinds}/{slug}`` and the same status as a stream of
server-sent events at ``…/events`` (app/core/streams.py)."""

from __future__ import annotations

from typing import Any

from app.core.api import problems
from app.core.streams import status_stream_answer


def status_api(kinds: str, summary: str, missing: str) -> dict[str, Any]:
    """The route arguments of ``GET /api/v1/{kinds}/{slug}``; ``missing`` says why a 404."""
    return {
        "path": f"/api/v1/{kinds}/{{slug:str}}",
        "summary": summary,
        "tags": [kinds],
        "responses": problems(400, why={404: missing}),
    }


def events_api(kinds: str, thing: str, summary: str, missing: str) -> dict[str, Any]:
    """The route arguments of ``GET /api/v1/{kinds}/{slug}/events``, the live status of
    ``thing`` ("the grab"); ``missing`` says why a 404."""
    return {
        "path": f"/api/v1/{kinds}/{{slug:str}}/events",
        "summary": summary,
        "tags": [kinds],
        "responses": {
            200: status_stream_answer(thing, f"/api/v1/{kinds}/{{slug}}"),
            **problems(400, why={404: missing}),
        },
    }
