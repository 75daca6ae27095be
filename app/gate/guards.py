"""``requires_phone``: the guard for anything behind the gate (grabs, draws, downloads)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.core.state import part
from app.db.engine import Storage
from app.gate.service import GateRequired
from app.settings import Settings
from app.visitors import service as visitors
from app.visitors.web import public_id_from


async def requires_phone(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """The visitor has authorised a phone (one authorisation opens every gate)."""
    public_id = public_id_from(part(connection, Settings), connection.scope)
    if public_id is not None:
        async with part(connection, Storage).sessionmaker() as db:
            visitor = await visitors.find(db, public_id)
        if visitor is not None and visitor.lead_id is not None:
            return
    raise GateRequired()
