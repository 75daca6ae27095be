"""Writing to the outbox, and what staff see of it.

``enqueue`` adds a message in the caller's transaction (the transaction rule: the message is
written with what causes it, and a rollback takes both away); once that transaction commits,
every sender running in this process is woken (``after_commit``). Nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import aware, now
from app.core.errors import Conflict
from app.core.i18n import N_
from app.core.sql import get_or_404, upsert_insert
from app.db.uow import after_commit
from app.outbox.models import DEAD, PENDING, SENT, OutboxMessage
from app.staff.audit import audit
from app.staff.schemas import Staff

STATUSES = (PENDING, SENT, DEAD)

# The wake-ups of the senders running in this process (app/outbox/sender.py registers them):
# each is safe to call from any thread.
_WAKERS: set[Callable[[], None]] = set()


def add_waker(fn: Callable[[], None]) -> None:
    _WAKERS.add(fn)


def remove_waker(fn: Callable[[], None]) -> None:
    _WAKERS.discard(fn)


def wake_senders() -> None:
    """Tell this process's senders that a message may be due now (they poll otherwise)."""
    for fn in list(_WAKERS):
        fn()


async def enqueue(
    db: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Add a message of ``kind`` to the outbox in ``db``'s transaction, due at once or at
    ``not_before``; its id. ``key`` names its cause: a message whose key is already in the
    outbox (from any transaction, even one committing at the same moment) is not added and
    None is returned, so a cause that happens again never sends twice."""
    at = now()
    insert = upsert_insert(db.get_bind().dialect)
    added = await db.execute(
        insert(OutboxMessage)
        .values(
            kind=kind,
            key=key,
            payload=payload,
            status=PENDING,
            attempts=0,
            next_attempt_at=aware(not_before) if not_before is not None else at,
            locked_by="",
            last_error="",
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(OutboxMessage.id)
    )
    message_id = added.scalar()
    if message_id is not None:
        after_commit(db, wake_senders)
    return message_id


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    """One message as the staff page shows it: the recipient masked, never the payload."""

    id: int
    kind: str
    status: str
    attempts: int
    recipient: str
    next_attempt_at: dt.datetime | None
    last_error: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


# For staff, by kind (app/outbox/sms.py adds "sms"): its name (a msgid) and how its payload
# names the recipient, masked.
LABELS: dict[str, str] = {}
RECIPIENTS: dict[str, Callable[[dict[str, Any]], str]] = {}


def _row(message: OutboxMessage) -> OutboxRow:
    shown = RECIPIENTS.get(message.kind)
    try:
        recipient = shown(message.payload) if shown is not None else ""
    except (KeyError, TypeError, ValueError):
        recipient = ""
    return OutboxRow(
        id=message.id,
        kind=message.kind,
        status=message.status,
        attempts=message.attempts,
        recipient=recipient,
        next_attempt_at=message.next_attempt_at if message.status == PENDING else None,
        last_error=message.last_error,
        created_at=message.created_at,
        sent_at=message.sent_at,
    )


async def recent(db: AsyncSession, status: str | None = None, limit: int = 100) -> list[OutboxRow]:
    """The latest messages, newest first, of one status or all."""
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return [_row(m) for m in (await db.scalars(query.limit(limit))).all()]


async def counts(db: AsyncSession) -> dict[str, int]:
    """How many messages there are of each status (every status named, zeros included)."""
    rows = await db.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    found = {status: int(count) for status, count in rows.all()}
    return {status: found.get(status, 0) for status in STATUSES}


async def retry(db: AsyncSession, staff: Staff, message_id: int, ip: str = "") -> None:
    """Give a dead message another round of attempts now (audited)."""
    message = await get_or_404(db, OutboxMessage, message_id, N_("No such message."))
    if message.status != DEAD:
        raise Conflict(N_("Only a message that was given up can be retried."))
    await db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == DEAD)
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=now(),
            locked_until=None,
            locked_by="",
        )
    )
    await audit(
        db,
        staff,
        "outbox.retry",
        f"outbox_message:{message_id}",
        {"kind": message.kind, "attempts": message.attempts, "last_error": message.last_error},
        ip,
    )
    after_commit(db, wake_senders)
