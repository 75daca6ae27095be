"""The unit of work: one session per request, committed once, at the edge.

The transaction rule (docs/development.md):

- A request that needs the database asks for ``db_session``: one session, one connection
  (``app/db/engine.py`` watches that no request takes a second one).
- Services and routes flush, never commit or roll back. When the route has built its
  response, the edge commits if the answer is a success (status below 400) and rolls back
  otherwise. A failed commit is an error answer (the exception handlers render it), never a
  success page over lost data. A route that shows a refused form again returns it with the
  error's status (``catch_refusal``, app/core/forms.py), and the edge rolls the attempt back.
- A refusal that must leave a trace (an audited refused redemption) calls ``keep(db)``: the
  edge then commits although the answer is a 4xx — when the route answers the refusal; a
  raised one rolls back.
- What must happen only once the data is durable (live announcements, cache forgetting, the
  outbox's wake-up) is registered with ``after_commit(db, fn)``; it runs after the commit, in
  any session (requests, background tasks, commands), and is dropped on rollback. Its mirror,
  ``after_rollback(db, fn)``, drops what the process kept of work that did not last (a cache
  filled from the transaction's own uncommitted rows).
- Counters and one-time codes are not part of the unit of work: they commit on their own
  through the side engine, so that a refused request still counts.
- Background tasks, commands and the sign-in middleware open sessions of their own, outside
  any request: each is its own edge and ends its transaction itself, with
  ``async with sessionmaker() as db, db.begin():`` (committed when the block ends, rolled back
  on an error). The services they call still only flush.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from litestar import Response
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from app.core.scope import current_request

log = logging.getLogger("leadkit.db")

_AFTER_COMMIT = "leadkit_after_commit"
_AFTER_ROLLBACK = "leadkit_after_rollback"
_KEEP = "leadkit_keep"


def after_commit(db: AsyncSession, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction of ``db`` has committed (never on rollback)."""
    db.sync_session.info.setdefault(_AFTER_COMMIT, []).append(fn)


def after_rollback(db: AsyncSession, fn: Callable[[], None]) -> None:
    """Run ``fn`` if the current transaction of ``db`` ends without committing: rolled back,
    or closed after a commit that failed (never once it has committed)."""
    db.sync_session.info.setdefault(_AFTER_ROLLBACK, []).append(fn)


def keep(db: AsyncSession) -> None:
    """Commit this request's work even though its answer is a refusal (4xx). The refusal must
    be answered (returned by the route), not raised: a raised error rolls the work back."""
    db.sync_session.info[_KEEP] = True


def _run(hooks: list[Callable[[], None]], what: str) -> None:
    for fn in hooks:
        try:
            fn()
        except Exception:  # the transaction has ended either way; a failed hook must not undo it
            log.exception("%s hook %r failed", what, fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_ROLLBACK, None)
    _run(session.info.pop(_AFTER_COMMIT, []), "after-commit")


@event.listens_for(Session, "after_transaction_end")
def _run_after_rollback(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction decides; a commit has already taken these hooks away.
    if transaction.parent is None:
        _run(session.info.pop(_AFTER_ROLLBACK, []), "after-rollback")


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
            await finish(session, succeeded=status is not None and status < 400)

    return provide_db_session


async def finish(db: AsyncSession, *, succeeded: bool) -> None:
    """End a unit of work as the edge does: commit a success, or a refusal marked ``keep``;
    roll back anything else. (Tests that call services in sessions of their own stand in for
    the edge with it.)"""
    info = db.sync_session.info
    if not (db.in_transaction() or db.new or db.dirty or db.deleted or info.get(_AFTER_COMMIT)):
        return  # nothing read, written or waiting (a page served from caches): nothing to end
    if succeeded or info.get(_KEEP):
        await db.commit()
    else:
        await db.rollback()


async def remember_status(response: Response[Any]) -> Response[Any]:
    """``after_request``: note the status the route answered with, for the unit of work (the
    session's clean-up runs after this and before anything is sent)."""
    scope = current_request()
    if scope is not None:
        # A Response built without a status takes its route's declared one later, and every
        # route here declares a success (2xx/3xx): refusals always carry their status.
        scope.status = response.status_code if response.status_code is not None else 200
    return response
