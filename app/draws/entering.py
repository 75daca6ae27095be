"""The Redis entry path's answers (with ``REDIS_URL``): the tap decided by one script in Redis
(app/draws/redis_entries.py), answered exactly as the SQL path answers it (app/draws/service.py
``Draws._enter``) — entered, already_entered, not_open, not_eligible — with the same funnel
events; eligibility (a passphrase, a completed tool) is read from SQL first when the draw asks
for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.clock import now
from app.draws import entries
from app.draws.definition import DrawInfo, state_of
from app.draws.entries import Entrant
from app.draws.redis_entries import Limited, RedisEntries
from app.draws.schemas import EnterAnswer, EnterBody
from app.events.schemas import DrawRefused
from app.grabs.store.claims import tap_context

if TYPE_CHECKING:
    from app.draws.service import Draws


async def enter_redis(
    draws: Draws,
    store: RedisEntries,
    info: DrawInfo,
    who: Entrant,
    body: EnterBody,
    limits: list[tuple[str, int, int]],
) -> EnterAnswer:
    """One tap, answered; Limited past a rate limit (counted in the funnel)."""
    at = now()
    ctx = tap_context(info, who)
    open_ = state_of(info, at) == "open"
    reason = None
    if open_ and (info.asks_passphrase or info.requires_tool):
        async with draws.sessionmaker() as db:
            reason = await entries.ineligible(db, info, who, body)
    try:
        decided = await store.enter(
            info, who, code=entries.new_code(), at=at, open_=open_, reason=reason,
            ref=body.ref, limits=limits,
        )  # fmt: skip
    except Limited:
        draws.tracker.track_once(ctx, DrawRefused(reason="rate_limited"))
        raise  # the service's EntryRateLimited
    shown = info.entrants_count if info.closed_at else decided.entrants
    code = decided.code if info.referrals else None
    if decided.result == "entered":
        draws.live.changed(("draw", info.id))  # throttled: one message per burst
        return EnterAnswer(result="entered", entrants=decided.entrants, code=code, chances=1)
    if decided.result == "already_entered":
        return EnterAnswer(
            result="already_entered", entrants=shown, code=code, chances=decided.chances
        )
    refused = "not_open" if decided.result == "not_open" else decided.code
    draws.tracker.track_once(ctx, DrawRefused(reason=refused))
    if decided.result == "not_open":
        return EnterAnswer(result="not_open", entrants=shown)
    return EnterAnswer(
        result="not_eligible",
        reason=decided.code,  # type: ignore[arg-type]
        entrants=shown,
    )
