"""What the grab's visitor page shows and records: its context (state, vouchers, gate) and
the funnel events of a tap."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time, now
from app.events.schemas import GrabClicked, GrabRefused, GrabWon
from app.events.service import Tracker
from app.gate.pending import Pending
from app.gate.views import gate_context
from app.grabs.held import HeldVoucher, held, hint_cookie
from app.grabs.schemas import ClaimAnswer, Voucher
from app.grabs.service import Claimed, Grabs
from app.grabs.store import Claimant, GrabInfo, tap_context
from app.settings import Settings


def track_tap(
    tracker: Tracker,
    grab: GrabInfo,
    who: Claimant,
    result: str,
    won_n: int | None,
    replayed: bool,
) -> None:
    """Record one tap of the grab button. ``result`` is the answer's (or "rate_limited");
    ``won_n`` the unit won, if any.

    A rush is thousands of taps a second, most of them the same visitor again: the funnel
    counts distinct visitors per step, so a repeated click or refusal (same visitor, grab and
    reason) is recorded once a minute per process (Tracker.track_once). Every win is recorded.
    """
    ctx = tap_context(grab, who)
    if won_n is not None and not replayed:
        tracker.track(ctx, GrabClicked())
    else:
        tracker.track_once(ctx, GrabClicked())
    if replayed:  # the first answer was counted already
        return
    if won_n is not None:
        # The claim store wrote the win with the claim; the listeners hear of it here.
        tracker.announce(ctx, GrabWon(n=won_n), dt.datetime.now(dt.UTC))
    else:
        tracker.track_once(ctx, GrabRefused(reason=result))


def track_answer(tracker: Tracker, grab: GrabInfo, who: Claimant, claimed: Claimed) -> None:
    answer = claimed.answer
    won = answer.voucher.n if answer.result == "won" and answer.voucher is not None else None
    track_tap(tracker, grab, who, answer.result, won, claimed.replayed)


def fresh_voucher(v: Voucher) -> HeldVoucher:
    """A voucher just won, as its holder sees it (issued, until the durable record says more)."""
    return held(
        code=v.code,
        display=v.display,
        n=v.n,
        status="issued",
        expires_at=v.expires_at,
        at=now(),
        where=v.where,
    )


async def page_context(
    grabs: Grabs,
    settings: Settings,
    grab: GrabInfo,
    who: Claimant | None,
    *,
    answer: ClaimAnswer | None = None,
    error: str | None = None,
    db: AsyncSession | None = None,
    waitlisted: bool | None = None,
    pending: Pending | None = None,
) -> dict[str, Any]:
    """What tools/grab.html and its panel need (through the request's session ``db``, when
    the request has one)."""
    status = await grabs.status(grab.slug, db)
    vouchers = await grabs.vouchers_of(grab, who.phone_hash, db) if who else []
    fresh = answer.voucher if answer is not None else None
    if fresh is not None and all(v.code != fresh.code for v in vouchers):
        vouchers.append(fresh_voucher(fresh))
    can_claim_more = len(vouchers) < grab.per_phone_limit
    return {
        "grab": grab,
        "status": status,
        "authorised": who is not None,
        # The panel carries the gate (and the page counts it as shown) for a visitor without
        # a phone: to grab, or once it is sold out, to join the waiting list.
        "show_gate": who is None,
        "answer": answer,
        "error": error,
        "vouchers": vouchers,
        "can_claim_more": can_claim_more,
        "waitlisted": waitlisted
        if waitlisted is not None
        else (
            who is not None
            and status.state == "sold_out"
            and can_claim_more
            and await grabs.waitlisted(grab, who, db)
        ),
        "idempotency_key": secrets.token_urlsafe(16),
        "starts_at_text": china_time(grab.starts_at),
        "ends_at_text": china_time(grab.ends_at),
        **gate_context(settings, next=f"/t/{grab.slug}", pending=pending),
    }


def panel(
    name: str, context: dict[str, Any], settings: Settings, status_code: int = 200
) -> Template:
    """The grab's page or panel; a visitor shown vouchers gets the 我的券 hint (held.py)."""
    cookies = [hint_cookie(settings, True)] if context["vouchers"] else None
    return Template(name, context=context, status_code=status_code, cookies=cookies)
