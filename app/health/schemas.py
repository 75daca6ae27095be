"""The health check's answer."""

from __future__ import annotations

from typing import Literal

import msgspec


class Health(msgspec.Struct, kw_only=True):
    """GET /healthz: 200 when healthy, 503 (same body) when the database or Redis is down."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "down"]
    redis: Literal["ok", "absent", "down"]  # absent: embedded mode, no Redis configured
