"""The marketer's draw form (/staff/draws/new and …/edit): what was typed, kept as typed to
show again, and parsed into the service's ``DrawCreate`` — or refused with one clear message
naming the field (and the tier) that is wrong, before anything is written.

Tiers are repeated fields (``tier_name``, ``tier_quantity``, ``tier_reserves``,
``tier_prefix``, ``tier_days``, ``tier_where``), one group per row; a row left wholly empty
is skipped. A tier with a code prefix gives vouchers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar.datastructures import FormMultiDict

from app.core.bounds import SAFE_IMAGE_URL, check_date
from app.core.clock import CHINA_TZ
from app.core.errors import InvalidInput
from app.core.i18n import N_
from app.draws.definition import DrawInfo
from app.draws.fairness import MAX_QUANTITY, MAX_RESERVES, MAX_TIER_NAME, MAX_TIERS
from app.draws.schemas import MULTILINE_TEXT, DrawCreate
from app.staff.schemas import PLAIN_TEXT
from app.tools.scheduled import form_values

TIER_FIELDS = ("name", "quantity", "reserves", "prefix", "days", "where")
BLANK_TIERS = 3  # empty rows a new form offers


@dataclass
class DrawForm:
    """The form's values as text, as typed (a refused form is shown again with them)."""

    slug: str = ""
    title: str = ""
    description: str = ""
    image_url: str = ""
    starts_at: str = ""
    ends_at: str = ""
    claim_hours: str = "48"
    one_win_per_phone: bool = True
    requires_tool: str = ""
    passphrase: str = ""
    referrals: bool = False
    referral_cap: str = "5"
    drand: bool = False
    tiers: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def blank(cls) -> DrawForm:
        return cls(tiers=[dict.fromkeys(TIER_FIELDS, "") for _ in range(BLANK_TIERS)])

    @classmethod
    def posted(cls, data: FormMultiDict) -> DrawForm:
        def text(name: str) -> str:
            return str(data.get(name) or "").replace("\r\n", "\n").strip()

        columns = {f: [str(v) for v in data.getall(f"tier_{f}", [])] for f in TIER_FIELDS}
        rows = max((len(v) for v in columns.values()), default=0)
        tiers = [
            {f: (columns[f][i] if i < len(columns[f]) else "").strip() for f in TIER_FIELDS}
            for i in range(min(rows, MAX_TIERS + 1))
        ]
        return cls(
            slug=text("slug").lower(),
            title=text("title"),
            description=text("description"),
            image_url=text("image_url"),
            starts_at=text("starts_at"),
            ends_at=text("ends_at"),
            claim_hours=text("claim_hours"),
            one_win_per_phone=bool(data.get("one_win_per_phone")),
            requires_tool=text("requires_tool").lower(),
            passphrase=text("passphrase"),
            referrals=bool(data.get("referrals")),
            referral_cap=text("referral_cap"),
            drand=bool(data.get("drand")),
            tiers=[t for t in tiers if any(t.values())],
        )

    @classmethod
    def of(cls, info: DrawInfo, passphrase: str) -> DrawForm:
        """The edit form of a published draw."""
        return cls(
            **form_values(info),
            description=info.description,
            claim_hours=str(info.claim_hours),
            one_win_per_phone=info.one_win_per_phone,
            requires_tool=info.requires_tool,
            passphrase=passphrase,
            referrals=info.referrals,
            referral_cap=str(info.referral_cap),
            drand=info.use_drand,
            tiers=[
                {
                    "name": t.name,
                    "quantity": str(t.quantity),
                    "reserves": str(t.reserves),
                    "prefix": str((t.voucher or {}).get("prefix", "")),
                    "days": str((t.voucher or {}).get("valid_days", "")),
                    "where": str((t.voucher or {}).get("where", "")),
                }
                for t in info.tiers
            ],
        )

    def rows(self) -> list[dict[str, str]]:
        """The tier rows to show: the typed ones and at least one empty row to add a tier."""
        empty = dict.fromkeys(TIER_FIELDS, "")
        return [*self.tiers, empty] if len(self.tiers) < MAX_TIERS else list(self.tiers)


def _matches(pattern: str, text: str, most: int) -> bool:
    return len(text) <= most and re.match(pattern, text) is not None


def _whole(text: str, low: int, high: int) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


def _refuse(message: str, name: str, **params: Any) -> InvalidInput:
    return InvalidInput(message, fields={name: "invalid"}, **params)


def _when(text: str, name: str, message: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)
    except ValueError:
        raise _refuse(message, name) from None
    check_date(value, name)
    return value


def _number(text: str, low: int, high: int, refuse: Callable[[], InvalidInput]) -> int:
    value = _whole(text, low, high)
    if value is None:
        raise refuse()
    return value


def _tier(n: int, row: dict[str, str]) -> dict[str, Any]:
    def refuse(message: str, name: str) -> Callable[[], InvalidInput]:
        return lambda: _refuse(message, f"tier_{name}", n=n)

    if not row["name"] or not _matches(PLAIN_TEXT, row["name"], MAX_TIER_NAME):
        raise refuse(N_("Tier %(n)s: give it a name of at most 100 characters."), "name")()
    tier: dict[str, Any] = {
        "name": row["name"],
        "quantity": _number(
            row["quantity"],
            1,
            MAX_QUANTITY,
            refuse(
                N_("Tier %(n)s: the number of prizes is a whole number from 1 to 100000."),
                "quantity",
            ),
        ),
        "reserves": _number(
            row["reserves"] or "0",
            0,
            MAX_RESERVES,
            refuse(N_("Tier %(n)s: reserves are a whole number from 0 to 10000."), "reserves"),
        ),
    }
    if row["prefix"] or row["days"] or row["where"]:
        prefix = row["prefix"].upper()
        if not re.fullmatch(r"[A-Z]{1,6}", prefix):
            raise refuse(N_("Tier %(n)s: the voucher code prefix is 1 to 6 letters."), "prefix")()
        if not _matches(MULTILINE_TEXT, row["where"], 2000):
            raise refuse(N_("Tier %(n)s: where to redeem is at most 2000 characters."), "where")()
        tier["voucher"] = {
            "prefix": prefix,
            "valid_days": _number(
                row["days"] or "30",
                1,
                3650,
                refuse(N_("Tier %(n)s: a voucher is valid for 1 to 3650 days."), "days"),
            ),
            "where": row["where"],
        }
    return tier


def parse(form: DrawForm, slug: str) -> DrawCreate:
    """The form as the service's body (``slug`` is the draw's, or the one typed); InvalidInput
    with a message naming what is wrong."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,63}", slug):
        raise _refuse(N_("The address is 2 to 64 lower-case letters, digits and dashes."), "slug")
    if not form.title or not _matches(PLAIN_TEXT, form.title, 128):
        raise _refuse(N_("Give the draw a title of at most 128 characters."), "title")
    if not _matches(MULTILINE_TEXT, form.description, 2000):
        raise _refuse(N_("The description is at most 2000 characters."), "description")
    if not _matches(SAFE_IMAGE_URL, form.image_url, 512):
        raise _refuse(N_("The image address must start with https:// or /static/."), "image_url")
    if not form.tiers:
        raise _refuse(N_("Add at least one prize tier."), "tier_name")
    if len(form.tiers) > MAX_TIERS:
        raise _refuse(N_("A draw has at most %(n)s tiers."), "tier_name", n=MAX_TIERS)
    if not re.fullmatch(r"(?:[a-z0-9][a-z0-9-]{0,63})?", form.requires_tool):
        raise _refuse(N_("The required tool is named by its address (slug)."), "requires_tool")
    if not _matches(PLAIN_TEXT, form.passphrase, 64):
        raise _refuse(N_("The passphrase is at most 64 characters on one line."), "passphrase")
    values = {
        "slug": slug,
        "title": form.title,
        "description": form.description,
        "image_url": form.image_url,
        "starts_at": _when(
            form.starts_at,
            "starts_at",
            N_("Enter the start as a date and time, or leave it empty."),
        ),
        "ends_at": _when(
            form.ends_at, "ends_at", N_("Enter the end as a date and time, or leave it empty.")
        ),
        "claim_hours": _number(
            form.claim_hours,
            1,
            720,
            lambda: _refuse(
                N_("The time to claim is a whole number of hours from 1 to 720."), "claim_hours"
            ),
        ),
        "one_win_per_phone": form.one_win_per_phone,
        "requires_tool": form.requires_tool,
        "passphrase": form.passphrase,
        "referrals": form.referrals,
        "referral_cap": _number(
            form.referral_cap or "0",
            0,
            100,
            lambda: _refuse(
                N_("The referral cap is a whole number from 0 to 100."), "referral_cap"
            ),
        ),
        "drand": form.drand,
        "tiers": [_tier(n, row) for n, row in enumerate(form.tiers, start=1)],
    }
    try:
        return msgspec.convert(values, DrawCreate)
    except msgspec.ValidationError as exc:  # every rule above is checked first: a safety net
        match = re.search(r"at `\$\.(\w+)`", str(exc))
        raise InvalidInput(fields={match.group(1) if match else "form": "invalid"}) from None
