"""What the formula language says: the refusal of a formula when it is saved
(``InvalidFormula``) and the warnings of a formula that ran into trouble.

Messages are English msgids with ``%(name)s`` parameters, translated when they are raised or
appended: both happen while a request is served, in its language.
"""

from __future__ import annotations

from app.calculators.errors import InvalidDefinition, say
from app.core.i18n import N_


class InvalidFormula(InvalidDefinition, code="invalid_formula"):
    """A formula (or a ``show_if`` condition) was refused when it was saved.

    ``path`` names it ("variables.total", "outputs.total.low", "fields.kitchen.show_if"),
    ``column`` is the 0-based character offset of the problem in the formula's text and
    ``reason`` the refusal, translated (``message`` is an msgid, ``params`` its parameters).
    """

    def __init__(self, path: str, column: int, message: str, **params: object) -> None:
        self.path = path
        self.column = column
        self.reason = say(message, **params)
        where = say(
            N_("%(reason)s (at character %(column)s)"), reason=self.reason, column=column + 1
        )
        super().__init__(fields={path: where})

    def __str__(self) -> str:
        return f"{self.path}: {self.reason} (column {self.column})"


# Run-time warnings: the result is still defined (0 or the table default), the preview says why.
WARN_DIVISION_BY_ZERO = N_("%(path)s: division by zero, counted as 0")
WARN_NOT_FINITE = N_("%(path)s: the result is out of the computable range, counted as 0")
WARN_BAD_POWER = N_("%(path)s: the power is out of the allowed range, counted as 0")
WARN_LOOKUP_MISS = N_("%(path)s: table %(table)s has no %(keys)s, counted as 0")
