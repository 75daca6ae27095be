"""The visitor spine: tracked link → tool page → gate → lead with the whole path."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.state import part
from app.demo.service import seed_tools
from app.events.schemas import Event, EventContext
from app.events.service import Tracker
from app.leads.models import Lead
from tests.helpers import LINK_TO_LEAD, Browserish, soup

PHONE = "13812345678"


@pytest.fixture
def events(client: Browserish) -> list[tuple[str, EventContext]]:
    """Every event tracked during the test, as (name, context)."""
    seen: list[tuple[str, EventContext]] = []

    def listen(ctx: EventContext, event: Event, at: Any) -> None:
        seen.append((str(event.__struct_config__.tag), ctx))

    part(client.app, Tracker).listeners.append(listen)
    return seen


@pytest.fixture
def demo(client: Browserish) -> None:
    client.run(seed_tools)


def flush(client: Browserish) -> None:
    client.raw.blocking_portal.call(part(client.app, Tracker).flush)


def dev_code(client: Browserish, phone: str = PHONE) -> str:
    response = client.get("/dev/sms", params={"phone": phone})
    assert response.status_code == 200, response.text
    return str(response.json()["code"])


def test_link_to_lead_with_full_timeline(client: Browserish, demo: None, events: list) -> None:
    opened = client.get("/s/live01", follow_redirects=False)
    assert opened.status_code == 302
    assert opened.headers["location"] == "/t/guide-demo"
    assert "lk_vid" in opened.headers["set-cookie"]
    page = client.get("/t/guide-demo")
    assert page.status_code == 200
    gate = soup(page).select_one("#gate")
    assert gate is not None
    consent = gate.select_one("input[name=consent]")
    assert consent is not None and not consent.has_attr("checked")
    assert "/privacy" in str(gate)

    sent = client.post("/api/v1/gate/code", json={"phone": PHONE, "consent": True})
    assert sent.status_code == 202, sent.text
    verified = client.post("/api/v1/gate/verify", json={"phone": PHONE, "code": dev_code(client)})
    assert verified.status_code == 200, verified.text

    unlocked = client.get("/t/guide-demo")
    assert soup(unlocked).select_one("#gate") is None
    assert soup(unlocked).select_one("#result") is not None

    names = [name for name, _ in events]
    assert names == [*LINK_TO_LEAD, "tool_viewed", "result_shown"]
    flush(client)
    assert client.count("lead") == 1
    assert client.count("consent") == 1
    assert client.count("funnel_event") == len(names)

    async def lead_and_timeline(db: Any) -> tuple[Lead, list[str], str]:
        from sqlalchemy import select

        from app.events.service import timeline
        from app.links.models import TrackedLink

        lead = (await db.execute(select(Lead))).scalar_one()
        link = await db.get(TrackedLink, lead.first_link_id)
        return lead, [e.name for e in await timeline(db, lead.id)], link.code

    lead, timeline_names, code = client.run(lead_and_timeline)
    assert code == "live01"
    assert lead.phone_masked == "138****5678"
    assert PHONE not in lead.phone_cipher
    assert timeline_names == names


def test_unknown_src_is_kept_raw(client: Browserish, demo: None, events: list) -> None:
    hostile = "<script>x</script>" + "y" * 500
    page = client.get("/t/guide-demo", params={"src": hostile, "utm_source": "douyin"})
    assert page.status_code == 200
    assert "<script>x</script>" not in page.text

    async def visitor(db: Any) -> Any:
        from sqlalchemy import select

        from app.visitors.models import Visitor

        return (await db.execute(select(Visitor))).scalar_one()

    v = client.run(visitor)
    assert v.first_link_id is None
    assert v.first_src == hostile[:64]
    assert v.first_touch["utm"] == {"utm_source": "douyin"}


def test_one_authorisation_opens_every_gate(client: Browserish, demo: None) -> None:
    from tests.test_calc_flow import form_values

    answers = form_values(client, "/t/renovation")
    # Before: every kind holds its valuable part behind the gate.
    assert soup(client.get("/t/guide-demo")).select_one("#gate") is not None
    assert soup(client.get("/t/grab-demo")).select_one("#gate") is not None
    teaser = client.post("/api/v1/calculators/renovation/evaluate", json={"inputs": answers})
    assert teaser.status_code == 200 and "full" not in teaser.json()
    claim = client.post("/api/v1/grabs/grab-demo/claim")
    assert claim.status_code == 401 and claim.json()["result"] == "gate_required"

    # One authorisation, on the guide.
    assert client.post("/api/v1/gate/code", json={"phone": PHONE, "consent": True}).is_success
    verified = client.post("/api/v1/gate/verify", json={"phone": PHONE, "code": dev_code(client)})
    assert verified.status_code == 200

    # After: every gate is open, on every kind, without another code.
    guide = soup(client.get("/t/guide-demo"))
    assert guide.select_one("#gate") is None and guide.select_one("#result") is not None
    full = client.post("/api/v1/calculators/renovation/evaluate", json={"inputs": answers})
    assert full.status_code == 200 and full.json()["full"], full.text
    assert soup(client.get("/t/grab-demo")).select_one("#gate") is None
    claim = client.post("/api/v1/grabs/grab-demo/claim")
    assert claim.status_code == 200, claim.text
    assert claim.json()["result"] == "not_open"  # the demo grab opens later: past the gate
    # No second code was needed, and none can be had straight away (60 s between codes).
    again = client.post("/api/v1/gate/code", json={"phone": PHONE, "consent": True})
    assert again.status_code == 429


def test_gate_through_the_page_forms(client: Browserish, demo: None, events: list) -> None:
    client.get("/t/guide-demo")
    token = client.csrf("/t/guide-demo")
    no_consent = client.post(
        "/gate/code",
        data={"_csrf_token": token, "phone": PHONE, "next": "/t/guide-demo"},
        headers={"HX-Request": "true"},
    )
    assert no_consent.status_code == 400
    assert "隐私" in soup(no_consent).select_one(".alert").text
    sent = client.post(
        "/gate/code",
        data={"_csrf_token": token, "phone": PHONE, "consent": "on", "next": "/t/guide-demo"},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200
    assert soup(sent).select_one("input[name=code]") is not None
    done = client.post(
        "/gate/verify",
        data={
            "_csrf_token": token,
            "phone": PHONE,
            "code": dev_code(client),
            "next": "/t/guide-demo",
        },
        headers={"HX-Request": "true"},
    )
    assert done.status_code == 200
    assert done.headers["HX-Redirect"] == "/t/guide-demo"
    # The gate's events count for the tool it guards (its funnel), and the lead is on them.
    gate_events = {name: ctx for name, ctx in events if name in ("code_sent", "phone_verified")}
    tool_id = next(ctx.tool_id for name, ctx in events if name == "tool_viewed")
    assert {ctx.tool_id for ctx in gate_events.values()} == {tool_id}
    assert gate_events["phone_verified"].lead_id is not None


@pytest.mark.parametrize(
    ("agent", "platform"),
    [
        ("Mozilla/5.0 (iPhone) AppleWebKit/605 ToutiaoMicroApp/2.80 aweme/29.0", "douyin"),
        ("Mozilla/5.0 (iPhone) MicroMessenger/8.0.50 NetType/WIFI miniProgram", "wechat"),
        ("Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.49", "wechat"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1", "browser"),
        ("", "browser"),
    ],
)
def test_platform_from_user_agent(
    client: Browserish, demo: None, events: list, agent: str, platform: str
) -> None:
    client.get("/t/guide-demo", headers={"user-agent": agent})
    assert events[0][1].platform == platform


def test_first_touch_stays_last_touch_moves(client: Browserish, demo: None) -> None:
    client.get("/s/live01")
    client.get("/t/guide-demo")  # a plain revisit changes no attribution
    client.get("/s/video01")

    async def touches(db: Any) -> tuple[str, str]:
        from sqlalchemy import select

        from app.visitors.models import Visitor

        visitor = (await db.execute(select(Visitor))).scalar_one()
        return visitor.first_src, visitor.last_src

    assert client.run(touches) == ("live01", "video01")
    assert client.count("visitor") == 1


def test_unknown_short_link_is_a_friendly_404(client: Browserish, demo: None) -> None:
    response = client.get("/s/nope-nope")
    assert response.status_code == 404
    assert "页面不存在" in response.text
