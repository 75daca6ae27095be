"""Database engines, shared by the app, the CLI and the migrations.

Two engines per process:

- the **main** engine holds the durable record. A request uses at most one of its
  connections at a time — its session's — so a request never waits on itself (on SQLite a
  second connection writing while the session holds the write lock would wait for a lock its
  own request holds; on PostgreSQL requests holding one pooled connection while waiting for a
  second would starve the pool). ``RequestScope`` notices a request that breaks the rule and
  logs it; the test suite fails on any such record.
- the **side** engine holds short-lived counters: rate limits, cooldowns and one-time codes.
  Their writes must survive the request's rollback (a failed login still counts), so they
  commit on their own, through their own connections: on SQLite a file of their own beside the
  main one (its own write lock), on PostgreSQL a small pool of its own on the same database.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Table, event
from sqlalchemy.engine.url import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from app.core.scope import current_request, violations
from app.settings import Settings

log = logging.getLogger("leadkit.db")
_APP = Path(__file__).resolve().parent.parent

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def make_engine(settings: Settings) -> AsyncEngine:
    """The main engine for ``settings.database_url``; SQLite gets WAL and sane pragmas."""
    engine = _engine(make_url(settings.database_url), pool_size=settings.db_pool_size)
    event.listen(engine.sync_engine.pool, "checkout", _on_checkout)
    event.listen(engine.sync_engine.pool, "checkin", _on_checkin)
    return engine


def make_side_engine(settings: Settings) -> AsyncEngine:
    """The engine for counters and one-time codes (see the module docstring)."""
    return _engine(side_url(settings.database_url), pool_size=settings.db_side_pool_size)


def side_url(database_url: str) -> URL:
    """SQLite: ``leadkit.db`` → ``leadkit-side.db`` beside it; PostgreSQL: the same database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return url
    main = Path(url.database)
    return url.set(database=str(main.with_name(f"{main.stem}-side{main.suffix or '.db'}")))


def _engine(url: URL, *, pool_size: int) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    # A fixed pool: under a rush, overflow connections would be opened and closed again for
    # every burst (a PostgreSQL backend forked each time); waiting for a pooled one is cheaper.
    # No ping on checkout (a round trip per request): a server restart or failover is noticed
    # by the first statement that fails, which invalidates the whole pool at once.
    return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_recycle=3600)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # aiosqlite's adapter opens a transaction lazily; pragmas must run outside one.
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


async def prepare_side(side: AsyncEngine, main: AsyncEngine, tables: Sequence[Table]) -> None:
    """Create the side tables when the side store is a file of its own (SQLite). On
    PostgreSQL they are in the main database, made by the migrations."""
    if side.url == main.url:
        return
    # IF NOT EXISTS: every worker process of a server runs this at the same moment.
    async with side.begin() as conn:
        for table in tables:
            await conn.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                await conn.execute(CreateIndex(index, if_not_exists=True))


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True, slots=True)
class Storage:
    """Where the process keeps things: the main and side engines, sessions of the main one,
    and Redis when configured."""

    engine: AsyncEngine
    side_engine: AsyncEngine
    sessionmaker: async_sessionmaker
    redis: Redis | None


# One connection per request, watched (the request scope itself: app/core/scope.py).


def _on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
    scope = current_request()
    if scope is None:
        return
    if scope.held:
        # The project's own frames say where; the library's dozens in between do not.
        frames = [f for f in traceback.extract_stack()[:-1] if f"{_APP}" in f.filename]
        where = "".join(traceback.format_list(frames[-8:]))
        message = f"request {scope.path} took a second database connection while holding one"
        violations.append(f"{message}\n{where}")
        log.error("%s (one connection per request; see docs/development.md)\n%s", message, where)
    scope.held += 1
    record.info["leadkit_scope"] = scope


def _on_checkin(_dbapi: Any, record: Any) -> None:
    scope = record.info.pop("leadkit_scope", None)
    if scope is not None:
        scope.held -= 1
