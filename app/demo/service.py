"""Demo content for a first run: an admin and one staff member per role, the demo tools and
the demo business's brand.

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

from app.brand.models import BRAND_ROW, BrandRow
from app.brand.service import DEFAULT_COLOR
from app.kinds import KINDS
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
    await seed_tools(db)
    await seed_brand(db)
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


async def seed_brand(db: AsyncSession) -> None:
    """The demo business's brand, 装修家 (its accounts and vouchers below carry that name),
    unless a brand was saved already; an admin changes it at /staff/admin/brand."""
    if await db.get(BrandRow, BRAND_ROW) is None:
        db.add(
            BrandRow(
                id=BRAND_ROW,
                name="装修家",
                color=DEFAULT_COLOR,
                contact_phone="",
                logo=b"",
                version=1,
                updated_by="demo",
            )
        )
        await db.flush()


async def seed_tools(db: AsyncSession) -> None:
    """Each kind's demo tools, three accounts and their tracked links (idempotent)."""
    from app.links.models import Account, TrackedLink

    for tool_kind in KINDS:
        if tool_kind.seed_demo is not None:
            await tool_kind.seed_demo(db)
    accounts = {}
    for kind, name, platform in (
        ("brand", "装修家·官方号", "douyin"),
        ("employee", "设计师小林", "douyin"),
        ("partner", "合作达人·家居日记", "wechat"),
    ):
        account = (
            await db.execute(select(Account).where(Account.kind == kind, Account.name == name))
        ).scalar()
        if account is None:
            account = Account(kind=kind, name=name, platform=platform)
            db.add(account)
            await db.flush()
        accounts[kind] = account
    for code, kind, channel, campaign in (
        ("live01", "brand", "live", "双11直播"),
        ("video01", "employee", "video", "避坑系列"),
        ("share01", "partner", "share", ""),
    ):
        if await db.scalar(select(TrackedLink.id).where(TrackedLink.code == code)) is None:
            db.add(
                TrackedLink(
                    code=code,
                    account_id=accounts[kind].id,
                    channel=channel,
                    campaign=campaign,
                    target_slug="guide-demo",
                )
            )
    await db.flush()
