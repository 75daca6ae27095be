"""The grab kind: its page (app/grabs/routes.py), routes, funnel and demo."""

from __future__ import annotations

import datetime as dt

from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.views import call_to_action
from app.core.i18n import N_
from app.events.schemas import GateShown
from app.grabs.routes import ROUTES, grab_page
from app.grabs.schemas import GrabCreate
from app.grabs.service import create_grab
from app.tools import service as tools
from app.tools.kinds import Kind, ToolPage, gated_funnel
from app.tools.models import Tool, ToolVersion


async def render(page: ToolPage) -> Template:
    template = await grab_page(page.request, page.tool.slug, page.db)
    if template.context["show_gate"]:
        page.tracker.track(page.ctx, GateShown())
    # The grab's call to action (its definition's ``cta``), under the grab panel.
    definition = await tools.definition(page.db, page.version)
    template.context["cta"] = call_to_action(definition, page.tool.slug, page.authorised)
    return template


# What the demo grab's call to action books (docs/bookings.md).
DEMO_CTA = {
    "label": "预约免费上门量房",
    "books": "免费上门量房",
    "text": "没抢到也可以直接预约，设计师按你选的时间上门。",
}


async def seed_demo(db: AsyncSession) -> None:
    """grab-demo: 100 free measure-and-design slots, opening two minutes after seeding so the
    first `make run` shows the countdown, then the grab."""
    if await tools.tool_id(db, "grab-demo") is not None:
        return
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
    # The grab's form has no call-to-action fields: the demo sets it in the definition.
    tool = await db.scalar(select(Tool).where(Tool.slug == "grab-demo"))
    if tool is not None:
        tool.draft = {**tool.draft, "cta": DEMO_CTA}
        version = await db.scalar(
            select(ToolVersion).where(
                ToolVersion.tool_id == tool.id, ToolVersion.number == tool.current_version
            )
        )
        if version is not None:
            version.definition = {**version.definition, "cta": DEMO_CTA}


KIND = Kind(
    name="grab",
    label=N_("Limited grab"),
    summary_field="offer",
    render=render,
    funnel=gated_funnel("grab_clicked", "grab_won"),
    routes=ROUTES,
    seed_demo=seed_demo,
)
