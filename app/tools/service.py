"""Tools: look up what is published. Editing and kinds' own rules live with each kind."""

from __future__ import annotations

import datetime as dt
import time
import weakref

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import defer

from app.core.errors import Conflict, NotFound
from app.core.i18n import N_
from app.tools.models import Tool, ToolVersion

KINDS = ("calculator", "guide", "grab", "draw")


# Published tools, per database, for a second: the one query every visitor page made. Publishing
# in this process forgets the slug at once; other worker processes see a change within
# PUBLISHED_TTL seconds. Entries are detached rows: read their columns, never their deferred
# draft/definition (``definition`` loads that).
PUBLISHED_TTL = 1.0
_published: weakref.WeakKeyDictionary[AsyncEngine, dict[str, tuple[float, Tool, ToolVersion]]] = (
    weakref.WeakKeyDictionary()
)


_definitions: dict[tuple[object, ...], dict] = {}


def _published_cache(db: AsyncSession) -> dict[str, tuple[float, Tool, ToolVersion]] | None:
    bind = db.bind
    return _published.setdefault(bind, {}) if isinstance(bind, AsyncEngine) else None


def forget(db: AsyncSession, slug: str) -> None:
    """Call after a tool's status or current version changes."""
    cache = _published_cache(db)
    if cache is not None:
        cache.pop(slug, None)


async def published(db: AsyncSession, slug: str) -> tuple[Tool, ToolVersion]:
    """The tool at ``slug`` and its current version; NotFound unless published."""
    if not slug or len(slug) > 64:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    cache = _published_cache(db)
    hit = cache.get(slug) if cache is not None else None
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    # The draft and the version's definition are large JSON documents a visitor's page rarely
    # needs (calculators are compiled once per version): load them only on demand.
    row = (
        await db.execute(
            select(Tool, ToolVersion)
            .options(defer(Tool.draft), defer(ToolVersion.definition))
            .join(
                ToolVersion,
                (ToolVersion.tool_id == Tool.id) & (ToolVersion.number == Tool.current_version),
            )
            .where(Tool.slug == slug, Tool.status == "published")
        )
    ).first()
    if row is None:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    if cache is not None:
        cache[slug] = (time.monotonic() + PUBLISHED_TTL, row[0], row[1])
    return row[0], row[1]


async def definition(db: AsyncSession, version: ToolVersion) -> dict:
    """The version's definition, loading it if ``published`` left it out."""
    if "definition" in version.__dict__:
        return dict(version.definition)
    # Versions never change: keep recent ones (the row's id and publication time name it).
    key = (version.id, version.tool_id, version.number, version.published_at)
    found = _definitions.get(key)
    if found is None:
        found = await db.scalar(select(ToolVersion.definition).where(ToolVersion.id == version.id))
        if found is None:
            raise NotFound(N_("This tool does not exist or is no longer available."))
        _definitions[key] = found
        if len(_definitions) > 256:
            del _definitions[next(iter(_definitions))]
    return dict(found)


async def version(db: AsyncSession, tool_id: int, number: int) -> ToolVersion:
    found = (
        await db.execute(
            select(ToolVersion).where(ToolVersion.tool_id == tool_id, ToolVersion.number == number)
        )
    ).scalar()
    if found is None:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    return found


async def find_published(db: AsyncSession, slug: str) -> Tool | None:
    """The published tool at ``slug``, or None (for attributing events, never for pages)."""
    return (
        await db.execute(select(Tool).where(Tool.slug == slug, Tool.status == "published"))
    ).scalar()


async def list_published(db: AsyncSession) -> list[Tool]:
    rows = await db.execute(select(Tool).where(Tool.status == "published").order_by(Tool.id))
    return list(rows.scalars())


async def slugs(db: AsyncSession) -> list[str]:
    return list((await db.execute(select(Tool.slug).order_by(Tool.slug))).scalars())


async def create_and_publish(
    db: AsyncSession, *, slug: str, kind: str, title: str, definition: dict, by: str = ""
) -> Tool:
    """Create a tool and publish its first version (demo content, imports)."""
    if kind not in KINDS:
        raise Conflict(N_("Unknown tool kind."))
    exists = await db.scalar(select(Tool.id).where(Tool.slug == slug))
    if exists is not None:
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
