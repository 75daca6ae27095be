"""GET /healthz: liveness plus the state of the database and Redis, for load balancers."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, get
from litestar.response import Response
from litestar.types import ControllerRouterHandler
from sqlalchemy import text

from app.core.api import answer
from app.core.state import part
from app.db.engine import Storage
from app.health.schemas import Health


@get(
    "/healthz",
    summary="Health check",
    tags=["health"],
    responses={503: answer(Health, "The database (or a configured Redis) is down.")},
)
async def healthz(request: Request[Any, Any, Any]) -> Response[Health]:
    """Liveness and the state of the database and Redis: point the load balancer here."""
    state = part(request, Storage)
    body = Health(status="ok", database="ok", redis="absent")
    try:
        async with asyncio.timeout(3), state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure here means "not ready", whatever the driver raised
        body.database = "down"
    if state.redis is not None:
        try:
            async with asyncio.timeout(2):
                await state.redis.ping()
            body.redis = "ok"
        except Exception:
            body.redis = "down"
    healthy = body.database == "ok" and body.redis != "down"
    body.status = "ok" if healthy else "degraded"
    return Response(
        body, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"}
    )


@get("/ping", media_type="text/plain")
async def ping() -> str:
    """The cheapest answer the server gives: the baseline for same-run benchmark ratios."""
    return "ok"


ROUTES: list[ControllerRouterHandler] = [healthz, ping]
