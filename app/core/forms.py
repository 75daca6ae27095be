"""A form refused by a rule is shown again with the rule's message — written once, here.

    async with catch_refusal(db_session) as refused:
        await service.create_account(db_session, staff, data, ip)
    if refused:
        return await page(status=refused.status, error=refused.message, form=data)
    return await page()

The page shown again carries the error's status (4xx), so the unit of work rolls back what the
attempt wrote (app/db/uow.py): no route commits or rolls back by hand. A refusal that must
leave a trace (an audited refused redemption) calls ``keep(db)`` in its service and is shown
the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import DomainError
from app.core.handlers import retry_headers


class Refusal:
    """What ``catch_refusal`` caught: falsy until a rule refused the attempt. Until then its
    ``message`` is None and its ``status`` 200, so a page can show it either way."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: DomainError | None = None

    def __bool__(self) -> bool:
        return self.error is not None

    @property
    def message(self) -> str | None:
        """The error's message in the request's language."""
        return self.error.translated if self.error is not None else None

    @property
    def status(self) -> int:
        return self.error.status if self.error is not None else 200

    @property
    def fields(self) -> dict[str, str]:
        """The refused fields (name → reason code)."""
        return self.error.fields if self.error is not None else {}

    @property
    def retry_after(self) -> int:
        """Seconds to wait before trying again; 0 when the error names none."""
        return int(getattr(self.error, "retry_after", 0) or 0)

    @property
    def headers(self) -> dict[str, str] | None:
        return retry_headers(self.error) if self.error is not None else None


@asynccontextmanager
async def catch_refusal(db: AsyncSession | None = None) -> AsyncIterator[Refusal]:
    """Catch the ``DomainError`` of the block into the ``Refusal`` it yields.

    Pass the request's session when the page shown again reads the database: a service that
    turns a failed flush into a refusal (a unique key that lost a race becomes a Conflict)
    leaves the transaction dead, and nothing could be read from it. That one is rolled back
    here, where it is certain the answer is a refusal — the edge would roll it back anyway."""
    refused = Refusal()
    try:
        yield refused
    except DomainError as exc:
        refused.error = exc
        if db is not None and not db.is_active:
            await db.rollback()
