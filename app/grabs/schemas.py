"""Grab bodies and answers: the admin API and the staff form, the visitor's claim answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from app.core.api import Problem, path_param
from app.core.bounds import ImageUrl, check_date
from app.core.i18n import N_
from app.staff.schemas import PLAIN_TEXT

State = Literal["scheduled", "open", "closed", "sold_out"]
Result = Literal["won", "sold_out", "already_claimed", "not_open"]
Mode = Literal["schedule", "open", "closed"]
# A grab's state as staff pages show it: msgids, translated where shown.
STATE_LABELS: dict[str, str] = {
    "scheduled": N_("Scheduled"),
    "open": N_("Open"),
    "closed": N_("Closed"),
    "sold_out": N_("Sold out"),
}

MAX_STOCK = 1_000_000
MAX_PER_PHONE = 20

# A grab's slug in an API path.
GrabSlug = Annotated[str, path_param("A grab's slug.", "grab-demo")]
Slug = Annotated[str, msgspec.Meta(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*\Z")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=PLAIN_TEXT)]
# The offer and the place of redemption may run over several lines.
MULTILINE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e]*\Z"
LongText = Annotated[str, msgspec.Meta(max_length=2000, pattern=MULTILINE_TEXT)]
Stock = Annotated[int, msgspec.Meta(ge=0, le=MAX_STOCK)]
PerPhone = Annotated[int, msgspec.Meta(ge=1, le=MAX_PER_PHONE)]
Prefix = Annotated[str, msgspec.Meta(min_length=1, max_length=6, pattern=r"^[A-Z]+\Z")]
ValidDays = Annotated[int, msgspec.Meta(ge=1, le=3650)]
# What a client may send as Idempotency-Key: printable ASCII, at most 64 characters.
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,64}\Z"


class GrabUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A grab's settings, everything but its address: the staff edit form's body (``stock`` is
    the total offered). GrabCreate adds the slug."""

    title: Title
    stock: Stock
    per_phone_limit: PerPhone = 1
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    offer: LongText = ""
    image_url: ImageUrl = ""
    voucher_prefix: Prefix = "LK"
    voucher_valid_days: ValidDays = 30
    voucher_where: LongText = ""

    def __post_init__(self) -> None:
        _check_schedule(self.starts_at, self.ends_at)


class GrabCreate(GrabUpdate, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/admin/grabs and the staff form: the settings and the slug."""

    slug: Slug


def _check_schedule(starts_at: dt.datetime | None, ends_at: dt.datetime | None) -> None:
    # Raised from inside decoding (msgspec passes any error but ValueError/TypeError through),
    # so the API and the staff form both answer 400 naming the field.
    check_date(starts_at, "starts_at")
    check_date(ends_at, "ends_at")


class GrabForm(msgspec.Struct, kw_only=True):
    """The staff create/edit form as posted: strings, turned into GrabCreate by the service."""

    slug: Annotated[str, msgspec.Meta(max_length=64)] = ""
    title: Annotated[str, msgspec.Meta(max_length=256)] = ""
    offer: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    image_url: Annotated[str, msgspec.Meta(max_length=600)] = ""
    stock: Annotated[str, msgspec.Meta(max_length=16)] = ""
    per_phone_limit: Annotated[str, msgspec.Meta(max_length=16)] = "1"
    starts_at: Annotated[str, msgspec.Meta(max_length=32)] = ""
    ends_at: Annotated[str, msgspec.Meta(max_length=32)] = ""
    voucher_prefix: Annotated[str, msgspec.Meta(max_length=16)] = "LK"
    voucher_valid_days: Annotated[str, msgspec.Meta(max_length=16)] = "30"
    voucher_where: Annotated[str, msgspec.Meta(max_length=4000)] = ""


class ClaimForm(msgspec.Struct, kw_only=True):
    """The page's grab button: the key the page was rendered with makes double taps one."""

    idempotency_key: Annotated[str, msgspec.Meta(max_length=64)] = ""


class Voucher(msgspec.Struct, kw_only=True, frozen=True):
    code: str
    display: str
    n: int
    expires_at: dt.datetime
    where: str = ""


class ClaimAnswer(msgspec.Struct, kw_only=True, frozen=True):
    result: Result
    voucher: Voucher | None = None


class ClaimRefusal(Problem, kw_only=True, omit_defaults=True):
    """401 and 429 from the claim: a problem document that also carries the claim's
    ``result``, so a client reads every claim answer from the same field."""

    result: Literal["gate_required", "rate_limited"]
    retry_after: int | None = None  # seconds, as in the Retry-After header (429)


class GrabStatus(msgspec.Struct, kw_only=True, frozen=True):
    """GET /api/v1/grabs/{slug} and each live update."""

    slug: str
    title: str
    state: State
    stock_left: int
    stock_total: int
    per_phone_limit: int
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    starts_in: int | None  # seconds until the start, while scheduled
