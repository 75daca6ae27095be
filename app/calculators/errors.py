"""Calculator domain errors, and what a calculator says about its definition and its inputs.

A refused definition keeps the shared, translated "Some fields are not valid." as its
``message``; the details travel in ``fields`` = {path: text}. Every text is an English msgid
with ``%(name)s`` parameters (which carry the marketer's own labels and names), translated by
``say`` where it is produced — always while a request is served, in its language.
(The formula language's own refusals and warnings are in app/calculators/formula/errors.py.)
"""

from __future__ import annotations

from app.core.errors import InvalidInput
from app.core.i18n import N_, gettext


def say(message: str, **params: object) -> str:
    """``message`` in the request's language, with its parameters filled in."""
    text = gettext(message)
    return text % params if params else text


class InvalidDefinition(InvalidInput, code="invalid_definition"):
    """The definition's structure is wrong: a type, a missing key, a duplicate, a bad table."""


# Definition problems the schema finds (app/calculators/schemas.py), by what msgspec said.
MSG_BAD_URL = N_(
    "A link is a full address starting with http:// or https://, or a path on this site "
    "starting with /"
)
MSG_NUMBER_RANGE = N_("The number is out of the allowed range (at most 10¹⁵ in absolute value)")


def schema_problem(message: str, path: str) -> str:
    """What the editor shows for msgspec's ``message`` about the value at ``path``."""
    if path.endswith("url") and "matching regex" in message:
        return say(MSG_BAD_URL)
    if message.startswith(("Expected `float` >=", "Expected `float` <=")):
        return say(MSG_NUMBER_RANGE)
    return say(N_("Wrong format: %(problem)s"), problem=message)


# Visitor-facing input problems; %(label)s is the field's label, %(limit)s a formatted bound.
MSG_REQUIRED = N_("Please fill in %(label)s")
MSG_CHOOSE = N_("Please choose %(label)s")
MSG_NOT_A_NUMBER = N_("%(label)s must be a number")
MSG_NOT_AN_INTEGER = N_("%(label)s must be a whole number")
MSG_TOO_SMALL = N_("%(label)s cannot be less than %(limit)s")
MSG_TOO_LARGE = N_("%(label)s cannot be more than %(limit)s")
MSG_NOT_AN_OPTION = N_("The choice for %(label)s is not valid; please choose again")
MSG_NOT_A_BOOLEAN = N_("The value of %(label)s is not valid")
