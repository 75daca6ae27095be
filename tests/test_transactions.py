"""The transaction rule (docs/development.md, app/db/uow.py), pinned where it matters: services
and routes never commit, the request's edge does; an audited refusal is kept although its
answer is a refusal; what must follow a commit (a grab's announcement) follows it, so a commit
that fails announces nothing and changes nothing; a refused form is shown again without
anyone rolling back by hand."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.core.forms import catch_refusal
from app.core.ratelimit import MemoryRateLimiter
from app.core.state import part
from app.db.engine import Storage
from app.events.service import Tracker
from app.grabs.models import Grab
from app.grabs.service import Grabs
from app.staff.models import StaffUser
from app.staff.schemas import Staff
from app.vouchers import service as vouchers
from app.vouchers.schemas import VoucherForm
from tests.grab_support import add_grab, flash_form, open_grab
from tests.helpers import Browserish, edge_commit_fails
from tests.test_grabs import bearer
from tests.test_vouchers import STORE, audits, claim, make_voucher

APP = Path(__file__).resolve().parent.parent / "app"
# Where a session or connection may be committed or rolled back by name: the edge itself, the
# refusal helper (a transaction a failed flush left dead), and the claim store's own
# connection-level transactions (no request session there). Everything else flushes.
MAY_END_TRANSACTIONS = {"app/db/uow.py", "app/core/forms.py", "app/grabs/store/sql_store.py"}


def test_no_module_commits_or_rolls_back_but_the_edges() -> None:
    """By construction, not by care: a ``commit()`` or ``rollback()`` call anywhere else under
    app/ is a service or a route ending the request's transaction. Background tasks and
    commands end theirs with ``async with sessionmaker() as db, db.begin():``."""
    found = []
    for path in APP.rglob("*.py"):
        name = str(path.relative_to(APP.parent))
        if "migrations" in path.parts or name in MAY_END_TRANSACTIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("commit", "rollback")
                and not node.args  # a session's or a connection's, not a version roll-back
                and not node.keywords
            ):
                found.append(f"{name}:{node.lineno} .{node.func.attr}()")
    assert found == []


# Vouchers: refusals are audited, and kept.


def _sales(client: Browserish) -> Staff:
    async def work(db: Any) -> int:
        return int(
            (await db.execute(select(StaffUser.id).where(StaffUser.username == "sam"))).scalar_one()
        )

    return Staff(id=client.run(work), username="sam", display_name="sam", role="sales")


@pytest.fixture
def sam(client: Browserish) -> Browserish:
    client.make_staff("sam", "sales")
    return client


def test_a_redemption_is_committed_by_its_caller_not_by_the_service(sam: Browserish) -> None:
    """The service only flushes: a caller that rolls back (a request answering an error)
    leaves the voucher issued and no audit row."""
    voucher = make_voucher(sam)
    who = _sales(sam)

    async def redeem_then_roll_back() -> None:
        async with part(sam.app, Storage).sessionmaker() as db:
            form = VoucherForm(code=voucher["code"], store=STORE)
            await vouchers.redeem(
                db, MemoryRateLimiter(), part(sam.app, Tracker), who, form, "ip", 10
            )
            await db.rollback()

    sam.raw.blocking_portal.call(redeem_then_roll_back)
    assert claim(sam, voucher["id"]).status == "issued"
    assert audits(sam) == []


def test_an_audited_refusal_is_kept_though_the_answer_is_409(sam: Browserish) -> None:
    """The till API answers a second redemption 409, and the refused attempt is in the audit
    trail all the same (the refusal is answered with keep(), not raised and rolled back)."""
    voucher = make_voucher(sam)
    token = bearer(sam, "sales")
    sam.raw.cookies.clear()
    body = {"code": voucher["code"], "store": STORE}
    assert sam.post("/api/v1/vouchers/redeem", json=body, headers=token).status_code == 200
    again = sam.post("/api/v1/vouchers/redeem", json=body, headers=token)
    assert again.status_code == 409 and again.json()["code"] == "already_redeemed"
    unknown = sam.post(
        "/api/v1/vouchers/redeem",
        json={"code": "LK2222333344445555", "store": STORE},
        headers=token,
    )
    assert unknown.status_code == 404
    assert [(action, reason) for action, reason, *_ in audits(sam)] == [
        ("redeem", ""),
        ("refused", "already_redeemed"),
        ("refused", "unknown"),
    ]


def test_a_kept_refusal_whose_commit_fails_is_a_503_and_keeps_nothing(sam: Browserish) -> None:
    """The answer is decided after the commit for a kept refusal too: a lost database is
    'try again', not a 409 over an audit row that was never written."""
    voucher = make_voucher(sam)
    token = bearer(sam, "sales")
    sam.raw.cookies.clear()
    body = {"code": voucher["code"], "store": STORE}
    assert sam.post("/api/v1/vouchers/redeem", json=body, headers=token).status_code == 200
    with edge_commit_fails():
        again = sam.post("/api/v1/vouchers/redeem", json=body, headers=token)
    assert again.status_code == 503, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert [action for action, *_ in audits(sam)] == ["redeem"]


# Grabs: a staff change is announced once it is durable, and only then.


@pytest.fixture
def announced(client: Browserish, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Commits and grab announcements, in the order they happened."""
    seen: list[Any] = []
    grabs = part(client.app, Grabs)
    real = grabs.announce

    def announce(grab_id: int) -> None:
        seen.append(("announce", grab_id))
        real(grab_id)

    def committed(_session: Any) -> None:
        seen.append("commit")

    monkeypatch.setattr(grabs, "announce", announce)
    # First among the after-commit listeners, before the hooks of app/db/uow.py run.
    event.listen(Session, "after_commit", committed, insert=True)
    yield seen
    event.remove(Session, "after_commit", committed)


def _mode(client: Browserish, grab_id: int) -> str:
    async def work(db: Any) -> str:
        return str((await db.execute(select(Grab.mode).where(Grab.id == grab_id))).scalar_one())

    return str(client.run(work))


def test_a_mode_change_is_announced_only_once_committed(
    client: Browserish, announced: list[Any]
) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    grab_id = client.run(
        add_grab, open_grab(starts_at=later, ends_at=later + dt.timedelta(hours=1))
    )
    host = bearer(client, "host")
    assert client.get("/api/v1/grabs/flash").json()["state"] == "scheduled"
    announced.clear()

    with edge_commit_fails():
        failed = client.post("/api/v1/admin/grabs/flash/open", headers=host)
    assert failed.status_code == 503, failed.text
    # Nothing announced, nothing changed — not in the database, not in this process's caches
    # (the answer was read in the transaction that did not commit).
    assert ("announce", grab_id) not in announced
    assert _mode(client, grab_id) == "schedule"
    assert client.get("/api/v1/grabs/flash").json()["state"] == "scheduled"

    announced.clear()
    opened = client.post("/api/v1/admin/grabs/flash/open", headers=host)
    assert opened.status_code == 200 and opened.json()["state"] == "open"
    assert announced[-2:] == ["commit", ("announce", grab_id)]
    assert announced.count(("announce", grab_id)) == 1
    assert client.get("/api/v1/grabs/flash").json()["state"] == "open"


def test_a_console_edit_whose_commit_fails_announces_nothing(
    client: Browserish, announced: list[Any]
) -> None:
    grab_id = client.run(add_grab, open_grab(stock=7, starts_at=None, ends_at=None))
    client.sign_in("mk", "marketer")
    form = flash_form(
        title="改过的标题", stock="7", starts_at="", ends_at="", voucher_where="旗舰店"
    )
    page = "/staff/grabs/flash/edit"
    csrf = client.csrf(page)  # read before: the page's own commit must not be the failing one
    announced.clear()
    with edge_commit_fails():
        failed = client.raw.post(page, data={"_csrf_token": csrf, **form}, follow_redirects=False)
    assert failed.status_code == 503, failed.text[:500]
    assert ("announce", grab_id) not in announced
    assert client.get("/api/v1/grabs/flash").json()["title"] == "限量抢购测试"

    saved = client.submit(page, form, page=page, follow_redirects=False)
    assert saved.status_code == 303
    assert announced[-2:] == ["commit", ("announce", grab_id)]
    assert client.get("/api/v1/grabs/flash").json()["title"] == "改过的标题"


# Forms: a refusal is shown again; the edge rolls it back.


def test_a_refusal_after_a_failed_flush_leaves_a_readable_session(client: Browserish) -> None:
    """A unique key that lost a race becomes a Conflict after the flush failed, which leaves
    the transaction dead: the refusal helper revives it, so the form's page can be read (the
    old code rolled back in every route; a route that forgot answered 500)."""
    client.make_staff("sam", "sales")

    async def work() -> tuple[int, int]:
        async with part(client.app, Storage).sessionmaker() as db:
            db.add(StaffUser(username="sam", display_name="", password_hash="x", role="sales"))
            async with catch_refusal(db) as refused:
                try:
                    await db.flush()
                except IntegrityError as exc:
                    raise Conflict() from exc
            staff = (await db.execute(select(func.count()).select_from(StaffUser))).scalar_one()
            return refused.status, int(staff)

    assert client.raw.blocking_portal.call(work) == (409, 1)
