"""The formula language of calculators: a safe subset of Python's expression syntax.

A formula is checked when it is saved, in two stages, then runs as a tree of closures:

- ``syntax``: one formula alone — the whitelist of constructs and the size limits; it collects
  the names the formula uses. The source never reaches ``eval``/``exec``/``compile``.
- ``build``: the names resolved against the definition (``Symbol``, ``Table``), types checked,
  the closures built: an ``Expression``, which evaluates without raising.
- ``values``: what formulas compute with and the run-time arithmetic that never raises.
- ``errors``: ``InvalidFormula`` (with the path and column of the problem) and the warnings.

Callers use this module: ``formula.parse``, ``formula.build``, ``formula.compile_expression``.
"""

from __future__ import annotations

from app.calculators.formula.build import Expression, build, compile_expression
from app.calculators.formula.errors import InvalidFormula
from app.calculators.formula.syntax import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_NODES,
    MAX_SOURCE,
    MAX_TEXT,
    RESERVED,
    Parsed,
    Value,
    parse,
)
from app.calculators.formula.values import Symbol, Table, ValueType, canonical_key, round_half_up

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SOURCE",
    "MAX_TEXT",
    "RESERVED",
    "Expression",
    "InvalidFormula",
    "Parsed",
    "Symbol",
    "Table",
    "Value",
    "ValueType",
    "build",
    "canonical_key",
    "compile_expression",
    "parse",
    "round_half_up",
]
