"""The gate as pages show it: the context of the gate partial (templates/gate/_gate.html),
for every page that carries a gate (each tool kind, the gate's own forms)."""

from __future__ import annotations

from typing import Any

from app.core.phone import display
from app.core.web import safe_next
from app.gate.service import CHALLENGE_URL
from app.settings import Settings


def gate_context(
    settings: Settings,
    *,
    next: str,
    phone: str = "",
    sent: bool = False,
    error: str | None = None,
    wait: int = 0,
    challenge: bool = False,
) -> dict[str, Any]:
    """What the gate partial needs; ``phone`` is E.164 once a code was sent; ``challenge``:
    show the proof-of-work widget (only once the server asks for one)."""
    return {
        "gate": {
            "next": safe_next(next),
            "phone": phone,
            "display": display(phone) if sent and phone.startswith("+") else phone,
            "sent": sent,
            "error": error,
            "wait": wait,
            "challenge": challenge,
            "challenge_url": CHALLENGE_URL,
            "notice_version": settings.privacy_notice_version,
        }
    }
