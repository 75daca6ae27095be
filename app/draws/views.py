"""The draw's visitor page at /t/{slug}: its context (state, count, the visitor's entry and
prizes, the gate) for templates/tools/draw.html."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import china_time
from app.core.state import part
from app.draws.schemas import STATE_LABELS, EnterAnswer
from app.draws.service import Draws
from app.gate.pending import pending_for
from app.gate.views import gate_context
from app.settings import Settings
from app.visitors.web import public_id_from


async def page(
    request: Request[Any, Any, Any],
    draws: Draws,
    slug: str,
    db: AsyncSession,
    *,
    entered: EnterAnswer | None = None,
    error: str | None = None,
    status: int = 200,
) -> Template:
    settings = part(request, Settings)
    info = await draws.info(slug, db)
    state = await draws.status(slug, db)
    visitor = public_id_from(settings, request.scope)
    who = await draws.entrant(visitor, db)
    mine = await draws.mine(db, info, who) if who is not None else None
    pending = pending_for(request, visitor) if who is None and visitor else None
    context = {
        "draw": info,
        "status": state,
        "state_label": STATE_LABELS[state.state],
        "authorised": who is not None,
        "mine": mine,
        "entered": entered,
        "error": error,
        "ref": request.query_params.get("ref", "")[:16],
        "starts_at_text": china_time(info.starts_at),
        "ends_at_text": china_time(info.ends_at),
        "show_gate": who is None,
        **gate_context(settings, next=f"/t/{slug}", pending=pending),
    }
    return Template("tools/draw.html", context=context, status_code=status)
