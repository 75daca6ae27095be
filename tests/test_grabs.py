"""Grabs over HTTP: the JSON contract, the state machine, the visitor page, the host console,
bad input and rate limits. Each test runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import msgspec
import pytest

from app.core.state import part
from app.events.service import Tracker
from app.grabs.service import Grabs
from app.grabs.store import RedisClaimStore
from app.settings import Settings
from app.staff import tokens
from app.staff.schemas import ApiTokenCreate
from tests.grab_support import (
    Person,
    add_grab,
    cookie_header,
    flash_form,
    grab_form,
    make_people,
    open_grab,
)
from tests.helpers import Browserish, soup


def bearer(client: Browserish, role: str) -> dict[str, str]:
    _, raw = client.run(tokens.create_token, None, ApiTokenCreate(name=role, role=role))
    return {"Authorization": f"Bearer {raw}"}


def people(client: Browserish, n: int, per_phone: int = 1, base: int = 0) -> list[Person]:
    settings = part(client.app, Settings)
    return client.run(make_people, settings, n, per_phone, base)  # type: ignore[no-any-return]


def claim(
    client: Browserish, person: Person | None, slug: str = "flash", key: str | None = None
) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    if person is not None:
        headers["Cookie"] = cookie_header(person)
    client.raw.cookies.clear()
    return client.raw.post(f"/api/v1/grabs/{slug}/claim", headers=headers)


def iso(at: dt.datetime) -> str:
    return at.isoformat()


@pytest.fixture
def events(client: Browserish) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    part(client.app, Tracker).listeners.append(
        lambda ctx, event, at: seen.append((type(event).__struct_config__.tag, event))
    )
    return seen


def test_admin_api_creates_opens_and_closes(client: Browserish) -> None:
    marketer = bearer(client, "marketer")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    created = client.post(
        "/api/v1/admin/grabs",
        json={
            "slug": "flash",
            "title": "限量 5 份",
            "stock": 5,
            "per_phone_limit": 1,
            "starts_at": iso(start),
        },
        headers=marketer,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["state"] == "scheduled" and body["stock_left"] == 5
    assert 3500 < body["starts_in"] <= 3601
    assert client.get("/api/v1/grabs/flash").json()["state"] == "scheduled"
    host = bearer(client, "host")
    opened = client.post("/api/v1/admin/grabs/flash/open", headers=host)
    assert opened.status_code == 200 and opened.json()["state"] == "open"
    assert client.get("/api/v1/grabs/flash").json()["state"] == "open"
    closed = client.post("/api/v1/admin/grabs/flash/close", headers=marketer)
    assert closed.json()["state"] == "closed"
    # A host may open and close, not create; no token at all is 401.
    assert (
        client.post(
            "/api/v1/admin/grabs", json={"slug": "x2", "title": "t", "stock": 1}, headers=host
        ).status_code
        == 403
    )
    assert client.post("/api/v1/admin/grabs/flash/open").status_code == 401
    again = client.post(
        "/api/v1/admin/grabs", json={"slug": "flash", "title": "t", "stock": 1}, headers=marketer
    )
    assert again.status_code == 409


def test_claim_contract_won_sold_out_already_claimed_not_open(
    client: Browserish, events: list[tuple[str, Any]]
) -> None:
    client.run(add_grab, open_grab(stock=2))
    a, b, c = people(client, 3)
    won = claim(client, a, key="tap-1")
    assert won.status_code == 200
    body = won.json()
    assert body["result"] == "won"
    assert body["voucher"]["code"].startswith("LK") and len(body["voucher"]["code"]) == 14
    assert body["voucher"]["n"] == 1 and body["voucher"]["where"] == "旗舰店"
    # A double tap (same key) gets the same voucher; a new tap is already_claimed.
    assert claim(client, a, key="tap-1").json() == body
    assert claim(client, a, key="tap-2").json() == {"result": "already_claimed", "voucher": None}
    assert claim(client, b).json()["result"] == "won"
    assert claim(client, c).json()["result"] == "sold_out"
    status = client.get("/api/v1/grabs/flash").json()
    assert status["state"] == "sold_out" and status["stock_left"] == 0
    names = [name for name, _ in events]
    # Repeated taps by one visitor are recorded once a minute (wins always): a, a again, b, c.
    assert names.count("grab_clicked") == 4
    assert names.count("grab_won") == 2
    reasons = sorted(e.reason for name, e in events if name == "grab_refused")
    assert reasons == ["already_claimed", "sold_out"]


def test_gate_first_and_not_open(client: Browserish) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    client.run(add_grab, open_grab(stock=3, starts_at=start, ends_at=start + dt.timedelta(hours=1)))
    refused = claim(client, None)
    assert refused.status_code == 401 and refused.json()["result"] == "gate_required"
    (person,) = people(client, 1)
    assert claim(client, person, key="early").json()["result"] == "not_open"
    # The host opens it by hand: a new tap wins; the early tap's answer stays what it was.
    client.run(_set_mode, "open")
    announce(client)
    assert claim(client, person, key="early").json()["result"] == "not_open"
    assert claim(client, person, key="now").json()["result"] == "won"
    assert claim(client, None, slug="nothing-here").status_code == 404


def announce(client: Browserish, grab_id: int = 1) -> None:
    async def work() -> None:
        part(client.app, Grabs).announce(grab_id)

    client.raw.blocking_portal.call(work)


async def _set_mode(db: Any, mode: str) -> None:
    from app.grabs.models import Grab

    grab = (await db.execute(__import__("sqlalchemy").select(Grab))).scalar_one()
    grab.mode = mode


def test_schedule_end_closes(client: Browserish) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    client.run(add_grab, open_grab(stock=3, starts_at=start, ends_at=start + dt.timedelta(hours=1)))
    assert client.get("/api/v1/grabs/flash").json()["state"] == "closed"
    (person,) = people(client, 1)
    assert claim(client, person).json()["result"] == "not_open"


@pytest.mark.parametrize(
    "body",
    [
        {"title": "no slug", "stock": 1},
        {"slug": "ok-slug", "title": "t", "stock": "lots"},
        {"slug": "ok-slug", "title": "t", "stock": 1.5},
        {"slug": "ok-slug", "title": "t", "stock": -1},
        {"slug": "ok-slug", "title": "t", "stock": 10**12},
        {"slug": "ok-slug", "title": "t", "stock": 1, "per_phone_limit": 0},
        {"slug": "ok-slug", "title": "t", "stock": 1, "per_phone_limit": 10**9},
        {"slug": "Bad Slug!", "title": "t", "stock": 1},
        {"slug": "ok-slug", "title": "t\u202egnp.exe", "stock": 1},
        {"slug": "ok-slug", "title": "x" * 500, "stock": 1},
        {"slug": "ok-slug", "title": "t\x00", "stock": 1},
        {"slug": "ok-slug", "title": "t", "stock": 1, "starts_at": "tomorrow"},
        {"slug": "ok-slug", "title": "t", "stock": 1, "starts_at": "2026-01-01T10:00:00"},
        {
            "slug": "ok-slug",
            "title": "t",
            "stock": 1,
            "starts_at": "2026-01-02T10:00:00Z",
            "ends_at": "2026-01-01T10:00:00Z",
        },
        {"slug": "ok-slug", "title": "t", "stock": 1, "image_url": "javascript:alert(1)"},
        {"slug": "ok-slug", "title": "t", "stock": 1, "unknown": True},
        [1, 2, 3],
    ],
)
def test_bad_admin_input_is_a_clear_4xx(client: Browserish, body: Any) -> None:
    response = client.post("/api/v1/admin/grabs", json=body, headers=bearer(client, "marketer"))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"]
    assert client.count("grab") == 0


def test_bad_claim_input(client: Browserish) -> None:
    client.run(add_grab, open_grab(stock=3))
    (person,) = people(client, 1)
    for key in [b"x" * 65, b"with space", "中文".encode()]:
        client.raw.cookies.clear()
        response = client.raw.post(
            "/api/v1/grabs/flash/claim",
            headers=[(b"idempotency-key", key), (b"cookie", cookie_header(person).encode())],
        )
        assert response.status_code == 400, key
        assert response.json()["code"] == "bad_idempotency_key"
    forged = {"Cookie": f"lk_vid={person.cookie[:-2]}xx"}
    client.raw.cookies.clear()
    assert client.raw.post("/api/v1/grabs/flash/claim", headers=forged).status_code == 401
    assert claim(client, person, slug="x" * 300).status_code == 404
    assert claim(client, person, slug="%00").status_code == 404
    assert client.count("grab_claim") == 0


def test_rate_limits_answer_429(client: Browserish, events: list[tuple[str, Any]]) -> None:
    settings = part(client.app, Settings)
    part(client.app, Grabs).settings = type(settings)(
        **{
            **{f: getattr(settings, f) for f in settings.__struct_fields__},
            "grab_visitor_per_minute": 3,
            "grab_ip_per_minute": 5,
        }
    )
    client.run(add_grab, open_grab(stock=100, per_phone_limit=20))
    a, b = people(client, 2)
    answers = [claim(client, a) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.json()["result"] == "rate_limited" and int(limited.headers["retry-after"]) > 0
    # b has its own visitor budget but shares the address: 5 taps per minute in all, a's
    # refused one included (every request from the address counts).
    assert [claim(client, b).status_code for _ in range(2)] == [200, 429]
    assert any(name == "grab_refused" and e.reason == "rate_limited" for name, e in events)


def test_visitor_page_countdown_gate_and_voucher(client: Browserish) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)
    client.run(add_grab, open_grab(stock=3, starts_at=start, ends_at=start + dt.timedelta(hours=1)))
    page = client.get("/t/flash")
    assert page.status_code == 200
    html = soup(page)
    panel = html.find(id="grab-panel")
    assert panel["data-state"] == "scheduled" and 170 < int(panel["data-starts-in"]) <= 181
    assert html.find(id="gate") is not None  # not authorised yet: the gate is on the page
    assert html.select_one("[data-stock-left]").text == "3"
    (person,) = people(client, 1)
    client.raw.cookies.clear()
    client.raw.cookies.set("lk_vid", person.cookie)
    html = soup(client.get("/t/flash"))
    assert html.find(id="gate") is None
    button = html.select_one("[data-grab-button]")
    assert button is not None and button.has_attr("disabled")
    client.run(_set_mode, "open")
    announce(client)
    html = soup(client.get("/t/flash"))
    form = html.select_one("form[action='/t/flash/grab']")
    key = form.select_one("input[name=idempotency_key]")["value"]
    token = html.find("meta", attrs={"name": "csrf-token"})["content"]
    data = {"_csrf_token": token, "idempotency_key": key}
    won = client.post("/t/flash/grab", data=data, headers={"HX-Request": "true"})
    assert won.status_code == 200
    part = soup(won)
    assert part.select_one(".grab-outcome-won") is not None
    code = part.select_one("[data-voucher-code]").text
    assert len(code.replace(" ", "")) == 14
    assert part.select_one("img.voucher-qr")["src"].startswith("data:image/svg+xml")
    # The same form posted twice (a double tap) shows the same voucher, not a second one.
    again = soup(client.post("/t/flash/grab", data=data, headers={"HX-Request": "true"}))
    assert [v.text for v in again.select("[data-voucher-code]")] == [code]
    assert client.get("/api/v1/grabs/flash").json()["stock_left"] == 2


def test_unauthorised_tap_gets_the_gate(client: Browserish) -> None:
    client.run(add_grab, open_grab(stock=3))
    client.raw.cookies.clear()
    token = soup(client.get("/t/flash")).find("meta", attrs={"name": "csrf-token"})["content"]
    response = client.post(
        "/t/flash/grab",
        data={"_csrf_token": token, "idempotency_key": "k"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 401
    assert soup(response).find(id="gate") is not None


def test_host_console_opens_and_closes(client: Browserish) -> None:
    client.run(add_grab, open_grab(stock=7, starts_at=None, ends_at=None))
    client.make_staff("anchor", "host")
    client.make_staff("seller", "sales")
    client.login("seller")
    assert client.get("/staff/grabs/", follow_redirects=False).status_code == 403
    assert client.get("/staff/grabs/flash/host", follow_redirects=False).status_code == 403
    client.raw.cookies.clear()
    client.login("anchor")
    page = client.get("/staff/grabs/")
    assert page.status_code == 200
    card = soup(page).select_one("[data-grab=flash]")
    assert card.select_one("[data-stock-left]").text == "7"
    assert card.select_one("a[href='/staff/grabs/flash/host']") is not None
    assert "/staff/grabs/new" not in page.text  # hosts do not create grabs
    # Without a schedule the grab is closed: the host may open it, and nothing else.
    host = soup(client.get("/staff/grabs/flash/host"))
    assert [b["data-mode"] for b in host.select(".host-controls button")] == ["open"]
    assert host.select_one("[data-stock-left]").text == "7"
    assert host.select_one("[data-stock-total]").text == "7"
    assert host.select_one(".host-qr img")["src"].startswith("data:image/svg+xml")
    opened = client.submit(
        "/staff/grabs/flash/mode",
        {"mode": "open"},
        page="/staff/grabs/flash/host",
        headers={"HX-Request": "true", "HX-Target": "grab-host"},
    )
    assert opened.status_code == 200
    part_ = soup(opened)
    assert part_.select_one("#grab-host .host-state-open") is not None
    assert "<html" not in opened.text  # the part, for htmx
    # Open: closing is the one action, and it asks first.
    forms = part_.select(".host-controls form")
    assert [f.select_one("button")["data-mode"] for f in forms] == ["closed"]
    assert forms[0]["hx-confirm"]
    assert client.get("/api/v1/grabs/flash").json()["state"] == "open"
    closed = client.submit("/staff/grabs/flash/mode", {"mode": "closed"}, page="/staff/grabs/")
    assert closed.status_code == 200 and soup(closed).select_one("#grab-host") is not None
    assert client.get("/api/v1/grabs/flash").json()["state"] == "closed"
    bad = client.submit("/staff/grabs/flash/mode", {"mode": "explode"}, page="/staff/grabs/")
    assert bad.status_code == 400
    assert client.get("/staff/grabs/nope/host").status_code == 404


def test_marketer_form_creates_and_edits(client: Browserish) -> None:
    client.make_staff("mk", "marketer")
    client.login("mk")
    form = grab_form(
        title="沙发节 限量 20 张券",
        offer="满 5000 减 1000",
        voucher_prefix="sf",
        voucher_where="城南店",
    )
    created = client.submit(
        "/staff/grabs/new", form, page="/staff/grabs/new", follow_redirects=False
    )
    assert created.status_code == 303, created.text
    status = client.get("/api/v1/grabs/sofa-day").json()
    assert status["state"] == "scheduled" and status["stock_total"] == 20
    assert status["starts_at"].startswith("2030-05-01T12:00:00")  # 20:00 Beijing time
    edit = client.get("/staff/grabs/sofa-day/edit")
    assert soup(edit).select_one("input[name=starts_at]")["value"] == "2030-05-01T20:00"
    changed = client.submit(
        "/staff/grabs/sofa-day/edit",
        {**form, "stock": "30"},
        page="/staff/grabs/sofa-day/edit",
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert client.get("/api/v1/grabs/sofa-day").json()["stock_left"] == 30
    bad = client.submit(
        "/staff/grabs/sofa-day/edit", {**form, "stock": "lots"}, page="/staff/grabs/sofa-day/edit"
    )
    assert bad.status_code == 400
    alert = soup(bad).select_one("p.alert[role=alert]")
    assert alert is not None and alert.text.strip().endswith("(stock)"), bad.text[:2000]
    assert client.get("/api/v1/grabs/sofa-day").json()["stock_total"] == 30


def restock_flash(client: Browserish, stock: int, **kwargs: Any) -> httpx.Response:
    """The signed-in marketer sets the flash grab's stock through its edit form."""
    path = "/staff/grabs/flash/edit"
    return client.submit(path, flash_form(stock=str(stock)), page=path, **kwargs)


def test_restock_never_below_what_was_won(client: Browserish) -> None:
    client.run(add_grab, open_grab(stock=2))
    a, b = people(client, 2)
    assert claim(client, a).json()["result"] == "won"
    assert claim(client, b).json()["result"] == "won"
    assert claim(client, people(client, 1, base=50)[0]).json()["result"] == "sold_out"
    client.make_staff("mk", "marketer")
    client.login("mk")
    refused = restock_flash(client, 1)
    assert refused.status_code == 409
    more = restock_flash(client, 3, follow_redirects=False)
    assert more.status_code == 303
    # The sold-out flag is dropped at once: the new unit can be won.
    c = people(client, 1, base=60)[0]
    assert claim(client, c).json()["result"] == "won"
    report = client.raw.blocking_portal.call(part(client.app, Grabs).check, "flash")
    assert report.ok and report.won == 3 and report.remaining == 0


# --- the claim store's rules (mutation testing: tests/mutation.py) ---------------------------


def test_an_idempotency_key_belongs_to_its_phone(client: Browserish) -> None:
    """Phone B sending the Idempotency-Key phone A used gets a claim of its own: never A's
    voucher, never A's refusal."""
    client.run(add_grab, open_grab(stock=3))
    a, b, c = people(client, 3)
    first = claim(client, a, key="shared-key").json()
    assert first["result"] == "won"
    other = claim(client, b, key="shared-key").json()
    assert other["result"] == "won", other
    assert other["voucher"]["code"] != first["voucher"]["code"]
    assert other["voucher"]["n"] == 1
    # Each phone's replay is its own answer.
    assert claim(client, a, key="shared-key").json() == first
    assert claim(client, b, key="shared-key").json() == other
    # A refusal kept for one phone is not another's answer either.
    assert claim(client, c, key="late").json()["result"] == "won"
    assert claim(client, a, key="late").json()["result"] == "already_claimed"
    assert claim(client, b, key="late").json()["result"] == "already_claimed"
    status = client.get("/api/v1/grabs/flash").json()
    assert status["stock_left"] == 0


def test_an_idempotency_key_belongs_to_its_grab(client: Browserish) -> None:
    """The same key on another grab is a new tap there: a voucher of that grab."""
    client.run(add_grab, open_grab("one", stock=2, voucher_prefix="AA"))
    client.run(add_grab, open_grab("two", stock=2, voucher_prefix="BB"))
    (person,) = people(client, 1)
    on_one = claim(client, person, slug="one", key="k").json()
    on_two = claim(client, person, slug="two", key="k").json()
    assert on_one["result"] == on_two["result"] == "won", (on_one, on_two)
    assert on_one["voucher"]["code"].startswith("AA")
    assert on_two["voucher"]["code"].startswith("BB")
    # Replays stay with their grab, whichever was claimed first.
    assert claim(client, person, slug="two", key="k").json() == on_two
    assert claim(client, person, slug="one", key="k").json() == on_one
    assert client.get("/api/v1/grabs/one").json()["stock_left"] == 1
    assert client.get("/api/v1/grabs/two").json()["stock_left"] == 1


def _idempotency_ttls(client: Browserish) -> list[int]:
    """Seconds each stored Idempotency-Key answer has left, wherever the store keeps them."""
    from sqlalchemy import select

    from app.core.models import rate_counter
    from app.grabs.store import RedisClaimStore

    store = part(client.app, Grabs).store
    if isinstance(store, RedisClaimStore):

        async def redis_ttls() -> list[int]:
            names = [n async for n in store._redis.scan_iter(match=f"{store._prefix}grab:*")]
            answers = [n for n in names if n.decode().endswith(":answers")]
            return [int(await store._redis.ttl(n)) for n in answers]

        return list(client.raw.blocking_portal.call(redis_ttls))

    async def sql_ttls(db: Any) -> list[int]:
        rows = await db.execute(
            select(rate_counter.c.expires_at).where(rate_counter.c.key.startswith("grabidem:"))
        )
        now = int(dt.datetime.now(dt.UTC).timestamp())
        return [int(expires) - now for (expires,) in rows]

    return list(client.run(sql_ttls))


def test_answers_to_a_key_are_kept_for_a_day(client: Browserish) -> None:
    day = 86_400
    client.run(add_grab, open_grab(stock=1))
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    client.run(add_grab, open_grab("later", stock=1, starts_at=start))
    a, b = people(client, 2)
    assert claim(client, a, key="won-key").json()["result"] == "won"
    assert claim(client, b, key="sold-key").json()["result"] == "sold_out"
    assert claim(client, a, slug="later", key="early-key").json()["result"] == "not_open"
    ttls = _idempotency_ttls(client)
    # SQL keeps a row per key; Redis a hash per grab (the flash grab and the later one).
    assert len(ttls) in (2, 3) and all(day - 2 <= ttl <= day for ttl in ttls), ttls


def test_restock_to_exactly_the_units_won(client: Browserish) -> None:
    client.run(add_grab, open_grab(stock=3))
    a, b, c = people(client, 3)
    assert claim(client, a).json()["result"] == "won"
    assert claim(client, b).json()["result"] == "won"
    grabs = part(client.app, Grabs)
    client.raw.blocking_portal.call(grabs.check, "flash")  # Redis: both wins are in SQL
    client.make_staff("mk", "marketer")
    client.login("mk")
    exact = restock_flash(client, 2, follow_redirects=False)
    assert exact.status_code == 303, exact.text
    status = client.get("/api/v1/grabs/flash").json()
    assert (status["stock_total"], status["stock_left"]) == (2, 0)
    assert client.run(_sql_stock) == (2, 0)  # the durable record too, not only Redis
    below = restock_flash(client, 1)
    assert below.status_code == 409, below.text[:3000]
    assert "已被抢走的份数多于这个数量。" in below.text  # zh_CN: more units were already won
    assert client.get("/api/v1/grabs/flash").json()["stock_total"] == 2
    assert claim(client, c).json()["result"] == "sold_out"
    report = client.raw.blocking_portal.call(grabs.check, "flash")
    assert report.ok and report.won == 2 and report.remaining == 0


async def _sql_stock(db: Any) -> tuple[int, int]:
    """The flash grab's initial stock and stock left as its SQL row has them."""
    from sqlalchemy import select

    from app.grabs.models import Grab

    row = (await db.execute(select(Grab.initial_stock, Grab.stock))).one()
    return int(row[0]), int(row[1])


def test_redis_tap_counters_expire(client: Browserish) -> None:
    """The claim script counts taps in Redis itself: each counter expires with its window."""
    from app.grabs.store import RedisClaimStore

    store = part(client.app, Grabs).store
    if not isinstance(store, RedisClaimStore):
        pytest.skip("the claim script counts taps with Redis only")
    client.run(add_grab, open_grab(stock=5, per_phone_limit=3))
    (person,) = people(client, 1)
    for _ in range(3):
        assert claim(client, person).status_code == 200

    async def counters() -> dict[str, tuple[int, int]]:
        found = {}
        async for name in store._redis.scan_iter(match=f"{store._prefix}rl:grab:*"):
            count, ttl = await store._redis.get(name), await store._redis.ttl(name)
            found[name.decode()] = (int(count), int(ttl))
        return found

    found = client.raw.blocking_portal.call(counters)
    kinds = sorted(name.split("rl:grab:")[1].split(":")[0] for name in found)
    assert kinds == ["ip", "v"], found
    assert all(count == 3 and 0 < ttl <= 61 for count, ttl in found.values()), found


def test_a_grab_closed_under_a_claim_takes_nothing(client: Browserish) -> None:
    """The claim path decides on a cached copy of the grab; the store's own check of the
    schedule and the host's switch is what counts: closed meanwhile, the tap is not_open, no
    unit is taken and no claim is left behind, and the key keeps that answer."""
    client.run(add_grab, open_grab(stock=3))
    (person,) = people(client, 1)
    grabs = part(client.app, Grabs)
    portal = client.raw.blocking_portal
    grab = portal.call(grabs.info, "flash")
    who = portal.call(grabs.claimant, person.public_id)
    assert who is not None
    client.run(_set_mode, "closed")
    if isinstance(grabs.store, RedisClaimStore):
        pytest.skip("the Redis script trusts the caller's check of the schedule")
    answer, replayed = portal.call(grabs.store.claim, grab, who, "late-tap")
    assert (answer.result, answer.voucher, replayed) == ("not_open", None, False)
    assert client.count("grab_claim") == 0
    assert portal.call(grabs.store.stock_left, grab) == 3
    again, replayed = portal.call(grabs.store.claim, grab, who, "late-tap")
    assert (again.result, replayed) == ("not_open", True)


def test_redis_rebuilds_a_lost_grab_from_sql(client: Browserish) -> None:
    """Redis lost the grab's keys (restarted without persistence): the next tap rebuilds the
    stock and the winners from SQL, so nobody wins twice and nothing is oversold."""
    grabs = part(client.app, Grabs)
    if not isinstance(grabs.store, RedisClaimStore):
        pytest.skip("the SQL store is the record itself")
    client.run(add_grab, open_grab(stock=3, per_phone_limit=1))
    a, b, c, d = people(client, 4)
    assert claim(client, a).json()["result"] == "won"
    assert claim(client, b).json()["result"] == "won"
    store = grabs.store
    portal = client.raw.blocking_portal
    portal.call(store.drain)

    async def lose() -> None:
        await store._redis.delete(*store._keys(1))

    portal.call(lose)
    assert claim(client, a).json()["result"] == "already_claimed"
    assert claim(client, c).json()["result"] == "won"
    assert claim(client, d).json()["result"] == "sold_out"
    report = portal.call(grabs.check, "flash")
    assert report.ok, report.problems
    assert (report.won, report.remaining, report.redis_won, report.redis_remaining) == (3, 0, 3, 0)
    portal.call(lose)  # lost again: reading the stock alone rebuilds it too
    assert portal.call(store.stock_left, portal.call(grabs.info, "flash")) == 0
    assert portal.call(store.winners, portal.call(grabs.info, "flash")) == {
        p.phone_hash: 1 for p in (a, b, c)
    }


def test_a_win_is_recorded_whole(client: Browserish) -> None:
    """What the winner is told is what is recorded: the claim row (who, which unit, the key,
    the code, valid for the grab's days) and the win on the lead's timeline."""
    from sqlalchemy import select

    from app.events.models import FunnelEvent
    from app.grabs.models import GrabClaim
    from app.visitors.models import Visitor

    client.run(add_grab, open_grab(stock=5, per_phone_limit=2, voucher_valid_days=7))
    (person,) = people(client, 1)
    before = dt.datetime.now(dt.UTC)
    first = claim(client, person, key="tap-1").json()
    second = claim(client, person).json()
    after = dt.datetime.now(dt.UTC)
    grabs = part(client.app, Grabs)
    client.raw.blocking_portal.call(grabs.check, "flash")  # Redis: the writer has caught up

    async def recorded(db: Any) -> tuple[Any, list[Any], list[Any]]:
        visitor = (
            await db.execute(select(Visitor).where(Visitor.public_id == person.public_id))
        ).scalar_one()
        claims = (await db.execute(select(GrabClaim).order_by(GrabClaim.n))).scalars().all()
        wins = (
            (await db.execute(select(FunnelEvent).where(FunnelEvent.name == "grab_won")))
            .scalars()
            .all()
        )
        return visitor, list(claims), list(wins)

    visitor, claims, wins = client.run(recorded)
    assert [c.n for c in claims] == [1, 2]
    for answer, row, key in zip((first, second), claims, ("tap-1", None), strict=True):
        assert answer["result"] == "won"
        assert answer["voucher"]["code"] == row.code and answer["voucher"]["n"] == row.n
        assert (row.phone_hash, row.lead_id, row.visitor_id) == (
            person.phone_hash,
            visitor.lead_id,
            visitor.id,
        )
        assert (row.idempotency_key, row.status) == (key, "issued")
        assert before - dt.timedelta(seconds=1) <= row.claimed_at <= after
        # Valid for the grab's days (Redis keeps the expiry in whole seconds).
        assert abs(row.expires_at - row.claimed_at - dt.timedelta(days=7)) < dt.timedelta(seconds=1)
        told = dt.datetime.fromisoformat(answer["voucher"]["expires_at"])
        assert abs(told - row.expires_at) < dt.timedelta(seconds=1)
    tool_id = client.run(lambda db: _tool_of(db, "flash"))
    assert sorted((w.lead_id, w.visitor_id, w.tool_id, w.props["n"]) for w in wins) == [
        (visitor.lead_id, visitor.id, tool_id, 1),
        (visitor.lead_id, visitor.id, tool_id, 2),
    ]


async def _tool_of(db: Any, slug: str) -> int:
    from sqlalchemy import select

    from app.tools.models import Tool

    return int((await db.execute(select(Tool.id).where(Tool.slug == slug))).scalar_one())


def test_tap_limits_per_minute_at_the_boundary(
    client: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A visitor's taps per minute: exactly the limit pass, one more is refused until the
    minute ends (Retry-After to the second), then taps pass again. The Redis store counts them
    inside its claim script, the SQL one through the limiter: the same rule."""
    import time

    minute = (int(time.time()) // 60 + 2) * 60
    clock = [minute + 5.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    settings = part(client.app, Settings)
    part(client.app, Grabs).settings = msgspec.structs.replace(
        settings, grab_visitor_per_minute=3, grab_ip_per_minute=1000
    )
    client.run(add_grab, open_grab(stock=100, per_phone_limit=20))
    (person,) = people(client, 1)
    assert [claim(client, person).status_code for _ in range(3)] == [200] * 3
    limited = claim(client, person)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "55"
    clock[0] = minute + 59.9
    assert claim(client, person).status_code == 429
    clock[0] = minute + 60
    assert claim(client, person).json()["result"] == "won"


def test_the_redis_writer_records_wins_on_its_own_even_after_a_failure(
    client: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis decides; the writer task brings each win to SQL by itself (no drain, no check),
    and a failed write leaves the entries in the stream to be written on the next try."""
    import time

    grabs = part(client.app, Grabs)
    store = grabs.store
    if not isinstance(store, RedisClaimStore):
        pytest.skip("the SQL store writes in the claim's transaction")
    failures: list[int] = []
    write = store.writer.write

    async def failing_once(entries: Any) -> None:
        if not failures:
            failures.append(len(entries))
            raise ConnectionError("the database went away for a moment")
        await write(entries)

    monkeypatch.setattr(store.writer, "write", failing_once)
    client.run(add_grab, open_grab(stock=5))
    a, b = people(client, 2)
    assert claim(client, a).json()["result"] == "won"
    assert claim(client, b).json()["result"] == "won"
    deadline = time.monotonic() + 15
    while client.count("grab_claim") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert failures and client.count("grab_claim") == 2
    assert client.raw.blocking_portal.call(store.pending) == 0
    assert client.raw.blocking_portal.call(grabs.check, "flash").ok


def test_a_claim_through_a_tracked_link_names_the_link_and_the_tool_version(
    client: Browserish,
) -> None:
    """The win's funnel event names the tracked link the visitor came by (none without one)
    and the grab's tool at its version, on the SQL path and through the Redis writer alike."""
    from sqlalchemy import select, update

    from app.events.models import FunnelEvent
    from app.links.models import Account, TrackedLink
    from app.visitors.models import Visitor

    client.run(add_grab, open_grab(stock=5))
    linked, direct = people(client, 2)

    async def arrive_by_link(db: Any) -> int:
        account = Account(kind="brand", name="brand")
        db.add(account)
        await db.flush()
        link = TrackedLink(
            code="live77", account_id=account.id, channel="live", target_slug="flash"
        )
        db.add(link)
        await db.flush()
        await db.execute(
            update(Visitor)
            .where(Visitor.public_id == linked.public_id)
            .values(last_link_id=link.id)
        )
        return int(link.id)

    link_id = client.run(arrive_by_link)
    assert claim(client, linked).json()["result"] == "won"
    assert claim(client, direct).json()["result"] == "won"
    grabs = part(client.app, Grabs)
    client.raw.blocking_portal.call(grabs.check, "flash")  # Redis: the writer has caught up
    grab = client.raw.blocking_portal.call(grabs.info, "flash")
    assert grab.tool_version

    async def wins(db: Any) -> list[tuple[int | None, int | None, int | None]]:
        rows = await db.execute(
            select(FunnelEvent.link_id, FunnelEvent.tool_id, FunnelEvent.tool_version)
            .where(FunnelEvent.name == "grab_won")
            .order_by(FunnelEvent.id)
        )
        return [tuple(row) for row in rows]

    assert sorted(client.run(wins), key=lambda w: w[0] or 0) == [
        (None, grab.tool_id, grab.tool_version),
        (link_id, grab.tool_id, grab.tool_version),
    ]


def test_a_grab_is_open_from_exactly_its_start_and_without_an_end(
    client: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's own check of the schedule: a grab with no end stays open, and a claim
    decided at exactly the start time is inside the window."""
    from app.grabs.store import claims

    start = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).replace(microsecond=0)
    client.run(add_grab, open_grab(stock=3, starts_at=start, ends_at=None))
    a, b = people(client, 2)
    assert claim(client, a).json()["result"] == "won"
    grabs = part(client.app, Grabs)
    if isinstance(grabs.store, RedisClaimStore):
        pytest.skip("the Redis script trusts the caller's check of the schedule")
    portal = client.raw.blocking_portal
    grab = portal.call(grabs.info, "flash")
    who = portal.call(grabs.claimant, b.public_id)
    assert who is not None and grab.starts_at == start
    monkeypatch.setattr(claims, "now", lambda: start)
    answer, replayed = portal.call(grabs.store.claim, grab, who, None)
    assert (answer.result, replayed) == ("won", False)


def test_a_claim_rate_limit_keeps_its_wait() -> None:
    """The exception the Redis store raises carries the wait (at least a second) as its
    message and through a copy (its args rebuild it)."""
    import copy

    from app.grabs.store import ClaimRateLimited

    limited = ClaimRateLimited(7)
    assert (limited.retry_after, str(limited)) == (7, "7")
    assert copy.copy(limited).retry_after == 7
    assert ClaimRateLimited(0).retry_after == 1


def test_forgetting_a_phone_keeps_the_answers_of_others(client: Browserish) -> None:
    """A deleted person's idempotency answers go; another phone's answers, on the same grab,
    stay: its double tap still gets its voucher, and a tap refused before the opening stays
    refused (a forgotten answer would be decided anew, and now win)."""
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    client.run(add_grab, open_grab(stock=3, starts_at=start, ends_at=None))
    a, b = people(client, 2)
    assert claim(client, a, key="early-a").json()["result"] == "not_open"
    assert claim(client, b, key="early-b").json()["result"] == "not_open"
    client.run(_set_mode, "open")
    announce(client)
    b_won = claim(client, b, key="tap-b").json()
    assert b_won["result"] == "won"
    grabs = part(client.app, Grabs)
    client.raw.blocking_portal.call(grabs.store.forget, a.phone_hash)
    assert claim(client, b, key="tap-b").json() == b_won
    assert claim(client, b, key="early-b").json()["result"] == "not_open"
    # A's own answer is gone: the same key is a new tap, decided now.
    assert claim(client, a, key="early-a").json()["result"] == "won"


def test_a_replayed_voucher_carries_its_number(client: Browserish) -> None:
    """A phone's second unit, tapped again with its key, is answered as unit 2 again."""
    client.run(add_grab, open_grab(stock=5, per_phone_limit=2))
    (person,) = people(client, 1)
    first = claim(client, person, key="tap-1").json()
    second = claim(client, person, key="tap-2").json()
    assert (first["voucher"]["n"], second["voucher"]["n"]) == (1, 2)
    assert claim(client, person, key="tap-2").json() == second
    assert claim(client, person, key="tap-1").json() == first


def test_stock_left_read_in_a_request_is_zero_when_sold_out(client: Browserish) -> None:
    client.run(add_grab, open_grab(stock=1))
    (person,) = people(client, 1)
    assert claim(client, person).json()["result"] == "won"
    grabs = part(client.app, Grabs)
    grab = client.raw.blocking_portal.call(grabs.info, "flash")

    async def left_in_request(db: Any) -> int:
        return await grabs.store.stock_left(grab, await db.connection())

    assert client.run(left_in_request) == 0
