"""Staff accounts: passwords, login sessions, API tokens, roles. No web framework here."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, RateLimited
from app.core.i18n import N_
from app.core.models import AuditEntry
from app.core.ratelimit import RateLimiter
from app.staff.models import ApiToken, StaffSession, StaffUser
from app.staff.schemas import ApiTokenCreate, Staff, StaffCreate, StaffUpdate

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both paths cost one argon2 hash.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
TOKEN_PREFIX = "lk_"  # noqa: S105 (a marker, not a secret)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _principal(user: StaffUser, via: str = "session") -> Staff:
    return Staff(
        id=user.id,
        username=user.username,
        display_name=user.display_name or user.username,
        role=user.role,
        via=via,  # type: ignore[arg-type]
    )


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


async def authenticate(
    db: AsyncSession,
    limiter: RateLimiter,
    *,
    username: str,
    password: str,
    ip: str,
    max_per_ip: int,
    max_per_user: int,
    window: int,
) -> StaffUser:
    """Check a login attempt. Failed attempts count against the IP and the username."""
    username = username.strip().lower()
    ip_key, user_key = f"login:ip:{ip}", f"login:user:{username}"
    for key, limit in ((ip_key, max_per_ip), (user_key, max_per_user)):
        verdict = await limiter.peek(key, limit, window)
        if not verdict.allowed:
            raise RateLimited(
                N_("Too many login attempts. Please wait and try again."),
                retry_after=verdict.retry_after,
            )
    user = (await db.execute(select(StaffUser).where(StaffUser.username == username))).scalar()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and user.is_active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        await limiter.hit(ip_key, max_per_ip, window)
        await limiter.hit(user_key, max_per_user, window)
        raise AuthenticationFailed()
    await limiter.reset(user_key)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now()
    return user


async def start_session(
    db: AsyncSession, user: StaffUser, *, ttl_hours: int, ip: str, user_agent: str
) -> str:
    """Open a login session; returns the raw token to put (signed) in the cookie."""
    raw = secrets.token_urlsafe(32)
    db.add(
        StaffSession(
            token_hash=_sha256(raw),
            user_id=user.id,
            created_at=now(),
            expires_at=now() + dt.timedelta(hours=ttl_hours),
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    await audit(db, _principal(user), "staff.login", user.username, ip=ip)
    return raw


async def resolve_session(db: AsyncSession, raw: str) -> Staff | None:
    row = (
        await db.execute(select(StaffSession).where(StaffSession.token_hash == _sha256(raw)))
    ).scalar()
    if row is None or row.expires_at <= now() or not row.user.is_active:
        return None
    return _principal(row.user)


async def end_session(db: AsyncSession, raw: str) -> None:
    row = (
        await db.execute(select(StaffSession).where(StaffSession.token_hash == _sha256(raw)))
    ).scalar()
    if row is not None:
        await db.delete(row)


async def list_users(db: AsyncSession) -> list[StaffUser]:
    return list((await db.execute(select(StaffUser).order_by(StaffUser.id))).scalars())


async def get_user(db: AsyncSession, user_id: int) -> StaffUser:
    user = await db.get(StaffUser, user_id)
    if user is None:
        raise NotFound(N_("No such staff member."))
    return user


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
        password_hash=hash_password(data.password),
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
        user.password_hash = hash_password(data.password)
        changes["password"] = "changed"  # noqa: S105 (audit note, not a secret)
    if "role" in changes or "is_active" in changes or data.password:
        # A changed role or password ends the member's open sessions.
        await db.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    await audit(db, actor, "staff.update", user.username, changes, ip)
    return user


async def create_token(
    db: AsyncSession, actor: Staff | None, data: ApiTokenCreate, ip: str = ""
) -> tuple[ApiToken, str]:
    """Issue an API token. The raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=data.name.strip(),
        prefix=raw[:10],
        token_hash=_sha256(raw),
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
    token = await db.get(ApiToken, token_id)
    if token is None:
        raise NotFound(N_("No such API token."))
    if token.revoked_at is None:
        token.revoked_at = now()
        await audit(db, actor, "token.revoke", token.name, {"id": token.id}, ip)


async def resolve_token(db: AsyncSession, raw: str) -> Staff | None:
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
        return None
    token = (await db.execute(select(ApiToken).where(ApiToken.token_hash == _sha256(raw)))).scalar()
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
