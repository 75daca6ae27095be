"""A draw that mixes in drand (issue 13, item 4; docs/draws.md), end to end through the real
app on both backends: the admin API publishes it, visitors enter through the JSON API, the
close fixes the drand round, the host draws every tier, and the proof bundle carries the round
the fake beacon on 127.0.0.1 (tests/fakes/drand_beacon.py) signed — checked by
`leadkit draws verify`, by the public verify page and by the suite's independent
re-implementation of the algorithm. Then the beacon misbehaves: unreachable, or answering a
round it did not sign."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.asgi import create_app
from app.cli import main
from app.core.state import part
from app.draws.models import Draw, DrawWinner
from app.settings import Settings, env_name
from tests.fakes.drand_beacon import FakeDrand
from tests.helpers import Browserish, soup
from tests.test_draw_fairness import reference_draw
from tests.test_draws import api_enter, people, settle
from tests.test_grabs import bearer

SLUG = "live-drand"
TIERS = [{"name": "一等奖", "quantity": 2, "reserves": 1}, {"name": "二等奖", "quantity": 3}]
# The zh_CN words of the verify page's mode (templates/draws/verify.html).
DRAND_MODE = "承诺-揭示，并加入公共随机信标的随机数"
COMMIT_REVEAL_MODE = "承诺-揭示（未使用公共随机数）"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def beacon(request: pytest.FixtureRequest) -> Iterator[FakeDrand]:
    """One round a second (the round fixed at the close comes within a second of it), or the
    period a test asks for (``indirect``), the current time at the start of a period."""
    period = getattr(request, "param", 1)
    with FakeDrand(period=period, genesis_time=int(time.time()) - 3000 * period) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, beacon: FakeDrand) -> Settings:
    """The suite's settings for the backend, with the drand beacon on 127.0.0.1."""
    return msgspec.structs.replace(settings, drand_url=beacon.url, drand_chain=beacon.chain)


class Host:
    """The admin API as a marketer (create) and a host (open, close, draw) use it."""

    def __init__(self, client: Browserish) -> None:
        self.client = client
        self.marketer = bearer(client, "marketer")
        self.host = bearer(client, "host")

    def create(self, **extra: Any) -> dict[str, Any]:
        body = {"slug": SLUG, "title": "直播抽奖", "tiers": TIERS, "drand": True, **extra}
        answer = self.client.raw.post("/api/v1/admin/draws", json=body, headers=self.marketer)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def act(self, action: str) -> Any:
        return self.client.raw.post(f"/api/v1/admin/draws/{SLUG}/{action}", headers=self.host)

    def status(self) -> dict[str, Any]:
        answer = self.client.raw.get(f"/api/v1/draws/{SLUG}")
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


def open_and_enter(client: Browserish, host: Host, entrants: int = 10) -> None:
    assert host.act("open").status_code == 200
    for person in people(client, entrants):
        answer = api_enter(client, person, SLUG)
        assert answer.status_code == 200 and answer.json()["result"] == "entered", answer.text
    settle(client)


def wait_until_produced(beacon: FakeDrand, round_number: int) -> None:
    """Sleep until the beacon has produced ``round_number`` (at most a period or two)."""
    deadline = time.monotonic() + 5
    while beacon.latest_round() < round_number:
        assert time.monotonic() < deadline, f"round {round_number} never came"
        time.sleep(0.05)


def draw_every_tier(host: Host) -> list[dict[str, Any]]:
    drawn = []
    for tier in range(1, len(TIERS) + 1):
        answer = host.act(f"draw?tier={tier}")
        assert answer.status_code == 200, answer.text
        drawn.append(answer.json())
    return drawn


def proof_of(client: Browserish) -> dict[str, Any]:
    answer = client.raw.get(f"/api/v1/draws/{SLUG}/proof")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def verify_cli(tmp_path: Path, bundle: dict[str, Any], *args: str) -> Any:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bundle))
    return CliRunner().invoke(main, ["draws", "verify", str(path), *args])


def winners_stored(client: Browserish) -> int:
    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.count()).select_from(DrawWinner)) or 0)

    return client.run(work)  # type: ignore[no-any-return]


def closed_at(client: Browserish) -> float:
    async def work(db: AsyncSession) -> float:
        row = (await db.execute(select(Draw))).scalar_one()
        assert row.closed_at is not None
        return row.closed_at.timestamp()

    return client.run(work)  # type: ignore[no-any-return]


def draws_check(client: Browserish) -> dict[str, str]:
    """`leadkit draws check SLUG` on the app's database, trusting the app's drand chain: each
    check's line by its name, and the verdict under "result"."""
    settings = part(client.app, Settings)
    fields = ("database_url", "redis_url", "redis_prefix", "secret_key", "data_dir")
    env = {
        env_name(field): str(getattr(settings, field))
        for field in (*fields, "drand_url", "drand_chain")
    }
    result = CliRunner().invoke(main, ["draws", "check", SLUG], env=env)
    found = {"result": f"exit {result.exit_code}: {result.output.splitlines()[-1]}"}
    for line in result.output.splitlines():
        name, sep, rest = line.partition(": ")
        if sep and rest.startswith(("ok", "MISMATCH")):
            found[name] = rest
    return found


def verify_page(client: Browserish) -> Any:
    page = client.raw.get(f"/t/{SLUG}/verify")
    assert page.status_code == 200, page.text
    return soup(page)


# --- a draw in drand mode, end to end ------------------------------------------------------


def drawn_with_drand(client: Browserish, beacon: FakeDrand) -> tuple[dict[str, Any], int]:
    """The draw published, entered by 10, closed and drawn on the beacon's round: the proof
    bundle and the round."""
    host = Host(client)
    created = host.create()
    assert len(created["commitment"]) == 64
    assert created["commitment"] in client.raw.get(f"/t/{SLUG}").text
    open_and_enter(client, host)
    assert host.status()["drand_round"] is None  # no round before the close names one
    closed = host.act("close")
    assert closed.status_code == 200, closed.text
    status = host.status()
    round_number = status["drand_round"]
    assert isinstance(round_number, int)
    # The round fixed at the close is the first produced strictly after it: its randomness
    # did not exist while the entries were taken, and nobody has asked the beacon for it.
    produced_at = beacon.info["genesis_time"] + (round_number - 1) * beacon.info["period"]
    assert closed_at(client) < produced_at <= closed_at(client) + beacon.info["period"]
    assert not [path for path in beacon.requests if "/public/" in path]
    # Published before the draw: the status, and the verify page while it waits.
    pending = verify_page(client)
    assert pending.select_one("[data-verdict=pending]") is not None
    assert f"公共随机信标轮次: {round_number}" in pending.get_text()
    assert (
        draws_check(client)["drand"]
        == f"ok (round {round_number} fixed at the close, not fetched yet)"
    )
    drawn = draw_every_tier(host)  # at once: the tap waits for the round (a period at most)
    assert [len(t["winners"]) for t in drawn] == [2, 3]
    bundle = proof_of(client)
    assert bundle["commitment"] == created["commitment"] == status["commitment"]
    assert bundle["entrants_hash"] == status["entrants_hash"]
    checked = draws_check(client)
    assert checked["drand"] == f"ok (round {round_number} verified)"
    assert checked["result"] == "exit 0: ok"
    return bundle, round_number


def test_a_drand_draw_carries_the_beacons_round_and_verifies(
    client: Browserish, beacon: FakeDrand, tmp_path: Path
) -> None:
    bundle, round_number = drawn_with_drand(client, beacon)
    served = beacon.beacon(round_number)
    assert bundle["mode"] == "drand"
    assert {k: bundle["drand"][k] for k in ("round", "randomness", "signature")} == served
    assert bundle["drand"]["chain"]["hash"] == beacon.chain
    assert bundle["drand"]["chain"]["public_key"] == beacon.info["public_key"]

    ok = verify_cli(tmp_path, bundle, "--chain", beacon.chain)
    assert ok.exit_code == 0, ok.output
    assert "mode drand" in ok.output and f"drand round {round_number} " in ok.output

    other = beacon.beacon(round_number + 1)
    for changed, code in [
        ({"randomness": other["randomness"]}, "drand_randomness"),
        ({"round": round_number + 1}, "drand_signature"),
        ({"round": round_number + 1, "randomness": other["randomness"]}, "drand_signature"),
    ]:
        tampered = {**bundle, "drand": {**bundle["drand"], **changed}}
        failed = verify_cli(tmp_path, tampered, "--chain", beacon.chain)
        assert failed.exit_code == 1, failed.output
        assert f"MISMATCH {code}: " in failed.output and "FAILED" in failed.output
    # Trusting quicknet (the default), the fake's chain is refused by name.
    untrusted = verify_cli(tmp_path, bundle)
    assert untrusted.exit_code == 1 and "MISMATCH drand_untrusted_chain" in untrusted.output


def test_the_independent_implementation_agrees_on_a_drand_bundle(
    client: Browserish, beacon: FakeDrand
) -> None:
    bundle, _ = drawn_with_drand(client, beacon)
    recomputed = reference_draw(bundle)
    assert [(t["winners"], t["reserves"]) for t in bundle["tiers"]] == recomputed
    # The randomness is really mixed in: the re-implementation with another round's
    # randomness recomputes something else for at least one of a few rounds.
    others = [
        reference_draw({**bundle, "drand": {"randomness": beacon.beacon(n)["randomness"]}})
        for n in range(1, 6)
    ]
    assert any(other != recomputed for other in others)


def test_the_verify_page_recomputes_a_drand_draw_and_names_its_mode(
    client: Browserish, beacon: FakeDrand
) -> None:
    bundle, round_number = drawn_with_drand(client, beacon)
    page = verify_page(client)
    assert page.select_one("[data-verdict=match]") is not None, page.get_text()
    assert not page.select("[data-tier-check=mismatch]")
    assert len(page.select("[data-tier-check=match]")) == len(TIERS)
    mode = page.select_one("[data-mode]")
    assert mode is not None and mode["data-mode"] == "drand"
    assert mode.get_text(strip=True) == DRAND_MODE
    text = page.get_text()
    assert str(round_number) in text and bundle["drand"]["randomness"] in text
    assert bundle["seed"] in text


# --- the beacon fails ----------------------------------------------------------------------


@pytest.fixture
def offline(settings: Settings) -> Iterator[Browserish]:
    """The app with its drand beacon on a port of 127.0.0.1 where nothing answers."""
    unreachable = msgspec.structs.replace(settings, drand_url=f"http://127.0.0.1:{closed_port()}")
    with TestClient(app=create_app(unreachable), base_url="http://testserver.local") as raw:
        yield Browserish(raw)


def test_without_a_beacon_the_draw_works_on_commit_reveal_alone(
    offline: Browserish, tmp_path: Path
) -> None:
    """docs/draws.md: "Without drand (no network, …), the draw still works on commit–reveal
    alone and the bundle says so"; the verify page says which mode was used."""
    client = offline
    host = Host(client)
    host.create()
    open_and_enter(client, host)
    closed = host.act("close")
    assert closed.status_code == 200, closed.text
    assert host.status()["drand_round"] is None
    draw_every_tier(host)
    bundle = proof_of(client)
    assert bundle["mode"] == "commit-reveal" and "drand" not in bundle
    assert [(t["winners"], t["reserves"]) for t in bundle["tiers"]] == reference_draw(bundle)
    assert verify_cli(tmp_path, bundle).exit_code == 0
    page = verify_page(client)
    assert page.select_one("[data-verdict=match]") is not None
    mode = page.select_one("[data-mode]")
    assert mode is not None and mode["data-mode"] == "commit-reveal"
    assert mode.get_text(strip=True) == COMMIT_REVEAL_MODE
    checked = draws_check(client)
    assert checked["drand"] == "ok (not used: no beacon at the close, commit-reveal)"
    assert checked["result"] == "exit 0: ok"


def refused_without_winners(client: Browserish, host: Host, reason: str) -> None:
    """Drawing tier 1 is refused with a clear answer naming the round, and nothing is drawn."""
    round_number = host.status()["drand_round"]
    refused = host.act("draw?tier=1")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["code"], problem["errors"]) == ("drand_failed", {"drand": reason})
    assert f"公共随机信标（第 {round_number} 轮）" in problem["detail"], problem["detail"]
    assert winners_stored(client) == 0
    assert all(not tier["drawn"] for tier in host.status()["tiers"])
    assert host.status()["drand_round"] == round_number  # the published round stays
    assert client.raw.get(f"/api/v1/draws/{SLUG}/proof").status_code == 409


def closed_with_a_round(client: Browserish) -> tuple[Host, int]:
    host = Host(client)
    host.create()
    open_and_enter(client, host)
    assert host.act("close").status_code == 200
    round_number = host.status()["drand_round"]
    assert isinstance(round_number, int)
    return host, round_number


def test_a_beacon_gone_at_the_draw_draws_nothing_and_says_so(
    client: Browserish, beacon: FakeDrand
) -> None:
    """The round was published at the close: the draw waits for it rather than fall back to
    commit-reveal, which would let whoever runs the server choose between two outcomes."""
    host, round_number = closed_with_a_round(client)
    wait_until_produced(beacon, round_number)
    beacon.__exit__(None, None, None)  # the beacon stops answering
    refused_without_winners(client, host, "unavailable")
    page = verify_page(client)
    assert page.select_one("[data-verdict=pending]") is not None


def test_a_beacon_answering_an_error_then_the_round_draws_on_the_retry(
    client: Browserish, beacon: FakeDrand
) -> None:
    host, round_number = closed_with_a_round(client)
    wait_until_produced(beacon, round_number)
    beacon.answer_raw_next(503, b"busy")
    refused_without_winners(client, host, "unavailable")
    assert [len(t["winners"]) for t in draw_every_tier(host)] == [2, 3]
    assert proof_of(client)["drand"]["round"] == round_number


@pytest.mark.parametrize("beacon", [30], indirect=True)
def test_a_draw_before_its_round_is_produced_waits_for_it(
    client: Browserish, beacon: FakeDrand
) -> None:
    host, round_number = closed_with_a_round(client)
    produced_at = beacon.info["genesis_time"] + (round_number - 1) * beacon.info["period"]
    assert produced_at > time.time() + 5  # a 30 s period, entered at its start
    refused_without_winners(client, host, "not_yet")
    assert not [path for path in beacon.requests if "/public/" in path]  # not even asked


def test_a_round_signed_for_another_round_is_refused(client: Browserish, beacon: FakeDrand) -> None:
    host, round_number = closed_with_a_round(client)
    wait_until_produced(beacon, round_number + 1)
    beacon.corrupt_next()
    refused_without_winners(client, host, "bad_signature")
    # The honest round, asked again, is used.
    assert [len(t["winners"]) for t in draw_every_tier(host)] == [2, 3]
    assert proof_of(client)["drand"]["signature"] == beacon.beacon(round_number)["signature"]


def test_a_scheduled_drand_draw_is_drawn_by_the_first_tap_after_its_end(
    client: Browserish, beacon: FakeDrand, tmp_path: Path
) -> None:
    """No close: the schedule ended the entries, and the host's first tap freezes the list,
    fixes the first round after that moment, waits for it and draws on it."""
    crowd = people(client, 6)
    host = Host(client)
    now = dt.datetime.now(dt.UTC)
    ends = now + dt.timedelta(seconds=2)
    host.create(starts_at=(now - dt.timedelta(minutes=1)).isoformat(), ends_at=ends.isoformat())
    for person in crowd:
        assert api_enter(client, person, SLUG).json()["result"] == "entered"
    settle(client)
    time.sleep(max(0.0, (ends - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
    assert host.status()["state"] == "closed" and host.status()["drand_round"] is None
    first = host.act("draw?tier=1")
    assert first.status_code == 200, first.text
    assert len(first.json()["winners"]) == 2
    round_number = host.status()["drand_round"]
    produced_at = beacon.info["genesis_time"] + (round_number - 1) * beacon.info["period"]
    assert closed_at(client) < produced_at
    assert [len(t["winners"]) for t in draw_every_tier(host)] == [2, 3]  # tier 1 replayed
    bundle = proof_of(client)
    assert bundle["drand"]["signature"] == beacon.beacon(round_number)["signature"]
    assert verify_cli(tmp_path, bundle, "--chain", beacon.chain).exit_code == 0
