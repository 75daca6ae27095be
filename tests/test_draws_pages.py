"""A draw's public pages on both backends (issue 13): the visitor's page through its states in
Chinese, the live status stream woken by the host's action, the claim page, the big screen and
the verify page (its recomputation matches; a tampered stored winner is a mismatch)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import part
from app.draws.checking import announced_as_drawn
from app.draws.models import DrawEntry, DrawWinner
from app.draws.public import shared
from app.draws.schemas import TierCreate
from app.draws.service import Draws
from tests.grab_support import Person, cookie_header, cookies
from tests.helpers import Browserish, soup
from tests.served import serve
from tests.test_draws import closed_draw, enter, entered_crowd, host, make_draw, people
from tests.test_faults import Stream


def as_visitor(client: Browserish, person: Person | None, url: str) -> Any:
    client.raw.cookies.clear()
    headers = {"Cookie": cookie_header(person)} if person else {}
    return client.raw.get(url, headers=headers)


def post_as(client: Browserish, person: Person, url: str, data: dict[str, str]) -> Any:
    """A form of the visitor's page, posted with the page's CSRF token."""
    client.raw.cookies.clear()
    client.raw.cookies.update(cookies(person))
    page = client.raw.get(url.rsplit("/", 1)[0])
    token = soup(page).find("meta", attrs={"name": "csrf-token"})["content"]  # type: ignore[index]
    return client.raw.post(url, data={"_csrf_token": token, **data})


def text_of(response: Any) -> str:
    return " ".join(soup(response).get_text(" ").split())


def test_the_visitor_page_through_its_states_in_chinese(client: Browserish) -> None:
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    make_draw(client, starts_at=start, ends_at=start + dt.timedelta(hours=1), passphrase="装修")
    alice, bob = people(client, 2)

    page = as_visitor(client, None, "/t/live")
    assert page.status_code == 200
    panel = soup(page).select_one("#draw-panel")
    assert panel is not None and panel["data-state"] == "scheduled"
    assert 3500 <= int(panel["data-starts-in"]) <= 3601
    assert panel["data-events-url"] == "/api/v1/draws/live/events"
    assert "报名开始" in text_of(page) and 'id="gate"' in page.text
    # The rules and the commitment (SHA-256 of the seed) are shown from the start.
    commitment = client.raw.get("/api/v1/draws/live").json()["commitment"]
    assert commitment in page.text and "/t/live/verify" in page.text

    host(client, "open")
    page = as_visitor(client, alice, "/t/live")
    assert soup(page).select_one("[data-enter]") is not None
    assert soup(page).select_one("input[name=answer]") is not None  # the passphrase asked

    wrong = post_as(client, alice, "/t/live/enter", {"answer": "别的"})
    assert wrong.status_code == 200
    assert soup(wrong).select_one('[data-result="not_eligible"]') is not None
    assert "口令" in text_of(wrong)

    entered = post_as(client, alice, "/t/live/enter", {"answer": "装 修"})
    assert soup(entered).select_one("[data-entered]") is not None
    assert "已有 1 人参与" in text_of(entered)
    assert soup(entered).select_one("[data-draw-count]").get_text() == "1"  # type: ignore[union-attr]

    host(client, "close")
    page = as_visitor(client, bob, "/t/live")
    assert soup(page).select_one("[data-enter]") is None
    assert "报名已截止" in text_of(page)


def test_referral_share_link_and_qr_when_the_draw_has_them(client: Browserish) -> None:
    make_draw(client, referrals=True)
    host(client, "open")
    (alice,) = people(client, 1)
    enter(client, alice)
    page = as_visitor(client, alice, "/t/live")
    share = soup(page).select_one(".draw-share-url")
    assert share is not None and "/t/live?ref=" in str(share["value"])
    qr = soup(page).select_one("img.draw-qr")
    assert qr is not None and str(qr["src"]).startswith("data:image/svg+xml")


async def _first_events(app: Any, path: str, act: Any, wanted: int) -> list[dict[str, Any]]:
    """The stream's status events, read from the app itself (in its loop): the first, then
    ``act()``, then until ``wanted`` events arrived."""
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body":
            await chunks.put(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"accept", b"text/event-stream")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    task = asyncio.create_task(app(scope, receive, send))
    events: list[dict[str, Any]] = []
    buffer = ""
    try:
        while len(events) < wanted:
            buffer += (await asyncio.wait_for(chunks.get(), 2)).decode()
            while "\r\n\r\n" in buffer:
                block, buffer = buffer.split("\r\n\r\n", 1)
                lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                if lines.get("event") == "status":
                    events.append(json.loads(lines["data"]))
                    if len(events) == 1:
                        await act()
    finally:
        gone.set()
        await asyncio.wait_for(task, 5)
    return events


def test_the_status_stream_delivers_the_hosts_change_at_once(client: Browserish) -> None:
    make_draw(client)
    (alice,) = people(client, 1)

    acted: list[float] = []

    async def opened() -> None:
        await asyncio.to_thread(host, client, "open")
        acted.append(time.monotonic())

    async def scenario() -> list[dict[str, Any]]:
        events = await _first_events(client.app, "/api/v1/draws/live/events", opened, 2)
        # Woken by the live hub after the commit, well before the stream's 5-second refresh.
        assert time.monotonic() - acted[0] < 2
        return events

    first, second = client.raw.blocking_portal.call(scenario)
    assert (first["state"], second["state"]) == ("scheduled", "open")
    assert second["entrants"] == 0 and second["commitment"] == first["commitment"]
    enter(client, alice)
    assert client.raw.get("/api/v1/draws/live").json()["entrants"] == 1


def test_streams_share_one_status_read_until_the_draw_changes(client: Browserish) -> None:
    make_draw(client)
    draws = part(client.app, Draws)

    async def scenario() -> None:
        info = await draws.info("live")
        reads = shared(draws)
        first, second = await asyncio.gather(
            reads.status(info.id, "live"), reads.status(info.id, "live")
        )
        assert first is second  # one query for both streams
        draws.live.forget_here(("draw", info.id))  # what the hub does first on a change
        assert await reads.status(info.id, "live") is not first

    client.raw.blocking_portal.call(scenario)


def winner_and_loser(client: Browserish, **draw: Any) -> tuple[Person, Person]:
    crowd = closed_draw(client, 2, **draw)
    host(client, "draw")
    won = client.raw.get("/api/v1/draws/live").json()["tiers"][0]["winners"][0]
    masked = {p: as_visitor(client, p, "/t/live/claim") for p in crowd}
    first = crowd[0] if "data-claim" in masked[crowd[0]].text else crowd[1]
    assert won.endswith(first.phone[-4:])
    return first, crowd[1] if first is crowd[0] else crowd[0]


def test_the_winner_sees_it_and_claims_with_optional_details(client: Browserish) -> None:
    winner, loser = winner_and_loser(client)
    page = as_visitor(client, winner, "/t/live")
    assert soup(page).select_one('[data-prize="won"]') is not None
    assert "恭喜" in text_of(page)
    assert soup(page).select_one("a[data-claim-link]")["href"] == "/t/live/claim"  # type: ignore[index]
    assert "很遗憾" in text_of(as_visitor(client, loser, "/t/live")) or "感谢" in text_of(
        as_visitor(client, loser, "/t/live")
    )

    claim = as_visitor(client, winner, "/t/live/claim")
    phone = soup(claim).select_one("[data-claim-phone]")
    assert phone is not None and str(phone["value"]).endswith(winner.phone[-4:])
    assert "*" in str(phone["value"])
    # The prize is not a voucher: name and address are asked, and optional.
    assert soup(claim).select_one("input[name=address]") is not None
    bad = post_as(client, winner, "/t/live/claim", {"name": "张\x00三"})
    assert bad.status_code == 400
    claimed = post_as(client, winner, "/t/live/claim", {"name": "张三", "address": "上海"})
    assert claimed.status_code == 200
    assert soup(claimed).select_one('[data-prize="claimed"]') is not None

    async def fields(db: AsyncSession) -> list[Any]:
        return list((await db.execute(select(DrawWinner.claim_fields))).scalars())

    assert {"name": "张三", "address": "上海"} in client.run(fields)
    nothing = as_visitor(client, loser, "/t/live/claim")
    assert nothing.status_code == 200 and soup(nothing).select_one("[data-claim]") is None
    stranger = as_visitor(client, None, "/t/live/claim")
    assert stranger.status_code == 200 and soup(stranger).select_one("[data-claim]") is None
    assert "验证手机号" in text_of(stranger)


def test_the_big_screen_shows_count_winners_commitment_and_verify_link(
    client: Browserish,
) -> None:
    make_draw(
        client, tiers=[TierCreate(name="一等奖", quantity=1), TierCreate(name="二等奖", quantity=2)]
    )
    host(client, "open")
    entered_crowd(client, 4)
    screen = as_visitor(client, None, "/t/live/screen")
    assert screen.status_code == 200
    assert soup(screen).select_one("[data-draw-count]").get_text() == "4"  # type: ignore[union-attr]
    assert len(soup(screen).select(".screen-waiting")) == 2
    host(client, "close")
    host(client, "draw")
    screen = as_visitor(client, None, "/t/live/screen")
    status = client.raw.get("/api/v1/draws/live").json()
    phones = [li.get_text() for li in soup(screen).select('[data-tier="1"] .screen-phones li')]
    assert phones == status["tiers"][0]["winners"] and "****" in phones[0]
    assert status["commitment"] in screen.text and "/t/live/verify" in screen.text
    assert soup(screen).select_one("img.screen-qr") is not None


def test_the_verify_page_recomputes_a_match_and_catches_a_tampered_winner(
    client: Browserish,
) -> None:
    make_draw(client, tiers=[TierCreate(name="一等奖", quantity=1, reserves=1)])
    host(client, "open")
    entered_crowd(client, 5)
    before = as_visitor(client, None, "/t/live/verify")
    assert soup(before).select_one('[data-verdict="pending"]') is not None
    assert "种子" in text_of(before)
    assert client.raw.get("/api/v1/draws/live").json()["commitment"] in before.text
    host(client, "close")
    host(client, "draw")

    page = as_visitor(client, None, "/t/live/verify")
    assert page.status_code == 200
    assert soup(page).select_one('[data-verdict="match"]') is not None, text_of(page)
    proof = client.raw.get("/api/v1/draws/live/proof").json()
    assert proof["seed"] in page.text and proof["entrants_hash"] in page.text
    assert soup(page).select_one("[data-mode]")["data-mode"] == "commit-reveal"  # type: ignore[index]
    assert soup(page).select_one("a[data-proof-link]")["href"] == "/api/v1/draws/live/proof"  # type: ignore[index]
    assert len(soup(page).select(".draw-entrants tbody tr")) == 5

    # Someone swaps the stored winner for an entrant who was neither drawn nor a reserve (a
    # swap for the next reserve would look like a lapsed winner replaced, which is allowed):
    # the page sees it.
    async def tamper(db: AsyncSession) -> None:
        picked = select(DrawWinner.entry_id)
        other = await db.scalar(select(DrawEntry.id).where(DrawEntry.id.not_in(picked)).limit(1))
        await db.execute(
            update(DrawWinner).where(DrawWinner.reserve.is_(False)).values(entry_id=other)
        )

    client.run(tamper)
    page = as_visitor(client, None, "/t/live/verify")
    assert soup(page).select_one('[data-verdict="mismatch"]') is not None
    assert soup(page).select_one('[data-problem="announced_winners"]') is not None
    assert "不一致" in text_of(page)


def test_announced_winners_may_be_replaced_by_reserves_in_order() -> None:
    winners, reserves = ["a", "b", "c"], ["r1", "r2"]
    assert announced_as_drawn(["a", "b", "c"], winners, reserves)
    assert announced_as_drawn(["a", "c", "r1"], winners, reserves)  # b lapsed
    assert announced_as_drawn(["c", "r1", "r2"], winners, reserves)
    assert not announced_as_drawn(["a", "c", "r2"], winners, reserves)  # a reserve skipped
    assert not announced_as_drawn(["b", "a", "c"], winners, reserves)  # reordered
    assert not announced_as_drawn(["a", "b"], winners, reserves)


@pytest.mark.parametrize(
    "url",
    [
        "/t/nope/screen",
        "/t/nope/verify",
        "/t/nope/claim",
        "/t/nope/panel",
        "/api/v1/draws/nope/events",
        "/api/v1/draws/NOPE%00/events",
    ],
)
def test_unknown_draws_are_a_clear_4xx(client: Browserish, url: str) -> None:
    answer = client.raw.get(url)
    assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.text[:200])


@pytest.mark.served
def test_the_hosts_tap_reaches_streams_on_both_workers_within_a_second(tmp_path: Path) -> None:
    """PostgreSQL + Redis, two workers: streams spread over both hear the host's tap (the
    live hub's Redis pub/sub) within a second of the host's answer."""
    with serve("postgres", tmp_path, workers=2) as app:
        marketer, hosting = app.token("marketer"), app.token("host")
        made = app.request(
            "POST",
            "/api/v1/admin/draws",
            json={
                "slug": "live",
                "title": "直播抽奖",
                "tiers": [{"name": "一等奖", "quantity": 1}],
            },
            headers={"Authorization": f"Bearer {marketer}"},
        )
        assert made.status_code == 201, made.text

        async def scenario() -> list[float]:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
            async with (
                httpx.AsyncClient(base_url=app.url, timeout=10, limits=limits) as http,
                AsyncExitStack() as stack,
            ):
                streams = []
                for _ in range(12):  # new connections: granian spreads them over its workers
                    response = await stack.enter_async_context(
                        http.stream("GET", "/api/v1/draws/live/events")
                    )
                    stream = Stream(response)
                    assert (await asyncio.wait_for(stream.event(), 10))[0] == "status"
                    streams.append(stream)
                opened = await http.post(
                    "/api/v1/admin/draws/live/open", headers={"Authorization": f"Bearer {hosting}"}
                )
                assert opened.status_code == 200, opened.text
                answered = time.monotonic()

                async def heard(stream: Stream) -> float:
                    name, data = await asyncio.wait_for(stream.event(), 5)
                    assert name == "status" and json.loads(data)["state"] == "open", data
                    return time.monotonic() - answered

                return list(await asyncio.gather(*(heard(s) for s in streams)))

        delays = asyncio.run(scenario())
    assert max(delays) < 1.0, delays
