"""PIPL: withdraw consent and delete one's data after re-verifying the phone."""

from __future__ import annotations

from typing import Any

import pytest

from app.demo.service import seed_tools
from tests.helpers import Browserish, soup

PHONE = "13912345678"


def become_lead(client: Browserish) -> None:
    client.run(seed_tools)
    client.get("/s/live01")
    client.post("/api/v1/gate/code", json={"phone": PHONE, "consent": True})
    code = client.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    assert (
        client.post("/api/v1/gate/verify", json={"phone": PHONE, "code": code}).status_code == 200
    )


def prove(client: Browserish) -> None:
    """Re-verify on the privacy page."""
    token = client.csrf("/privacy/manage")
    sent = client.post(
        "/privacy/code", data={"_csrf_token": token, "phone": PHONE, "consent": "on"}
    )
    assert sent.status_code == 200, sent.text
    code = client.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    done = client.post(
        "/privacy/verify",
        data={"_csrf_token": token, "phone": PHONE, "code": code},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/privacy/manage"


@pytest.fixture
def lead_client(client: Browserish) -> Browserish:
    become_lead(client)
    return client


def test_notice_names_version(client: Browserish) -> None:
    page = client.get("/privacy")
    assert page.status_code == 200
    assert client.app.state.settings.privacy_notice_version in page.text


def test_actions_need_fresh_proof(lead_client: Browserish) -> None:
    token = lead_client.csrf("/privacy/manage")
    response = lead_client.post(
        "/privacy/delete", data={"_csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert lead_client.count("lead") == 1
    lead_client.raw.cookies.set("lk_priv", "1.forged", path="/privacy")
    forged = lead_client.post(
        "/privacy/delete", data={"_csrf_token": token}, follow_redirects=False
    )
    assert forged.status_code == 303
    assert lead_client.count("lead") == 1


def test_withdraw_then_delete(lead_client: Browserish) -> None:
    _wait_out_resend_gap(lead_client)
    prove(lead_client)
    page = lead_client.get("/privacy/manage")
    assert "139****5678" in page.text
    token = lead_client.csrf("/privacy/manage")
    withdrawn = lead_client.post("/privacy/withdraw", data={"_csrf_token": token})
    assert withdrawn.status_code == 200

    async def consent_state(db: object) -> tuple[str, int]:
        from sqlalchemy import func, select

        from app.leads.models import Consent, Lead

        lead = (await db.execute(select(Lead))).scalar_one()  # type: ignore[attr-defined]
        open_ = await db.scalar(  # type: ignore[attr-defined]
            select(func.count()).where(Consent.withdrawn_at.is_(None))
        )
        return lead.status, int(open_)

    assert lead_client.run(consent_state) == ("withdrawn", 0)
    deleted = lead_client.post("/privacy/delete", data={"_csrf_token": token})
    assert deleted.status_code == 200
    assert lead_client.count("lead") == 0
    assert lead_client.count("consent") == 0
    lead_client.raw.blocking_portal.call(lead_client.app.state.tracker.flush)

    async def leftovers(db: object) -> int:
        from sqlalchemy import func, select

        from app.events.models import FunnelEvent
        from app.visitors.models import Visitor

        linked = await db.scalar(  # type: ignore[attr-defined]
            select(func.count()).where(Visitor.lead_id.is_not(None))
        )
        tagged = await db.scalar(  # type: ignore[attr-defined]
            select(func.count()).where(FunnelEvent.lead_id.is_not(None))
        )
        return int(linked) + int(tagged)

    assert lead_client.run(leftovers) == 0


def test_unknown_number_holds_no_data(client: Browserish) -> None:
    client.run(seed_tools)
    client.get("/t/guide-demo")
    prove_page = client.csrf("/privacy/manage")
    client.post("/privacy/code", data={"_csrf_token": prove_page, "phone": PHONE, "consent": "on"})
    code = client.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    page = client.post(
        "/privacy/verify", data={"_csrf_token": prove_page, "phone": PHONE, "code": code}
    )
    assert page.status_code == 200
    assert soup(page).select_one("form[action='/privacy/delete']") is None
    assert client.count("lead") == 0


def _wait_out_resend_gap(client: Browserish) -> None:
    from app.core.crypto import DataCipher

    cipher: DataCipher = client.app.state.cipher
    key = f"otp:gap:{cipher.lookup_hash('+86' + PHONE)}"

    async def clear(db: object) -> None:
        from sqlalchemy import delete

        from app.core.models import rate_counter

        await db.execute(delete(rate_counter).where(rate_counter.c.key == key))  # type: ignore[attr-defined]

    if client.app.state.redis is None:
        client.run(clear)
    else:
        client.raw.blocking_portal.call(
            client.app.state.redis.delete, f"{client.app.state.settings.redis_prefix}rl:cd:{key}"
        )


def test_answers_join_the_lead_and_leave_with_it(client: Browserish) -> None:
    """A tool's submission from before the gate becomes the lead's needs; deleting the lead's
    data deletes the answers too."""
    import datetime as dt

    from sqlalchemy import select

    from app.tools.models import Submission, Tool
    from app.visitors.models import Visitor

    client.run(seed_tools)
    client.get("/t/guide-demo")

    async def submit(db: Any) -> None:
        visitor = (await db.execute(select(Visitor))).scalar_one()
        tool = (await db.execute(select(Tool).where(Tool.slug == "guide-demo"))).scalar_one()
        db.add(
            Submission(
                tool_id=tool.id,
                tool_version=1,
                visitor_id=visitor.id,
                created_at=dt.datetime.now(dt.UTC),
                inputs={"area": 90},
                outputs={"total": [25, 32]},
                summary={"建筑面积": "90 m²"},
            )
        )

    client.run(submit)
    client.post("/api/v1/gate/code", json={"phone": PHONE, "consent": True})
    code = client.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    client.post("/api/v1/gate/verify", json={"phone": PHONE, "code": code})

    async def needs(db: Any) -> tuple[dict, int | None]:
        from app.leads.models import Lead

        lead = (await db.execute(select(Lead))).scalar_one()
        sub = (await db.execute(select(Submission))).scalar_one()
        return lead.needs, sub.lead_id if sub.lead_id == lead.id else None

    lead_needs, linked = client.run(needs)
    assert linked is not None
    assert list(lead_needs.values()) == [{"建筑面积": "90 m²"}]
    _wait_out_resend_gap(client)
    prove(client)
    token = client.csrf("/privacy/manage")
    assert client.post("/privacy/delete", data={"_csrf_token": token}).status_code == 200
    assert client.count("submission") == 0
