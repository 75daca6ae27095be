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
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request
from markupsafe import Markup

from app.calculators.compiled import Evaluation
from app.calculators.compiler import CompiledCalculator
from app.core.i18n import N_, current_locale
from app.gate.pending import Pending
from app.gate.views import gate_context, gate_copy
from app.settings import Settings
from app.tools.kinds import GateCopy
from app.tools.schemas import PublishedTool, PublishedVersion

BODY = "tools/_calc_body.html"
FORMS_MAX = 256
# Stands for the CSRF input while the blank form is rendered; never in a page.
_CSRF_HERE = "<!--leadkit:csrf-input-->"
_forms: OrderedDict[tuple[object, ...], tuple[Markup, Markup]] = OrderedDict()
# What the gate says on a calculator (the kind's words; a definition's [gate] table wins).
GATE = GateCopy(
    title=N_("Verify your phone to see the full result"),
    note=N_(
        "Your number unlocks the full breakdown on this page and its PDF report; an adviser "
        "may call you to go through it."
    ),
)
# Where the page lands once the gate opens: the result (templates/tools/_calc_body.html).
RESULT_ANCHOR = "result"
TYPED_MAX = 64


def page_context(
    tool: PublishedTool,
    version: PublishedVersion,
    calc: CompiledCalculator,
    evaluation: Evaluation | None,
    authorised: bool,
    settings: Settings,
    *,
    typed: Mapping[str, object] | None = None,
    pending: Pending | None = None,
) -> dict[str, Any]:
    """What tools/calculator.html and its partials need (``form``: None, render the body).
    ``typed``: what the visitor sent, shown again in the fields it was refused for (the
    evaluation keeps only the values it accepted); ``pending``: a code on its way to them."""
    values = evaluation.inputs if evaluation else calc.sample_inputs()
    if evaluation is not None and evaluation.errors and typed:
        values = dict(values) | {
            key: str(typed[key])[:TYPED_MAX]
            for key in evaluation.errors
            if isinstance(typed.get(key), str)
        }
    return {
        "tool": tool,
        "definition": calc.definition,
        "version": version.number,
        "fields": {f.key: f for f in calc.visible_fields(values)},
        "values": values,
        "evaluation": evaluation,
        "authorised": authorised,
        "form": None,
        **gate_context(
            settings,
            next=f"/t/{tool.slug}#{RESULT_ANCHOR}",
            pending=pending,
            copy=gate_copy(GATE, msgspec.structs.asdict(calc.definition.gate)),
        ),
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
