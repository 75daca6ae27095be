"""A calculator definition, as data: the shape msgspec checks when TOML or JSON is decoded.

Labels, notes and option texts are the marketer's own Chinese text (data, not i18n msgids).
Formulas are strings here; ``app.calculators.compiler`` checks and compiles them.
docs/calculators.md describes every field with examples.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.core.bounds import Url

Key = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=2000)]
Formula = Annotated[str, msgspec.Meta(max_length=2000)]  # the expression checker says ≤ 500
Unit = Annotated[str, msgspec.Meta(max_length=16)]
OptionValue = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
KeyLabel = Annotated[str, msgspec.Meta(max_length=40)]  # "" where a key has no label
TableKey = Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | int
# Every number a definition holds (limits, defaults, table cells): finite and no larger than a
# formula literal may be (app/calculators/formula/syntax.py), so the page can show it and
# arithmetic on it stays finite.
MAX_NUMBER = 1e15
Number = Annotated[float, msgspec.Meta(ge=-MAX_NUMBER, le=MAX_NUMBER)]

FieldKind = Literal["number", "count", "select", "radio", "checkbox", "city"]
OutputKind = Literal["number", "currency", "range", "text"]


class Option(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    """One choice of a select, radio or city field; ``tier`` (1–4) only for cities."""

    value: OptionValue
    label: str = ""  # shown instead of value when set
    tier: Annotated[int, msgspec.Meta(ge=1, le=9)] | None = None


class FieldDef(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    """One input. In formulas a number/count is a number, a checkbox is True/False, a select or
    radio is its option value (text) and a city is its tier (a number)."""

    key: Key
    label: Label
    kind: FieldKind
    help: ShortText = ""
    unit: Unit = ""
    min: Number | None = None  # number and count: required
    max: Number | None = None  # number and count: required
    step: Number | None = None  # number: the input's increment
    default: Number | ShortText | bool | None = None
    options: Annotated[list[Option], msgspec.Meta(max_length=100)] = []
    show_if: Formula = ""


class StepDef(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    """One screen of the form: a title and the keys of its fields, in order."""

    key: Key
    title: Label
    help: ShortText = ""
    fields: Annotated[list[Key], msgspec.Meta(min_length=1, max_length=30)]


class TableDef(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    """A lookup table. 1-D: ``rows`` and one number per row in ``values``. 2-D: ``rows``,
    ``cols`` and one list per row in ``values``. ``default`` answers a missing key; without it a
    missing key gives 0 and a warning. ``row_labels``/``col_labels`` (optional, one per row or
    column) name the keys for people: the editor shows them instead of the keys formulas use."""

    key: Key
    label: ShortText = ""
    rows: Annotated[list[TableKey], msgspec.Meta(min_length=1, max_length=200)]
    cols: Annotated[list[TableKey], msgspec.Meta(max_length=50)] = []
    row_labels: Annotated[list[KeyLabel], msgspec.Meta(max_length=200)] = []
    col_labels: Annotated[list[KeyLabel], msgspec.Meta(max_length=50)] = []
    values: Annotated[
        list[Number | Annotated[list[Number], msgspec.Meta(max_length=50)]],
        msgspec.Meta(min_length=1, max_length=200),
    ]
    default: Number | None = None


class OutputDef(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    """One result line. number/currency: ``formula``; range: ``low`` and ``high`` (swapped if
    reversed), shown as money unless ``style = "number"``; text: ``text`` with placeholders."""

    key: Key
    label: Label
    kind: OutputKind
    formula: Formula = ""
    low: Formula = ""
    high: Formula = ""
    text: LongText = ""
    style: Literal["currency", "number"] = "currency"
    unit: Unit = ""
    decimals: Annotated[int, msgspec.Meta(ge=0, le=4)] | None = None
    group: Annotated[str, msgspec.Meta(max_length=40)] = ""
    note: LongText = ""
    show_if: Formula = ""


class CallToAction(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    label: Label
    text: ShortText = ""
    # What the button books (app/bookings: "免费量房"; empty: the label); ``url`` instead
    # makes it a link: http(s), a path on this site or tel:; never javascript: and the like.
    books: ShortText = ""
    url: Url = ""


class GateText(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    """What the phone gate says on this calculator, instead of the kind's words ("" keeps
    them): its heading and the line on what the number is used for."""

    title: Annotated[str, msgspec.Meta(max_length=60)] = ""
    note: ShortText = ""


class CalculatorDef(
    msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=True
):
    """A whole calculator. ``teaser`` lists the output keys shown before the phone gate, ``full``
    those shown after it; ``variables`` maps a name to a formula (any order: they are sorted by
    what they use)."""

    title: Label
    intro: LongText = ""
    disclaimer: LongText = ""
    steps: Annotated[list[StepDef], msgspec.Meta(min_length=1, max_length=12)]
    fields: Annotated[list[FieldDef], msgspec.Meta(min_length=1, max_length=60)]
    tables: Annotated[list[TableDef], msgspec.Meta(max_length=50)] = []
    variables: Annotated[dict[Key, Formula], msgspec.Meta(max_length=200)] = {}
    outputs: Annotated[list[OutputDef], msgspec.Meta(min_length=1, max_length=100)]
    teaser: Annotated[list[Key], msgspec.Meta(min_length=1, max_length=10)]
    full: Annotated[list[Key], msgspec.Meta(min_length=1, max_length=100)]
    cta: CallToAction
    gate: GateText = GateText()


class OutputValue(msgspec.Struct, kw_only=True):
    """One computed result line, ready to show."""

    key: str
    label: str
    kind: OutputKind
    value: float | list[float] | str  # a range is [low, high]
    display: str  # formatted, unit included: "¥12.3万", "¥25.3万～¥38.1万", "103～131天"
    group: str = ""
    note: str = ""


class EvaluateAnswer(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """200 from POST /api/v1/calculators/{slug}/evaluate."""

    tool: str  # the slug
    version: int  # the published version that answered
    authorised: bool  # the visitor has verified a phone
    teaser: list[OutputValue]
    full: list[OutputValue] | None = None  # only once the visitor is authorised
