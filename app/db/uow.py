"""The unit of work: one session per request, committed once, at the edge.

The transaction rule (docs/development.md):

- A request that needs the database asks for ``db_session``: one session, one connection
  (``app/db/engine.py`` watches that no request takes a second one).
- Services flush, never commit or roll back. When the route has built its response, the edge
  commits if the answer is a success (status below 400) and rolls back otherwise. A failed
  commit is an error answer (the exception handlers render it), never a success page over
  lost data.
- A refusal that must leave a trace (an audited refused redemption) calls ``keep(db)``: the
  edge then commits although the answer is a 4xx.
- What must happen only once the data is durable (live announcements, cache forgetting, the
  outbox's wake-up) is registered with ``after_commit(db, fn)``; it runs after the commit, in
  any session (requests, background tasks, commands), and is dropped on rollback.
- Counters and one-time codes are not part of the unit of work: they commit on their own
  through the side engine, so that a refused request still counts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from litestar import Response
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.core.scope import current_request

log = logging.getLogger("leadkit.db")

_AFTER_COMMIT = "leadkit_after_commit"
_KEEP = "leadkit_keep"


def after_commit(db: AsyncSession, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction of ``db`` has committed (never on rollback)."""
    db.sync_session.info.setdefault(_AFTER_COMMIT, []).append(fn)


def keep(db: AsyncSession) -> None:
    """Commit this request's work even though its answer is a refusal (4xx)."""
    db.sync_session.info[_KEEP] = True


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for fn in session.info.pop(_AFTER_COMMIT, []):
        try:
            fn()
        except Exception:  # the data is committed; a failed announcement must not undo it
            log.exception("after-commit hook %r failed", fn)


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_KEEP, None)


def request_session(sessionmaker: async_sessionmaker) -> Callable[..., Any]:
    """The ``db_session`` dependency: the request's unit of work."""

    async def provide_db_session() -> AsyncGenerator[AsyncSession, None]:
        async with sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            scope = current_request()
            status = scope.status if scope is not None else None
            if (status is not None and status < 400) or session.info.get(_KEEP):
                await session.commit()
            else:
                await session.rollback()

    return provide_db_session


async def remember_status(response: Response[Any]) -> Response[Any]:
    """``after_request``: note the status the route answered with, for the unit of work (the
    session's clean-up runs after this and before anything is sent)."""
    scope = current_request()
    if scope is not None:
        # A Response built without a status takes its route's declared one later, and every
        # route here declares a success (2xx/3xx): refusals always carry their status.
        scope.status = response.status_code if response.status_code is not None else 200
    return response
