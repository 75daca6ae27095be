"""The built-in calculators: TOML files in the top-level ``calculators/`` folder.

They are editable examples for marketers to start from, with realistic but illustrative numbers,
not advice. ``builtin_text`` keeps the file as written (with its comments) for the editor.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from app.calculators.compiler import CompiledCalculator, parse_definition
from app.calculators.schemas import CalculatorDef
from app.core.errors import NotFound

CALCULATORS_DIR = Path(__file__).resolve().parent.parent.parent / "calculators"
BUILTIN_SLUGS = ("renovation", "insurance")


def builtin_text(slug: str) -> str:
    """The built-in definition's TOML source, comments included."""
    if slug not in BUILTIN_SLUGS:
        raise NotFound(fields={"calculator": slug[:40]})
    return (CALCULATORS_DIR / f"{slug}.toml").read_text(encoding="utf-8")


@cache
def compiled_builtin(slug: str) -> CompiledCalculator:
    """The built-in, checked and compiled once per process."""
    return parse_definition(builtin_text(slug))


def builtin(slug: str) -> CalculatorDef:
    return compiled_builtin(slug).definition
