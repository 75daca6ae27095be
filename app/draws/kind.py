"""The draw kind: its page (app/draws/views.py), routes, funnel and demo."""

from __future__ import annotations

import datetime as dt

from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.i18n import N_
from app.core.state import part
from app.draws.definition import create_draw
from app.draws.routes import ROUTES
from app.draws.schemas import DrawCreate, TierCreate, VoucherTemplate
from app.draws.service import Draws
from app.draws.staff_routes import STAFF_ROUTES
from app.draws.views import page
from app.events.schemas import GateShown
from app.tools import service as tools
from app.tools.kinds import GateCopy, Kind, ToolPage, gated_funnel

GATE = GateCopy(
    title=N_("Verify your phone to enter the draw"),
    note=N_("Your number is your entry: winners are told by SMS and on this page."),
)


async def render(page_: ToolPage) -> Template:
    if not page_.authorised:
        page_.tracker.track(page_.ctx, GateShown())
    draws = part(page_.request, Draws)
    return await page(page_.request, draws, page_.tool.slug, page_.db)


async def seed_demo(db: AsyncSession) -> None:
    """draw-demo: 3 free design packages and 20 ¥500 vouchers, open for a week."""
    if await tools.tool_id(db, "draw-demo") is not None:
        return
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    await create_draw(
        db,
        DrawCreate(
            slug="draw-demo",
            title="直播间抽奖：免费全屋设计 + ¥500 装修券",
            description="今晚 20:30 直播间现场开奖：一等奖 3 名，免费全屋设计方案；"
            "二等奖 20 名，¥500 装修代金券。验证手机号即可参与，每个手机号限中 1 次。",
            tiers=[
                TierCreate(name="一等奖：免费全屋设计方案", quantity=3, reserves=3),
                TierCreate(
                    name="二等奖：¥500 装修代金券",
                    quantity=20,
                    reserves=5,
                    voucher=VoucherTemplate(
                        prefix="CJ",
                        valid_days=90,
                        where="装修家体验店（任一门店），签约时凭券码抵扣 500 元。",
                    ),
                ),
            ],
            starts_at=start,
            ends_at=start + dt.timedelta(days=7),
            claim_hours=72,
        ),
        by="demo",
    )


KIND = Kind(
    name="draw",
    label=N_("Lucky draw"),
    summary_field="description",
    render=render,
    gate=GATE,
    funnel=gated_funnel("draw_entered", "draw_won", "draw_claimed"),
    routes=[*ROUTES, *STAFF_ROUTES],
    seed_demo=seed_demo,
)
