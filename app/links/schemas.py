"""Accounts and tracked links: the forms, their labels, and the limits of an account matrix."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar.datastructures import UploadFile

from app.core.bounds import Id, IdText
from app.core.i18n import N_

Kind = Literal["brand", "employee", "partner", "ads"]
Channel = Literal["live", "video", "profile", "search", "qr", "share"]
Platform = Literal["douyin", "wechat", "other"]

# Labels are msgids, shown translated: _(KIND_LABELS[kind]).
KIND_LABELS: dict[str, str] = {
    "brand": N_("Brand account"),
    "employee": N_("Employee account"),
    "partner": N_("Partner account"),
    "ads": N_("Ads account"),
}
CHANNEL_LABELS: dict[str, str] = {
    "live": N_("Live stream"),
    "video": N_("Short video"),
    "profile": N_("Profile page"),
    "search": N_("Search"),
    "qr": N_("QR code scan"),
    "share": N_("Share"),
}
PLATFORM_LABELS: dict[str, str] = {
    "douyin": N_("Douyin"),
    "wechat": N_("WeChat"),
    "other": N_("Other platform"),
}

# A mini-program binds at most 10 brand, 50 employee and 200 partner accounts; ads accounts
# are not bound, 200 keeps a typo in an import from creating thousands.
ACCOUNT_CAPS: dict[str, int] = {"brand": 10, "employee": 50, "partner": 200, "ads": 200}

CODE_PATTERN = r"^[A-Za-z0-9_\-]{3,32}$"

AccountName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Campaign = Annotated[str, msgspec.Meta(max_length=64)]
# Code format is checked by the service, so a bad code gets a message that says what is wrong.
CodeField = Annotated[str, msgspec.Meta(max_length=64)]
OwnerField = IdText
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class AccountCreate(msgspec.Struct, kw_only=True):
    kind: Kind
    name: AccountName
    platform: Platform = "douyin"
    owner_id: OwnerField = ""  # a staff member's id; empty for none


class LinkCreate(msgspec.Struct, kw_only=True):
    account_id: Id
    channel: Channel
    target_slug: Slug
    code: CodeField = ""  # empty: generate one
    campaign: Campaign = ""


class LinkActive(msgspec.Struct, kw_only=True):
    active: bool = False


class LinkFilter(msgspec.Struct, kw_only=True, frozen=True):
    """What the links list shows; empty values mean no filter."""

    kind: str = ""
    channel: str = ""
    account_id: int | None = None

    def query(self) -> str:
        parts = [f"kind={self.kind}" if self.kind in KIND_LABELS else ""]
        parts.append(f"channel={self.channel}" if self.channel in CHANNEL_LABELS else "")
        parts.append(f"account={self.account_id}" if self.account_id else "")
        joined = "&".join(p for p in parts if p)
        return f"?{joined}" if joined else ""


class LinkFigures(msgspec.Struct, kw_only=True, frozen=True):
    """What one tracked link brought: visitors who opened it (link_opened events) and leads
    whose first or last link it is."""

    clicks: int = 0
    leads: int = 0


class ImportSummary(msgspec.Struct, kw_only=True, frozen=True):
    rows: int
    accounts_created: int
    accounts_existing: int
    links_created: int
    links_existing: int


class RowError(msgspec.Struct, kw_only=True, frozen=True):
    """One problem in an import: ``message`` is a msgid formatted with ``params``."""

    row: int  # the row number a spreadsheet shows: the header is row 1
    column: str
    message: str
    params: dict[str, str | int] = msgspec.field(default_factory=dict)


class LinkImport(msgspec.Struct, kw_only=True):
    """The import form: an uploaded CSV file, or the same text pasted into a text box."""

    file: UploadFile | None = None
    text: str = ""  # bounded by the route's body limit; over 1 MB gets its own message
