"""The one place where errors become responses: a Chinese (or English) page for browsers,
RFC 9457 problem JSON for /api/."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from sqlalchemy.exc import DBAPIError, OperationalError

from app.core.api import PROBLEM_JSON, Problem
from app.core.errors import DomainError, LoginRequired
from app.core.i18n import N_
from app.core.i18n import gettext as _

log = logging.getLogger("leadkit.errors")

# Messages for framework errors, by status; msgids are translated per request.
STATUS_MESSAGES = {
    400: N_("The request was not understood. Please check what you entered."),
    401: N_("Please sign in first."),
    403: N_(
        "You do not have permission to do this, or the form has expired. Reload and try again."
    ),
    404: N_("The page or item was not found."),
    405: N_("This action is not allowed here."),
    409: N_("This conflicts with an existing item."),
    413: N_("What you sent is too large."),
    415: N_("This content type is not supported."),
    429: N_("Too many attempts. Please wait and try again."),
    500: N_("Something went wrong on our side. Please try again in a moment."),
    503: N_("The service is temporarily unavailable. Please try again in a moment."),
}
STATUS_TITLES = {
    400: N_("Invalid request"),
    401: N_("Sign-in required"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    409: N_("Conflict"),
    413: N_("Too large"),
    415: N_("Unsupported content"),
    422: N_("Invalid request"),  # answers that fail the calculator's own checks
    429: N_("Too many attempts"),
    500: N_("Server error"),
    503: N_("Unavailable"),
}
# The title of any other status: a msgid like the others, so it reaches the catalog.
OTHER_TITLE = N_("Error")


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/")


def render_error(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[Any]:
    """``extra``: more members of the JSON problem (RFC 9457 extension members), e.g. the
    challenge a client must solve; pages ignore them."""
    title = _(STATUS_TITLES.get(status, OTHER_TITLE))
    if _wants_json(request):
        # The Problem struct is also what the OpenAPI schema documents (app/core/api.py).
        body = Problem(
            type=f"about:blank#{code}",
            title=title,
            status=status,
            code=code,
            detail=message,
            errors=fields or {},
        )
        content: Any = {**msgspec.to_builtins(body), **extra} if extra else body
        return Response(content, status_code=status, media_type=PROBLEM_JSON, headers=headers)
    # Browsers get the field names with one translated hint; the validator's own wording
    # (English, about types and lengths) stays in the JSON problem for developers.
    hint = _("missing, too long or not in the expected format")
    shown = {key: hint for key in (fields or {})}
    return Template(
        "error.html",
        context={"status": status, "title": title, "message": message, "fields": shown},
        status_code=status,
        media_type=MediaType.HTML,
        headers=headers,
    )


def retry_headers(error: DomainError) -> dict[str, str] | None:
    """``Retry-After`` for an error that says when to try again (rate limits, busy stores)."""
    retry_after = getattr(error, "retry_after", None)
    return {"Retry-After": str(retry_after)} if retry_after is not None else None


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """The answer to a refusal: a redirect to the sign-in page, a translated page, or a
    problem document. Routes that must answer a refusal rather than raise it (an audited one,
    kept by ``keep(db)``) return this too."""
    if isinstance(exc, LoginRequired) and not _wants_json(request):
        target = f"/staff/login?next={quote(request.url.path)}"
        if request.headers.get("hx-request") == "true":
            # An htmx swap would put the login page inside the panel: send the whole page.
            return Response(b"", status_code=200, headers={"HX-Redirect": target})
        return Redirect(target)
    extra = getattr(exc, "extra", None)
    return render_error(
        request, exc.status, exc.code, exc.translated, exc.fields, retry_headers(exc), extra
    )


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        log.error(
            "%s on %s %s: %r", status, request.method, request.url.path, exc.detail, exc_info=exc
        )
    fields: dict[str, str] = {}
    if isinstance(exc, ValidationException) and _path_error(exc):
        # An id out of range (app/core/params.py) names no item, like /leads/abc: not found,
        # whatever the body held.
        status = 404
    elif isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                key = str(item.get("key") or item.get("source") or "body")
                fields[key] = str(item.get("message", ""))[:300]
    message = _(STATUS_MESSAGES.get(status, STATUS_MESSAGES[400 if status < 500 else 500]))
    code = {
        400: "bad_request",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(status, f"http_{status}")
    headers = {
        k: v for k, v in (exc.headers or {}).items() if k.lower() in {"allow", "retry-after"}
    }
    return render_error(request, status, code, message, fields, headers or None)


def _path_error(exc: ValidationException) -> bool:
    items = exc.extra if isinstance(exc.extra, list) else []
    return any(isinstance(item, dict) and item.get("source") == "path" for item in items)


def server_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render_error(request, 500, "server_error", _(STATUS_MESSAGES[500]))


def recursion_error_handler(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    # msgspec gives up on JSON nested deeper than the recursion limit: that is bad input.
    if "while deserializing" in str(exc):
        return render_error(request, 400, "bad_request", _(STATUS_MESSAGES[400]))
    return server_error_handler(request, exc)


def database_error_handler(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    # PostgreSQL refuses NUL in text (SQLSTATE 22021) where SQLite stores it; only what the
    # client sent can carry one, so it is bad input, and the transaction is rolled back.
    if getattr(exc.orig, "sqlstate", None) == "22021":
        return render_error(request, 400, "bad_request", _(STATUS_MESSAGES[400]))
    if isinstance(exc, OperationalError):
        # The database is busy or away (SQLite's lock timeout, a lost connection, a failed
        # commit): nothing was saved, and trying again shortly is the right advice.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return render_error(
            request, 503, "busy", _(STATUS_MESSAGES[503]), headers={"Retry-After": "5"}
        )
    return server_error_handler(request, exc)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
    RecursionError: recursion_error_handler,
    DBAPIError: database_error_handler,
    Exception: server_error_handler,
}
