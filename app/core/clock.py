"""Time: the one ``now()``, and China time for everything people read.

Mainland China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact
for every date leadkit handles and needs no tz database on the server. Stored times are UTC;
days, windows and everything shown are China time.
"""

from __future__ import annotations

import contextlib
import datetime as dt

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
CHINA_OFFSET_SECONDS = 8 * 3600


def now() -> dt.datetime:
    """The current time, in UTC, aware."""
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC time (SQLite hands back naive ones)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def china_today(at: dt.datetime | None = None) -> dt.date:
    return (at or now()).astimezone(CHINA_TZ).date()


def china_time(at: dt.datetime | dt.date | None) -> str:
    """``2026-03-01 09:30`` in China time, for display; a calendar day (already China's, as
    every day leadkit counts) as ``2026-03-01``. Every time shown goes through here
    (templates: the ``china_time`` filter)."""
    if at is None:
        return ""
    if not isinstance(at, dt.datetime):
        return at.isoformat()
    at = aware(at)
    # Stored before dates were bounded (app/core/bounds.py), near the end of the calendar:
    # shown as stored rather than failing the page that lists it.
    with contextlib.suppress(OverflowError):
        at = at.astimezone(CHINA_TZ)
    return at.strftime("%Y-%m-%d %H:%M")
