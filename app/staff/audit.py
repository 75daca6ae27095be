"""The staff audit trail: who did what to which item, written in the action's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import AuditEntry
from app.staff.schemas import Staff


async def audit(
    db: AsyncSession,
    actor: Staff | None,
    action: str,
    target: str,
    detail: dict | None = None,
    ip: str = "",
) -> None:
    """Record a staff action in the audit trail (same transaction as the action)."""
    db.add(
        AuditEntry(
            actor_id=actor.id if actor else None,
            actor_name=actor.username if actor else "system",
            action=action,
            target=target[:128],
            detail=detail or {},
            ip=ip[:64],
        )
    )
