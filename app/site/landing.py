"""The home page's tool cards: every published tool with its kind and a line about it."""

from __future__ import annotations

import msgspec
from sqlalchemy import String, case, cast, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tools.kinds import Kinds
from app.tools.models import Tool, ToolVersion

SUMMARY_MAX = 60


class ToolCard(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    title: str
    kind_label: str  # a msgid, translated where shown
    summary: str


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


async def tool_cards(db: AsyncSession, kinds: Kinds) -> list[ToolCard]:
    """Published tools in the order they were made, each with its kind's label and the text
    its kind names as its summary (``Kind.summary_field``), shortened for a card. Only that
    one text is read from each definition (a JSON path the database extracts)."""
    summaries = [
        (Tool.kind == kind.name, ToolVersion.definition[kind.summary_field].as_string())
        for kind in kinds
        if kind.summary_field
    ]
    summary = case(*summaries, else_=literal("")) if summaries else literal("")
    rows = await db.execute(
        select(Tool.slug, Tool.title, Tool.kind, cast(summary, String))
        .join(
            ToolVersion,
            (ToolVersion.tool_id == Tool.id) & (ToolVersion.number == Tool.current_version),
        )
        .where(Tool.status == "published")
        .order_by(Tool.id)
    )
    return [
        ToolCard(
            slug=slug,
            title=title,
            kind_label=kinds[kind].label,
            summary=_shorten(text or ""),
        )
        for slug, title, kind, text in rows.all()
        if kind in kinds  # a kind this installation does not serve is not offered
    ]
