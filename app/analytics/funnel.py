"""A tool's funnel: distinct visitors per step of the tool's kind (``Kind.funnel``, declared
by each kind in its kind.py), by account or channel.

Counted by the database with GROUP BY, in two queries (the groups and the total; a visitor who
came through two links counts once in each group but once in the total). Plain SQL that
SQLite and PostgreSQL both run.

The gate records its events (code sent, phone verified) for the visitor, not for a tool, since
one authorisation opens every gate. Such events count for the tool the visitor last viewed
before them; events that name their tool count for that tool.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
from sqlalchemy import Select, and_, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.events.models import FunnelEvent
from app.links.models import Account, TrackedLink

Breakdown = Literal["account", "channel", "none"]
BREAKDOWNS: tuple[str, ...] = ("account", "channel", "none")
# Group key of events that came through no tracked link.
UNATTRIBUTED = ""


class FunnelRow(msgspec.Struct, kw_only=True, frozen=True):
    """One row of the table: ``counts[i]`` visitors reached ``steps[i]``; conversions are
    percentages (one decimal), None where there is nothing to divide by."""

    key: str  # account id or channel code; UNATTRIBUTED; "total"
    name: str  # account name (empty for channels: the template labels the code)
    kind: str  # account kind
    counts: list[int]
    from_previous: list[float | None]
    from_first: list[float | None]


class Funnel(msgspec.Struct, kw_only=True, frozen=True):
    steps: tuple[str, ...]
    reported: list[bool]  # steps this tool reported at all in the range
    by: str
    groups: list[FunnelRow]
    total: FunnelRow


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _row(key: str, name: str, kind: str, counts: list[int], reported: list[bool]) -> FunnelRow:
    # Conversion is from the previous step some visitor reached in the range: a step nobody
    # reached (``reported`` false: a grab never opened, a guide without a download) gets no
    # conversion at all, and the next step converts from the one before it, not from 0.
    previous: list[float | None] = []
    first: list[float | None] = []
    last: int | None = None
    for count, seen in zip(counts, reported, strict=True):
        previous.append(percent(count, last) if seen and last is not None else None)
        first.append(percent(count, counts[0]) if seen else None)
        if seen:
            last = count
    return FunnelRow(
        key=key, name=name, kind=kind, counts=counts, from_previous=previous, from_first=first
    )


def _tool_events(tool_id: int, steps: tuple[str, ...], start: dt.datetime, end: dt.datetime) -> Any:
    """The funnel-step events that belong to the tool in [start, end): visitor, step, link."""
    in_range = and_(FunnelEvent.at >= start, FunnelEvent.at < end, FunnelEvent.name.in_(steps))
    own = select(FunnelEvent.visitor_id, FunnelEvent.name, FunnelEvent.link_id).where(
        in_range, FunnelEvent.tool_id == tool_id
    )
    viewed = aliased(FunnelEvent)
    last_viewed_tool = (
        select(viewed.tool_id)
        .where(
            viewed.visitor_id == FunnelEvent.visitor_id,
            viewed.name == "tool_viewed",
            viewed.tool_id.is_not(None),
            viewed.at <= FunnelEvent.at,
        )
        .order_by(viewed.at.desc(), viewed.id.desc())
        .limit(1)
        .correlate(FunnelEvent)
        .scalar_subquery()
    )
    inherited = select(FunnelEvent.visitor_id, FunnelEvent.name, FunnelEvent.link_id).where(
        in_range,
        FunnelEvent.tool_id.is_(None),
        FunnelEvent.visitor_id.is_not(None),
        last_viewed_tool == tool_id,
    )
    return union_all(own, inherited).subquery("tool_events")


async def funnel(
    db: AsyncSession,
    tool_id: int,
    steps: tuple[str, ...],
    start: dt.datetime,
    end: dt.datetime,
    by: str = "none",
) -> Funnel:
    """Distinct visitors per step (event name, in the order of ``steps``: the tool's kind's
    funnel) of ``tool_id`` in [start, end), broken down ``by``."""
    events = _tool_events(tool_id, steps, start, end)
    visitors = func.count(events.c.visitor_id.distinct())
    total_counts: dict[str, int] = dict(
        (await db.execute(select(events.c.name, visitors).group_by(events.c.name))).all()
    )
    counts = [int(total_counts.get(step, 0)) for step in steps]
    reported = [count > 0 for count in counts]
    groups: list[FunnelRow] = []
    if by in ("account", "channel"):
        query: Select[Any]
        if by == "account":
            query = select(
                events.c.name, Account.id, Account.name, Account.kind, visitors
            ).group_by(events.c.name, Account.id, Account.name, Account.kind)
        else:
            query = select(
                events.c.name, TrackedLink.channel, literal(""), literal(""), visitors
            ).group_by(events.c.name, TrackedLink.channel)
        query = query.select_from(events).outerjoin(TrackedLink, TrackedLink.id == events.c.link_id)
        if by == "account":
            query = query.outerjoin(Account, Account.id == TrackedLink.account_id)
        per_group: dict[str, dict[str, int]] = {}
        labels: dict[str, tuple[str, str]] = {}
        for step, key, name, kind, count in await db.execute(query):
            group = UNATTRIBUTED if key is None else str(key)
            per_group.setdefault(group, {})[step] = int(count)
            labels[group] = (name or "", kind or "")
        for group, reached in per_group.items():
            name, kind = labels[group]
            row_counts = [reached.get(step, 0) for step in steps]
            groups.append(_row(group, name, kind, row_counts, reported))
        groups.sort(key=lambda r: (r.key == UNATTRIBUTED, -r.counts[0], r.name, r.key))
    return Funnel(
        steps=steps,
        reported=reported,
        by=by if by in BREAKDOWNS else "none",
        groups=groups,
        total=_row("total", "", "", counts, reported),
    )
