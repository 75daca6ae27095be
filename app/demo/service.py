"""Demo content for a first run: an admin and one staff member per role.

The generated password is kept in DATA_DIR/initial-admin.txt (mode 600) so that `make run` can
print the login every time until the admin changes it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.calculators.builtins import BUILTIN_SLUGS, builtin
from app.staff import service as staff_service
from app.staff.models import StaffUser
from app.staff.schemas import Role, StaffCreate
from app.tools.models import Tool

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


DEMO_GUIDE_TITLE = "2026 装修避坑指南：预算、合同、验收 30 条"
DEMO_GUIDE: dict[str, Any] = {
    "title": DEMO_GUIDE_TITLE,
    "summary": "从量房到验收，业内设计师整理的 30 条避坑清单，帮你少花冤枉钱。",
    "teaser": [
        "报价单里最容易被加价的 6 个项目",
        "签合同前必须写清楚的 8 个条款",
        "水电、防水、瓷砖三次关键验收要点",
    ],
    "content": [
        {
            "heading": "一、预算：先定总价，再分项",
            "paragraphs": [
                "按套内面积和档次估算总价，预留 10%–15% 的增项预算。",
                "主材与辅材分开报价，辅材写明品牌、型号和用量。",
            ],
        },
        {
            "heading": "二、合同：增项和工期写进条款",
            "paragraphs": [
                "约定增项上限与确认流程，未经书面确认的增项不付款。",
                "写明开工、水电验收、竣工的日期与延期责任。",
            ],
        },
        {
            "heading": "三、验收：三次关键节点",
            "paragraphs": [
                "水电：打压测试 30 分钟不掉压，线管横平竖直。",
                "防水：闭水试验 48 小时，楼下无渗漏。",
                "瓷砖：空鼓率低于 5%，缝隙均匀。",
            ],
        },
    ],
    "cta": {"label": "预约免费量房", "href": "/t/guide-demo#result"},
}


async def seed_grab(db: AsyncSession) -> None:
    """grab-demo: 100 free measure-and-design slots, opening two minutes after seeding so the
    first `make run` shows the countdown, then the grab."""
    from app.grabs.schemas import GrabCreate
    from app.grabs.service import create_grab

    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=2)
    await create_grab(
        db,
        GrabCreate(
            slug="grab-demo",
            title="限量 100 份：免费上门量房 + 设计方案",
            stock=100,
            per_phone_limit=1,
            starts_at=start,
            ends_at=start + dt.timedelta(days=7),
            offer="设计师上门量房，3 天内出平面布局和效果图方案，不满意不收费。"
            "每个手机号限抢 1 份。",
            voucher_prefix="LF",
            voucher_valid_days=30,
            voucher_where="装修家体验店（任一门店），凭券码或二维码到店核销。",
        ),
        by="demo",
    )


async def seed_tools(db: AsyncSession) -> None:
    """A published guide, two accounts and their tracked links (idempotent)."""
    from app.links.models import Account, TrackedLink
    from app.tools import service as tools

    if await db.scalar(select(Tool.id).where(Tool.slug == "guide-demo")) is None:
        await tools.create_and_publish(
            db,
            slug="guide-demo",
            kind="guide",
            title=DEMO_GUIDE_TITLE,
            definition=DEMO_GUIDE,
            by="demo",
        )
    if await db.scalar(select(Tool.id).where(Tool.slug == "grab-demo")) is None:
        await seed_grab(db)
    for slug in BUILTIN_SLUGS:
        if await db.scalar(select(Tool.id).where(Tool.slug == slug)) is None:
            definition = msgspec.to_builtins(builtin(slug))
            await tools.create_and_publish(
                db,
                slug=slug,
                kind="calculator",
                title=definition["title"],
                definition=definition,
                by="demo",
            )
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
