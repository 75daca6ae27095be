"""Staff login sessions: opened at sign-in, found again from the cookie's token, ended at
sign-out (the cookie itself: app/staff/auth.py)."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import now
from app.staff.audit import audit
from app.staff.models import StaffSession, StaffUser
from app.staff.passwords import token_digest
from app.staff.schemas import Staff


def principal(user: StaffUser, via: str = "session") -> Staff:
    """The staff member as the rest of the app sees them."""
    return Staff(
        id=user.id,
        username=user.username,
        display_name=user.display_name or user.username,
        role=user.role,
        via=via,  # type: ignore[arg-type]
    )


async def start_session(
    db: AsyncSession, user: StaffUser, *, ttl_hours: int, ip: str, user_agent: str
) -> str:
    """Open a login session; returns the raw token to put (signed) in the cookie."""
    raw = secrets.token_urlsafe(32)
    db.add(
        StaffSession(
            token_hash=token_digest(raw),
            user_id=user.id,
            created_at=now(),
            expires_at=now() + dt.timedelta(hours=ttl_hours),
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    await audit(db, principal(user), "staff.login", user.username, ip=ip)
    return raw


# Every staff page resolves its session: columns, not rows, and a statement built once.
_SESSION = (
    select(
        StaffSession.expires_at,
        StaffUser.is_active,
        StaffUser.id,
        StaffUser.username,
        StaffUser.display_name,
        StaffUser.role,
    )
    .join(StaffUser, StaffUser.id == StaffSession.user_id)
    .where(StaffSession.token_hash == bindparam("digest"))
)


async def resolve_session(db: AsyncSession, raw: str) -> Staff | None:
    row = (await db.execute(_SESSION, {"digest": token_digest(raw)})).first()
    if row is None or row.expires_at <= now() or not row.is_active:
        return None
    return Staff(
        id=row.id,
        username=row.username,
        display_name=row.display_name or row.username,
        role=row.role,
        via="session",
    )


async def end_session(db: AsyncSession, raw: str) -> None:
    row = (
        await db.execute(select(StaffSession).where(StaffSession.token_hash == token_digest(raw)))
    ).scalar()
    if row is not None:
        await db.delete(row)
