"""Staff views of leads: the lead form, list filters, date ranges in China time, and labels.

Labels are msgids, shown translated where they are rendered: ``_(STATUS_LABELS[status])``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlencode

import msgspec

from app.core.bounds import IdText, check_date
from app.core.clock import CHINA_TZ, china_today
from app.core.errors import InvalidInput
from app.core.i18n import N_
from app.links.schemas import CHANNEL_LABELS, PLATFORM_LABELS

PAGE_SIZE = 50
_DIGITS = re.compile(r"[0-9]{1,18}\Z")

LEAD_STATUSES: tuple[str, ...] = ("new", "contacted", "qualified", "won", "lost", "withdrawn")
# "withdrawn" follows the visitor's own withdrawal of consent; staff never set it.
STAFF_STATUSES: tuple[str, ...] = LEAD_STATUSES[:-1]
STATUS_LABELS: dict[str, str] = {
    "new": N_("New"),
    "contacted": N_("Contacted"),
    "qualified": N_("Qualified"),
    "won": N_("Won"),
    "lost": N_("Lost"),
    "withdrawn": N_("Consent withdrawn"),
}

# Where a visitor opened the page (visitor platforms, not account platforms).
VISITOR_PLATFORM_LABELS: dict[str, str] = {
    "douyin": PLATFORM_LABELS["douyin"],
    "wechat": PLATFORM_LABELS["wechat"],
    "browser": N_("Browser"),
}

UNATTRIBUTED = N_("Unattributed")
ORGANIC = N_("Organic traffic")
# Filter value for "came through no tracked link".
NO_LINK = "none"

Note = Annotated[str, msgspec.Meta(max_length=2000)]
OwnerField = IdText  # a staff member's id, empty for none


class PhoneAuthorisation(msgspec.Struct, frozen=True, kw_only=True):
    """A phone number the visitor proved they control (produced by every gate method).

    ``level``: "otp" when they typed a code we sent; "platform" when a mini-program platform
    vouched for the number (WeChat/Douyin phone authorisation)."""

    phone: str  # E.164
    method: Literal["sms", "wechat", "douyin"]
    level: Literal["otp", "platform"]
    verified_at: dt.datetime


class ConsentGiven(msgspec.Struct, frozen=True, kw_only=True):
    """What the visitor agreed to (the notice version), when and from where (PIPL)."""

    notice_version: str
    ip: str = ""
    user_agent: str = ""


class LeadUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """The lead page's form. Status is checked by the service so a bad value gets a clear
    message; ``owner_id`` empty means unassigned; ``note`` empty adds no note."""

    status: Annotated[str, msgspec.Meta(max_length=32)]
    owner_id: OwnerField = ""
    note: Note = ""


class DayRange(msgspec.Struct, kw_only=True, frozen=True):
    """Whole days in China time, ``start`` to ``end`` inclusive; a missing bound is open."""

    start: dt.date | None = None
    end: dt.date | None = None

    @property
    def start_utc(self) -> dt.datetime | None:
        if self.start is None:
            return None
        return dt.datetime.combine(self.start, dt.time(), CHINA_TZ).astimezone(dt.UTC)

    @property
    def end_utc(self) -> dt.datetime | None:
        """The first instant after the range (an exclusive bound)."""
        if self.end is None:
            return None
        after = self.end + dt.timedelta(days=1)
        return dt.datetime.combine(after, dt.time(), CHINA_TZ).astimezone(dt.UTC)


def parse_day(raw: str, field: str) -> dt.date | None:
    """``YYYY-MM-DD`` or empty; anything else is a clear InvalidInput."""
    text = raw.strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            N_("Dates must be real dates written as YYYY-MM-DD, for example 2026-03-01."),
            fields={field: "invalid_date"},
        ) from None
    check_date(day, field)
    return day


def day_range(raw_from: str, raw_to: str) -> DayRange:
    """The days between two optional ``YYYY-MM-DD`` dates (open where one is empty)."""
    start, end = parse_day(raw_from, "from"), parse_day(raw_to, "to")
    if start is not None and end is not None and start > end:
        raise InvalidInput(N_("The start date is after the end date."), fields={"from": "after_to"})
    return DayRange(start=start, end=end)


def closed_day_range(
    raw_from: str, raw_to: str, *, default_days: int = 30, today: dt.date | None = None
) -> DayRange:
    """Like day_range, with both bounds: the last ``default_days`` days up to today by
    default, up to today from a lone start date, ``default_days`` back from a lone end date."""
    days = day_range(raw_from, raw_to)
    today = today or china_today()
    end = days.end or max(today, days.start or today)
    start = days.start or end - dt.timedelta(days=default_days - 1)
    return DayRange(start=start, end=end)


class LeadFilter(msgspec.Struct, kw_only=True, frozen=True):
    """What the leads list shows; empty values mean no filter."""

    status: str = ""
    channel: str = ""  # a channel code, or NO_LINK
    account_id: int | None = None
    tool: str = ""  # a tool slug
    days: DayRange = DayRange()
    page: int = 1

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> LeadFilter:
        """The filters from the list's query, by the names ``query`` writes (status, channel,
        account, tool, from, to, page); a name not there is no filter."""
        status, channel = raw.get("status", ""), raw.get("channel", "")
        account, page = raw.get("account", ""), raw.get("page", "")
        if status and status not in LEAD_STATUSES:
            raise InvalidInput(N_("Unknown lead status."), fields={"status": "unknown"})
        if channel and channel != NO_LINK and channel not in CHANNEL_LABELS:
            raise InvalidInput(N_("Unknown channel."), fields={"channel": "unknown"})
        # ASCII digits only: str.isdigit() takes "²", which int() refuses; and an id fits in
        # 64 bits (18 digits always do).
        if account and not _DIGITS.match(account):
            raise InvalidInput(N_("Unknown account."), fields={"account": "unknown"})
        number = int(page) if re.fullmatch(r"[0-9]{1,6}", page) else 1
        return cls(
            status=status,
            channel=channel,
            account_id=int(account) if account else None,
            tool=raw.get("tool", "").strip()[:64],
            days=day_range(raw.get("from", ""), raw.get("to", "")),
            page=max(number, 1),
        )

    def query(self, page: int | None = None) -> str:
        """The list URL's query string for these filters (and ``page``)."""
        parts = {
            "status": self.status,
            "channel": self.channel,
            "account": str(self.account_id or ""),
            "tool": self.tool,
            "from": self.days.start.isoformat() if self.days.start else "",
            "to": self.days.end.isoformat() if self.days.end else "",
            "page": str(page) if page and page > 1 else "",
        }
        kept = {k: v for k, v in parts.items() if v}
        return f"?{urlencode(kept)}" if kept else ""
