"""PIPL: withdraw consent and delete one's data after re-verifying the phone."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.crypto import DataCipher
from app.core.ratelimit import RateLimiter
from app.core.state import part
from app.db.engine import Storage
from app.demo.service import seed_tools
from app.events.service import Tracker
from app.grabs.service import Grabs
from app.settings import Settings
from tests.helpers import Browserish, form_values, soup

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
    assert part(client.app, Settings).privacy_notice_version in page.text


def test_notice_says_what_a_deletion_keeps(client: Browserish) -> None:
    text = soup(client.get("/privacy")).get_text()
    assert "作废您尚未使用的券" in text and "匿名的访问统计" in text
    english = soup(client.get("/privacy", params={"lang": "en"})).get_text()
    assert "anonymous visit figures" in english


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
    lead_client.raw.blocking_portal.call(part(lead_client.app, Tracker).flush)

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


def _wait_out_resend_gap(client: Browserish, phone: str = PHONE) -> None:
    """Skip the 60 s between two codes to one phone, through the limiter's own interface
    (``reset`` forgets a key's counters and its cooldown, whichever store holds them)."""
    from app.core.crypto import DataCipher

    cipher: DataCipher = part(client.app, DataCipher)
    key = f"otp:gap:{cipher.lookup_hash('+86' + phone)}"
    client.raw.blocking_portal.call(part(client.app, RateLimiter).reset, key)


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


# Deletion leaves no trace: every table, every Redis key, the report cache.

GRAB = "flash"
E164 = "+86" + PHONE


def _authorise(client: Browserish, tool: str = "") -> None:
    _wait_out_resend_gap(client)
    body: dict[str, Any] = {"phone": PHONE, "consent": True}
    if tool:
        body["tool"] = tool
    assert client.post("/api/v1/gate/code", json=body).status_code == 202
    code = client.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    verified = client.post("/api/v1/gate/verify", json={"phone": PHONE, "code": code})
    assert verified.status_code == 200, verified.text


def _calculator_answers(client: Browserish) -> dict[str, str]:
    form = soup(client.get("/t/renovation")).select_one("form.calc-form")
    assert form is not None
    return form_values(form)


def _drain(client: Browserish) -> None:
    """Events in the buffer and claims queued in Redis, written out."""
    from app.grabs.store import RedisClaimStore

    portal = client.raw.blocking_portal
    portal.call(part(client.app, Tracker).flush)
    store = part(client.app, Grabs).store
    if isinstance(store, RedisClaimStore):
        portal.call(store.drain)


def _staff_token(client: Browserish) -> dict[str, str]:
    from app.staff import tokens
    from app.staff.schemas import ApiTokenCreate, Staff

    async def token(db: Any) -> str:
        admin = Staff(id=0, username="system", display_name="system", role="admin")
        _, raw = await tokens.create_token(db, admin, ApiTokenCreate(name="门店收银", role="sales"))
        return str(raw)

    return {"Authorization": f"Bearer {client.run(token)}"}


def _person(client: Browserish) -> dict[str, Any]:
    """What identifies the person in storage, read before the deletion."""
    from sqlalchemy import select

    from app.leads.models import Lead
    from app.visitors.models import Visitor

    async def work(db: Any) -> dict[str, Any]:
        lead = (await db.execute(select(Lead))).scalar_one()
        visitors = (await db.execute(select(Visitor).where(Visitor.lead_id == lead.id))).scalars()
        rows = list(visitors)
        return {
            "lead_id": lead.id,
            "phone_hash": lead.phone_hash,
            "phone_cipher": lead.phone_cipher,
            "visitor_ids": {v.id for v in rows},
            "public_ids": {v.public_id for v in rows},
        }

    return dict(client.run(work))


def _sql_values(client: Browserish) -> list[tuple[str, str, Any]]:
    """(table, column, value) for every value of every table the app's databases hold: the
    main one and, where it is a database of its own, the side store of counters and codes.
    Tables are found by reflection, so a table added later is covered without a change here."""
    from sqlalchemy import inspect, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.db import engine as engines

    main = part(client.app, Storage).engine
    urls = []
    side_url = getattr(engines, "side_url", None)
    if side_url is not None:
        side = side_url(part(client.app, Settings).database_url)
        if side.render_as_string(hide_password=False) != main.url.render_as_string(
            hide_password=False
        ):
            urls.append(side)

    async def dump(engine: Any) -> list[tuple[str, str, Any]]:
        found: list[tuple[str, str, Any]] = []
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            for table in tables:
                result = await conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
                columns = list(result.keys())
                for row in result:
                    found += [(table, c, v) for c, v in zip(columns, row, strict=True)]
        return found

    async def everything() -> list[tuple[str, str, Any]]:
        values = await dump(main)
        for url in urls:
            extra = create_async_engine(url)
            try:
                values += await dump(extra)
            finally:
                await extra.dispose()
        return values

    return list(client.raw.blocking_portal.call(everything))


def _redis_values(client: Browserish) -> list[tuple[str, str]]:
    """(key, text) for every key under the test prefix: its name, and its whole value."""
    redis = part(client.app, Storage).redis
    if redis is None:
        return []
    prefix = part(client.app, Settings).redis_prefix

    async def dump() -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        async for raw in redis.scan_iter(match=f"{prefix}*", count=1000):
            key = raw.decode()
            kind = (await redis.type(raw)).decode()
            if kind == "string":
                value: Any = await redis.get(raw)
            elif kind == "hash":
                value = await redis.hgetall(raw)
            elif kind == "list":
                value = await redis.lrange(raw, 0, -1)
            elif kind == "set":
                value = await redis.smembers(raw)
            elif kind == "zset":
                value = await redis.zrange(raw, 0, -1, withscores=True)
            elif kind == "stream":
                value = await redis.xrange(raw)
            else:
                value = kind
            found.append((key, key))
            found.append((key, repr(value)))
        return found

    return list(client.raw.blocking_portal.call(dump))


def _traces(client: Browserish, person: dict[str, Any]) -> list[str]:
    """Every place where the person still appears: their number in any form, its lookup hash
    or ciphertext, their visitor cookie ids, and their lead or visitor ids wherever a column or
    a JSON document names a lead or a visitor. No place is exempt."""
    import re

    lead_id = person["lead_id"]
    needles = {
        E164,
        PHONE,
        "139****5678",
        "139 1234 5678",
        person["phone_hash"],
        person["phone_cipher"],
        f"lead:{lead_id}",
        *person["public_ids"],
    }
    ids = {"lead": {lead_id}, "visitor": set(person["visitor_ids"])}
    named = re.compile(r'"(lead|visitor)_id"\s*:\s*(-?\d+)')
    found: list[str] = []
    for table, column, value in _sql_values(client):
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if isinstance(value, (dict, list)):
            import json

            value = json.dumps(value, ensure_ascii=False)
        if isinstance(value, int) and not isinstance(value, bool):
            for kind, values in ids.items():
                refers = column in (f"{kind}_id",) or column.endswith(f"_{kind}_id")
                if (refers or (table == kind and column == "id")) and value in values:
                    found.append(f"{table}.{column} = {value} ({kind} id)")
            continue
        if not isinstance(value, str):
            continue
        found += [f"{table}.{column} holds {n!r}" for n in needles if n in value]
        for kind, number in named.findall(value):
            if int(number) in ids[kind]:
                found.append(f"{table}.{column} names {kind} id {number}")
    # Redis names ids inside keys (rl:grab:v:<visitor>:<window>) and stream fields.
    in_key = re.compile(r"(?:^|:)(lead|visitor|l|v):(-?\d+)(?=:|$)")
    in_stream = re.compile(r"b'(lead|visitor)': b'(-?\d+)'")
    kinds = {"l": "lead", "v": "visitor", "lead": "lead", "visitor": "visitor"}
    for key, text in _redis_values(client):
        found += [f"redis {key} holds {n!r}" for n in needles if n in text]
        for kind, number in [*in_key.findall(text), *in_stream.findall(text)]:
            if int(number) in ids[kinds[kind]]:
                found.append(f"redis {key} names {kinds[kind]} id {number}")
    return found


def _reports(client: Browserish) -> list[str]:
    from pathlib import Path

    directory = Path(part(client.app, Settings).data_dir) / "reports"
    return sorted(p.name for p in directory.glob("*.pdf")) if directory.exists() else []


@pytest.mark.parametrize("redeemed", [False, True], ids=["issued", "redeemed"])
def test_deletion_leaves_no_trace(client: Browserish, redeemed: bool) -> None:
    """A person uses a calculator (and its PDF), authorises in two browsers, posts an event,
    wins a grab (redeemed at the store, or not), has their number revealed by sales, then
    deletes their data: nothing anywhere names them any more, the grab's invariants hold,
    and the voucher is void (or keeps its redemption, without the person)."""
    from app.grabs.service import Grabs
    from app.leads import service as leads_service
    from app.staff.schemas import Staff
    from tests.grab_support import add_grab, open_grab

    client.run(seed_tools)
    client.run(add_grab, open_grab(GRAB, stock=5))
    # Browser one: a tracked link, the calculator, the gate, the PDF report.
    client.get("/s/live01")
    answered = client.post(
        "/t/renovation/evaluate", data=_calculator_answers(client), headers={"HX-Request": "true"}
    )
    assert answered.status_code == 200, answered.text[:500]
    _authorise(client, tool="renovation")
    pdf = client.get("/t/renovation/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert _reports(client)
    # Browser two, same phone: an event, then the grab.
    client.raw.cookies.delete("lk_vid")
    assert client.get("/t/guide-demo").status_code == 200
    _authorise(client)
    shared = client.post(
        "/api/v1/events",
        json={"events": [{"event": {"name": "shared", "target": "wechat"}, "tool": GRAB}]},
    )
    assert shared.status_code == 202, shared.text
    won = client.post(f"/api/v1/grabs/{GRAB}/claim", headers={"Idempotency-Key": "tap-1"})
    assert won.status_code == 200 and won.json()["result"] == "won", won.text
    code = won.json()["voucher"]["code"]
    _drain(client)
    bearer = _staff_token(client)
    if redeemed:
        done = client.raw.post(
            "/api/v1/vouchers/redeem", json={"code": code, "store": "徐汇店"}, headers=bearer
        )
        assert done.status_code == 200, done.text
    person = _person(client)
    assert len(person["visitor_ids"]) == 2

    async def reveal(db: Any) -> None:
        lead = await leads_service.get(db, person["lead_id"])
        sales = Staff(id=0, username="sam", display_name="sam", role="sales")
        await leads_service.reveal_phone(db, part(client.app, DataCipher), sales, lead)

    client.run(reveal)
    _drain(client)
    assert _traces(client, person), "the set-up must leave traces for the check to find"

    _wait_out_resend_gap(client)
    prove(client)
    token = client.csrf("/privacy/manage")
    old_cookie = client.raw.cookies.get("lk_vid")
    deleted = client.post("/privacy/delete", data={"_csrf_token": token})
    assert deleted.status_code == 200
    assert "lk_vid" not in client.raw.cookies, "the browser is told to forget its visitor id"

    # A browser that kept the old cookie cannot claim, though this process had it cached.
    client.raw.cookies.set("lk_vid", old_cookie)
    again = client.post(f"/api/v1/grabs/{GRAB}/claim", headers={"Idempotency-Key": "tap-2"})
    assert again.status_code == 401 and again.json()["result"] == "gate_required", again.text
    voucher = client.raw.post(
        "/api/v1/vouchers/redeem", json={"code": code, "store": "徐汇店"}, headers=bearer
    )
    assert voucher.status_code == 409
    assert voucher.json()["code"] == ("already_redeemed" if redeemed else "void")
    _drain(client)

    traces = _traces(client, person)
    assert traces == [], "\n".join(traces)
    assert _reports(client) == []
    grabs: Grabs = part(client.app, Grabs)
    report = client.raw.blocking_portal.call(grabs.check, GRAB)
    assert report.ok, report.problems
    assert (report.won, report.remaining, report.initial) == (1, 4, 5)
    assert client.count("lead") == 0 and client.count("consent") == 0
    assert client.count("funnel_event") > 0, "anonymous figures are kept"


def _reverify(client: Browserish) -> Any:
    """The privacy page's proof for PHONE, returning the page it leads to."""
    _wait_out_resend_gap(client)
    token = client.csrf("/privacy/manage")
    sent = client.post(
        "/privacy/code", data={"_csrf_token": token, "phone": PHONE, "consent": "on"}
    )
    assert sent.status_code == 200, sent.text
    code = client.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    return client.post("/privacy/verify", data={"_csrf_token": token, "phone": PHONE, "code": code})


def test_a_cleanup_that_failed_is_finished_by_proving_the_number_again(
    client: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database part of a deletion commits on its own; when a store outside it is down,
    the person proving their number again ("we hold no data") finishes the job."""
    from tests.grab_support import add_grab, open_grab

    client.run(add_grab, open_grab(GRAB, stock=3))
    become_lead(client)
    won = client.post(f"/api/v1/grabs/{GRAB}/claim", headers={"Idempotency-Key": "tap-1"})
    assert won.json()["result"] == "won", won.text
    _drain(client)
    person = _person(client)
    grabs = part(client.app, Grabs)

    async def down(phone_hash: str) -> None:
        raise ConnectionError("the claim store is down")

    monkeypatch.setattr(grabs.store, "forget", down)
    _wait_out_resend_gap(client)
    prove(client)
    token = client.csrf("/privacy/manage")
    assert client.post("/privacy/delete", data={"_csrf_token": token}).status_code == 200
    assert client.count("lead") == 0
    left = _traces(client, person)
    assert left and all(person["phone_hash"] in trace for trace in left), left

    monkeypatch.undo()
    page = _reverify(client)
    assert page.status_code == 200
    assert soup(page).select_one("form[action='/privacy/delete']") is None
    _drain(client)
    traces = _traces(client, person)
    assert traces == [], "\n".join(traces)
    report = client.raw.blocking_portal.call(grabs.check, GRAB)
    assert report.ok and (report.won, report.deleted, report.phones) == (1, 1, 0), report


def test_a_claimant_cached_elsewhere_claims_nothing_for_a_deleted_person(
    client: Browserish,
) -> None:
    """Another worker process may still hold the deleted person's claimant for a few seconds.
    On SQL the claim fails on the deleted lead (401, nothing claimed); on Redis the unit it
    takes is written void and anonymous, and the invariants hold either way."""
    from app.grabs.service import ClaimantGone
    from app.grabs.store import RedisClaimStore
    from tests.grab_support import add_grab, open_grab

    client.run(add_grab, open_grab(GRAB, stock=3))
    become_lead(client)
    grabs = part(client.app, Grabs)
    portal = client.raw.blocking_portal
    person = _person(client)
    (public_id,) = person["public_ids"]
    stale = portal.call(grabs.claimant, public_id)
    assert stale is not None
    _wait_out_resend_gap(client)
    prove(client)
    token = client.csrf("/privacy/manage")
    assert client.post("/privacy/delete", data={"_csrf_token": token}).status_code == 200

    async def tap() -> Any:
        return await grabs.claim(GRAB, stale, "tap-late", "192.0.2.1")

    if isinstance(grabs.store, RedisClaimStore):
        claimed = portal.call(tap)
        assert claimed.answer.result == "won"  # Redis alone cannot know; SQL voids it below
        _drain(client)
        status = client.run(_claim_statuses)
        assert status == ["void"]
        expected = (1, 1)
    else:
        with pytest.raises(ClaimantGone):
            portal.call(tap)
        assert client.count("grab_claim") == 0
        expected = (0, 0)
    _drain(client)
    traces = _traces(client, person)
    assert traces == [], "\n".join(traces)
    report = portal.call(grabs.check, GRAB)
    assert report.ok, report.problems
    assert (report.won, report.deleted) == expected


async def _claim_statuses(db: Any) -> list[str]:
    from sqlalchemy import select

    from app.grabs.models import GrabClaim

    return list((await db.execute(select(GrabClaim.status))).scalars())
