"""The public front page."""

from __future__ import annotations

from litestar import get
from litestar.response import Template
from litestar.types import ControllerRouterHandler


@get("/", sync_to_thread=False)
def home() -> Template:
    return Template("home.html")


ROUTES: list[ControllerRouterHandler] = [home]
