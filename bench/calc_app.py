"""The served app plus one bench-only page, for bench/calc.py.

``GET /bench/bare-calculator`` renders the very template the calculator page renders
(tools/calculator.html) from a context built once at start-up: a bare Jinja page of the same
size, with none of the calculator page's own work (tool and version lookup, visitor cookie,
attribution, funnel event, latest submission). The ratio between the two is the cost of that
work. Never part of the product: only this module registers the route.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Litestar, get
from litestar.response import Template

from app.asgi import create_served_app
from app.calculators.builtins import compiled_builtin
from app.calculators.views import page_context
from app.settings import load_settings
from app.tools.schemas import PublishedTool, PublishedVersion


def _bare_context() -> dict[str, Any]:
    settings = load_settings()
    calc = compiled_builtin("renovation")
    tool = PublishedTool(
        id=0,
        slug="renovation",
        kind="calculator",
        title=calc.definition.title,
        status="published",
        current_version=1,
    )
    version = PublishedVersion(id=0, tool_id=0, number=1, published_at=dt.datetime.now(dt.UTC))
    return page_context(tool, version, calc, None, False, settings)


def create_app() -> Litestar:
    app = create_served_app()
    context = _bare_context()

    @get("/bench/bare-calculator", sync_to_thread=False)
    def bare_calculator() -> Template:
        return Template("tools/calculator.html", context=context)

    app.register(bare_calculator)
    return app
