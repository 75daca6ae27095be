"""Tools: look up what is published. Editing and kinds' own rules live with each kind."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.i18n import N_
from app.tools.models import Tool, ToolVersion

KINDS = ("calculator", "guide", "grab", "draw")


async def published(db: AsyncSession, slug: str) -> tuple[Tool, ToolVersion]:
    """The tool at ``slug`` and its current version; NotFound unless published."""
    if not slug or len(slug) > 64:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    row = (
        await db.execute(
            select(Tool, ToolVersion)
            .join(
                ToolVersion,
                (ToolVersion.tool_id == Tool.id) & (ToolVersion.number == Tool.current_version),
            )
            .where(Tool.slug == slug, Tool.status == "published")
        )
    ).first()
    if row is None:
        raise NotFound(N_("This tool does not exist or is no longer available."))
    return row[0], row[1]


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
