"""The guide kind: its page (the summary and teaser, then the gate, then the guide), its
download (the guide as a PDF), its funnel and its demo."""

from __future__ import annotations

from typing import Any

from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.i18n import N_
from app.events.schemas import GateShown, ResultShown
from app.gate.pending import pending_for
from app.gate.views import gate_context, gate_copy
from app.guides.routes import ROUTES
from app.tools import service as tools
from app.tools.kinds import GateCopy, Kind, ToolPage, gated_funnel

# What the gate says on a guide (a definition's "gate" title / note wins).
GATE = GateCopy(
    title=N_("Verify your phone to read the whole guide"),
    note=N_(
        "Your number unlocks the whole guide on this page and its PDF; we may contact you "
        "about your plans."
    ),
)


async def render(page: ToolPage) -> Template:
    page.tracker.track(page.ctx, ResultShown() if page.authorised else GateShown())
    definition = await tools.definition(page.db, page.version)
    pending = None if page.authorised else pending_for(page.request, page.visitor.public_id)
    context = {
        "tool": page.tool,
        "definition": definition,
        "version": page.version.number,
        "authorised": page.authorised,
        # Once the gate opens, the page loads again at the guide itself (#result).
        **gate_context(
            page.settings,
            next=f"/t/{page.tool.slug}#result",
            pending=pending,
            copy=gate_copy(GATE, definition.get("gate")),
        ),
    }
    return Template("tools/guide.html", context=context)


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
    # A booking (app/bookings): the button books 免费量房 with a slot and a note.
    "cta": {
        "label": "预约免费量房",
        "books": "免费量房",
        "text": "设计师按你选的时间上门量房，出具精确报价，不满意不收费。",
    },
}


async def seed_demo(db: AsyncSession) -> None:
    """guide-demo, once."""
    await tools.seed_once(
        db, slug="guide-demo", kind="guide", title=DEMO_GUIDE_TITLE, definition=DEMO_GUIDE
    )


KIND = Kind(
    name="guide",
    label=N_("Guide"),
    summary_field="summary",
    gate=GATE,
    render=render,
    funnel=gated_funnel("result_shown", "download", "cta_clicked"),
    routes=ROUTES,
    seed_demo=seed_demo,
)
