"""SQL that PostgreSQL and SQLite spell differently, written once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.errors import NotFound

T = TypeVar("T")

UpsertInsert = Callable[[Any], postgresql.Insert | sqlite.Insert]


async def get_or_404(db: AsyncSession, model: type[T], key: int, message: str) -> T:
    """The row of ``model`` whose primary key is ``key``; NotFound (404) with ``message``
    (an English msgid) when there is none."""
    row = await db.get(model, key)
    if row is None:
        raise NotFound(message)
    return row


def upsert_insert(bind: AsyncEngine | AsyncConnection | Dialect) -> UpsertInsert:
    """The database's own ``insert()``, the one with ``on_conflict_do_update`` and
    ``on_conflict_do_nothing`` (both dialects name their arguments alike: ``index_elements``,
    ``set_``, ``where``). Anything but PostgreSQL is SQLite here."""
    dialect = bind if isinstance(bind, Dialect) else bind.dialect
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert
