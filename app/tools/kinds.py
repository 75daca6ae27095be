"""Tool kinds plug in here. A kind (calculator, grab, guide, draw) is one folder that builds
one :class:`Kind` — how its page at ``/t/{slug}`` renders, its own routes (API, staff pages),
its funnel and its demo content — and one line in ``app/kinds.py`` registers it.

``/t/{slug}`` (app/site/routes.py) does what every kind shares — look the tool up, record the
visit and its attribution — then hands a :class:`ToolPage` to the kind's ``render``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.i18n import N_
from app.events.schemas import EVENT_NAMES, EventContext
from app.events.service import Tracker
from app.settings import Settings
from app.tools.schemas import PublishedTool, PublishedVersion
from app.visitors.facts import VisitorFacts
from app.visitors.models import Visitor


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolPage:
    """One visit of ``/t/{slug}``, as a kind's renderer receives it: the tool and its current
    version, the visitor (stored: its row, or the facts cached of it when the visit changed
    nothing — app/visitors/facts.py), the request's session and the visit's event context."""

    request: Request[Any, Any, Any]
    db: AsyncSession
    visitor: Visitor | VisitorFacts
    tool: PublishedTool
    version: PublishedVersion
    ctx: EventContext
    settings: Settings
    tracker: Tracker

    @property
    def authorised(self) -> bool:
        """The visitor has authorised a phone (one authorisation opens every gate)."""
        return self.visitor.lead_id is not None


# The phone gate's steps, the same on every kind's pages: the gate shown, a code sent, the phone
# verified (app/gate records the last two).
GATE_STEPS = ("gate_shown", "code_sent", "phone_verified")


def gated_funnel(*after: str, before: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A gated kind's funnel: the visit (``/t/{slug}`` records it for every kind), the kind's
    steps before the gate, the gate's steps, then what the verified visitor goes on to do."""
    return ("tool_viewed", *before, *GATE_STEPS, *after)


@dataclass(frozen=True, slots=True)
class GateCopy:
    """What the phone gate says on a kind's pages: its heading and one line on what the number
    is for (English msgids, translated where shown). A tool's configuration may replace either
    with its own text (a calculator's or guide's ``[gate]`` table: ``title``, ``note``)."""

    title: str = N_("Verify your phone number")
    note: str = N_(
        "We use your number only to confirm it is you and to contact you about this campaign."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    name: str
    # The kind's name for people (an English msgid, translated where shown).
    label: str
    render: Callable[[ToolPage], Awaitable[Template]]
    # Event names of the kind's funnel, in the order a visitor goes through them: the funnel
    # page (app/analytics) counts these, and the kind's pages must emit each of them.
    funnel: tuple[str, ...]
    routes: Sequence[ControllerRouterHandler] = ()
    # Idempotent demo content for a first run (`leadkit demo`).
    seed_demo: Callable[[AsyncSession], Awaitable[None]] | None = None
    # The key of the published definition whose text describes the tool in a sentence or two,
    # for its card on the home page ("" for none).
    summary_field: str = ""
    # What the gate says on this kind's pages, unless the tool says otherwise.
    gate: GateCopy = GateCopy()

    def __post_init__(self) -> None:
        # A misspelt step would sit at 0 on the funnel page for ever: refuse it at start-up.
        unknown = [step for step in self.funnel if step not in EVENT_NAMES]
        if unknown or len(set(self.funnel)) != len(self.funnel) or not self.funnel:
            raise ValueError(f"kind {self.name!r}: bad funnel steps {self.funnel!r}")


class Kinds:
    """The registered kinds, by name."""

    def __init__(self, *kinds: Kind) -> None:
        self._by_name = {kind.name: kind for kind in kinds}
        if len(self._by_name) != len(kinds):
            raise ValueError("two kinds share a name")

    def __getitem__(self, name: str) -> Kind:
        kind = self._by_name.get(name)
        if kind is None:
            raise NotFound()
        return kind

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def routes(self) -> list[ControllerRouterHandler]:
        return [route for kind in self for route in kind.routes]
