"""The refusal a tap endpoint answers in JSON (a grab's claim, a draw's entry): a problem
document (app/core/api.py) that also carries the tap's ``result``, so a client reads every
answer of the endpoint from the same field, and on a 429 ``retry_after`` (the header too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from litestar import Response

from app.core.api import PROBLEM_JSON
from app.core.handlers import STATUS_TITLES
from app.core.i18n import gettext as _

R = TypeVar("R")


def refusal(
    body: Callable[..., R], status: int, result: str, detail: str, retry_after: int | None = None
) -> Response[Any]:
    """``body`` (the endpoint's Problem with ``result`` and ``retry_after``) as the answer."""
    problem = body(
        type=f"about:blank#{result}",
        title=_(STATUS_TITLES[status]),
        status=status,
        code=result,
        detail=detail,
        result=result,
        retry_after=retry_after,
    )
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(problem, status_code=status, media_type=PROBLEM_JSON, headers=headers)
