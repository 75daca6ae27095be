"""Dependencies every feature may ask for by name."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from app.core.crypto import DataCipher
from app.core.ratelimit import RateLimiter
from app.core.web import client_ip
from app.events.service import Tracker
from app.gate.service import Gate
from app.settings import Settings
from app.staff.auth import current_staff
from app.staff.schemas import Staff
from app.visitors.web import provide_visitor


def provide_settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def provide_limiter(request: Request[Any, Any, Any]) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def provide_ip(request: Request[Any, Any, Any]) -> str:
    return client_ip(request.scope, request.app.state.settings.trust_proxy)


def provide_tracker(request: Request[Any, Any, Any]) -> Tracker:
    tracker: Tracker = request.app.state.tracker
    return tracker


def provide_gate(request: Request[Any, Any, Any]) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


def provide_cipher(request: Request[Any, Any, Any]) -> DataCipher:
    cipher: DataCipher = request.app.state.cipher
    return cipher


def provide_staff(request: Request[Any, Any, Any]) -> Staff | None:
    return current_staff(request)


DEPENDENCIES = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "limiter": Provide(provide_limiter, sync_to_thread=False),
    "ip": Provide(provide_ip, sync_to_thread=False),
    "staff": Provide(provide_staff, sync_to_thread=False),
    "tracker": Provide(provide_tracker, sync_to_thread=False),
    "gate": Provide(provide_gate, sync_to_thread=False),
    "cipher": Provide(provide_cipher, sync_to_thread=False),
    "visitor": Provide(provide_visitor),
}
