"""The request scope: what one HTTP request holds, from the outermost middleware
(app/core/web.py) to its last byte — the database connections it has checked out (one at a
time: app/db/engine.py watches) and the status its route answered with (the unit of work
commits on it: app/db/uow.py). Background tasks run outside any scope."""

from __future__ import annotations

import contextvars


class RequestScope:
    """What one request holds. Set around each HTTP request by ``enter_request``."""

    __slots__ = ("held", "path", "status")

    def __init__(self, path: str) -> None:
        self.path = path
        self.held = 0
        # The status the route answered with (app/db/uow.py commits on it).
        self.status: int | None = None


_scope: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "leadkit_request_scope", default=None
)
# Every breach of the rule seen in this process (the test suite fails on any).
violations: list[str] = []


def current_request() -> RequestScope | None:
    return _scope.get()


def enter_request(path: str) -> contextvars.Token[RequestScope | None]:
    return _scope.set(RequestScope(path))


def leave_request(token: contextvars.Token[RequestScope | None]) -> None:
    _scope.reset(token)
