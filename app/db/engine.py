"""Database engine construction, shared by the app, the CLI and the migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from app.settings import Settings

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def make_engine(settings: Settings) -> AsyncEngine:
    """An async engine for ``settings.database_url``; SQLite gets WAL and sane pragmas."""
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    # A fixed pool: under a rush, overflow connections would be opened and closed again for
    # every burst (a PostgreSQL backend forked each time); waiting for a pooled one is cheaper.
    # No ping on checkout (a round trip per request): a server restart or failover is noticed
    # by the first statement that fails, which invalidates the whole pool at once.
    kwargs.update(pool_size=settings.db_pool_size, max_overflow=0, pool_recycle=3600)
    return create_async_engine(url, **kwargs)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # aiosqlite's adapter opens a transaction lazily; pragmas must run outside one.
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
