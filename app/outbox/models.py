"""One outgoing message: written in the transaction of what causes it, sent by the sender."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

PENDING = "pending"
SENT = "sent"
DEAD = "dead"


class OutboxMessage(BigIntBase):
    """A message waiting to leave, sent, or given up on (``dead``). ``key`` (unique when set)
    names its cause, so the same cause never sends twice. A sender claims a due pending row by
    setting ``locked_until``/``locked_by`` (its lease); a lease that runs out (the worker died)
    makes the row due again. ``last_error`` is short and never holds a secret or a full phone
    number."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        # The sender's scan: pending rows by the time they are due.
        Index("ix_outbox_message_status_next_attempt_at", "status", "next_attempt_at"),
        # The staff page: newest first.
        Index("ix_outbox_message_created_at", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    locked_by: Mapped[str] = mapped_column(String(64), default="")
    last_error: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
