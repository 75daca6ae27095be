"""Staff accounts: list, create, change (role, active flag, name, password). No web framework
here. The rest of the feature sits beside it: passwords.py (hashing, token digests), login.py
(sign-in and its limits), sessions.py, tokens.py (API tokens) and audit.py (the audit trail,
which the other features write to as well)."""

from __future__ import annotations

import anyio.to_thread
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_
from app.core.sql import get_or_404
from app.staff.audit import audit
from app.staff.models import StaffSession, StaffUser
from app.staff.passwords import hash_password
from app.staff.schemas import Staff, StaffCreate, StaffUpdate


async def list_users(db: AsyncSession) -> list[StaffUser]:
    return list((await db.execute(select(StaffUser).order_by(StaffUser.id))).scalars())


async def get_user(db: AsyncSession, user_id: int) -> StaffUser:
    return await get_or_404(db, StaffUser, user_id, N_("No such staff member."))


async def create_user(
    db: AsyncSession, actor: Staff | None, data: StaffCreate, ip: str = ""
) -> StaffUser:
    """Create a staff member. Usernames are case-insensitive and unique."""
    username = data.username.strip().lower()
    exists = await db.scalar(select(func.count()).where(StaffUser.username == username))
    if exists:
        raise Conflict(N_("This username is already taken."), fields={"username": "taken"})
    user = StaffUser(
        username=username,
        display_name=data.display_name.strip(),
        password_hash=await anyio.to_thread.run_sync(hash_password, data.password),
        role=data.role,
        is_active=True,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(N_("This username is already taken.")) from exc
    await audit(db, actor, "staff.create", username, {"role": data.role}, ip)
    return user


async def update_user(
    db: AsyncSession, actor: Staff, user_id: int, data: StaffUpdate, ip: str = ""
) -> StaffUser:
    """Change role, active flag, display name, and optionally the password."""
    user = await get_user(db, user_id)
    if data.password and len(data.password) < 10:
        raise InvalidInput(
            N_("Passwords need at least 10 characters."), fields={"password": "too_short"}
        )
    removing_admin = user.role == "admin" and (data.role != "admin" or not data.is_active)
    if removing_admin:
        admins = await db.scalar(
            select(func.count()).where(StaffUser.role == "admin", StaffUser.is_active.is_(True))
        )
        if (admins or 0) <= 1:
            raise Conflict(N_("The last active admin cannot be demoted or deactivated."))
    changes = {
        k: v
        for k, v in (
            ("role", data.role),
            ("is_active", data.is_active),
            ("display_name", data.display_name.strip()),
        )
        if getattr(user, k) != v
    }
    for key, value in changes.items():
        setattr(user, key, value)
    if data.password:
        user.password_hash = await anyio.to_thread.run_sync(hash_password, data.password)
        changes["password"] = "changed"  # noqa: S105 (audit note, not a secret)
    if "role" in changes or "is_active" in changes or data.password:
        # A changed role or password ends the member's open sessions.
        await db.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    await audit(db, actor, "staff.update", user.username, changes, ip)
    return user
