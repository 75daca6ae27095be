"""Dependencies every feature may ask for by name."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from app.core.ratelimit import RateLimiter
from app.core.web import client_ip
from app.settings import Settings
from app.staff.auth import current_staff
from app.staff.schemas import Staff


def provide_settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def provide_limiter(request: Request[Any, Any, Any]) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def provide_ip(request: Request[Any, Any, Any]) -> str:
    return client_ip(request.scope, request.app.state.settings.trust_proxy)


def provide_staff(request: Request[Any, Any, Any]) -> Staff | None:
    return current_staff(request)


DEPENDENCIES = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "limiter": Provide(provide_limiter, sync_to_thread=False),
    "ip": Provide(provide_ip, sync_to_thread=False),
    "staff": Provide(provide_staff, sync_to_thread=False),
}
