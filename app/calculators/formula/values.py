"""What formulas compute with: the value types, what a name stands for (``Symbol``), lookup
tables (``Table``) and their keys, and the run-time arithmetic that never raises.

A run-time failure (an impossible power, an overflow) gives 0.0 and a warning instead of an
exception: a visitor's page must always show a result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from app.calculators.formula.syntax import MAX_LITERAL, Value

MAX_POW_EXPONENT = 100  # |y| in pow(x, y), checked at run time
MAX_POW_BASE = 1e6  # |x| in pow(x, y), checked at run time

ValueType = Literal["number", "bool", "text"]


@dataclass(frozen=True, slots=True)
class Symbol:
    """What a name stands for: its type, and the keys its value can take when they are known
    (a select field's option values, a city field's tiers), so lookups and ``==`` can be checked
    when the formula is saved."""

    type: ValueType
    options: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A lookup table: one or two axes of canonical keys and a value per cell."""

    key: str
    axes: tuple[frozenset[str], ...]
    cells: Mapping[tuple[str, ...], float]
    default: float | None = None


def canonical_key(value: Value) -> str:
    """The text a lookup key is compared by: 2, 2.0 and "2" are one key; True is "true"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    number = float(value)
    # Every whole number a formula may write (|n| <= MAX_LITERAL) keys as its digits.
    if number.is_integer() and abs(number) <= MAX_LITERAL:
        return str(int(number))
    return repr(number)


def power(base: float, exponent: float) -> float | None:
    """``base ** exponent``, or None when it has no real finite-sized value."""
    try:
        result = base**exponent
    except (OverflowError, ZeroDivisionError):
        return None
    if isinstance(result, complex):
        return None
    return result


def round_half_up(value: float, digits: float) -> float:
    """Round half away from zero (2.5 -> 3), as people do by hand; Python's round() does not.
    ``digits`` is clamped to -10..10 (not finite: 0)."""
    places = int(max(-10.0, min(10.0, digits))) if math.isfinite(digits) else 0
    try:
        return float(Decimal(repr(value)).quantize(Decimal(f"1e{-places}"), ROUND_HALF_UP))
    except InvalidOperation:  # inf, nan, or more digits than Decimal's 28: nothing to round
        return value


def ceil(value: float) -> float:
    return float(math.ceil(value)) if math.isfinite(value) else value


def floor(value: float) -> float:
    return float(math.floor(value)) if math.isfinite(value) else value
