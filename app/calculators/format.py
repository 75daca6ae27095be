"""How results are written for people: money, plain numbers, ranges, and note templates.

Money has one format everywhere: ``¥`` and digits with thousands separators below 1 万
(``¥8,500``), ``万`` from 1 万 (``¥12.3万``), ``亿`` from 1 亿 (``¥1.2亿``); the 万/亿 figure has
``decimals`` places (1 unless the output says otherwise) with trailing zeros dropped. A range is
``¥25.3万～¥38.1万``; a unit follows the whole figure (``¥1,500/㎡``, ``103～131天``).

Notes are marketer text with ``{name}`` or ``{name:spec}`` placeholders. They are parsed once when
the definition is saved and filled by plain substitution, never with ``str.format`` (which would
follow ``{x.__class__}``): only known names and the specs in ``SPECS`` are accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from string import Formatter

from app.core.i18n import N_

WAN = 10_000.0
YI = 100_000_000.0

# spec -> what it writes; ".Nf" (N = 0..4) is a number with N decimals.
SPECS = ("", "currency", "pct", ".0f", ".1f", ".2f", ".3f", ".4f")
_PLACEHOLDER = re.compile(r"^[a-z][a-z0-9_]*$")


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def currency(value: float, decimals: int = 1) -> str:
    """``¥8,500``, ``¥12.3万``, ``¥1.2亿``; negative amounts get a leading minus."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if round(amount) < WAN:
        return f"{sign}¥{round(amount):,}"
    if round(amount / WAN, decimals) < WAN:
        return f"{sign}¥{_trim(f'{amount / WAN:,.{decimals}f}')}万"
    return f"{sign}¥{_trim(f'{amount / YI:,.{decimals}f}')}亿"


def number(value: float, decimals: int = 0) -> str:
    return f"{value:,.{decimals}f}"


def plain(value: float) -> str:
    """A number in running text: separators, at most two decimals, no trailing zeros."""
    return _trim(f"{value:,.2f}")


def range_text(low: str, high: str) -> str:
    return low if low == high else f"{low}～{high}"


class TemplateError(ValueError):
    """A bad placeholder: ``message`` is an msgid, ``params`` its parameters (translated by
    whoever shows it)."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


class Template:
    """A note with placeholders, checked when saved and filled at run time."""

    __slots__ = ("parts", "source")

    def __init__(self, source: str, known: Callable[[str], bool]) -> None:
        """Raise ``TemplateError`` for a bad placeholder."""
        self.source = source
        self.parts: list[tuple[str, str | None, str]] = []
        try:
            pieces = list(Formatter().parse(source))
        except ValueError:
            raise TemplateError(N_("Unmatched braces; to write { itself, write {{")) from None
        for literal, name, spec, conversion in pieces:
            if name is None:
                self.parts.append((literal, None, ""))
                continue
            if conversion is not None or not _PLACEHOLDER.match(name):
                raise TemplateError(
                    N_("The placeholder %(placeholder)s can only hold a name, for example {area}"),
                    placeholder=f"{{{name}}}",
                )
            if not known(name):
                raise TemplateError(
                    N_("The placeholder %(placeholder)s is not a field, variable or result"),
                    placeholder=f"{{{name}}}",
                )
            if spec not in SPECS:
                raise TemplateError(
                    N_(
                        "The format of the placeholder %(placeholder)s can only be currency, "
                        "pct or .0f to .4f"
                    ),
                    placeholder=f"{{{name}:{spec}}}",
                )
            self.parts.append((literal, name, spec))

    @property
    def names(self) -> set[str]:
        return {name for _, name, _ in self.parts if name is not None}

    def render(self, texts: Mapping[str, str], numbers: Mapping[str, float]) -> str:
        """``texts`` holds the default rendering of each name, ``numbers`` the numeric value of
        those that have one (for ``currency``, ``pct`` and ``.Nf``)."""
        out: list[str] = []
        for literal, name, spec in self.parts:
            out.append(literal)
            if name is None:
                continue
            if not spec or name not in numbers:
                out.append(texts.get(name, ""))
                continue
            value = numbers[name]
            if not math.isfinite(value):
                out.append("")
            elif spec == "currency":
                out.append(currency(value))
            elif spec == "pct":
                out.append(f"{plain(value * 100)}%")
            else:
                out.append(number(value, int(spec[1])))
        return "".join(out)
