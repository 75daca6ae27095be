"""ASGI pieces shared by every page: security headers, locale, client address."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core.i18n import LOCALES, pick_locale, set_locale
from app.core.scope import enter_request, leave_request
from app.settings import Settings

LOCALE_COOKIE = "lk_lang"


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        f"form-action 'self'; frame-ancestors {settings.frame_ancestors}"
    )
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if settings.is_prod:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


def web_middleware(settings: Settings) -> Callable[[ASGIApp], ASGIApp]:
    """Sets the request's locale, adds security headers to every HTTP response, and opens the
    request's database scope (one connection at a time: app/db/engine.py)."""
    extra = security_headers(settings)

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [None])
            remembered = cookie(scope, LOCALE_COOKIE)
            locale = pick_locale(query[0], remembered, settings.default_locale)
            set_locale(locale)
            remember = query[0] in LOCALES and query[0] != remembered

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    headers.extend(h for h in extra if h[0] not in present)
                    if remember:
                        headers.append(
                            (
                                b"set-cookie",
                                f"{LOCALE_COOKIE}={locale}; Path=/; Max-Age=31536000; "
                                "SameSite=Lax".encode(),
                            )
                        )
                    message["headers"] = headers
                await send(message)

            token = enter_request(scope["path"])
            try:
                await app(scope, receive, send_wrapper)
            finally:
                leave_request(token)

        return middleware

    return factory


_COOKIES = "leadkit.cookies"


def cookie(scope: Scope, name: str) -> str | None:
    """A request cookie's value. The header is parsed once per request, however many pieces
    (locale, staff session, visitor) ask."""
    jar: dict[str, str] | None = scope.get(_COOKIES)  # type: ignore[assignment]
    if jar is None:
        jar = {}
        for key, value in scope.get("headers", []):
            if key == b"cookie":
                parsed: SimpleCookie = SimpleCookie()
                with contextlib.suppress(Exception):  # a malformed header: no cookies
                    parsed.load(value.decode("latin-1"))
                jar.update((k, morsel.value) for k, morsel in parsed.items())
        scope[_COOKIES] = jar  # type: ignore[literal-required]
    return jar.get(name)


def safe_next(target: str, default: str = "/") -> str:
    """A same-site path to go to after a form: '/x', never '//evil', '/\\evil' or 'https://…'."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


def client_ip(scope: Scope, trust_proxy: bool) -> str:
    """The client's address; behind a trusted proxy, the hop that proxy appended (the last)."""
    if trust_proxy:
        for key, value in scope.get("headers", []):
            if key == b"x-forwarded-for":
                return value.decode("latin-1").split(",")[-1].strip()[:64]
    client = scope.get("client")
    return client[0] if client else "unknown"
