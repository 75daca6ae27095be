"""The Jinja environment: templates/, i18n through the request's locale, versioned assets."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from app.core import i18n
from app.core.bounds import is_safe_url
from app.core.clock import china_time
from app.core.phone import display

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"


@cache
def asset_version(path: str) -> str:
    # Content hash, so static files can be cached for a year and still change on deploy.
    try:
        return hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def asset(path: str) -> str:
    return f"/static/{path}?v={asset_version(path)}"


def translate(message: str, /, **variables: Any) -> Markup:
    """``_()`` in templates: what Jinja's newstyle gettext does in an autoescaped template
    (every template here is), without its three generic calls per message. The translation is
    markup, the variables are escaped, and ``%`` is always a format (``%%`` is one per cent)."""
    # Our own catalogs are trusted markup, as Jinja's gettext treats them.
    text = Markup(i18n.gettext(message))  # noqa: S704
    return text % variables if variables or "%" in text else text


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        enable_async=False,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    # A page shows dozens of messages (the staff nav alone a dozen): Jinja's own ``_`` made
    # the dashboard's render three times slower than the sign-in page's.
    env.globals["_"] = translate
    # The one way times and phone numbers are shown: China time, numbers as people read them.
    env.filters["china_time"] = china_time
    env.filters["phone"] = display
    # Links from stored data, checked again where they become href/src: "" unless safe.
    env.filters["safe_url"] = lambda text: text if is_safe_url(str(text or "")) else ""
    env.globals.update(asset=asset, current_locale=i18n.current_locale, LOCALES=i18n.LOCALES)
    return env
