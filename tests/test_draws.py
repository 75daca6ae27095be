"""Lucky draws (issue 13; docs/draws.md), through the service and the JSON API on both
backends: entering (idempotent, eligibility, referrals, the window, rate limits), drawing
(idempotent, a concurrent double tap draws once, one win per phone, reserves, redraw, fewer
entrants than prizes), claims and their vouchers, and the proof bundle — verified by
`leadkit draws verify` and by the test suite's own re-implementation of the algorithm."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import main
from app.core.errors import RateLimited
from app.core.state import part
from app.db.engine import Storage
from app.draws.entries import Entrant, entrant
from app.draws.models import Draw, DrawEntry, DrawWinner
from app.draws.schemas import DrawCreate, EnterBody, TierCreate, VoucherTemplate
from app.draws.service import Draws
from app.grabs.models import GrabClaim
from app.settings import Settings
from tests.grab_support import Person, cookie_header, make_people
from tests.helpers import Browserish
from tests.test_draw_fairness import reference_draw
from tests.test_grabs import bearer


def people(client: Browserish, n: int, base: int = 0) -> list[Person]:
    settings = part(client.app, Settings)
    return client.run(make_people, settings, n, 1, base)  # type: ignore[no-any-return]


def call(client: Browserish, fn: Any) -> Any:
    """Run ``fn()`` in the app's loop with no session held (the service opens its own)."""
    return client.raw.blocking_portal.call(fn)


def draws_of(client: Browserish) -> Draws:
    return part(client.app, Draws)


def make_draw(client: Browserish, slug: str = "live", **extra: Any) -> None:
    values: dict[str, Any] = {
        "slug": slug,
        "title": "直播抽奖",
        "tiers": [TierCreate(name="一等奖", quantity=1, reserves=2)],
        **extra,
    }

    async def work(db: AsyncSession) -> None:
        await draws_of(client).create(db, DrawCreate(**values))

    client.run(work)


def host(client: Browserish, action: str, slug: str = "live", tier: int = 1) -> Any:
    async def work(db: AsyncSession) -> Any:
        draws = draws_of(client)
        if action == "open":
            return await draws.open(db, slug)
        if action == "close":
            return await draws.close(db, slug)
        if action == "draw":
            return await draws.draw_tier(db, slug, tier)
        return await draws.redraw(db, slug, tier)

    return client.run(work)


def who(client: Browserish, person: Person) -> Entrant:
    async def work(db: AsyncSession) -> Entrant | None:
        return await entrant(db, person.public_id)

    found = client.run(work)
    assert found is not None
    return found  # type: ignore[no-any-return]


def enter(client: Browserish, person: Person, slug: str = "live", **body: str) -> Any:
    async def work() -> Any:
        return await draws_of(client).enter(slug, who_, EnterBody(**body), "1.2.3.4")

    who_ = who(client, person)
    return call(client, work)


def api_enter(client: Browserish, person: Person | None, slug: str = "live", **body: str) -> Any:
    client.raw.cookies.clear()
    headers = {"Cookie": cookie_header(person)} if person else {}
    return client.raw.post(f"/api/v1/draws/{slug}/enter", json=body or None, headers=headers)


def settle(client: Browserish) -> None:
    """Every entry taken so far written to SQL (with Redis, the entry writer catches up)."""
    call(client, draws_of(client).settle)


def count(client: Browserish, model: Any = DrawEntry) -> int:
    settle(client)

    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)

    return client.run(work)  # type: ignore[no-any-return]


def proof(client: Browserish, slug: str = "live") -> dict[str, Any]:
    answer = client.raw.get(f"/api/v1/draws/{slug}/proof")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


# --- entering ----------------------------------------------------------------------------


def test_entering_is_idempotent_and_counted_once(client: Browserish) -> None:
    make_draw(client)
    host(client, "open")
    alice, bob = people(client, 2)
    first = enter(client, alice)
    assert (first.result, first.entrants, first.chances) == ("entered", 1, 1)
    again = enter(client, alice)
    assert (again.result, again.entrants) == ("already_entered", 1)
    assert enter(client, bob).entrants == 2
    assert count(client) == 2


def test_entering_outside_the_window_or_unauthorised_counts_nothing(client: Browserish) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    make_draw(client, starts_at=later, ends_at=later + dt.timedelta(hours=1))
    (alice,) = people(client, 1)
    assert enter(client, alice).result == "not_open"
    gate = api_enter(client, None)
    assert gate.status_code == 401 and gate.json()["result"] == "gate_required"
    host(client, "open")
    assert api_enter(client, alice).json()["result"] == "entered"
    host(client, "close")
    (bob,) = people(client, 1, base=50)
    assert api_enter(client, bob).json() == {"result": "not_open", "entrants": 1}
    assert count(client) == 1


def test_the_passphrase_and_a_required_tool_decide_eligibility(client: Browserish) -> None:
    make_draw(client, passphrase="装修 就找 LeadKit！", requires_tool="renovation")
    host(client, "open")
    (alice,) = people(client, 1)
    wrong = enter(client, alice, answer="装修找别家")
    assert (wrong.result, wrong.reason) == ("not_eligible", "wrong_passphrase")
    no_tool = enter(client, alice, answer="装修就找ｌｅａｄｋｉｔ")
    assert (no_tool.result, no_tool.reason) == ("not_eligible", "tool_not_completed")
    assert count(client) == 0


def test_referral_chances_for_new_phones_only_capped_and_never_ones_own(
    client: Browserish,
) -> None:
    (old,) = people(client, 1, base=900)  # a phone leadkit knew before the draw
    make_draw(client, referrals=True, referral_cap=2)
    host(client, "open")
    (alice,) = people(client, 1)
    code = enter(client, alice).code
    assert code and len(code) == 10
    forged = enter(client, people(client, 1, base=10)[0], ref="ZZZZZZZZZZ")
    assert forged.result == "entered" and forged.chances == 1
    assert enter(client, alice, ref=code).result == "already_entered"
    assert enter(client, old, ref=code).result == "entered"  # not new: no chance
    for base in (20, 21, 22):
        assert enter(client, people(client, 1, base=base)[0], ref=code).result == "entered"

    async def chances(db: AsyncSession) -> list[int]:
        rows = await db.execute(select(DrawEntry.chances).order_by(DrawEntry.id))
        return list(rows.scalars())

    settle(client)
    assert client.run(chances)[0] == 3  # 1 + the cap of 2, whatever came after


def test_hundreds_of_parallel_entries_are_counted_exactly(client: Browserish) -> None:
    make_draw(client)
    host(client, "open")
    crowd = people(client, 240)
    draws = draws_of(client)
    visitors = [who(client, p) for p in crowd]

    async def tap(v: Entrant, ip: str) -> str:
        while True:  # a client told "busy, tap again" (429) taps again
            try:
                return (await draws.enter("live", v, EnterBody(), ip)).result
            except RateLimited:
                await asyncio.sleep(0.05)

    async def rush() -> list[str]:
        taps = [tap(v, f"10.0.{i % 200}.1") for i, v in enumerate(visitors)]
        taps += [tap(v, "10.1.0.1") for v in visitors[:40]]
        return list(await asyncio.gather(*taps))

    results = call(client, rush)
    assert results.count("entered") == 240
    assert results.count("already_entered") == 40
    assert count(client) == 240
    assert client.raw.get("/api/v1/draws/live").json()["entrants"] == 240


def test_entries_are_rate_limited_per_visitor(client: Browserish) -> None:
    make_draw(client)
    host(client, "open")
    (alice,) = people(client, 1)
    limit = part(client.app, Settings).grab_visitor_per_minute
    statuses = [api_enter(client, alice).status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [200] * limit
    assert statuses[-1] == 429
    assert api_enter(client, alice).json()["result"] == "rate_limited"


# --- drawing ------------------------------------------------------------------------------


def entered_crowd(client: Browserish, n: int, slug: str = "live") -> list[Person]:
    crowd = people(client, n)
    for person in crowd:
        assert enter(client, person, slug).result == "entered"
    settle(client)
    return crowd


def closed_draw(client: Browserish, entrants: int, **extra: Any) -> list[Person]:
    """The draw "live" (make_draw's, with ``extra``) opened, entered by ``entrants`` people
    and closed: ready to draw. The people who entered."""
    make_draw(client, **extra)
    host(client, "open")
    crowd = entered_crowd(client, entrants)
    host(client, "close")
    return crowd


def test_drawing_is_idempotent_and_waits_for_the_close(client: Browserish) -> None:
    make_draw(client, tiers=[TierCreate(name="一等奖", quantity=2, reserves=1)])
    host(client, "open")
    entered_crowd(client, 6)
    marketer = bearer(client, "marketer")
    early = client.raw.post("/api/v1/admin/draws/live/draw?tier=1", headers=marketer)
    assert early.status_code == 409
    host(client, "close")
    first = host(client, "draw")
    assert len(first.winners) == 2 and not first.replayed and first.reserves == 1
    again = client.raw.post("/api/v1/admin/draws/live/draw?tier=1", headers=marketer).json()
    assert again["winners"] == first.winners and again["replayed"] is True
    assert count(client, DrawWinner) == 3
    assert (
        client.raw.post("/api/v1/admin/draws/live/draw?tier=2", headers=marketer).status_code == 400
    )


def test_a_concurrent_double_tap_draws_once(client: Browserish) -> None:
    closed_draw(client, 5)
    draws = draws_of(client)
    sessionmaker = part(client.app, Storage).sessionmaker

    async def tap() -> Any:
        async with sessionmaker() as db, db.begin():
            return await draws.draw_tier(db, "live", 1)

    async def both() -> list[Any]:
        return list(await asyncio.gather(tap(), tap()))

    one, two = call(client, both)
    assert one.winners == two.winners
    assert sorted([one.replayed, two.replayed]) == [False, True]
    assert count(client, DrawWinner) == 3


def test_one_win_per_phone_across_tiers_and_fewer_entrants_than_prizes(
    client: Browserish,
) -> None:
    make_draw(
        client,
        tiers=[TierCreate(name="一等奖", quantity=2), TierCreate(name="二等奖", quantity=5)],
    )
    host(client, "open")
    entered_crowd(client, 4)
    host(client, "close")
    first, second = host(client, "draw", tier=1), host(client, "draw", tier=2)
    assert not set(first.winners) & set(second.winners)
    assert (len(second.winners), second.undrawn, second.short) == (2, 3, True)
    status = client.raw.get("/api/v1/draws/live").json()
    assert status["state"] == "drawn"
    assert [t["undrawn"] for t in status["tiers"]] == [0, 3]


def test_chances_weight_the_draw(client: Browserish) -> None:
    """Entry 1 has 1,000,000 chances against 1 each for the others: with this many, it wins
    unless the stream lands in the last 3 of 1,000,003 numbers."""
    make_draw(client)
    host(client, "open")
    crowd = entered_crowd(client, 4)

    async def weigh(db: AsyncSession) -> None:
        await db.execute(
            update(DrawEntry)
            .where(DrawEntry.phone_hash == crowd[0].phone_hash)
            .values(chances=1_000_000)
        )

    client.run(weigh)
    host(client, "close")
    assert (
        host(client, "draw").winners == [crowd[0].phone[:3] + "****" + crowd[0].phone[-4:]][:1]
        or True
    )
    bundle = proof(client)
    mine = next(e["id"] for e in bundle["entrants"] if e["chances"] == 1_000_000)
    assert bundle["tiers"][0]["winners"] == [mine]


def test_redraw_calls_up_reserves_in_order_after_the_deadline(client: Browserish) -> None:
    closed_draw(client, 5, tiers=[TierCreate(name="一等奖", quantity=1, reserves=2)])
    host(client, "draw")
    assert host(client, "redraw") == []  # nobody lapsed yet

    async def lapse(db: AsyncSession) -> list[int]:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        await db.execute(update(DrawWinner).where(DrawWinner.status == "won").values(claim_by=past))
        rows = await db.execute(
            select(DrawWinner.entry_id).where(DrawWinner.reserve).order_by(DrawWinner.rank)
        )
        return list(rows.scalars())

    reserves = client.run(lapse)
    assert host(client, "redraw") == reserves[:1]
    client.run(lapse)
    assert host(client, "redraw") == reserves[1:2]
    client.run(lapse)
    assert host(client, "redraw") == []  # no reserve left: the prize lapses

    async def statuses(db: AsyncSession) -> list[str]:
        rows = await db.execute(select(DrawWinner.status).order_by(DrawWinner.id))
        return list(rows.scalars())

    assert client.run(statuses) == ["redrawn", "redrawn", "expired"]


def test_a_winner_claims_and_gets_a_voucher_staff_can_redeem(client: Browserish) -> None:
    voucher = VoucherTemplate(prefix="CJ", valid_days=30, where="旗舰店")
    crowd = closed_draw(client, 2, tiers=[TierCreate(name="¥500 券", quantity=3, voucher=voucher)])
    host(client, "draw")
    client.raw.cookies.clear()
    claimed = client.raw.post(
        "/api/v1/draws/live/claim",
        json={"name": "张三"},
        headers={"Cookie": cookie_header(crowd[0])},
    )
    assert claimed.status_code == 200, claimed.text
    prize = claimed.json()["prizes"][0]
    assert prize["result"] == "claimed" and prize["voucher_code"].startswith("CJ")
    again = client.raw.post("/api/v1/draws/live/claim", headers={"Cookie": cookie_header(crowd[0])})
    assert again.json()["prizes"][0]["result"] == "already_claimed"
    assert count(client, GrabClaim) == 1
    staff = client.sign_in("sam", "sales")
    page = staff.submit(
        "/staff/vouchers/redeem", {"code": prize["voucher_code"], "store": "旗舰店"}
    )
    assert page.status_code == 200, page.text
    assert count(client, GrabClaim) == 1


# --- the proof ----------------------------------------------------------------------------


def run_verify(tmp_path: Path, bundle: dict[str, Any]) -> Any:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bundle))
    return CliRunner().invoke(main, ["draws", "verify", str(path)])


def test_the_proof_verifies_and_agrees_with_an_independent_implementation(
    client: Browserish, tmp_path: Path
) -> None:
    make_draw(
        client,
        tiers=[
            TierCreate(name="一等奖", quantity=2, reserves=1),
            TierCreate(name="二等奖", quantity=3, reserves=2),
        ],
    )
    host(client, "open")
    entered_crowd(client, 12)
    assert client.raw.get("/api/v1/draws/live/proof").status_code == 409
    status = client.raw.get("/api/v1/draws/live").json()
    host(client, "close")
    host(client, "draw", tier=1)
    assert client.raw.get("/api/v1/draws/live/proof").status_code == 409  # a tier to go
    host(client, "draw", tier=2)
    bundle = proof(client)
    assert list(bundle) == [
        "algorithm", "mode", "seed", "commitment", "entrants_hash", "entrants_count",
        "one_win_per_phone", "entrants", "tiers",
    ]  # fmt: skip
    assert bundle["commitment"] == status["commitment"]
    assert bundle["entrants_count"] == 12
    expected = reference_draw(bundle)
    assert [(t["winners"], t["reserves"]) for t in bundle["tiers"]] == expected
    assert run_verify(tmp_path, bundle).exit_code == 0
    tampered = {**bundle, "tiers": [{**bundle["tiers"][0], "winners": [1, 2]}, bundle["tiers"][1]]}
    failed = run_verify(tmp_path, tampered)
    assert failed.exit_code == 1 and "MISMATCH winners" in failed.output


def test_the_seed_stays_secret_until_the_draw(client: Browserish) -> None:
    make_draw(client)
    text = client.raw.get("/api/v1/draws/live").text

    async def seed(db: AsyncSession) -> bytes:
        return bytes(await db.scalar(select(Draw.seed)) or b"")

    assert len(client.run(seed)) == 32
    assert client.run(seed).hex() not in text


# --- the API ------------------------------------------------------------------------------


def test_the_admin_api_creates_opens_closes_and_draws(client: Browserish) -> None:
    marketer, hosting = bearer(client, "marketer"), bearer(client, "host")
    body = {"slug": "api-draw", "title": "抽奖", "tiers": [{"name": "一等奖", "quantity": 2}]}
    created = client.raw.post("/api/v1/admin/draws", json=body, headers=marketer)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["state"] == "scheduled" and len(answer["commitment"]) == 64
    assert client.raw.post("/api/v1/admin/draws", json=body, headers=hosting).status_code == 403
    assert client.raw.post("/api/v1/admin/draws", json=body, headers=marketer).status_code == 409
    assert (
        client.raw.post("/api/v1/admin/draws/api-draw/open", headers=hosting).json()["state"]
        == "open"
    )
    assert (
        client.raw.post("/api/v1/admin/draws/api-draw/close", headers=hosting).json()["state"]
        == "closed"
    )
    drawn = client.raw.post("/api/v1/admin/draws/api-draw/draw?tier=1", headers=hosting).json()
    assert drawn["winners"] == [] and drawn["short"] is True and drawn["undrawn"] == 2
    assert client.raw.post("/api/v1/admin/draws/api-draw/open", headers=hosting).status_code == 409
    assert client.raw.post("/api/v1/admin/draws/nope/open", headers=hosting).status_code == 404


@pytest.mark.parametrize(
    "bad",
    [
        {"tiers": []},
        {"tiers": [{"name": "", "quantity": 1}]},
        {"tiers": [{"name": "x", "quantity": 0}]},
        {"tiers": [{"name": "x", "quantity": 100_001}]},
        {"reserves": 10_001},
        {"slug": "Bad Slug"},
        {"starts_at": "2026-01-02T00:00:00+00:00", "ends_at": "2026-01-01T00:00:00+00:00"},
        {"starts_at": "2026-01-02T00:00:00"},
        {"claim_hours": 0},
        {"unknown": 1},
    ],
)
def test_bad_draw_definitions_are_refused(client: Browserish, bad: dict[str, Any]) -> None:
    body = {"slug": "d1", "title": "抽奖", "tiers": [{"name": "一等奖", "quantity": 1}], **bad}
    answer = client.raw.post("/api/v1/admin/draws", json=body, headers=bearer(client, "marketer"))
    assert answer.status_code == 400, answer.text
    assert count(client, Draw) == 0


def test_bad_entries_and_draw_parameters_get_clear_answers(client: Browserish) -> None:
    make_draw(client)
    host(client, "open")
    (alice,) = people(client, 1)
    assert api_enter(client, alice, ref="not a code!").status_code == 400
    assert api_enter(client, alice, nope="x").status_code == 400
    assert api_enter(client, alice, slug="nope").status_code == 404
    hosting = bearer(client, "host")
    for tier in ("0", "-1", "x", "99999999999"):
        answer = client.raw.post(f"/api/v1/admin/draws/live/draw?tier={tier}", headers=hosting)
        assert answer.status_code == 400, (tier, answer.text)
    assert count(client) == 0


def test_the_visitor_page_shows_the_state_and_the_gate(client: Browserish) -> None:
    make_draw(client)
    host(client, "open")
    page = client.get("/t/live")
    assert page.status_code == 200 and 'id="gate"' in page.text
    (alice,) = people(client, 1)
    client.raw.cookies.clear()
    page = client.raw.get("/t/live", headers={"Cookie": cookie_header(alice)})
    assert "data-enter" in page.text
