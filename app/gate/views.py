"""The gate as pages show it: the context of the gate partial (templates/gate/_gate.html),
for every page that carries a gate (each tool kind, the gate's own forms), and the words it
says on a tool's page (its kind's, unless the tool has its own)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.i18n import gettext
from app.core.phone import mask
from app.core.web import safe_next
from app.gate.pending import Pending
from app.gate.service import CHALLENGE_URL
from app.settings import Settings
from app.tools import service as tools
from app.tools.kinds import GateCopy, Kinds

TITLE_MAX, NOTE_MAX = 60, 200


def gate_copy(kind: GateCopy, override: object = None) -> dict[str, str]:
    """The gate's heading and note on one tool's page: the tool's own (its configuration's
    ``gate`` table, plain text) where it has them, else its kind's (translated)."""
    own = override if isinstance(override, Mapping) else {}
    title, note = own.get("title"), own.get("note")
    return {
        "title": title[:TITLE_MAX] if isinstance(title, str) and title else gettext(kind.title),
        "note": note[:NOTE_MAX] if isinstance(note, str) and note else gettext(kind.note),
    }


async def tool_gate_copy(db: AsyncSession, kinds: Kinds, slug: str) -> dict[str, str]:
    """The gate's words for the published tool at ``slug`` (the gate's own forms know their
    page, not their tool); the default's for an unknown slug."""
    try:
        tool, version = await tools.published(db, slug)
    except NotFound:  # no slug, or one no published tool has: the neutral words
        return gate_copy(GateCopy())
    if tool.kind not in kinds:
        return gate_copy(GateCopy())
    definition = await tools.definition(db, version)
    return gate_copy(kinds[tool.kind].gate, definition.get("gate"))


def gate_context(
    settings: Settings,
    *,
    next: str,
    phone: str = "",
    sent: bool = False,
    error: str | None = None,
    wait: int = 0,
    challenge: bool = False,
    consent: bool = False,
    pending: Pending | None = None,
    copy: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the gate partial needs; ``phone`` is E.164 once a code was sent; ``challenge``:
    show the proof-of-work widget (only once the server asks for one); ``consent``: the box
    was ticked (a refusal shows the form again as the visitor left it); ``pending``: a code
    sent earlier to this visitor (app/gate/pending.py), shown as the code box with what is
    left of the resend countdown; ``copy``: the heading and note (``gate_copy``)."""
    if pending is not None and not sent:
        phone, sent = pending.phone, True
        wait = max(wait, pending.resend_in(settings, time.time()))
    words = copy or gate_copy(GateCopy())
    return {
        "gate": {
            "next": safe_next(next),
            "phone": phone,
            "display": mask(phone) if sent and phone.startswith("+") else phone,
            "sent": sent,
            "error": error,
            "wait": wait,
            "challenge": challenge,
            "challenge_url": CHALLENGE_URL,
            "notice_version": settings.privacy_notice_version,
            "consent": consent,
            "title": words["title"],
            "note": words["note"],
        }
    }
