"""A draw's settings: created and published (seed and commitment drawn then), looked up, read
back as the frozen DrawInfo the feature passes around, and the state they give at a time."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

import msgspec
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import aware
from app.core.errors import InvalidInput, NotFound
from app.core.i18n import N_
from app.core.schedule import check_window, window_open, window_state
from app.draws.fairness import TierRule, commitment, new_seed
from app.draws.models import Draw
from app.draws.schemas import DrawCreate, State
from app.tools import service as tools
from app.tools.models import Tool
from app.tools.scheduled import frozen_of


class DrawNotFound(NotFound, message=N_("This draw does not exist or is no longer available.")):
    """No draw has this slug (or it is not published, where it must be)."""


class Tier(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    quantity: int
    reserves: int
    voucher: dict[str, Any] | None = None  # {"prefix", "valid_days", "where"}


class DrawInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A draw as the feature reads it (never the seed: that stays in the row)."""

    id: int
    tool_id: int
    tool_version: int
    slug: str
    title: str
    description: str
    image_url: str
    tiers: tuple[Tier, ...]
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    mode: str
    requires_tool: str
    asks_passphrase: bool
    one_win_per_phone: bool
    claim_hours: int
    referrals: bool
    referral_cap: int
    use_drand: bool
    commitment: str
    closed_at: dt.datetime | None
    entrants_hash: str
    entrants_count: int
    drand_round: int | None
    drawn_tiers: tuple[int, ...]

    @property
    def rules(self) -> list[TierRule]:
        return [TierRule(t.name, t.quantity, t.reserves) for t in self.tiers]


def normalise_passphrase(text: str) -> str:
    """What counts as the same answer: full-width and half-width alike (NFKC), case, and
    spaces and punctuation ignored — "Hello, 世界" is "hello世界"."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LNS")[:64]


def passphrase_of(data: DrawCreate) -> str:
    """The draw's passphrase as stored (normalised; "" for none); InvalidInput when the text
    given normalises to nothing."""
    passphrase = normalise_passphrase(data.passphrase)
    if data.passphrase.strip() and not passphrase:
        raise InvalidInput(
            N_("The passphrase needs at least one letter or digit."),
            fields={"passphrase": "empty once normalised"},
        )
    return passphrase


def state_of(draw: DrawInfo, at: dt.datetime) -> State:
    """Frozen draws by their tiers; then the host's override; then the schedule (a draw with
    no start is scheduled)."""
    if draw.closed_at is not None:
        if len(draw.drawn_tiers) >= len(draw.tiers):
            return "drawn"
        return "drawing" if draw.drawn_tiers else "closed"
    return window_state(draw.mode, draw.starts_at, draw.ends_at, at, unscheduled="scheduled")


def takes_entries(at: dt.datetime) -> Any:
    """The SQL form of ``state_of(...) == "open"``, checked in the entry's own INSERT."""
    return and_(Draw.closed_at.is_(None), window_open(Draw, at))


def info_of(tool: Tool, draw: Draw) -> DrawInfo:
    """The draw row (and its tool) as the frozen value the feature passes around."""
    return frozen_of(
        DrawInfo,
        tool,
        draw,
        tiers=tuple(msgspec.convert(t, Tier) for t in draw.tiers),
        asks_passphrase=bool(draw.passphrase),
        closed_at=aware(draw.closed_at) if draw.closed_at else None,
        drawn_tiers=tuple(draw.drawn_tiers or ()),
    )


def definition(data: DrawCreate) -> dict[str, Any]:
    """The draw tool's definition (what its versions record): the published rules."""
    return {
        "title": data.title,
        "description": data.description,
        "tiers": [msgspec.to_builtins(t) for t in tiers_of(data)],
        "one_win_per_phone": data.one_win_per_phone,
        "weighting": "chances",
        "algorithm": "leadkit-draw-v1",
    }


def tiers_of(data: DrawCreate) -> list[Tier]:
    return [
        Tier(
            name=t.name,
            quantity=t.quantity,
            reserves=data.reserves if t.reserves is None else t.reserves,
            voucher=msgspec.to_builtins(t.voucher) if t.voucher else None,
        )
        for t in data.tiers
    ]


# A draw's settings by how long an edit may change them (app/draws/editing.py): its looks
# always, its schedule until the entries close, its rules (``rules_of``) until someone enters.
LOOKS = ("description", "image_url")
SCHEDULE = ("starts_at", "ends_at", "claim_hours")


def columns(settings: DrawCreate | DrawInfo, names: tuple[str, ...]) -> dict[str, Any]:
    """The draw's columns ``names`` as ``settings`` (a body, or the draw as it is) has them."""
    return {name: getattr(settings, name) for name in names}


def rules_of(data: DrawCreate, passphrase: str) -> dict[str, Any]:
    """The draw row's rules as ``data`` sets them (with its ``passphrase`` normalised), when
    the draw is made and at each edit while they may still change (app/draws/editing.py)."""
    return {
        "tiers": [msgspec.to_builtins(t) for t in tiers_of(data)],
        "one_win_per_phone": data.one_win_per_phone,
        "requires_tool": data.requires_tool,
        "passphrase": passphrase,
        "referrals": data.referrals,
        "referral_cap": data.referral_cap,
        "use_drand": data.drand,
    }


async def create_draw(db: AsyncSession, data: DrawCreate, by: str = "") -> DrawInfo:
    """A published draw tool and its draw row, with a fresh secret seed and its commitment;
    Conflict when the slug is taken."""
    check_window(data.starts_at, data.ends_at)
    passphrase = passphrase_of(data)
    tool = await tools.create_and_publish(
        db, slug=data.slug, kind="draw", title=data.title, definition=definition(data), by=by
    )
    seed = new_seed()
    draw = Draw(
        tool_id=tool.id,
        mode="schedule",
        **columns(data, LOOKS + SCHEDULE),
        **rules_of(data, passphrase),
        seed=seed,
        commitment=commitment(seed),
        drawn_tiers=[],
        turn=0,
    )
    db.add(draw)
    await db.flush()
    return info_of(tool, draw)


def _by_slug(slug: str) -> Any:
    return select(Tool.id).where(Tool.slug == slug, Tool.kind == "draw").scalar_subquery()


async def load_draw(db: AsyncSession, slug: str, *, published: bool = False) -> tuple[Tool, Draw]:
    """The draw at ``slug`` and its tool (only if published, with ``published``); DrawNotFound."""
    found = await tools.kind_row(db, Draw, "draw", slug, published=published)
    if found is None:
        raise DrawNotFound()
    return found


async def take_turn(db: AsyncSession, slug: str) -> tuple[Tool, Draw]:
    """The draw for a host action, after an UPDATE of its row: that write comes first in the
    transaction, so host actions on one draw run one at a time (PostgreSQL's row lock, SQLite's
    write lock) — a double tap waits for the first tap's commit and then sees its result."""
    turned = (
        await db.execute(
            update(Draw)
            .where(Draw.tool_id == _by_slug(slug))
            .values(turn=Draw.turn + 1)
            .returning(Draw.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar()
    if turned is None:
        raise DrawNotFound()
    tool, draw = await load_draw(db, slug)
    await db.refresh(draw)
    return tool, draw
