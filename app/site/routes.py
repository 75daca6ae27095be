"""The public front page."""

from __future__ import annotations

from litestar import get
from litestar.response import Template


@get("/", sync_to_thread=False)
def home() -> Template:
    return Template("home.html")


ROUTES = [home]
