"""The app's long-lived parts (settings, storage, tracker, gate, …), found by their type.

The composition root (``app/asgi.py``) puts each part in the app state once, under its type;
anyone holding the app or a connection gets it back typed with ``part(conn, Tracker)``. No
string keys, and the core never needs to know the features' types.
"""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.datastructures import State

T = TypeVar("T")


def _key(kind: type) -> str:
    return f"part:{kind.__module__}.{kind.__qualname__}"


def put(state: State, kind: type[T], value: T) -> None:
    """Register ``value`` as the app's ``kind`` (a class or a runtime-checkable protocol)."""
    if not isinstance(value, kind):
        raise TypeError(f"{value!r} is not a {kind.__qualname__}")
    state[_key(kind)] = value


def part(where: Litestar | ASGIConnection[Any, Any, Any, Any], kind: type[T]) -> T:
    """The app's ``kind``, as registered by ``put``."""
    app = where if isinstance(where, Litestar) else where.app
    value = app.state[_key(kind)]
    assert isinstance(value, kind)
    return value
