"""Voucher forms, API bodies and the views the redemption page shows."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.core.i18n import N_

# Generous bounds: the service checks what was typed and says what is wrong in words; these
# only stop what no phone keyboard or QR code produces.
TypedCode = Annotated[str, msgspec.Meta(max_length=2000)]
TypedStore = Annotated[str, msgspec.Meta(max_length=2000)]
STORE_MAX = 64

STATUS_LABELS: dict[str, str] = {
    "issued": N_("Not yet redeemed"),
    "redeemed": N_("Redeemed"),
    "expired": N_("Expired"),
    "void": N_("Void"),
}


class VoucherForm(msgspec.Struct, kw_only=True, frozen=True):
    """The redemption page's form: look a code up, or redeem it."""

    code: TypedCode = ""
    store: TypedStore = ""


class VoucherRedeem(msgspec.Struct, kw_only=True, frozen=True):
    """``POST /api/v1/vouchers/redeem``: a store's till redeems a code it scanned."""

    code: TypedCode
    store: TypedStore


class VoucherView(msgspec.Struct, kw_only=True, frozen=True):
    """One voucher as staff see it: masked phone, never the number."""

    id: int
    code: str
    display_code: str
    title: str
    offer: str
    where: str
    phone_masked: str
    lead_id: int | None
    status: str  # issued | redeemed | expired | void (expired is computed from expires_at)
    expires: str  # China time
    redeemed_at: str
    redeemed_by: str
    redeemed_by_id: int | None
    redeemed_store: str
    can_undo: bool = False


class RedeemResult(msgspec.Struct, kw_only=True, frozen=True):
    """The API's answer to a successful redemption."""

    code: str
    status: str
    title: str
    offer: str
    store: str
    redeemed_at: str  # China time
    undo_minutes: int
