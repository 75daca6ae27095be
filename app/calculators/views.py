"""The calculator page as it is shown: its template context, and the blank form, rendered once
per published version and language.

Most views of a calculator show its questions unanswered: the same form for every visitor of a
version in one language, but for the request's CSRF token. ``blank_form`` renders it once
(templates/tools/_calc_body.html with the version's sample answers) and keeps the HTML on both
sides of the token; the page puts the request's token between them. Versions never change, so
the cache needs no invalidation; it holds the last ``FORMS_MAX`` forms.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from litestar import Request
from markupsafe import Markup

from app.calculators.compiled import Evaluation
from app.calculators.compiler import CompiledCalculator
from app.core.i18n import current_locale
from app.gate.views import gate_context
from app.settings import Settings
from app.tools.schemas import PublishedTool, PublishedVersion

BODY = "tools/_calc_body.html"
FORMS_MAX = 256
# Stands for the CSRF input while the blank form is rendered; never in a page.
_CSRF_HERE = "<!--leadkit:csrf-input-->"
_forms: OrderedDict[tuple[object, ...], tuple[Markup, Markup]] = OrderedDict()


def page_context(
    tool: PublishedTool,
    version: PublishedVersion,
    calc: CompiledCalculator,
    evaluation: Evaluation | None,
    authorised: bool,
    settings: Settings,
) -> dict[str, Any]:
    """What tools/calculator.html and its partials need (``form``: None, render the body)."""
    values = evaluation.inputs if evaluation else calc.sample_inputs()
    return {
        "tool": tool,
        "definition": calc.definition,
        "version": version.number,
        "fields": {f.key: f for f in calc.visible_fields(values)},
        "values": values,
        "evaluation": evaluation,
        "authorised": authorised,
        "form": None,
        **gate_context(settings, next=f"/t/{tool.slug}"),
    }


def blank_form(
    request: Request[Any, Any, Any],
    tool: PublishedTool,
    version: PublishedVersion,
    calc: CompiledCalculator,
    settings: Settings,
) -> tuple[Markup, Markup]:
    """The unanswered form of ``version`` in the request's language: the HTML before and
    after the CSRF input."""
    key = (*version.key, tool.slug, current_locale())
    found = _forms.get(key)
    if found is not None:
        return found
    engine = request.app.template_engine
    assert engine is not None
    context = page_context(tool, version, calc, None, False, settings)
    # A constant comment, then Jinja's own autoescaped output: both safe as they are.
    html = engine.get_template(BODY).render(**context, csrf_input=Markup(_CSRF_HERE))  # noqa: S704
    if html.count(_CSRF_HERE) != 1:
        raise RuntimeError(f"{BODY} must show csrf_input exactly once")
    head, _, tail = html.partition(_CSRF_HERE)
    found = _forms[key] = (Markup(head), Markup(tail))  # noqa: S704
    while len(_forms) > FORMS_MAX:
        _forms.popitem(last=False)
    return found
