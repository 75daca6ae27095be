"""The draw's visitor page at /t/{slug}: its context (state, countdown, count, the visitor's
entry and prizes, the share link, the gate) for templates/tools/draw.html, and its panel alone
(templates/draws/_panel.html) for the page's live refresh."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time
from app.core.i18n import gettext as _
from app.core.qr import qr_data_uri
from app.core.state import part
from app.draws.schemas import STATE_LABELS, DrawStatus, EnterAnswer
from app.draws.service import Draws, MyEntry
from app.gate.pending import pending_for
from app.gate.views import gate_context
from app.settings import Settings
from app.visitors.web import public_id_from

PAGE = "tools/draw.html"
PANEL = "draws/_panel.html"


def site_url(request: Request[Any, Any, Any], path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{path}"


def common(request: Request[Any, Any, Any], status: DrawStatus) -> dict[str, Any]:
    """What every public page of a draw shows: state, count, where the live status is."""
    slug = status.slug
    return {
        "status": status,
        "state_label": STATE_LABELS[status.state],
        "state_labels_json": json.dumps({k: _(v) for k, v in STATE_LABELS.items()}),
        "status_url": f"/api/v1/draws/{slug}",
        "events_url": f"/api/v1/draws/{slug}/events",
        "verify_path": f"/t/{slug}/verify",
        "verify_url": site_url(request, f"/t/{slug}/verify"),
        "verify_short": site_url(request, f"/t/{slug}/verify").split("://", 1)[-1],
        "starts_at_text": china_time(status.starts_at),
        "ends_at_text": china_time(status.ends_at),
        "drawn_tiers": [t for t in status.tiers if t.drawn],
    }


def won(mine: MyEntry | None) -> list[Any]:
    """The prizes the visitor may still claim."""
    return [p for p in mine.prizes if p.status == "won"] if mine else []


async def page(
    request: Request[Any, Any, Any],
    draws: Draws,
    slug: str,
    db: AsyncSession,
    *,
    entered: EnterAnswer | None = None,
    error: str | None = None,
    status: int = 200,
    template: str = PAGE,
) -> Template:
    settings = part(request, Settings)
    info, state = await draws.read(slug, db)
    visitor = public_id_from(settings, request.scope)
    who = await draws.entrant(visitor, db)
    mine = await draws.mine(db, info, who) if who is not None else None
    pending = pending_for(request, visitor) if who is None and visitor else None
    sharing = mine is not None and info.referrals and state.state in ("scheduled", "open")
    share = site_url(request, f"/t/{slug}?ref={mine.code}") if sharing and mine else ""
    context_ = {
        **common(request, state),
        "draw": info,
        "authorised": who is not None,
        "mine": mine,
        "to_claim": won(mine),
        "entered": entered,
        "error": error,
        "ref": request.query_params.get("ref", "")[:16],
        "share_url": share,
        "share_qr": qr_data_uri(share) if share else "",
        "show_gate": who is None,
        **gate_context(settings, next=f"/t/{slug}", pending=pending),
    }
    return Template(template, context=context_, status_code=status)
