"""Rules of the grab's claim stores that the rush tests do not reach: a voucher code drawn
twice, a key whose answer is lost, the window's wording."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import insert

from app.core.models import rate_counter
from app.core.state import part
from app.grabs.service import Grabs
from app.grabs.store import RedisClaimStore, claims
from tests.grab_support import add_grab, open_grab
from tests.helpers import Browserish
from tests.test_grabs import bearer, claim, people


@pytest.mark.parametrize(
    ("language", "detail"),
    [("en", "The end must come after the start."), ("zh_CN", "结束时间必须晚于开始时间。")],
)
def test_an_end_before_the_start_is_refused_in_words(
    client: Browserish, language: str, detail: str
) -> None:
    body = {
        "slug": "late",
        "title": "t",
        "stock": 1,
        "starts_at": "2026-01-02T10:00:00Z",
        "ends_at": "2026-01-02T10:00:00Z",  # the same instant is not after it either
    }
    refused = client.post(
        f"/api/v1/admin/grabs?lang={language}", json=body, headers=bearer(client, "marketer")
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"] == detail
    assert client.count("grab") == 0


def test_a_voucher_code_drawn_twice_is_drawn_again(
    client: Browserish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes are unique: when a new claim's random code is one already given (1 in 2^60), the
    claim draws another and wins; it is never refused as 'already claimed'."""
    if isinstance(part(client.app, Grabs).store, RedisClaimStore):
        pytest.skip("the Redis script's codes reach SQL through the writer")
    codes = iter(["LKAAAA2222BBBB", "LKAAAA2222BBBB", "LKCCCC3333DDDD"])
    monkeypatch.setattr(claims, "new_code", lambda prefix: next(codes))
    client.run(add_grab, open_grab(stock=3))
    a, b = people(client, 2)
    first = claim(client, a).json()
    second = claim(client, b).json()
    assert (first["result"], second["result"]) == ("won", "won"), second
    assert (first["voucher"]["code"], second["voucher"]["code"]) == (
        "LKAAAA2222BBBB",
        "LKCCCC3333DDDD",
    )
    assert (first["voucher"]["n"], second["voucher"]["n"]) == (1, 1)
    assert client.count("grab_claim") == 2
    assert client.get("/api/v1/grabs/flash").json()["stock_left"] == 1


def test_a_key_whose_answer_is_lost_is_refused_not_decided_again(client: Browserish) -> None:
    """The SQL store reserves a key before it decides: a key already reserved whose answer
    can no longer be found (no claim carries it, no refusal is kept) is answered 'not open',
    as a replay, and nothing is claimed for it."""
    grabs = part(client.app, Grabs)
    if isinstance(grabs.store, RedisClaimStore):
        pytest.skip("Redis keeps a key and its answer in one hash field")
    grab_id = client.run(add_grab, open_grab(stock=3))
    (person,) = people(client, 1)
    far = int(dt.datetime.now(dt.UTC).timestamp()) + 3600

    async def reserve(db: Any) -> None:
        key = f"grabidem:{grab_id}:{person.phone_hash}:lost"
        await db.execute(
            insert(rate_counter).values(key=key, window_start=-1, count=0, expires_at=far)
        )

    client.run(reserve)
    answer = claim(client, person, key="lost")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": "not_open", "voucher": None}
    assert client.count("grab_claim") == 0
    assert client.get("/api/v1/grabs/flash").json()["stock_left"] == 3
    # Without the key the same phone is decided as any tap is.
    assert claim(client, person).json()["result"] == "won"


@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
def test_a_time_without_a_zone_is_refused_by_its_name(client: Browserish, field: str) -> None:
    body: dict[str, Any] = {"slug": "zoneless", "title": "t", "stock": 1}
    body["starts_at"] = "2026-01-02T10:00:00Z"
    body["ends_at"] = "2026-01-02T12:00:00Z"
    body[field] = body[field].removesuffix("Z")  # a wall-clock time in no zone
    refused = client.post("/api/v1/admin/grabs", json=body, headers=bearer(client, "marketer"))
    assert refused.status_code == 400, refused.text
    assert list(refused.json()["errors"]) == [field]
    assert client.count("grab") == 0


def test_restocking_a_grab_nobody_has_won_gives_it_all(client: Browserish) -> None:
    """A new total before the first win is the stock left, in Redis and in SQL alike."""
    from tests.test_grabs import _sql_stock, restock_flash

    client.run(add_grab, open_grab(stock=3))
    client.make_staff("mk", "marketer")
    client.login("mk")
    assert restock_flash(client, 5, follow_redirects=False).status_code == 303
    status = client.get("/api/v1/grabs/flash").json()
    assert (status["stock_total"], status["stock_left"]) == (5, 5)
    assert client.run(_sql_stock) == (5, 5)
    (person,) = people(client, 1)
    assert claim(client, person).json()["result"] == "won"
    assert client.get("/api/v1/grabs/flash").json()["stock_left"] == 4


def test_the_check_waits_for_wins_another_writer_is_still_writing(client: Browserish) -> None:
    """`leadkit grabs check` compares Redis with SQL after the claim stream is written, also
    the wins another process's writer has read and not finished writing: it takes them over
    (written twice changes nothing) instead of reporting them missing from SQL."""
    grabs = part(client.app, Grabs)
    store = grabs.store
    if not isinstance(store, RedisClaimStore):
        pytest.skip("the SQL store writes a claim in its own transaction")
    portal = client.raw.blocking_portal
    portal.call(store.writer.stop)  # nothing of this process writes in the background
    try:
        client.run(add_grab, open_grab(stock=3))
        a, b = people(client, 2)
        assert claim(client, a).json()["result"] == "won"
        assert claim(client, b).json()["result"] == "won"

        async def read_elsewhere() -> int:
            # Another worker's writer read both wins and has not written them yet.
            taken: Any = await store._redis.xreadgroup(
                store.writer.GROUP, "another-worker", {store._stream: ">"}, count=10
            )
            return sum(len(items) for _, items in taken)

        assert portal.call(read_elsewhere) == 2
        report = portal.call(grabs.check, "flash")
        assert report.ok, report.problems
        assert (report.won, report.remaining) == (2, 1)
        assert client.count("grab_claim") == 2
        assert portal.call(store.pending) == 0
    finally:
        portal.call(store.writer.start)
