"""A draw's public pages beyond /t/{slug}: the live status stream, the visitor's panel (the
page's live refresh), the claim page, the big screen (/t/{slug}/screen, an OBS browser source)
and the verify page (/t/{slug}/verify, the draw recomputed in its own server call)."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time, now
from app.core.live import Topic
from app.core.qr import qr_data_uri
from app.core.streams import live_status
from app.draws.checking import CHECK_LABELS, check
from app.draws.drawing import NotDrawn
from app.draws.proof import MODE_DRAND, encode_proof
from app.draws.schemas import DrawSlug, DrawStatus
from app.draws.service import Draws
from app.draws.views import PANEL, common, page, won
from app.settings import Settings
from app.tools.api import events_api
from app.visitors.web import public_id_from

log = logging.getLogger("leadkit.draws")
SHARED_SECONDS = 1.0  # how long one status read may serve other streams when nothing changed
POLL_SECONDS = 0.5  # without Redis: how often a process looks for other processes' changes
POLL_IDLE_SECONDS = 10.0  # ... for as long as one of its streams asked for the draw this recently


class SharedStatus:
    """One status read serves every stream of this process that a change wakes: a thousand
    open pages make one query per change, not a thousand. A read is dropped the moment the
    live hub hears of a change to its draw (``listeners`` run before any stream wakes), so a
    woken stream never reuses a read from before the change.

    Without Redis the hub hears only of this process's changes: while a stream follows a draw,
    the process reads the draw's version (its host actions' turn and its tally, one small
    query) every ``POLL_SECONDS`` and announces a change here when it moved — the host's tap
    in another worker reaches these streams within about half a second, not at their next
    periodic wake-up."""

    def __init__(self, draws: Draws) -> None:
        self.draws = draws
        self.reads: dict[int, tuple[float, asyncio.Future[DrawStatus]]] = {}
        self.asked: dict[int, float] = {}  # draw id -> when a stream last asked (polling)
        self.polls: dict[int, asyncio.Task[None]] = {}
        draws.live.listeners.append(self.forget)

    def forget(self, topic: Topic) -> None:
        if topic[0] == "draw":
            self.reads.pop(topic[1], None)

    async def status(self, draw_id: int, slug: str) -> DrawStatus:
        at = time.monotonic()
        if self.draws.entries is None:  # no Redis: no word from other processes
            self.asked[draw_id] = at
            if draw_id not in self.polls:
                self.polls[draw_id] = self.draws.spawn(self._poll(draw_id))
        held = self.reads.get(draw_id)
        if held is None or at - held[0] > SHARED_SECONDS or held[1].cancelled():
            held = (at, asyncio.ensure_future(self.draws.status(slug)))
            self.reads[draw_id] = held
        try:
            return await asyncio.shield(held[1])
        except Exception:
            if self.reads.get(draw_id) is held:
                del self.reads[draw_id]  # a failed read is not shared with the next stream
            raise

    async def _poll(self, draw_id: int) -> None:
        last: tuple[int, int] | None = None
        try:
            while time.monotonic() - self.asked.get(draw_id, 0.0) < POLL_IDLE_SECONDS:
                version: tuple[int, int] | None
                try:
                    version = await self.draws.version(draw_id)
                except Exception:  # the streams still refresh by themselves
                    log.warning("could not read draw %s's version", draw_id, exc_info=True)
                    version = last
                if last is not None and version != last:
                    self.draws.live.changed(("draw", draw_id), now=True)
                last = version
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self.polls.pop(draw_id, None)
            self.asked.pop(draw_id, None)


_SHARED: weakref.WeakKeyDictionary[Draws, SharedStatus] = weakref.WeakKeyDictionary()


def shared(draws: Draws) -> SharedStatus:
    found = _SHARED.get(draws)
    if found is None:
        found = _SHARED[draws] = SharedStatus(draws)
    return found


def _wait_for(status: DrawStatus) -> float:
    """How long a stream may sleep: until the next change is announced, or the schedule
    opens or closes the entries by itself (nobody announces that)."""
    timeout = 5.0
    if status.starts_in is not None:
        timeout = min(timeout, status.starts_in)
    if status.state == "open" and status.ends_at is not None:
        timeout = min(timeout, (status.ends_at - now()).total_seconds() + 0.2)
    return max(0.2, timeout)


@get(
    **events_api(
        "draws", "the draw", "A draw's live status (server-sent events)", "No draw by that slug."
    )
)
async def draw_events(
    request: Request[Any, Any, Any], slug: DrawSlug, draws: NamedDependency[Draws]
) -> Response[Any]:
    """The draw's live status: state, entrant count, each tier's winners (masked phones)."""
    info = await draws.info(slug)
    reads = shared(draws)
    return live_status(
        request,
        lambda: reads.status(info.id, slug),
        draws.live,
        ("draw", info.id),
        _wait_for,
        # starts_in counts down by itself: a change of it alone is no news.
        news=lambda status: msgspec.structs.replace(status, starts_in=None),
    )


@get("/t/{slug:str}/panel", include_in_schema=False)
async def panel(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
) -> Template:
    """The visitor's panel alone: the page swaps it in when the draw changes state or a tier
    is drawn (a winner sees "you won" without reloading)."""
    return await page(request, draws, slug, db_session, template=PANEL)


@get("/t/{slug:str}/claim")
async def claim_page(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
    settings: NamedDependency[Settings],
) -> Template:
    """The winner confirms their prizes within the deadline: their number (masked) shown,
    a name and an address asked (optional) when a prize is not a voucher."""
    info = await draws.info(slug, db_session)
    who = await draws.entrant(public_id_from(settings, request.scope), db_session)
    mine = await draws.mine(db_session, info, who) if who else None
    open_prizes = won(mine)
    context = {
        "draw": info,
        "who": who,
        "mine": mine,
        "to_claim": open_prizes,
        "claim_by": china_time(min((p.claim_by for p in open_prizes if p.claim_by), default=None)),
        "asks_details": any(info.tiers[p.tier - 1].voucher is None for p in open_prizes),
    }
    return Template("draws/claim.html", context=context)


@get("/t/{slug:str}/screen", include_in_schema=False)
async def screen(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
) -> Template:
    """The big screen (1920x1080, an OBS browser source): no login, nothing personal."""
    info, status = await draws.read(slug, db_session)
    base = common(request, status)
    return Template(
        "draws/screen.html",
        context={**base, "draw": info, "verify_qr": qr_data_uri(base["verify_url"])},
    )


@get("/t/{slug:str}/verify", include_in_schema=False)
async def verify_page(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    draws: NamedDependency[Draws],
    settings: NamedDependency[Settings],
) -> Template:
    """Seed, hashes, drand round, the masked entrant list and the winners recomputed here and
    compared with the announced ones; before the draw, the commitment alone."""
    info, status = await draws.read(slug, db_session)
    context: dict[str, Any] = {**common(request, status), "draw": info, "proof": None}
    try:
        proof = await draws.proof(db_session, slug)
    except NotDrawn:
        return Template("draws/verify.html", context=context)
    result = check(proof, status, trusted_chain=settings.drand_chain)
    context.update(
        proof=proof,
        drand_mode=proof.mode == MODE_DRAND,
        check=result,
        check_labels=CHECK_LABELS,
        bundle_size=len(encode_proof(proof)),
    )
    return Template("draws/verify.html", context=context)


PUBLIC_ROUTES: list[ControllerRouterHandler] = [
    draw_events,
    panel,
    claim_page,
    screen,
    verify_page,
]
