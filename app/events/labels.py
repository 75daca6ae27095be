"""What staff pages call funnel events and their properties: msgids (``N_``, so extraction
finds them), translated where they are shown. A label computed at run time never reaches the
catalog; a table of literal msgids does.

Every event has a label (EVENT_LABELS); every property a timeline shows has a name
(PROPERTY_LABELS); a property whose values are codes (a reason, a method, a step, …) has a
label per value (VALUE_LABELS), while one whose values are data (a store's name, a link code,
the text of a button) is shown as it is. ``describe`` turns an event's properties into what the
timeline shows. tests/test_zh_pages.py renders every event with its typical properties.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.core.i18n import N_

EVENT_LABELS: dict[str, str] = {
    "link_opened": N_("Opened a tracked link"),
    "tool_viewed": N_("Viewed the tool"),
    "step_started": N_("Started a step"),
    "step_completed": N_("Completed a step"),
    "teaser_shown": N_("Saw the teaser"),
    "gate_shown": N_("Saw the phone gate"),
    "code_sent": N_("Code sent"),
    "code_rejected": N_("Code rejected"),
    "phone_verified": N_("Phone verified"),
    "lead_created": N_("Lead created"),
    "lead_merged": N_("Merged into an existing lead"),
    "result_shown": N_("Saw the full result"),
    "download": N_("Downloaded"),
    "shared": N_("Shared"),
    "cta_clicked": N_("Clicked the call to action"),
    "consent_withdrawn": N_("Withdrew consent"),
    "data_deleted": N_("Deleted their data"),
    "grab_clicked": N_("Tapped the grab button"),
    "grab_won": N_("Won a grab"),
    "grab_refused": N_("Grab refused"),
    "grab_waitlisted": N_("Joined the waiting list"),
    "voucher_redeemed": N_("Redeemed a voucher"),
    "voucher_redemption_undone": N_("Voucher redemption undone"),
    "draw_entered": N_("Entered a lucky draw"),
    "draw_refused": N_("Lucky draw entry refused"),
    "draw_won": N_("Won a lucky draw"),
    "draw_claimed": N_("Claimed a lucky draw prize"),
    "booking_made": N_("Booked a visit"),
    "booking_changed": N_("Changed a booking"),
    "booking_cancelled": N_("Cancelled a booking"),
}

PROPERTY_LABELS: dict[str, str] = {
    "code": N_("Link code"),
    "src": N_("Source parameter"),
    "step": N_("Step of the tool"),
    "method": N_("Method"),
    "level": N_("Verified by"),
    "reason": N_("Reason"),
    "item": N_("File"),
    "target": N_("Shared to"),
    "cta": N_("Button"),
    "n": N_("Grabbed"),
    "store": N_("Store"),
    "service": N_("Booked"),
    "day": N_("Preferred day"),
    "part": N_("Preferred time"),
    "tier": N_("Prize tier"),
    "referral": N_("Friend's share code"),
}

_PLATFORMS = {"wechat": N_("WeChat"), "douyin": N_("Douyin")}
VALUE_LABELS: dict[str, dict[str, str]] = {
    "step": {"inputs": N_("Answering the questions")},
    "method": {"sms": N_("SMS code"), **_PLATFORMS},
    "level": {"otp": N_("One-time code"), "platform": N_("Platform's phone authorisation")},
    "reason": {
        # A code refused by the gate (app/gate/service.py).
        "wrong_code": N_("Wrong code"),
        "code_expired": N_("Code expired or already used"),
        "invalid_input": N_("Invalid input"),
        # A grab tap refused (app/grabs/schemas.py).
        "sold_out": N_("Sold out"),
        "already_claimed": N_("Already has one"),
        "not_open": N_("Not open yet"),
        "rate_limited": N_("Too many taps"),
        "gate_required": N_("Phone not verified yet"),
        # A lucky-draw entry refused (app/draws/schemas.py NotEligible).
        "tool_not_completed": N_("Has not completed the required tool"),
        "wrong_passphrase": N_("Wrong passphrase"),
    },
    # What became of a friend's share code on a lucky-draw entry (app/draws/entries.py).
    "referral": {
        "": N_("No share code"),
        "counted": N_("Counted: the friend got a chance"),
        "unknown_code": N_("Unknown code"),
        "own_code": N_("Own code"),
        "not_new": N_("Not a new phone"),
        "cap_reached": N_("The friend's chances are at the cap"),
        "off": N_("Referrals are off"),
    },
    "item": {"report": N_("PDF report"), "guide_pdf": N_("Guide (PDF)")},
    "target": _PLATFORMS,
    # A booking's part of the day (app/bookings/schemas.py PARTS).
    "part": {
        "morning": N_("Morning (9:00–12:00)"),
        "afternoon": N_("Afternoon (13:00–18:00)"),
        "evening": N_("Evening (18:00–21:00)"),
    },
}
# A value shown within a sentence: the n-th unit a phone won.
VALUE_FORMATS: dict[str, str] = {"n": N_("No. %(value)s"), "tier": N_("Tier %(value)s")}
# Properties other columns already show (``known_src``: the "came through" column).
HIDDEN: frozenset[str] = frozenset({"known_src"})


class Detail(msgspec.Struct, kw_only=True, frozen=True):
    """One property as the timeline shows it: ``label`` a msgid; ``value`` a msgid when
    ``coded``, shown within the msgid ``format`` (``%(value)s``) when there is one, else as it
    is (data, or a code no table knows yet)."""

    label: str
    value: str
    coded: bool = False
    format: str = ""


def describe(props: dict[str, Any]) -> list[Detail]:
    """The properties of an event worth showing, in their order, labelled. An empty value is
    left out unless its property's table labels it (an entry without a share code)."""
    details = []
    for key, raw in props.items():
        table = VALUE_LABELS.get(key)
        empty = raw == "" and (table is None or "" not in table)
        if key in HIDDEN or raw is None or raw is True or empty or isinstance(raw, dict | list):
            continue
        value = str(raw)[:100]
        label = PROPERTY_LABELS.get(key, key)
        if table is None:
            details.append(Detail(label=label, value=value, format=VALUE_FORMATS.get(key, "")))
        else:
            known = table.get(value)
            details.append(Detail(label=label, value=known or value, coded=known is not None))
    return details
