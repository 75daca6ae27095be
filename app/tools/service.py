"""Tools: look up what is published. Editing and kinds' own rules live with each kind."""

from __future__ import annotations

import datetime as dt
import time
import weakref
from typing import TypeVar

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.i18n import N_
from app.tools.models import Tool, ToolVersion
from app.tools.schemas import PublishedTool, PublishedVersion

KINDS = ("calculator", "guide", "grab", "draw")

# A kind's own table (a grab's, a draw's): one row per tool, keyed by ``tool_id``.
Row = TypeVar("Row")


# Published tools, per database, for a second: the one query every visitor page made. Publishing
# in this process forgets the slug at once; other worker processes see a change within
# PUBLISHED_TTL seconds. Entries are frozen values (app.tools.schemas), never ORM rows: a row
# belongs to the session that loaded it, and once that session rolls back (any 4xx) the row is
# expired and unreadable by every later request that took it from the cache.
PUBLISHED_TTL = 1.0
_published: weakref.WeakKeyDictionary[
    AsyncEngine, dict[str, tuple[float, PublishedTool, PublishedVersion]]
] = weakref.WeakKeyDictionary()

# Definitions of recent versions, as JSON bytes: each caller decodes its own copy, so no caller
# can change what the next one reads.
_definitions: dict[tuple[object, ...], bytes] = {}
_DEFINITIONS_MAX = 256


def _published_cache(
    db: AsyncSession,
) -> dict[str, tuple[float, PublishedTool, PublishedVersion]] | None:
    bind = db.bind
    return _published.setdefault(bind, {}) if isinstance(bind, AsyncEngine) else None


def forget(db: AsyncSession, slug: str) -> None:
    """Call after a tool's status or current version changes."""
    cache = _published_cache(db)
    if cache is not None:
        cache.pop(slug, None)


async def published(db: AsyncSession, slug: str) -> tuple[PublishedTool, PublishedVersion]:
    """The tool at ``slug`` and its current version; NotFound unless published."""
    if not slug or len(slug) > 64:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    cache = _published_cache(db)
    hit = cache.get(slug) if cache is not None else None
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    # Columns, not rows: the draft and the definition are large JSON documents a visitor's
    # page rarely needs (calculators are compiled once per version).
    row = (
        await db.execute(
            select(
                Tool.id,
                Tool.slug,
                Tool.kind,
                Tool.title,
                Tool.status,
                ToolVersion.id,
                ToolVersion.number,
                ToolVersion.published_at,
                ToolVersion.published_by,
            )
            .join(
                ToolVersion,
                (ToolVersion.tool_id == Tool.id) & (ToolVersion.number == Tool.current_version),
            )
            .where(Tool.slug == slug, Tool.status == "published")
        )
    ).first()
    if row is None:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    tool = PublishedTool(
        id=row[0], slug=row[1], kind=row[2], title=row[3], status=row[4], current_version=row[6]
    )
    version = PublishedVersion(
        id=row[5], tool_id=row[0], number=row[6], published_at=row[7], published_by=row[8]
    )
    if cache is not None:
        cache[slug] = (time.monotonic() + PUBLISHED_TTL, tool, version)
    return tool, version


async def definition(db: AsyncSession, version: PublishedVersion) -> dict:
    """The version's definition: a fresh copy the caller may change."""
    found = _definitions.get(version.key)
    if found is None:
        data = await db.scalar(select(ToolVersion.definition).where(ToolVersion.id == version.id))
        if data is None:
            raise NotFound(N_("This tool does not exist or is no longer available."))
        found = _definitions[version.key] = msgspec.json.encode(data)
        while len(_definitions) > _DEFINITIONS_MAX:
            del _definitions[next(iter(_definitions))]
    return msgspec.json.decode(found, type=dict)


async def version(db: AsyncSession, tool_id: int, number: int) -> PublishedVersion:
    """Version ``number`` of a tool (published now or earlier); NotFound if there is none."""
    row = (
        await db.execute(
            select(ToolVersion.id, ToolVersion.published_at, ToolVersion.published_by).where(
                ToolVersion.tool_id == tool_id, ToolVersion.number == number
            )
        )
    ).first()
    if row is None:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    return PublishedVersion(
        id=row[0], tool_id=tool_id, number=number, published_at=row[1], published_by=row[2]
    )


async def find_published(db: AsyncSession, slug: str) -> PublishedTool | None:
    """The published tool at ``slug``, or None (for attributing events, never for pages)."""
    try:
        return (await published(db, slug))[0]
    except NotFound:
        return None


async def slugs(db: AsyncSession) -> list[str]:
    return list((await db.execute(select(Tool.slug).order_by(Tool.slug))).scalars())


async def create_and_publish(
    db: AsyncSession, *, slug: str, kind: str, title: str, definition: dict, by: str = ""
) -> Tool:
    """Create a tool and publish its first version (demo content, imports)."""
    if kind not in KINDS:
        raise Conflict(N_("Unknown tool kind."))
    if await tool_id(db, slug) is not None:
        raise Conflict(N_("This slug is already taken."))
    tool = Tool(
        slug=slug, kind=kind, title=title, status="published", current_version=1, draft=definition
    )
    db.add(tool)
    await db.flush()
    db.add(
        ToolVersion(
            tool_id=tool.id,
            number=1,
            definition=definition,
            published_at=dt.datetime.now(dt.UTC),
            published_by=by,
        )
    )
    await db.flush()
    return tool


async def publish_version(
    db: AsyncSession, tool: Tool, definition: dict, by: str = ""
) -> ToolVersion:
    """Publish ``definition`` as the tool's next version (its title follows the definition's)."""
    last = await db.scalar(
        select(func.max(ToolVersion.number)).where(ToolVersion.tool_id == tool.id)
    )
    version = ToolVersion(
        tool_id=tool.id,
        number=(last or 0) + 1,
        definition=definition,
        published_at=dt.datetime.now(dt.UTC),
        published_by=by[:64],
    )
    db.add(version)
    tool.current_version = version.number
    tool.status = "published"
    forget(db, tool.slug)
    tool.draft = definition
    tool.title = str(definition.get("title", tool.title))[:128]
    await db.flush()
    return version


async def seed_once(
    db: AsyncSession, *, slug: str, kind: str, title: str, definition: dict
) -> None:
    """Publish demo content under ``slug`` unless a tool already holds the slug."""
    if await tool_id(db, slug) is None:
        await create_and_publish(
            db, slug=slug, kind=kind, title=title, definition=definition, by="demo"
        )


async def tool_id(db: AsyncSession, slug: str) -> int | None:
    """The id of the tool at ``slug`` (of any kind, published or not), or None."""
    return await db.scalar(select(Tool.id).where(Tool.slug == slug))


async def kind_row(
    db: AsyncSession, model: type[Row], kind: str, slug: str, *, published: bool = False
) -> tuple[Tool, Row] | None:
    """The tool of ``kind`` at ``slug`` (only if published, with ``published``) and its row in
    the kind's table ``model``; None when there is none."""
    query = (
        select(Tool, model)
        .join(model, model.tool_id == Tool.id)  # type: ignore[attr-defined]
        .where(Tool.slug == slug, Tool.kind == kind)
    )
    if published:
        query = query.where(Tool.status == "published")
    row = (await db.execute(query)).first()
    return None if row is None else (row[0], row[1])
