"""SQL that PostgreSQL and SQLite spell differently, written once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

UpsertInsert = Callable[[Any], postgresql.Insert | sqlite.Insert]


def upsert_insert(bind: AsyncEngine | AsyncConnection | Dialect) -> UpsertInsert:
    """The database's own ``insert()``, the one with ``on_conflict_do_update`` and
    ``on_conflict_do_nothing`` (both dialects name their arguments alike: ``index_elements``,
    ``set_``, ``where``). Anything but PostgreSQL is SQLite here."""
    dialect = bind if isinstance(bind, Dialect) else bind.dialect
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert
