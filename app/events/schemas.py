"""Funnel events: one Struct per name. The list is closed (docs/events.md); the client may send
only the names in CLIENT_EVENTS."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

Short = Annotated[str, msgspec.Meta(max_length=64)]


class Event(msgspec.Struct, tag_field="name", kw_only=True, frozen=True):
    """Base of every funnel event; the subclass's tag is the event name.

    An event that records an outcome (a phone authorised, a unit won, a voucher redeemed, an
    entry made, a download, a deletion) has ``outcome = True``: it is written in the same
    transaction as the outcome itself (``Tracker.record``), so a crash can lose neither without
    the other. Every other event is buffered (``Tracker.track``)."""

    outcome: ClassVar[bool] = False


class LinkOpened(Event, tag="link_opened", frozen=True):
    code: Short


class ToolViewed(Event, tag="tool_viewed", frozen=True):
    src: Short = ""
    known_src: bool = True


class StepStarted(Event, tag="step_started", frozen=True):
    step: Short = ""


class StepCompleted(Event, tag="step_completed", frozen=True):
    step: Short = ""


class TeaserShown(Event, tag="teaser_shown", frozen=True):
    pass


class GateShown(Event, tag="gate_shown", frozen=True):
    pass


class CodeSent(Event, tag="code_sent", frozen=True):
    method: Short = "sms"


class CodeRejected(Event, tag="code_rejected", frozen=True):
    reason: Short


class PhoneVerified(Event, tag="phone_verified", frozen=True):
    outcome = True
    method: Short
    level: Short


class LeadCreated(Event, tag="lead_created", frozen=True):
    outcome = True


class LeadMerged(Event, tag="lead_merged", frozen=True):
    outcome = True


class ResultShown(Event, tag="result_shown", frozen=True):
    pass


class Download(Event, tag="download", frozen=True):
    item: Short = ""


class Shared(Event, tag="shared", frozen=True):
    target: Short = ""


class CtaClicked(Event, tag="cta_clicked", frozen=True):
    cta: Short = ""


class ConsentWithdrawn(Event, tag="consent_withdrawn", frozen=True):
    outcome = True


class DataDeleted(Event, tag="data_deleted", frozen=True):
    outcome = True


class GrabClicked(Event, tag="grab_clicked", frozen=True):
    pass


class GrabWon(Event, tag="grab_won", frozen=True):
    outcome = True
    n: int = 1


class GrabRefused(Event, tag="grab_refused", frozen=True):
    reason: Short  # sold_out | already_claimed | not_open | rate_limited


class GrabWaitlisted(Event, tag="grab_waitlisted", frozen=True):
    """A visitor who missed a sold-out grab asked to be told of its next round
    (app/grabs/waitlist.py): once per phone and grab."""

    outcome = True


class VoucherRedeemed(Event, tag="voucher_redeemed", frozen=True):
    outcome = True
    store: Short = ""


class VoucherRedemptionUndone(Event, tag="voucher_redemption_undone", frozen=True):
    outcome = True
    store: Short = ""


class DrawEntered(Event, tag="draw_entered", frozen=True):
    """An authorised phone entered a lucky draw (app/draws): once per phone and draw."""

    outcome = True
    referral: Short = ""  # counted | unknown_code | own_code | not_new | cap_reached | ""


class DrawRefused(Event, tag="draw_refused", frozen=True):
    reason: Short  # not_open | tool_not_completed | wrong_passphrase | rate_limited


class DrawWon(Event, tag="draw_won", frozen=True):
    """The phone's entry was drawn as a winner of a tier (or called up from the reserves)."""

    outcome = True
    tier: int = 1


class DrawClaimed(Event, tag="draw_claimed", frozen=True):
    """A winner confirmed their prize within the claim deadline."""

    outcome = True
    tier: int = 1


class BookingMade(Event, tag="booking_made", frozen=True):
    """A visitor booked what a tool's call to action offers (app/bookings)."""

    outcome = True
    service: Short = ""
    day: Short = ""
    part: Short = ""


class BookingChanged(Event, tag="booking_changed", frozen=True):
    outcome = True
    service: Short = ""
    day: Short = ""
    part: Short = ""


class BookingCancelled(Event, tag="booking_cancelled", frozen=True):
    outcome = True
    service: Short = ""


ALL_EVENTS: tuple[type[Event], ...] = (
    LinkOpened,
    ToolViewed,
    StepStarted,
    StepCompleted,
    TeaserShown,
    GateShown,
    CodeSent,
    CodeRejected,
    PhoneVerified,
    LeadCreated,
    LeadMerged,
    ResultShown,
    Download,
    Shared,
    CtaClicked,
    ConsentWithdrawn,
    DataDeleted,
    GrabClicked,
    GrabWon,
    GrabRefused,
    GrabWaitlisted,
    VoucherRedeemed,
    VoucherRedemptionUndone,
    DrawEntered,
    DrawRefused,
    DrawWon,
    DrawClaimed,
    BookingMade,
    BookingChanged,
    BookingCancelled,
)
EVENT_NAMES: tuple[str, ...] = tuple(str(e.__struct_config__.tag) for e in ALL_EVENTS)
# Steps a page reports from the browser; everything else is recorded by the server itself.
CLIENT_EVENTS = StepStarted | StepCompleted | Shared | CtaClicked | Download
# A tool's funnel is its kind's: ``Kind.funnel`` (app/tools/kinds.py).


class ClientEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One event as posted to POST /api/v1/events: ``{"event": {"name": ..., ...}, "tool"}``."""

    event: CLIENT_EVENTS
    tool: Annotated[str, msgspec.Meta(max_length=64)] = ""


class EventBatch(msgspec.Struct, kw_only=True, frozen=True):
    events: Annotated[list[ClientEvent], msgspec.Meta(min_length=1, max_length=100)]


class EventsAccepted(msgspec.Struct, kw_only=True, frozen=True):
    """202 from POST /api/v1/events."""

    accepted: int


class EventContext(msgspec.Struct, kw_only=True, frozen=True):
    """Who and where: filled by the edge from the visitor and the tool being shown."""

    visitor_id: int | None = None
    lead_id: int | None = None
    link_id: int | None = None
    platform: str = "browser"
    tool_id: int | None = None
    tool_version: int | None = None
