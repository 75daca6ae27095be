"""Draw bodies and answers: the admin API (create, open, close, draw a tier), the visitor's
entry and claim, the public state. The proof bundle's shape is app/draws/proof.py's ``Proof``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from app.core.api import Problem, path_param
from app.core.bounds import ImageUrl, check_date
from app.core.i18n import N_
from app.draws.fairness import MAX_QUANTITY, MAX_RESERVES, MAX_TIER_NAME, MAX_TIERS
from app.staff.schemas import PLAIN_TEXT

State = Literal["scheduled", "open", "closed", "drawing", "drawn"]
Mode = Literal["schedule", "open", "closed"]
EnterResult = Literal["entered", "already_entered", "not_open", "not_eligible"]
# Why an entry is not eligible (the answer's ``reason``).
NotEligible = Literal["tool_not_completed", "wrong_passphrase"]
STATE_LABELS: dict[str, str] = {
    "scheduled": N_("Not open yet"),
    "open": N_("Open for entries"),
    "closed": N_("Entries closed"),
    "drawing": N_("Drawing"),
    "drawn": N_("Drawn"),
}

DrawSlug = Annotated[str, path_param("A draw's slug.", "draw-demo")]
Slug = Annotated[str, msgspec.Meta(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*\Z")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=PLAIN_TEXT)]
MULTILINE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e]*\Z"
LongText = Annotated[str, msgspec.Meta(max_length=2000, pattern=MULTILINE_TEXT)]
TierName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TIER_NAME, pattern=PLAIN_TEXT)]
Prefix = Annotated[str, msgspec.Meta(min_length=1, max_length=6, pattern=r"^[A-Z]+\Z")]
ValidDays = Annotated[int, msgspec.Meta(ge=1, le=3650)]
Reserves = Annotated[int, msgspec.Meta(ge=0, le=MAX_RESERVES)]
ToolSlug = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^(?:[a-z0-9][a-z0-9-]*)?\Z")]
Passphrase = Annotated[str, msgspec.Meta(max_length=64, pattern=PLAIN_TEXT)]
# A share code (app/draws/entries.py: 10 Crockford base-32 characters).
RefCode = Annotated[str, msgspec.Meta(max_length=16, pattern=r"^[0-9A-Za-z]*\Z")]


class VoucherTemplate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A tier whose prize is a voucher: what each winner's voucher looks like."""

    prefix: Prefix = "LK"
    valid_days: ValidDays = 30
    where: LongText = ""


class TierCreate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    name: TierName
    quantity: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
    reserves: Reserves | None = None  # the draw's ``reserves`` when not given
    voucher: VoucherTemplate | None = None


class DrawCreate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """POST /api/v1/admin/draws: the draw, published at once (its seed drawn, its commitment
    fixed). Tiers are numbered from 1 in the order given."""

    slug: Slug
    title: Title
    tiers: Annotated[list[TierCreate], msgspec.Meta(min_length=1, max_length=MAX_TIERS)]
    description: LongText = ""
    image_url: ImageUrl = ""
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    one_win_per_phone: bool = True
    reserves: Reserves = 0
    requires_tool: ToolSlug = ""
    passphrase: Passphrase = ""
    claim_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 48
    referrals: bool = False
    referral_cap: Annotated[int, msgspec.Meta(ge=0, le=100)] = 5
    drand: bool = False

    def __post_init__(self) -> None:
        check_date(self.starts_at, "starts_at")
        check_date(self.ends_at, "ends_at")


class TierStatus(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    quantity: int
    drawn: bool
    winners: list[str]  # masked phones, in the order drawn (called-up reserves after them)
    undrawn: int  # prizes left undrawn because there were fewer entrants than prizes
    voucher: bool  # the prize is a voucher


class DrawStatus(msgspec.Struct, kw_only=True, frozen=True):
    """GET /api/v1/draws/{slug} and each live update."""

    slug: str
    title: str
    state: State
    entrants: int
    commitment: str  # hex SHA-256 of the secret seed, published from the start
    entrants_hash: str | None  # hex SHA-256 of the frozen list, from the close
    drand_round: int | None  # the drand round mixed in, fixed at the close
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    starts_in: int | None  # seconds until the start, while scheduled
    one_win_per_phone: bool
    referrals: bool
    tiers: list[TierStatus]


class EnterBody(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """POST /api/v1/draws/{slug}/enter: a friend's share code, the passphrase if asked."""

    ref: RefCode = ""
    answer: Passphrase = ""


class EnterAnswer(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    result: EnterResult
    reason: NotEligible | None = None
    entrants: int = 0
    code: str | None = None  # the entrant's share code (referrals on)
    chances: int | None = None


class EnterRefusal(Problem, kw_only=True, omit_defaults=True):
    """401 and 429 from entering: a problem document carrying the entry's ``result``."""

    result: Literal["gate_required", "rate_limited"]
    retry_after: int | None = None


class DrawnTier(msgspec.Struct, kw_only=True, frozen=True):
    """POST /api/v1/admin/draws/{slug}/draw?tier=N: the tier's winners (masked phones)."""

    tier: int
    name: str
    quantity: int
    winners: list[str]
    reserves: int  # reserves drawn for the tier
    undrawn: int
    # Fewer entrants than prizes: every entrant won and ``undrawn`` prizes stay undrawn.
    short: bool
    replayed: bool  # the tier had been drawn: the same winners again


class ClaimBody(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=64, pattern=PLAIN_TEXT)] = ""
    address: Annotated[str, msgspec.Meta(max_length=200, pattern=PLAIN_TEXT)] = ""


class ClaimAnswer(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    result: Literal["claimed", "already_claimed"]
    tier: str
    voucher_code: str | None = None
    voucher_expires_at: dt.datetime | None = None


class ClaimResult(msgspec.Struct, kw_only=True, frozen=True):
    """POST /api/v1/draws/{slug}/claim: each prize the winner confirmed."""

    prizes: list[ClaimAnswer]


class EnterForm(EnterBody, kw_only=True, frozen=True, forbid_unknown_fields=False):
    """The page's enter form (it carries the CSRF token too)."""


class ClaimForm(ClaimBody, kw_only=True, frozen=True, forbid_unknown_fields=False):
    """The page's claim form (it carries the CSRF token too)."""
