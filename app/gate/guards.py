"""``requires_phone``: the guard for anything behind the gate (grabs, draws, downloads)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.gate.service import GateRequired
from app.visitors import service as visitors
from app.visitors.web import public_id_from


async def requires_phone(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """The visitor has authorised a phone (one authorisation opens every gate)."""
    state = connection.app.state
    public_id = public_id_from(state.settings, connection.scope)
    if public_id is not None:
        async with state.sessionmaker() as db:
            visitor = await visitors.find(db, public_id)
        if visitor is not None and visitor.lead_id is not None:
            return
    raise GateRequired()
