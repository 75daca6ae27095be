"""The JSON API's shared contract: JSON-only request bodies, the problem document every error
answers with, bearer-token auth, and the OpenAPI schema served at /schema."""

from __future__ import annotations

import html
import re
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import Components, Example, SecurityScheme, Tag
from litestar.params import BodyKwarg, PathParameter
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send

from app.core.templating import asset

PROBLEM_JSON = "application/problem+json"
API_PREFIX = "/api/"
# Outside /api/ only the health check is part of the contract (load balancers read it).
DOCUMENTED_OUTSIDE_API = frozenset({"/healthz"})

SWAGGER_UI_VERSION = "5.35.0"
BEARER = "bearerToken"
# The ``security`` of an operation that needs an API token.
TOKEN_REQUIRED: list[dict[str, list[str]]] = [{BEARER: []}]


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details: the body of every error answer under /api/."""

    type: str  # "about:blank#<code>"
    title: str  # the status in words, in the request's language
    status: int
    code: str  # stable, machine-readable: "invalid_input", "rate_limited", "wrong_code", …
    detail: str  # what went wrong, in the request's language
    # Field → what is wrong with it (validation messages are the validator's English).
    errors: dict[str, str] = {}


# Why each status happens, for the schema; a route may say more in its own ``problems()``.
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "The body or a parameter is not valid; `errors` names the fields.",
    401: "An API token is required: `Authorization: Bearer lk_…`.",
    403: "The token's role may not do this.",
    404: "No such item.",
    409: "Conflicts with the current state.",
    413: "The body is larger than LEADKIT_MAX_BODY_BYTES.",
    415: "The body is not `application/json`.",
    422: "The answers do not fit the calculator; `errors` names the fields.",
    429: "Too many attempts; wait `Retry-After` seconds.",
    503: "A dependency (the SMS gateway) is unavailable; try again later.",
}


def problems(*statuses: int, why: dict[int, str] | None = None) -> dict[int, ResponseSpec]:
    """The problem answers a route documents: ``problems(400, 404, why={404: "No such grab."})``."""
    specs: dict[int, ResponseSpec] = {}
    extra = why or {}
    for status in sorted({*statuses, *extra}):
        specs[status] = ResponseSpec(
            Problem,
            description=extra.get(status, PROBLEM_DESCRIPTIONS.get(status, "An error.")),
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
    return specs


def answer(data: Any, description: str, media_type: str = "application/json") -> ResponseSpec:
    """A documented non-problem answer (another success status, or a body of its own)."""
    return ResponseSpec(
        data, description=description, media_type=media_type, generate_examples=False
    )


def path_param(description: str, *examples: str) -> Any:
    """``Annotated[str, path_param("…", "renovation")]``: a documented path parameter whose
    examples are objects the demo content has, so schema examples (and fuzzers) reach them."""
    return PathParameter(
        description=description,
        examples=[Example(summary=value, value=value) for value in examples],
    )


# --- JSON-only bodies -----------------------------------------------------------------------

_JSON_TYPE = re.compile(r"^application/(?:[a-z0-9.+-]+\+)?json$")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/<x>+json``, with any parameters (charset)."""
    return bool(_JSON_TYPE.match(content_type.split(";", 1)[0].strip().lower()))


def json_bodies_only(app: ASGIApp) -> ASGIApp:
    """Middleware: a body sent to /api/ must be declared JSON, or it gets 415.

    A cross-site page can make its visitors' browsers POST ``text/plain``, form or multipart
    bodies without a CORS preflight ("simple requests"); a JSON content type needs one, which
    leadkit never grants. A request without a body (and without a content type) passes: the
    route says whether it needs one."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in _WITH_BODY  # type: ignore[typeddict-item]
            and scope["path"].startswith(API_PREFIX)
        ):
            content_type: str | None = None
            has_body = False
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value.decode("latin-1")
                elif name == b"transfer-encoding" or (
                    name == b"content-length" and value.strip() not in (b"", b"0")
                ):
                    has_body = True
            if (content_type is not None or has_body) and not is_json_media_type(
                content_type or ""
            ):
                raise HTTPException(status_code=415)
        await app(scope, receive, send)

    return middleware


# --- Strict JSON bodies ---------------------------------------------------------------------

_BODY_TYPES: dict[BaseRouteHandler, Any] = {}


def _json_body_type(handler: BaseRouteHandler) -> Any:
    """The type a handler's JSON body (``data: JSONBody[T]``) is decoded into, or None."""
    if handler not in _BODY_TYPES:
        field = handler.parsed_fn_signature.parameters.get("data")
        kwarg = field.kwarg_definition if field is not None else None
        is_json = isinstance(kwarg, BodyKwarg) and kwarg.media_type == RequestEncodingType.JSON
        _BODY_TYPES[handler] = field.annotation if field is not None and is_json else None
    return _BODY_TYPES[handler]


async def strict_json_bodies(request: Request[Any, Any, Any]) -> None:
    """``before_request``: an /api/ body must match its type exactly, as the schema says.

    Litestar converts request data leniently (``strict=False``, which query strings and forms
    need), so a JSON body's ``"5"`` would pass as the integer 5, ``"true"`` as true and ``0`` as a
    date (1970-01-01): answers a client never asked for, and bodies the schema calls invalid.
    JSON bodies are checked strictly first; what passes is then decoded as before."""
    if not request.url.path.startswith(API_PREFIX):
        return
    body_type = _json_body_type(request.route_handler)
    if body_type is None:
        return
    raw = await request.body()  # Litestar keeps it for the handler's own decoding
    try:
        msgspec.json.decode(raw, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        key = where.rstrip("`").lstrip(".") or "body"
        raise ValidationException(extra=[{"key": key, "message": message}]) from None
    except msgspec.DecodeError:
        return  # not JSON at all: the handler's own decoding answers 400


# --- The OpenAPI schema ---------------------------------------------------------------------


def is_documented(path: str) -> bool:
    return path.startswith(API_PREFIX) or path in DOCUMENTED_OUTSIDE_API


class ApiOnlySchema(ReceiveRoutePlugin):
    """Keeps pages, forms, static files and the development SMS inbox out of the schema: the
    rule is the path, so a new page never leaks into the contract and a new /api/ route is
    always in it. (Registered before Litestar's own OpenAPI plugin sees the routes.)"""

    def receive_route(self, route: BaseRoute) -> None:
        if isinstance(route, HTTPRoute) and not is_documented(route.path):
            for handler in route.route_handlers:
                handler.include_in_schema = False
                # Registration has resolved the flag already; Litestar has no public way to
                # change it afterwards (tests/test_api_contract.py notices if this stops working).
                handler._resolved_include_in_schema = False


class SchemaViewer(OpenAPIRenderPlugin):
    """Swagger UI from static/vendor, started by static/js/api-docs.js: no CDN, and no inline
    script or style, so it runs within the app's Content-Security-Policy."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Any, openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        spec_url = html.escape(self.get_openapi_json_route(request))
        version = SWAGGER_UI_VERSION
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{asset(f"vendor/swagger-ui-{version}.css")}">
<link rel="stylesheet" href="{asset("css/api-docs.css")}">
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec_url}"></div>
<script src="{asset(f"vendor/swagger-ui-{version}.bundle.js")}"></script>
<script src="{asset("js/api-docs.js")}"></script>
</body>
</html>
""".encode()


API_DESCRIPTION = """\
The JSON API of leadkit. Bodies are JSON (`Content-Type: application/json`; anything else
gets 415). Errors are RFC 9457 problem documents (`application/problem+json`) with a stable
`code` and, for invalid fields, `errors`. Staff endpoints take an API token created by an
admin (`leadkit token create --role ROLE --name NAME`, or /staff/admin/tokens) as
`Authorization: Bearer lk_…`; cookies are never read for them. Visitor endpoints use the
signed visitor cookie a tool page sets."""


def openapi_config() -> OpenAPIConfig:
    """/schema: the viewer; /schema/openapi.json: the document."""
    return OpenAPIConfig(
        title="leadkit API",
        version="1",
        description=API_DESCRIPTION,
        path="/schema",
        render_plugins=[SchemaViewer()],
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="lk_…",
                    description="An API token; each carries one role (admin, marketer, host, "
                    "sales), and admin may act in every role.",
                )
            }
        ),
        tags=[
            Tag(name="gate", description="The phone gate: SMS codes."),
            Tag(name="events", description="Funnel steps reported by pages."),
            Tag(name="calculators", description="Calculator results."),
            Tag(name="grabs", description="Limited grabs: state, claims, live updates."),
            Tag(name="draws", description="Lucky draws: state, entries, claims, proof."),
            Tag(name="vouchers", description="Voucher redemption at a store's till."),
            Tag(name="bookings", description="A visitor's booked visit: book, change, cancel."),
            Tag(name="staff", description="Tokens and staff accounts."),
            Tag(name="health", description="Liveness for load balancers."),
        ],
    )
