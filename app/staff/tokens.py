"""API tokens: issued once (only a digest is kept), resolved on every /api/ call, revoked."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import now
from app.core.i18n import N_
from app.core.sql import get_or_404
from app.staff.audit import audit
from app.staff.models import ApiToken
from app.staff.passwords import token_digest
from app.staff.schemas import ApiTokenCreate, Staff

TOKEN_PREFIX = "lk_"  # noqa: S105 (a marker, not a secret)


async def create_token(
    db: AsyncSession, actor: Staff | None, data: ApiTokenCreate, ip: str = ""
) -> tuple[ApiToken, str]:
    """Issue an API token. The raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=data.name.strip(),
        prefix=raw[:10],
        token_hash=token_digest(raw),
        role=data.role,
        created_by=actor.username if actor else "cli",
    )
    db.add(token)
    await db.flush()
    await audit(db, actor, "token.create", data.name, {"role": data.role, "id": token.id}, ip)
    return token, raw


async def list_tokens(db: AsyncSession) -> list[ApiToken]:
    return list((await db.execute(select(ApiToken).order_by(ApiToken.id.desc()))).scalars())


async def revoke_token(db: AsyncSession, actor: Staff, token_id: int, ip: str = "") -> None:
    token = await get_or_404(db, ApiToken, token_id, N_("No such API token."))
    if token.revoked_at is None:
        token.revoked_at = now()
        await audit(db, actor, "token.revoke", token.name, {"id": token.id}, ip)


async def resolve_token(db: AsyncSession, raw: str) -> Staff | None:
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
        return None
    token = (
        await db.execute(select(ApiToken).where(ApiToken.token_hash == token_digest(raw)))
    ).scalar()
    if token is None or token.revoked_at is not None:
        return None
    # Touch at most once a minute so a busy integration doesn't write on every call.
    if token.last_used_at is None or now() - token.last_used_at > dt.timedelta(minutes=1):
        await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now()))
    return Staff(
        id=-token.id,
        username=f"token:{token.name}",
        display_name=token.name,
        role=token.role,
        via="token",
    )
