"""Voucher redemption by staff: look-up, redeem once (atomically), refusals with clear
messages, undo within the window, the audit trail, the lead's timeline and the lead page."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.core.clock import china_time
from app.core.crypto import DataCipher
from app.core.errors import DomainError
from app.core.ratelimit import MemoryRateLimiter
from app.core.state import part
from app.db.engine import Storage
from app.db.uow import finish
from app.events.models import FunnelEvent
from app.events.service import Tracker
from app.grabs.codes import display, new_code
from app.grabs.models import Grab, GrabClaim, VoucherAudit
from app.leads.models import Lead
from app.staff.models import StaffUser
from app.staff.schemas import Staff
from app.tools.models import Tool
from app.vouchers import service
from app.vouchers.schemas import VoucherForm
from tests.grab_support import lead_row
from tests.helpers import Browserish, soup

PHONE = "+8613812345678"
STORE = "徐汇旗舰店"


@contextlib.asynccontextmanager
async def request_edge(app: Any) -> AsyncIterator[Any]:
    """A session of its own, ended as a request's is (app/db/uow.py): committed on success or
    on a refusal the service kept, rolled back otherwise — services never commit."""
    async with part(app, Storage).sessionmaker() as db:
        try:
            yield db
        except DomainError:
            await finish(db, succeeded=False)
            raise
        await finish(db, succeeded=True)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_voucher(
    client: Browserish,
    *,
    code: str | None = None,
    expires_in: dt.timedelta = dt.timedelta(days=30),
    status: str = "issued",
    phone: str = PHONE,
    slug: str = "grab-demo",
) -> dict[str, Any]:
    """A published grab tool, its grab, a lead and one won claim (the voucher), written
    straight to the database: the grab engine is not needed to test redemption."""
    cipher = part(client.app, DataCipher)

    async def work(db: Any) -> dict[str, Any]:
        tool = (await db.execute(select(Tool).where(Tool.slug == slug))).scalar()
        if tool is None:
            tool = Tool(slug=slug, kind="grab", title="到店免费量房", status="published")
            db.add(tool)
            await db.flush()
            db.add(
                Grab(
                    tool_id=tool.id,
                    offer="价值 299 元的上门量房，免费",
                    initial_stock=10,
                    stock=9,
                    voucher_prefix="LK",
                    voucher_where="全国门店",
                )
            )
            await db.flush()
        grab = (await db.execute(select(Grab).where(Grab.tool_id == tool.id))).scalar_one()
        lead = (
            await db.execute(select(Lead).where(Lead.phone_hash == cipher.lookup_hash(phone)))
        ).scalar()
        if lead is None:
            lead = lead_row(cipher, phone)
            db.add(lead)
            await db.flush()
        n = 1 + len((await db.execute(select(GrabClaim.id))).all())
        claim = GrabClaim(
            grab_id=grab.id,
            phone_hash=lead.phone_hash,
            n=n,
            lead_id=lead.id,
            claimed_at=now(),
            code=code or new_code("LK"),
            expires_at=now() + expires_in,
            status=status,
        )
        db.add(claim)
        await db.flush()
        return {"id": claim.id, "code": claim.code, "lead_id": lead.id, "tool_id": tool.id}

    return dict(client.run(work))


def claim(client: Browserish, claim_id: int) -> GrabClaim:
    async def work(db: Any) -> GrabClaim:
        return (await db.execute(select(GrabClaim).where(GrabClaim.id == claim_id))).scalar_one()

    found: GrabClaim = client.run(work)
    return found


def audits(client: Browserish) -> list[tuple[str, str, str, str]]:
    """(action, reason, store, staff username) per audit row, oldest first."""

    async def work(db: Any) -> list[tuple[str, str, str, str]]:
        rows = await db.execute(
            select(VoucherAudit, StaffUser.username)
            .outerjoin(StaffUser, StaffUser.id == VoucherAudit.staff_id)
            .order_by(VoucherAudit.id)
        )
        return [(a.action, a.reason, a.store, name or "") for a, name in rows]

    return list(client.run(work))


def audit_columns(client: Browserish, *columns: Any) -> list[tuple[Any, ...]]:
    """The given VoucherAudit columns per audit row, oldest first."""

    async def work(db: Any) -> list[tuple[Any, ...]]:
        rows = await db.execute(select(*columns).order_by(VoucherAudit.id))
        return [tuple(row) for row in rows]

    return list(client.run(work))


def audit_targets(client: Browserish) -> list[tuple[str, int | None]]:
    """(voucher code, claim id) per audit row, oldest first."""
    rows = audit_columns(client, VoucherAudit.code, VoucherAudit.claim_id)
    return [(code, claim_id) for code, claim_id in rows]


def login(client: Browserish, username: str) -> None:
    """Sign in, with English pages: the assertions read the msgids, whatever the catalogs
    hold (the Chinese wording is checked in the browser test)."""
    client.raw.cookies.clear()
    assert client.login(username).status_code == 303
    client.raw.cookies.set("lk_lang", "en")


def post(client: Browserish, path: str, data: dict[str, str], htmx: bool = True) -> httpx.Response:
    headers = {"HX-Request": "true"} if htmx else {}
    return client.submit(path, data, page="/staff/vouchers", headers=headers)


def result_text(response: httpx.Response) -> str:
    found = soup(response).select_one("#voucher-result")
    assert found is not None, response.text[:2000]
    return found.get_text(" ", strip=True)


@pytest.fixture
def staff(client: Browserish) -> Browserish:
    for username, role in (
        ("sam", "sales"),
        ("sue", "sales"),
        ("hana", "host"),
        ("mara", "marketer"),
        ("ada", "admin"),
    ):
        client.make_staff(username, role)
    return client


def flush(client: Browserish) -> None:
    client.raw.blocking_portal.call(part(client.app, Tracker).flush)


def test_look_up_then_redeem(staff: Browserish) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    page = staff.get("/staff/vouchers")
    assert page.status_code == 200
    code_input = soup(page).select_one("#voucher-code")
    assert code_input is not None
    assert code_input["autocapitalize"] == "characters" and code_input["inputmode"] == "text"
    assert soup(page).select_one("#voucher-scan") is not None
    assert 'src="/static/vendor/jsQR-1.4.0.min.js' in page.text

    found = post(staff, "/staff/vouchers/lookup", {"code": voucher["code"], "store": STORE})
    assert found.status_code == 200
    shown = result_text(found)
    assert "到店免费量房" in shown and "138****5678" in shown and "Not yet redeemed" in shown
    assert display(voucher["code"]) in shown
    assert "13812345678" not in found.text
    assert claim(staff, voucher["id"]).status == "issued"  # a look-up changes nothing
    assert "lk_store_" in found.headers.get("set-cookie", "")

    done = post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    assert done.status_code == 200
    assert "Redeemed." in result_text(done)
    row = claim(staff, voucher["id"])
    assert row.status == "redeemed" and row.redeemed_store == STORE
    assert row.redeemed_at is not None and row.redeemed_by is not None
    assert audits(staff) == [("redeem", "", STORE, "sam")]
    recent = soup(done).select("#voucher-recent tbody tr")
    assert len(recent) == 1 and display(voucher["code"]) in recent[0].get_text()

    # The store is remembered for this staff member: the next page load has it filled in.
    again = staff.get("/staff/vouchers")
    store_input = soup(again).select_one("#voucher-store")
    assert store_input is not None and store_input["value"] == STORE


def test_redeeming_twice_is_refused_with_when_who_where(staff: Browserish) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    assert (
        post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE}).status_code
        == 200
    )
    first = claim(staff, voucher["id"])

    login(staff, "sue")
    for path in ("/staff/vouchers/lookup", "/staff/vouchers/redeem"):
        again = post(staff, path, {"code": voucher["code"], "store": "静安店"})
        assert again.status_code == 409
        message = result_text(again)
        assert "Already redeemed on " in message and "cannot be redeemed again" in message
        assert f" by sam at {STORE}." in message
        assert china_time(first.redeemed_at) in message
    after = claim(staff, voucher["id"])
    assert (after.status, after.redeemed_by, after.redeemed_store, after.redeemed_at) == (
        "redeemed",
        first.redeemed_by,
        STORE,
        first.redeemed_at,
    )
    assert audits(staff) == [
        ("redeem", "", STORE, "sam"),
        ("refused", "already_redeemed", "静安店", "sue"),
        ("refused", "already_redeemed", "静安店", "sue"),
    ]


def test_a_redemption_with_no_staff_or_store_recorded_is_refused_with_dashes(
    staff: Browserish,
) -> None:
    """A redeemed voucher whose row names no staff member (a till's token redeemed it, or the
    redeemer's account was deleted) and no store reads "by — at —", never "by  at ."."""
    voucher = make_voucher(staff, status="redeemed")
    redeemed_at = now() - dt.timedelta(hours=1)

    async def unnamed(db: Any) -> None:
        await db.execute(
            update(GrabClaim)
            .where(GrabClaim.id == voucher["id"])
            .values(redeemed_at=redeemed_at, redeemed_by=None, redeemed_store="")
        )

    staff.run(unnamed)
    login(staff, "sam")
    refused = post(staff, "/staff/vouchers/lookup", {"code": voucher["code"], "store": STORE})
    assert refused.status_code == 409
    assert (
        f"Already redeemed on {china_time(redeemed_at)} by — at —. It cannot be redeemed again."
        in result_text(refused)
    )


def test_expired_unknown_and_void_are_refused(staff: Browserish) -> None:
    expired = make_voucher(staff, expires_in=-dt.timedelta(minutes=1))
    void = make_voucher(staff, status="void")
    login(staff, "sam")

    refused = post(staff, "/staff/vouchers/redeem", {"code": expired["code"], "store": STORE})
    assert refused.status_code == 409
    # The message says when: the voucher's expiry, in China time.
    expires = china_time(claim(staff, expired["id"]).expires_at)
    assert f"This voucher expired on {expires} and cannot be redeemed." in result_text(refused)
    assert claim(staff, expired["id"]).status == "issued"

    unknown = post(staff, "/staff/vouchers/lookup", {"code": "LK 0000 0000 0000", "store": STORE})
    assert unknown.status_code == 404
    assert "No voucher has this code" in result_text(unknown)

    voided = post(staff, "/staff/vouchers/redeem", {"code": void["code"], "store": STORE})
    assert voided.status_code == 409
    assert "has been voided" in result_text(voided)
    assert claim(staff, void["id"]).status == "void"

    assert [(a, r) for a, r, _, _ in audits(staff)] == [
        ("refused", "expired"),
        ("refused", "unknown"),
        ("refused", "void"),
    ]


def test_normalised_input(staff: Browserish) -> None:
    login(staff, "sam")
    # A body with zeros and ones, typed with lowercase, spaces, dashes and the look-alikes.
    voucher = make_voucher(staff, code="LK0A1B0C1D0E1F")
    typed = " lk-oa1b  Oc1d-oeif "  # o→0, i→1, lower case, separators
    found = post(staff, "/staff/vouchers/lookup", {"code": typed, "store": STORE})
    assert found.status_code == 200, result_text(found)
    assert display("LK0A1B0C1D0E1F") in result_text(found)
    done = post(
        staff, "/staff/vouchers/redeem", {"code": "LK 0A1B 0C1D 0E1F".lower(), "store": STORE}
    )
    assert done.status_code == 200
    assert claim(staff, voucher["id"]).status == "redeemed"
    # A Chinese keyboard in full-width mode.
    wide = make_voucher(staff, code="LK7K3M9QX2PF4H")
    found = post(
        staff,
        "/staff/vouchers/lookup",
        {"code": "ｌｋ７Ｋ３Ｍ　９ＱＸ２－ＰＦ４Ｈ", "store": STORE},
    )
    assert found.status_code == 200 and display(wide["code"]) in result_text(found)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"code": "", "store": STORE}, "Enter a voucher code."),
        ({"code": "x" * 200, "store": STORE}, "This is not a voucher code"),
        ({"code": "<script>alert(1)</script>", "store": STORE}, "No voucher has this code"),
        ({"code": "LK' OR 1=1 --", "store": STORE}, "This is not a voucher code"),
        (
            {"code": "LK 7K3M 9QX2 PF4H 7K3M 9QX2 PF4H", "store": STORE},
            "This is not a voucher code",
        ),
        ({"code": "LK\x007K3M9QX2PF4H", "store": STORE}, "No voucher has this code"),
        ({"code": "{code}", "store": ""}, "Enter the store you are redeeming at first."),
        ({"code": "{code}", "store": "店\x00"}, "The store name must be at most 64 characters"),
        ({"code": "{code}", "store": "店" * 65}, "The store name must be at most 64 characters"),
        ({"code": "{code}", "store": "\u202eevil"}, "The store name must be at most 64 characters"),
    ],
)
def test_hostile_input_gets_a_clear_message_and_changes_nothing(
    staff: Browserish, data: dict[str, str], message: str
) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    form = {key: value.replace("{code}", voucher["code"]) for key, value in data.items()}
    for path in ("/staff/vouchers/lookup", "/staff/vouchers/redeem"):
        response = post(staff, path, form)
        assert 400 <= response.status_code < 500
        assert message in result_text(response)
    assert claim(staff, voucher["id"]).status == "issued"
    assert all(action == "refused" for action, *_ in audits(staff))


def test_huge_body_is_refused_by_the_framework_with_a_message(staff: Browserish) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    response = post(staff, "/staff/vouchers/redeem", {"code": "A" * 5000, "store": STORE})
    assert response.status_code == 400
    assert "Please check what you entered" in response.text
    assert claim(staff, voucher["id"]).status == "issued"
    assert audits(staff) == []


def test_roles_login_and_csrf(staff: Browserish) -> None:
    voucher = make_voucher(staff)
    staff.raw.cookies.clear()
    anonymous = staff.get("/staff/vouchers", follow_redirects=False)
    assert anonymous.status_code in (302, 303)
    assert anonymous.headers["location"].startswith("/staff/login?next=/staff/vouchers")
    # Signed out, with or without a CSRF token, plain form or htmx: nothing is looked up,
    # redeemed or undone; the answer sends the browser to the sign-in page.
    csrf = staff.csrf("/staff/login")
    for path in (
        "/staff/vouchers/lookup",
        "/staff/vouchers/redeem",
        f"/staff/vouchers/{voucher['id']}/undo",
    ):
        form = {"code": voucher["code"], "store": STORE}
        without = staff.raw.post(path, data=form, follow_redirects=False)
        assert without.status_code == 403, path  # CSRF first
        plain = staff.raw.post(path, data={"_csrf_token": csrf, **form}, follow_redirects=False)
        assert plain.status_code == 302, path
        assert plain.headers["location"] == f"/staff/login?next={path}"
        htmx = staff.raw.post(
            path,
            data={"_csrf_token": csrf, **form},
            headers={"HX-Request": "true"},
            follow_redirects=False,
        )
        assert htmx.status_code == 200 and htmx.text == "", path  # htmx follows HX-Redirect
        assert htmx.headers["hx-redirect"] == f"/staff/login?next={path}"
    assert claim(staff, voucher["id"]).status == "issued"
    assert audits(staff) == []

    for username in ("sam", "hana", "mara", "ada"):
        login(staff, username)
        assert staff.get("/staff/vouchers").status_code == 200

    login(staff, "sam")
    no_csrf = staff.raw.post(
        "/staff/vouchers/redeem", data={"code": voucher["code"], "store": STORE}
    )
    assert no_csrf.status_code == 403
    assert claim(staff, voucher["id"]).status == "issued"
    assert audits(staff) == []

    # API: bearer token with a staff role only; a session cookie is no credential there.
    api = staff.raw.post("/api/v1/vouchers/redeem", json={"code": voucher["code"], "store": STORE})
    assert api.status_code == 401
    assert claim(staff, voucher["id"]).status == "issued"


def test_a_role_outside_staff_roles_is_forbidden(staff: Browserish) -> None:
    """Every staff role may redeem; a token or user with an unknown role may not."""
    from app.staff import tokens
    from app.staff.models import ApiToken
    from app.staff.schemas import ApiTokenCreate

    voucher = make_voucher(staff)

    async def odd_role(db: Any) -> str:
        await db.execute(update(StaffUser).where(StaffUser.username == "hana").values(role="kiosk"))
        token, raw = await tokens.create_token(db, None, ApiTokenCreate(name="till", role="sales"))
        await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(role="kiosk"))
        return str(raw)

    raw_token = staff.run(odd_role)
    login(staff, "hana")
    assert staff.get("/staff/vouchers").status_code == 403
    # The page is not the only door: posting the forms is refused as well…
    csrf = staff.csrf("/staff/login")
    for path in ("/staff/vouchers/lookup", "/staff/vouchers/redeem"):
        refused = staff.raw.post(
            path,
            data={"_csrf_token": csrf, "code": voucher["code"], "store": STORE},
            headers={"HX-Request": "true"},
        )
        assert refused.status_code == 403, path
    # …and so is the till API with a token of that role.
    staff.raw.cookies.clear()
    api = staff.raw.post(
        "/api/v1/vouchers/redeem",
        json={"code": voucher["code"], "store": STORE},
        headers={"Authorization": f"Bearer {raw_token}"},
    )
    assert api.status_code == 403, api.text
    assert claim(staff, voucher["id"]).status == "issued"
    assert audits(staff) == []


def test_concurrent_redemption_exactly_one_wins(staff: Browserish) -> None:
    voucher = make_voucher(staff)
    app = staff.app
    ids = staff.run(lambda db: _staff_ids(db, ["sam", "sue", "hana", "mara"]))

    async def race() -> list[str]:
        async def one(staff_id: int, username: str) -> str:
            who = Staff(id=staff_id, username=username, display_name=username, role="sales")
            try:
                async with request_edge(app) as db:
                    await service.redeem(
                        db,
                        MemoryRateLimiter(),
                        part(app, Tracker),
                        who,
                        VoucherForm(code=voucher["code"], store=f"{username}店"),
                        "127.0.0.1",
                        10,
                    )
            except service.AlreadyRedeemed:
                return "refused"
            return "redeemed"

        return list(await asyncio.gather(*(one(i, name) for name, i in ids.items())))

    outcomes = staff.raw.blocking_portal.call(race)
    assert sorted(outcomes) == ["redeemed", "refused", "refused", "refused"]
    rows = audits(staff)
    assert sorted(a for a, *_ in rows) == ["redeem", "refused", "refused", "refused"]
    winner = next(store for action, _, store, _ in rows if action == "redeem")
    assert claim(staff, voucher["id"]).redeemed_store == winner


async def _staff_ids(db: Any, names: list[str]) -> dict[str, int]:
    rows = await db.execute(
        select(StaffUser.username, StaffUser.id).where(StaffUser.username.in_(names))
    )
    return dict(rows.all())


def _age_redemption(client: Browserish, claim_id: int, minutes: int) -> None:
    async def work(db: Any) -> None:
        await db.execute(
            update(GrabClaim)
            .where(GrabClaim.id == claim_id)
            .values(redeemed_at=now() - dt.timedelta(minutes=minutes))
        )

    client.run(work)


def test_undo_inside_and_outside_the_window(staff: Browserish) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})

    # Someone else (not an admin) may not undo it.
    login(staff, "sue")
    other = post(staff, f"/staff/vouchers/{voucher['id']}/undo", {})
    assert other.status_code == 403
    assert "Only the staff member who redeemed this voucher" in result_text(other)
    assert claim(staff, voucher["id"]).status == "redeemed"

    login(staff, "sam")
    page = staff.get("/staff/vouchers")
    assert soup(page).select_one(f"#redeemed-{voucher['id']} form[hx-post$='/undo']") is not None
    undone = post(staff, f"/staff/vouchers/{voucher['id']}/undo", {})
    assert undone.status_code == 200
    assert "Redemption undone" in result_text(undone)
    row = claim(staff, voucher["id"])
    assert (row.status, row.redeemed_at, row.redeemed_by, row.redeemed_store) == (
        "issued",
        None,
        None,
        "",
    )
    # Undone twice: nothing to undo.
    twice = post(staff, f"/staff/vouchers/{voucher['id']}/undo", {})
    assert twice.status_code == 409 and "nothing to undo" in result_text(twice)

    # Redeemed again, then the window passes: too late, even for the redeemer.
    post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    _age_redemption(staff, voucher["id"], 11)
    late = post(staff, f"/staff/vouchers/{voucher['id']}/undo", {})
    assert late.status_code == 409
    assert "only within 10 minutes" in result_text(late)
    assert claim(staff, voucher["id"]).status == "redeemed"
    assert soup(staff.get("/staff/vouchers")).select_one(f"#redeemed-{voucher['id']} form") is None

    # An admin may undo someone else's redemption inside the window, not after it.
    login(staff, "ada")
    assert post(staff, f"/staff/vouchers/{voucher['id']}/undo", {}).status_code == 409
    _age_redemption(staff, voucher["id"], 3)
    assert post(staff, f"/staff/vouchers/{voucher['id']}/undo", {}).status_code == 200
    assert claim(staff, voucher["id"]).status == "issued"

    assert [(a, r, who) for a, r, _, who in audits(staff)] == [
        ("redeem", "", "sam"),
        ("refused", "undo_not_allowed", "sue"),
        ("undo", "", "sam"),
        ("refused", "not_redeemed", "sam"),
        ("redeem", "", "sam"),
        ("refused", "undo_too_late", "sam"),
        ("refused", "undo_too_late", "ada"),
        ("undo", "", "ada"),
    ]
    # Each row names the store the voucher was redeemed at; "nothing to undo" has none (and
    # this browser remembers none: signing in again cleared its cookies).
    assert [store for _, _, store, _ in audits(staff)] == [STORE] * 3 + [""] + [STORE] * 4
    # And every row, refusals too, names the voucher: its code and its row (the desk's history
    # and a lead's timeline find an undo by them).
    assert audit_targets(staff) == [(voucher["code"], voucher["id"])] * 8


def test_audit_records_ip(staff: Browserish) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})

    async def work(db: Any) -> tuple[str, int | None, str]:
        row = (await db.execute(select(VoucherAudit))).scalar_one()
        return row.ip, row.claim_id, row.code

    ip, claim_id, code = staff.run(work)
    assert ip and claim_id == voucher["id"] and code == voucher["code"]


def test_refusals_are_audited_with_the_code_the_claim_and_the_address(staff: Browserish) -> None:
    """A refused look-up or undo leaves an audit row as complete as a redemption's: the code as
    typed (even one that matches nothing), the voucher's claim row when there is one, and the
    address it came from."""
    expired = make_voucher(staff, expires_in=-dt.timedelta(days=1))
    issued = make_voucher(staff)
    login(staff, "sam")
    unknown = new_code("LK")  # the shape of a code, matching none
    post(staff, "/staff/vouchers/lookup", {"code": unknown, "store": STORE})
    post(staff, "/staff/vouchers/lookup", {"code": expired["code"], "store": STORE})
    post(staff, f"/staff/vouchers/{issued['id']}/undo", {"store": STORE})

    audited = audit_columns(
        staff,
        VoucherAudit.action,
        VoucherAudit.reason,
        VoucherAudit.code,
        VoucherAudit.claim_id,
        VoucherAudit.ip,
    )
    assert [row[:4] for row in audited] == [
        ("refused", "unknown", unknown, None),
        ("refused", "expired", expired["code"], expired["id"]),
        ("refused", "not_redeemed", issued["code"], issued["id"]),
    ]
    assert all(row[4] for row in audited), audited  # each names the address


async def voucher_events(db: Any) -> list[tuple[Any, ...]]:
    rows = await db.execute(
        select(FunnelEvent.name, FunnelEvent.tool_id, FunnelEvent.tool_version, FunnelEvent.lead_id)
        .where(FunnelEvent.name.like("voucher%"))
        .order_by(FunnelEvent.id)
    )
    return [tuple(row) for row in rows]


def test_timeline_and_lead_page(staff: Browserish) -> None:
    voucher = make_voucher(staff)

    async def publish_version_3(db: Any) -> None:
        await db.execute(
            update(Tool).where(Tool.id == voucher["tool_id"]).values(current_version=3)
        )

    staff.run(publish_version_3)
    make_voucher(staff, expires_in=-dt.timedelta(days=1))
    login(staff, "sam")
    post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    post(staff, f"/staff/vouchers/{voucher['id']}/undo", {})
    post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    flush(staff)

    page = staff.get(f"/staff/leads/{voucher['lead_id']}")
    assert page.status_code == 200
    events = [
        (row["data-event"], row.select("td.tool")[0].get_text(strip=True))
        for row in soup(page).select("#timeline tbody tr[data-event]")
    ]
    assert events == [
        ("voucher_redeemed", "到店免费量房"),
        ("voucher_redemption_undone", "到店免费量房"),
        ("voucher_redeemed", "到店免费量房"),
    ]
    timeline = soup(page).select("#timeline")[0].get_text(" ", strip=True)
    assert "Redeemed a voucher" in timeline and "Voucher redemption undone" in timeline
    assert re.search(rf"Store\s*[:：]\s*{STORE}", timeline), timeline  # the property, labelled

    # Each voucher event carries the grab tool and the version the visitor saw.
    assert staff.run(voucher_events) == [
        ("voucher_redeemed", voucher["tool_id"], 3, voucher["lead_id"]),
        ("voucher_redemption_undone", voucher["tool_id"], 3, voucher["lead_id"]),
        ("voucher_redeemed", voucher["tool_id"], 3, voucher["lead_id"]),
    ]

    vouchers = soup(page).select("#lead-vouchers tbody tr")
    assert len(vouchers) == 2
    texts = [row.get_text(" ", strip=True) for row in vouchers]
    redeemed = next(t for t in texts if display(voucher["code"]) in t)
    assert "Redeemed" in redeemed and STORE in redeemed and "sam" in redeemed
    assert any("Expired" in t for t in texts)


def test_lookups_are_rate_limited_per_staff_member(
    staff: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "LOOKUPS_PER_MINUTE", 5)
    # Fixed one-minute windows: start well inside one so the count is not reset halfway.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
    login(staff, "sam")
    csrf = staff.csrf("/staff/vouchers")
    statuses = [
        staff.raw.post(
            "/staff/vouchers/lookup",
            data={"_csrf_token": csrf, "code": f"LK{i:012d}", "store": STORE},
            headers={"HX-Request": "true"},
        ).status_code
        for i in range(service.LOOKUPS_PER_MINUTE + 1)
    ]
    assert statuses[:-1] == [404] * service.LOOKUPS_PER_MINUTE
    last = staff.raw.post(
        "/staff/vouchers/lookup",
        data={"_csrf_token": csrf, "code": "LK000000000001", "store": STORE},
        headers={"HX-Request": "true"},
    )
    assert statuses[-1] == 429 and last.status_code == 429
    assert "Too many voucher look-ups" in result_text(last)
    # Another staff member is not held up by sam's count.
    login(staff, "sue")
    assert (
        post(
            staff, "/staff/vouchers/lookup", {"code": "LK000000000001", "store": STORE}
        ).status_code
        == 404
    )


def test_api_redeem_with_a_bearer_token(staff: Browserish) -> None:
    from app.staff import tokens
    from app.staff.schemas import ApiTokenCreate

    voucher = make_voucher(staff)

    async def token(db: Any) -> str:
        admin = Staff(id=0, username="system", display_name="system", role="admin")
        _, raw = await tokens.create_token(db, admin, ApiTokenCreate(name="门店收银", role="sales"))
        return str(raw)

    bearer = {"Authorization": f"Bearer {staff.run(token)}"}
    staff.raw.cookies.clear()
    done = staff.raw.post(
        "/api/v1/vouchers/redeem",
        json={"code": voucher["code"].lower(), "store": STORE},
        headers=bearer,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert (
        body["status"] == "redeemed" and body["store"] == STORE and body["code"] == voucher["code"]
    )
    # The till shows what to hand over: the grab's title and its offer.
    assert (body["title"], body["offer"]) == ("到店免费量房", "价值 299 元的上门量房，免费")
    again = staff.raw.post(
        "/api/v1/vouchers/redeem", json={"code": voucher["code"], "store": STORE}, headers=bearer
    )
    assert again.status_code == 409
    problem = again.json()
    assert problem["code"] == "already_redeemed"
    assert "不能重复核销" in problem["detail"]  # the API speaks the default locale, zh_CN
    assert f"由 — 在 {STORE} 核销" in problem["detail"]  # a till token is no one by name
    assert "%(" not in problem["detail"]
    bad = staff.raw.post(
        "/api/v1/vouchers/redeem", json={"code": "?", "store": STORE}, headers=bearer
    )
    assert bad.status_code == 400 and bad.json()["code"] == "malformed"
    assert bad.json()["errors"] == {"code": "invalid"}  # the field a client marks
    # A token is no staff member: the redemption and its audit name none, only the store.
    row = claim(staff, voucher["id"])
    assert (row.status, row.redeemed_by, row.redeemed_store) == ("redeemed", None, STORE)

    audit_rows = audit_columns(
        staff,
        VoucherAudit.action,
        VoucherAudit.reason,
        VoucherAudit.staff_id,
        VoucherAudit.claim_id,
        VoucherAudit.code,
        VoucherAudit.store,
    )
    assert audit_rows == [
        ("redeem", "", None, voucher["id"], voucher["code"], STORE),
        ("refused", "already_redeemed", None, voucher["id"], voucher["code"], STORE),
    ]


# --- the redemption rules at their boundaries (mutation testing: tests/mutation.py) ---------


def _age_redemption_by(client: Browserish, claim_id: int, age: dt.timedelta) -> None:
    async def work(db: Any) -> None:
        await db.execute(
            update(GrabClaim).where(GrabClaim.id == claim_id).values(redeemed_at=now() - age)
        )

    client.run(work)


@pytest.mark.parametrize(
    ("age", "undone"),
    [
        (dt.timedelta(minutes=9, seconds=50), True),
        (dt.timedelta(minutes=10, seconds=10), False),
    ],
)
def test_the_undo_window_is_ten_minutes(staff: Browserish, age: dt.timedelta, undone: bool) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    redeemed = post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    assert redeemed.status_code == 200
    _age_redemption_by(staff, voucher["id"], age)
    shown = staff.get("/staff/vouchers")
    offered = soup(shown).select_one(f"#redeemed-{voucher['id']} form[hx-post$='/undo']")
    assert (offered is not None) is undone  # the button is offered exactly when it works
    answer = post(staff, f"/staff/vouchers/{voucher['id']}/undo", {})
    if undone:
        assert answer.status_code == 200 and claim(staff, voucher["id"]).status == "issued"
    else:
        assert answer.status_code == 409
        assert "only within 10 minutes" in result_text(answer)
        assert claim(staff, voucher["id"]).status == "redeemed"
    reason = "" if undone else "undo_too_late"
    assert audits(staff)[-1][:2] == ("undo" if undone else "refused", reason)


def test_the_undo_window_ends_exactly_at_ten_minutes(
    staff: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    voucher = make_voucher(staff)
    login(staff, "sam")
    redeemed = post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    assert redeemed.status_code == 200
    redeemed_at = claim(staff, voucher["id"]).redeemed_at
    assert redeemed_at is not None
    end = redeemed_at.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=10)
    monkeypatch.setattr(service, "now", lambda: end)
    late = post(staff, f"/staff/vouchers/{voucher['id']}/undo", {})
    assert late.status_code == 409 and "only within 10 minutes" in result_text(late)
    monkeypatch.setattr(service, "now", lambda: end - dt.timedelta(microseconds=1))
    assert post(staff, f"/staff/vouchers/{voucher['id']}/undo", {}).status_code == 200
    assert [(a, r) for a, r, _, _ in audits(staff)] == [
        ("redeem", ""),
        ("refused", "undo_too_late"),
        ("undo", ""),
    ]


def test_a_voucher_expires_at_its_expiry_time(
    staff: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    voucher = make_voucher(staff)
    expires = claim(staff, voucher["id"]).expires_at.replace(tzinfo=dt.UTC)
    login(staff, "sam")
    monkeypatch.setattr(service, "now", lambda: expires)
    for path in ("/staff/vouchers/lookup", "/staff/vouchers/redeem"):
        refused = post(staff, path, {"code": voucher["code"], "store": STORE})
        assert refused.status_code == 409 and "This voucher expired on " in result_text(refused)
    assert claim(staff, voucher["id"]).status == "issued"
    monkeypatch.setattr(service, "now", lambda: expires - dt.timedelta(microseconds=1))
    found = post(staff, "/staff/vouchers/lookup", {"code": voucher["code"], "store": STORE})
    assert found.status_code == 200 and "Not yet redeemed" in result_text(found)
    done = post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    assert done.status_code == 200 and claim(staff, voucher["id"]).status == "redeemed"


class MinuteClock:
    """``time.time()`` under the test's hand (the rate limiter's one-minute windows read it),
    starting 5 s into a minute."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.minute = (int(time.time()) // 60 + 1) * 60
        self.now = self.minute + 5.0
        monkeypatch.setattr(time, "time", lambda: self.now)


def test_look_ups_and_redemptions_share_thirty_a_minute(
    staff: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = MinuteClock(monkeypatch)
    first, second = make_voucher(staff), make_voucher(staff)
    login(staff, "sam")
    csrf = staff.csrf("/staff/vouchers")

    def tap(path: str, code: str) -> httpx.Response:
        return staff.raw.post(
            path,
            data={"_csrf_token": csrf, "code": code, "store": STORE},
            headers={"HX-Request": "true"},
        )

    looked = [tap("/staff/vouchers/lookup", f"LK{i:012d}").status_code for i in range(29)]
    assert looked == [404] * 29
    assert tap("/staff/vouchers/redeem", first["code"]).status_code == 200  # the 30th
    refused = tap("/staff/vouchers/redeem", second["code"])
    assert refused.status_code == 429 and "Too many voucher look-ups" in result_text(refused)
    assert claim(staff, second["id"]).status == "issued"
    assert tap("/staff/vouchers/lookup", second["code"]).status_code == 429
    clock.now = clock.minute + 59.5
    assert tap("/staff/vouchers/redeem", second["code"]).status_code == 429  # a whole minute…
    clock.now = clock.minute + 60
    assert tap("/staff/vouchers/redeem", second["code"]).status_code == 200  # …and no more
    assert claim(staff, second["id"]).status == "redeemed"


def redeemed_by_sam(staff: Browserish, *colleagues: str) -> tuple[dict[str, Any], dict[str, int]]:
    """A voucher sam has just redeemed at STORE, signed in, and the ids of sam and
    ``colleagues``."""
    voucher = make_voucher(staff)
    ids = staff.run(lambda db: _staff_ids(db, ["sam", *colleagues]))
    login(staff, "sam")
    redeemed = post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    assert redeemed.status_code == 200
    return voucher, ids


def _who(ids: dict[str, int], name: str, role: str = "sales") -> Staff:
    return Staff(id=ids[name], username=name, display_name=name, role=role)


def test_undo_racing_redemptions_keeps_one_story(staff: Browserish) -> None:
    """The redeemer undoes while two colleagues try to redeem the same code: whatever the
    order, at most one of them redeems it, and the row and the audit trail tell one story."""
    voucher, ids = redeemed_by_sam(staff, "sue", "hana")
    app = staff.app
    tracker = part(app, Tracker)

    async def race() -> list[str]:
        async def undo() -> str:
            try:
                async with request_edge(app) as db:
                    await service.undo(
                        db, tracker, _who(ids, "sam"), voucher["id"], "ip", 10, STORE
                    )
            except service.VoucherRefused as exc:
                return f"undo refused: {exc.code}"
            return "undone"

        async def redeem(name: str) -> str:
            form = VoucherForm(code=voucher["code"], store=f"{name}店")
            try:
                async with request_edge(app) as db:
                    await service.redeem(
                        db, MemoryRateLimiter(), tracker, _who(ids, name), form, "ip", 10
                    )
            except service.VoucherRefused as exc:
                return f"{name} refused: {exc.code}"
            return f"{name} redeemed"

        return list(await asyncio.gather(undo(), redeem("sue"), redeem("hana")))

    for _ in range(3):
        outcomes = staff.raw.blocking_portal.call(race)
        assert outcomes[0] == "undone", outcomes  # only the redeemer undoes; nobody else did
        winners = [o.split()[0] for o in outcomes[1:] if o.split()[1] == "redeemed"]
        assert len(winners) <= 1, outcomes
        row = claim(staff, voucher["id"])
        if winners:
            assert (row.status, row.redeemed_by, row.redeemed_store) == (
                "redeemed",
                ids[winners[0]],
                f"{winners[0]}店",
            )
        else:
            assert (row.status, row.redeemed_by, row.redeemed_at) == ("issued", None, None)
        actions = [a for a, *_ in audits(staff)]
        assert actions.count("redeem") - actions.count("undo") == (1 if winners else 0)
        # Set the scene again: sam redeems it back.
        if winners:

            async def give_back(db: Any) -> None:
                await db.execute(
                    update(GrabClaim)
                    .where(GrabClaim.id == voucher["id"])
                    .values(redeemed_by=ids["sam"], redeemed_at=now(), redeemed_store=STORE)
                )

            staff.run(give_back)
        else:
            post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})


class _Between:
    """A session whose ``get`` lets someone else act between the read and the caller's next
    statement: a race, staged in a fixed order."""

    def __init__(self, db: Any, between: Any) -> None:
        self._db, self._between = db, between

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        found = await self._db.get(*args, **kwargs)
        await self._between()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_an_undo_never_undoes_a_colleagues_later_redemption(staff: Browserish) -> None:
    """Sam opens the undo; before it writes, an admin undoes Sam's redemption and Sue redeems
    the voucher. Sam's undo must not take Sue's redemption back. (SQLite has no row locks: the
    UPDATE's own conditions decide. PostgreSQL locks the row: the others wait for Sam.)"""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    voucher, ids = redeemed_by_sam(staff, "sue", "ada")
    app = staff.app
    tracker = part(app, Tracker)
    on_postgres = part(app, Storage).engine.dialect.name == "postgresql"

    async def others_act() -> None:
        try:
            async with request_edge(app) as db:
                if on_postgres:  # the row is Sam's until Sam's transaction ends
                    await db.execute(text("SET LOCAL lock_timeout = '300ms'"))
                ada = _who(ids, "ada", "admin")
                await service.undo(db, tracker, ada, voucher["id"], "ip", 10, STORE)
        except DBAPIError:
            assert on_postgres
            return
        assert not on_postgres, "the undo did not wait for Sam's lock on the row"
        async with request_edge(app) as db:
            form = VoucherForm(code=voucher["code"], store="静安店")
            await service.redeem(db, MemoryRateLimiter(), tracker, _who(ids, "sue"), form, "ip", 10)

    async def sams_undo() -> str:
        try:
            async with request_edge(app) as db:
                sam = _who(ids, "sam")
                await service.undo(
                    _Between(db, others_act), tracker, sam, voucher["id"], "ip", 10, STORE
                )
        except service.VoucherRefused as exc:
            return exc.code
        return "undone"

    outcome = staff.raw.blocking_portal.call(sams_undo)
    row = claim(staff, voucher["id"])
    if on_postgres:
        assert outcome == "undone" and row.status == "issued"
    else:
        assert outcome == "not_redeemed"
        assert (row.status, row.redeemed_by, row.redeemed_store) == (
            "redeemed",
            ids["sue"],
            "静安店",
        )


BODY = "7K3M9QX2PF4H"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("L" + BODY, "L" + BODY),  # the shortest code: a one-letter prefix
        ("ABCDEFGH" + BODY, "ABCDEFGH" + BODY),  # the longest: an eight-letter prefix
        ("LK" + "-" * 50 + BODY.lower(), "LK" + BODY),  # 64 characters typed, separators too
        (" \t LK 7K3M 9QX2 PF4H \n", "LK" + BODY),  # spaces around do not count
        ("ｌｋ７Ｋ３Ｍ９ＱＸ２ＰＦ４Ｈ", "LK" + BODY),  # full-width
    ],
)
def test_what_counts_as_a_code(typed: str, stored: str) -> None:
    assert service.clean_code(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        BODY,  # no prefix
        "ABCDEFGHJ" + BODY,  # a nine-letter prefix
        "LK" + "-" * 51 + BODY,  # 65 characters typed
        "LK" + BODY[:-1] + "é",  # not ASCII
    ],
)
def test_what_is_not_a_code(typed: str) -> None:
    with pytest.raises(service.NotACode):
        service.clean_code(typed)


@pytest.mark.parametrize("typed", ["", "   ", "\u3000"])
def test_an_empty_code_is_asked_for(typed: str) -> None:
    with pytest.raises(service.InvalidInput) as refused:
        service.clean_code(typed)
    assert refused.value.fields == {"code": "missing"}


def test_store_names_up_to_64_characters() -> None:
    assert service.clean_store("  " + "店" * 64 + "  ") == "店" * 64
    for bad, why in (("店" * 65, "invalid"), ("", "missing"), (" \t ", "missing")):
        with pytest.raises(service.InvalidInput) as refused:
            service.clean_store(bad)
        assert refused.value.fields == {"store": why}


def test_recent_lists_todays_redemptions_in_china_time(
    staff: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The redemption page's list: today's (from midnight in Beijing, not UTC) at the store,
    newest first, or without a store the staff member's own."""
    from app.core.clock import CHINA_TZ

    ids = staff.run(lambda db: _staff_ids(db, ["sam", "sue"]))
    today = dt.datetime.now(CHINA_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    # Noon and some seconds: the day starts at 00:00:00, whatever the clock's seconds.
    noon = today + dt.timedelta(hours=12, minutes=34, seconds=56, microseconds=789)
    monkeypatch.setattr(service, "now", lambda: noon.astimezone(dt.UTC))

    async def redeemed(db: Any, claim_id: int, by: int, at: dt.datetime, where: str) -> None:
        await db.execute(
            update(GrabClaim)
            .where(GrabClaim.id == claim_id)
            .values(redeemed_by=by, redeemed_at=at.astimezone(dt.UTC), redeemed_store=where)
        )

    made = {}
    for name, who, at, where in (
        ("midnight", "sam", today, STORE),
        ("yesterday", "sam", today - dt.timedelta(seconds=1), STORE),
        ("elsewhere", "sue", today + dt.timedelta(hours=9), "静安店"),
        ("latest", "sue", today + dt.timedelta(hours=10), STORE),
    ):
        voucher = make_voucher(staff, status="redeemed")
        made[voucher["id"]] = name
        staff.run(redeemed, voucher["id"], ids[who], at, where)
    make_voucher(staff)  # issued, never redeemed

    def listed(name: str, store: str) -> list[str]:
        views = staff.run(lambda db: service.recent(db, _who(ids, name), store, 10))
        return [made[v.id] for v in views]

    assert listed("sam", STORE) == ["latest", "midnight"]
    assert listed("sue", STORE) == ["latest", "midnight"]
    assert listed("sam", "") == ["midnight"]
    assert listed("sue", "") == ["latest", "elsewhere"]
    assert listed("sue", "静安店") == ["elsewhere"]


def test_a_leads_vouchers_newest_first_without_undo(staff: Browserish) -> None:
    first = make_voucher(staff)
    second = make_voucher(staff, status="redeemed")
    make_voucher(staff, phone="+8613900000000")  # another lead's

    async def older(db: Any) -> None:
        await db.execute(
            update(GrabClaim)
            .where(GrabClaim.id == first["id"])
            .values(claimed_at=now() - dt.timedelta(days=1))
        )
        await db.execute(
            update(GrabClaim)
            .where(GrabClaim.id == second["id"])
            .values(redeemed_at=now(), redeemed_store=STORE)
        )

    staff.run(older)
    views = staff.run(lambda db: service.for_lead(db, first["lead_id"]))
    assert [v.id for v in views] == [second["id"], first["id"]]
    assert [v.status for v in views] == ["redeemed", "issued"]
    assert not any(v.can_undo for v in views)  # the lead page offers no undo
    assert [v.offer for v in views] == ["价值 299 元的上门量房，免费"] * 2


def test_a_grab_without_an_offer_shows_none(staff: Browserish) -> None:
    voucher = make_voucher(staff)

    async def no_offer(db: Any) -> None:
        await db.execute(update(Grab).values(offer=""))

    staff.run(no_offer)
    [view] = staff.run(lambda db: service.for_lead(db, voucher["lead_id"]))
    assert view.offer == ""


def test_a_redemption_and_its_undo_are_timed_as_their_rows(staff: Browserish) -> None:
    """A redemption and an undo each happen at one instant: the voucher row, the audit row and
    the timeline's event record the same one."""
    voucher = make_voucher(staff)
    login(staff, "sam")
    post(staff, "/staff/vouchers/redeem", {"code": voucher["code"], "store": STORE})
    redeemed_at = claim(staff, voucher["id"]).redeemed_at
    post(staff, f"/staff/vouchers/{voucher['id']}/undo", {"store": STORE})
    flush(staff)

    async def times(db: Any) -> tuple[list[Any], list[Any]]:
        events = await db.execute(
            select(FunnelEvent.at).where(FunnelEvent.name.like("voucher%")).order_by(FunnelEvent.id)
        )
        audits = await db.execute(select(VoucherAudit.at).order_by(VoucherAudit.id))
        return list(events.scalars()), list(audits.scalars())

    events, audits = staff.run(times)
    assert events == [redeemed_at, audits[1]] and audits[0] == redeemed_at

    async def stores(db: Any) -> list[Any]:
        props = await db.execute(
            select(FunnelEvent.props)
            .where(FunnelEvent.name.like("voucher%"))
            .order_by(FunnelEvent.id)
        )
        return [p.get("store") for p in props.scalars()]

    assert staff.run(stores) == [STORE, STORE]  # the undo names the store too


def _claimed(client: Browserish, when: dict[int, dt.datetime]) -> None:
    async def work(db: Any) -> None:
        for claim_id, at in when.items():
            await db.execute(
                update(GrabClaim).where(GrabClaim.id == claim_id).values(claimed_at=at)
            )

    client.run(work)


def test_a_leads_vouchers_are_ordered_by_claim_time_then_the_later_row(staff: Browserish) -> None:
    """The lead page lists the newest claim first, whatever order the rows were written in
    (a claim's time is not its row's: a voucher can be written after a later one's); two
    claimed in the same instant come the later row first."""
    written_first, tied_first, tied_second = (make_voucher(staff)["id"] for _ in range(3))
    lead_id = claim(staff, written_first).lead_id
    day_ago = now() - dt.timedelta(days=1)
    _claimed(staff, {written_first: now(), tied_first: day_ago, tied_second: day_ago})
    views = staff.run(lambda db: service.for_lead(db, lead_id))
    assert [v.id for v in views] == [written_first, tied_second, tied_first]


def test_the_lead_page_lists_a_leads_fifty_newest_vouchers(staff: Browserish) -> None:
    """At most RECENT_LIMIT (50) vouchers on the lead page: the oldest of 51 is left out."""
    oldest = make_voucher(staff)

    async def fifty_more(db: Any) -> list[int]:
        model = (
            await db.execute(select(GrabClaim).where(GrabClaim.id == oldest["id"]))
        ).scalar_one()
        added = [
            GrabClaim(
                grab_id=model.grab_id,
                phone_hash=model.phone_hash,
                n=model.n + i,
                lead_id=model.lead_id,
                claimed_at=now(),
                code=new_code("LK"),
                expires_at=model.expires_at,
                status="issued",
            )
            for i in range(1, 51)
        ]
        db.add_all(added)
        await db.flush()
        return [c.id for c in added]

    newer = staff.run(fifty_more)
    _claimed(staff, {oldest["id"]: now() - dt.timedelta(days=1)})
    listed = {v.id for v in staff.run(lambda db: service.for_lead(db, oldest["lead_id"]))}
    assert service.RECENT_LIMIT == 50
    assert listed == set(newer)
