"""Bounds every input value shares, checked where the value enters (schemas, forms, paths).

Unbounded values got past validation and failed later, as a 500: ids above the database's
64-bit integers (PostgreSQL refuses them, SQLite's driver cannot bind them), dates near year
1 or 9999 that overflow when converted to China time or to UTC, and links with a ``javascript:``
scheme that only the Content-Security-Policy kept from running. Anything outside these bounds
is refused with a message that names the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from app.core.errors import InvalidInput
from app.core.i18n import N_

# Ids are BigInteger columns; counters and version numbers are Integer columns.
MAX_ID = 2**63 - 1
MAX_INT32 = 2**31 - 1

Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
# An id typed into a form (empty for none): 18 digits always fit in 64 bits.
IdText = Annotated[str, msgspec.Meta(max_length=18, pattern=r"^[0-9]*\Z")]

# Dates people enter (schedules, report ranges) fall in these years: far enough either side of
# today for any real use, and far from the ends of the calendar where time-zone arithmetic
# overflows.
MIN_YEAR = 2000
MAX_YEAR = 2100
DATE_RANGE_MESSAGE = N_("Dates must fall between the years %(first)s and %(last)s.")


class DateOutOfRange(InvalidInput, code="date_out_of_range", message=DATE_RANGE_MESSAGE):
    """A date falls outside the years from MIN_YEAR to MAX_YEAR."""

    def __init__(self, field: str) -> None:
        super().__init__(fields={field: "out_of_range"}, first=MIN_YEAR, last=MAX_YEAR)


def check_date(value: dt.date | None, field: str) -> None:
    """DateOutOfRange unless ``value`` (a date, or a date and time as written, in its own
    offset) falls in the years; then any time-zone conversion of it stays in the calendar."""
    if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
        raise DateOutOfRange(field)


# Links a page renders as href/src: absolute http(s) URLs, or paths on this site. Refused:
# every other scheme (javascript:, data:, vbscript:, …), protocol-relative ``//host`` and
# ``/\host`` (browsers read both as another site: an off-site link must say its scheme),
# user names before the host (``https://bank.example@evil.example``), and any whitespace or
# control character, which browsers strip or ignore and so could hide a scheme
# (``java\tscript:``). One more scheme is allowed: ``tel:`` with a phone number (digits, an
# optional leading +, and - or . between digits), so a call to action can call the business.
_URL_CHAR = r"[^\x00-\x20\x7f\\]"
SAFE_URL = (
    rf"^(?:(?i:https?)://[^\x00-\x20\x7f\\/?#@]+(?:[/?#]{_URL_CHAR}*)?"
    rf"|/(?:[^\x00-\x20\x7f\\/]{_URL_CHAR}*)?"
    r"|(?i:tel):\+?[0-9](?:[-.]?[0-9]){2,19})?\Z"
)
Url = Annotated[str, msgspec.Meta(max_length=512, pattern=SAFE_URL)]
# Images shown on visitor pages: https (an http image on an https page is blocked as mixed
# content) or this site's static files.
SAFE_IMAGE_URL = (
    rf"^(?:(?i:https)://[^\x00-\x20\x7f\\/?#@]+(?:[/?#]{_URL_CHAR}*)?|/static/{_URL_CHAR}*)?\Z"
)
ImageUrl = Annotated[str, msgspec.Meta(max_length=512, pattern=SAFE_IMAGE_URL)]


def is_safe_url(text: str) -> bool:
    """The ``Url`` rule, for values that did not come through a schema (stored data)."""
    try:
        msgspec.convert(text, Url)
    except msgspec.ValidationError:
        return False
    return True
