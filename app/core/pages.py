"""A page and its partial: htmx asks for ``folder/_name.html``, which swaps into the page
``folder/name.html`` includes it in; a full load gets the page (templates/: a page includes
its partials)."""

from __future__ import annotations

from typing import Any

from litestar.response import Template
from litestar_htmx import HTMXRequest


def page_or_partial(
    request: HTMXRequest,
    page: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status_code: int = 200,
    **options: Any,
) -> Template:
    """``page`` for a full load, its ``partial`` (by default ``_`` + the page's name, in the
    same folder) for htmx; ``options`` as ``Template`` takes them (headers, cookies)."""
    if request.htmx:
        folder, _, name = page.rpartition("/")
        page = partial or f"{folder}/_{name}"
    return Template(page, context=context, status_code=status_code, **options)
