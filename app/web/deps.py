"""Dependencies every route may ask for by name: the app's parts (app/core/state.py), the
client's address, the signed-in staff member and the visitor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from litestar import Request
from litestar.di import Provide

from app.core.crypto import DataCipher
from app.core.ratelimit import RateLimiter
from app.core.state import part
from app.core.web import client_ip
from app.draws.service import Draws
from app.events.service import Tracker
from app.gate.service import Gate
from app.grabs.service import Grabs
from app.settings import Settings
from app.staff.auth import current_staff
from app.staff.schemas import Staff
from app.visitors.web import provide_visitor

T = TypeVar("T")


def _part(kind: type[T]) -> Provide:
    def provide(request: Request[Any, Any, Any]) -> T:
        return part(request, kind)

    provide.__annotations__["return"] = kind  # the signature Litestar reads
    return Provide(provide, sync_to_thread=False)


def provide_ip(request: Request[Any, Any, Any]) -> str:
    return client_ip(request.scope, part(request, Settings).trust_proxy)


def provide_staff(request: Request[Any, Any, Any]) -> Staff | None:
    return current_staff(request)


DEPENDENCIES: dict[str, Provide | Callable[..., Any]] = {
    "settings": _part(Settings),
    "limiter": _part(RateLimiter),  # type: ignore[type-abstract]
    "tracker": _part(Tracker),
    "gate": _part(Gate),
    "cipher": _part(DataCipher),
    "grabs": _part(Grabs),
    "draws": _part(Draws),
    "ip": Provide(provide_ip, sync_to_thread=False),
    "staff": Provide(provide_staff, sync_to_thread=False),
    "visitor": Provide(provide_visitor),
}
