"""Demo content for a first run: an admin and one staff member per role.

The generated password is kept in DATA_DIR/initial-admin.txt (mode 600) so that `make run` can
print the login every time until the admin changes it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.staff import service as staff_service
from app.staff.models import StaffUser
from app.staff.schemas import Role, StaffCreate

DEMO_STAFF: tuple[tuple[str, Role, str], ...] = (
    ("marketer", "marketer", "市场 小王"),
    ("host", "host", "主播 小李"),
    ("sales", "sales", "销售 小张"),
)


class DemoLogin:
    def __init__(self, username: str, password: str | None, created: bool) -> None:
        self.username, self.password, self.created = username, password, created


def _credentials_file(data_dir: str) -> Path:
    return Path(data_dir) / "initial-admin.txt"


async def seed(
    db: AsyncSession, *, admin_username: str, admin_password: str, data_dir: str
) -> DemoLogin:
    """Create the admin (and demo staff) if missing; return the login to print."""
    admin_username = admin_username.strip().lower()
    existing = (
        await db.execute(select(StaffUser).where(StaffUser.username == admin_username))
    ).scalar()
    creds = _credentials_file(data_dir)
    if existing is not None:
        remembered = creds.read_text().strip() if creds.exists() else None
        password = admin_password or remembered
        if password and _matches(existing.password_hash, password):
            return DemoLogin(admin_username, password, created=False)
        return DemoLogin(admin_username, None, created=False)
    password = admin_password or secrets.token_urlsafe(12)
    await staff_service.create_user(
        db,
        None,
        StaffCreate(
            username=admin_username, password=password, role="admin", display_name="管理员"
        ),
    )
    for username, role, name in DEMO_STAFF:
        found = await db.scalar(select(StaffUser.id).where(StaffUser.username == username))
        if found is None:
            await staff_service.create_user(
                db,
                None,
                StaffCreate(username=username, password=password, role=role, display_name=name),
            )
    if not admin_password:
        creds.parent.mkdir(parents=True, exist_ok=True)
        creds.write_text(password + "\n")
        creds.chmod(0o600)
    return DemoLogin(admin_username, password, created=True)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, password)
    except VerificationError:
        return False
