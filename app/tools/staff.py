"""What the staff side of every live tool kind (grabs, draws) shares: who may do what, the
admin API's create and host routes, and the answer after a form is saved."""

from __future__ import annotations

from typing import Any

from litestar import Response

from app.core.api import TOKEN_REQUIRED, problems
from app.staff.auth import requires_role

# Who runs a live tool (the host console: open, close, draw); who creates and edits one.
HOSTS = requires_role("host", "marketer")
MARKETERS = requires_role("marketer")


def create_api(kinds: str, summary: str) -> dict[str, Any]:
    """The route arguments of a kind's ``POST /api/v1/admin/{kinds}``: a marketer's token, 201
    with the new tool's status, 409 when the slug is taken."""
    return {
        "path": f"/api/v1/admin/{kinds}",
        "status_code": 201,
        "summary": summary,
        "guards": [MARKETERS],
        "tags": [kinds],
        "security": TOKEN_REQUIRED,
        "responses": problems(400, 401, 403, 413, 415, why={409: "The slug is taken."}),
    }


def host_api(kinds: str) -> dict[str, Any]:
    """The route arguments a kind's host actions in the admin API share (a host's or a
    marketer's token, 200 with the answer); each adds its summary and its refusals."""
    return {"status_code": 200, "guards": [HOSTS], "tags": [kinds], "security": TOKEN_REQUIRED}


def see(path: str) -> Response[Any]:
    """After a staff form is saved: the browser goes to ``path`` (303 See Other)."""
    return Response(b"", status_code=303, headers={"Location": path})
