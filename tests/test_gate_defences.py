"""SMS pumping defences through the gate, on both backends: the global budget (refusal, the
admins' alert and banner), the proof of work (ALTCHA) and the shared counters' refunds."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import altcha
import pytest

from app.core.ratelimit import MemoryRateLimiter, RateLimiter
from app.core.state import part
from app.gate.service import Gate
from app.settings import Settings
from tests.helpers import Browserish, soup
from tests.test_gate import client_maker, every_log_record

# No proof of work and no budget in the way unless a test asks for them; cheap proofs.
CALM = {
    "trust_proxy": True,
    "otp_pow_ip_hourly": 1000,
    "otp_pow_budget_percent": 100,
    "otp_hourly_budget": 1000,
    "otp_daily_budget": 1000,
    "otp_pow_cost": 1,
}


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., Browserish]]:
    with client_maker(settings, **CALM) as make:
        yield make


def expired_challenge(client: Browserish) -> dict[str, Any]:
    """A challenge signed with the gate's key that expired a second ago."""
    gate = part(client.app, Gate)
    return altcha.create_challenge(
        algorithm="PBKDF2/SHA-256",
        cost=1,
        expires_at=int(time.time()) - 1,
        hmac_secret=gate.pow._key,
    ).to_dict()


def phone(n: int) -> str:
    return f"139{n:08d}"


def send(client: Browserish, n: int, ip: str = "203.0.113.1", **extra: Any) -> Any:
    return client.post(
        "/api/v1/gate/code",
        json={"phone": phone(n), "consent": True, **extra},
        headers={"x-forwarded-for": ip},
    )


def has_code(client: Browserish, n: int) -> bool:
    """Whether a live code was sent to ``phone(n)`` (the console provider's dev inbox)."""
    return bool(client.get("/dev/sms", params={"phone": phone(n)}).status_code == 200)


def solve(challenge: dict[str, Any]) -> str:
    solution = altcha.solve_challenge(altcha.Challenge.from_dict(challenge))
    assert solution is not None
    return base64.b64encode(
        json.dumps({"challenge": challenge, "solution": solution.to_dict()}).encode()
    ).decode()


# --- the global budget -----------------------------------------------------------------------


@pytest.mark.parametrize("period", ["hourly", "daily"])
def test_the_budget_refuses_everyone_once_spent(
    make_client: Callable[..., Browserish], period: str
) -> None:
    client = make_client(**{f"otp_{period}_budget": 3})
    assert [send(client, n, ip=f"198.51.100.{n}").status_code for n in range(3)] == [202] * 3
    for n, ip in ((3, "198.51.100.3"), (4, "192.0.2.77")):  # a new phone, a new network
        refused = send(client, n, ip=ip)
        assert refused.status_code == 429
        body = refused.json()
        assert body["code"] == "sms_budget_spent"
        assert body["detail"] == "当前获取验证码的人数过多，请稍后再试。"
        assert 0 < int(refused.headers["retry-after"]) <= (3600 if period == "hourly" else 86400)
    assert [has_code(client, n) for n in range(5)] == [True, True, True, False, False]


def test_budget_alerts_are_logged_once_per_window(make_client: Callable[..., Browserish]) -> None:
    client = make_client(otp_hourly_budget=4, otp_budget_alert_percent=50)
    with every_log_record() as records:
        statuses = [send(client, n, ip=f"198.51.100.{n}").status_code for n in range(8)]
    assert statuses == [202] * 4 + [429] * 4
    alerts = [
        r.getMessage()
        for r in records
        if r.name == "leadkit.gate" and "SMS budget" in r.getMessage()
    ]
    assert all(r.levelno == logging.WARNING for r in records if "SMS budget" in r.getMessage())
    assert alerts == [
        "SMS budget nearly spent: 2 of 4 codes this hour (LEADKIT_OTP_HOURLY_BUDGET)",
        "SMS budget spent: 4 of 4 codes this hour (LEADKIT_OTP_HOURLY_BUDGET)",
    ]


def test_admins_see_the_budget_banner(make_client: Callable[..., Browserish]) -> None:
    client = make_client(otp_hourly_budget=2, otp_daily_budget=10, otp_budget_alert_percent=50)
    client.make_staff("boss", "admin")
    client.make_staff("mia", "marketer")
    client.login("boss")
    assert "sms-alerts" in client.get("/staff/").text
    assert not soup(client.get("/staff/")).select("#sms-alerts .alert")

    assert send(client, 1).status_code == 202
    banner = soup(client.get("/staff/")).select("#sms-alerts .alert")
    assert [(p["data-period"], p["data-level"]) for p in banner] == [("hour", "near")]
    assert "本小时已发送短信验证码 1 条（预算 2 条）" in banner[0].text

    assert send(client, 2, ip="192.0.2.9").status_code == 202
    assert send(client, 3, ip="192.0.2.10").status_code == 429
    page = client.get("/staff/")
    alerts = soup(page).select("#sms-alerts .alert")
    assert [(p["data-period"], p["data-level"]) for p in alerts] == [("hour", "reached")]
    assert "本小时的短信验证码预算（2 条）已用完" in alerts[0].text
    # Other admin pages load the same banner; it is theirs only.
    users = client.get("/staff/admin/users")
    assert 'hx-get="/staff/admin/sms-alerts"' in users.text
    fragment = client.get("/staff/admin/sms-alerts")
    assert fragment.status_code == 200
    assert "本小时的短信验证码预算" in fragment.text

    client.cookies.clear()
    client.login("mia")
    dashboard = client.get("/staff/")
    assert "sms-alerts" not in dashboard.text
    assert client.get("/staff/admin/sms-alerts").status_code in (302, 303, 401, 403)


# --- the proof of work -----------------------------------------------------------------------


def test_many_codes_from_one_network_need_a_proof(make_client: Callable[..., Browserish]) -> None:
    client = make_client(otp_pow_ip_hourly=2)
    assert send(client, 1).status_code == 202
    assert send(client, 2).status_code == 202
    asked = send(client, 3)
    assert asked.status_code == 403
    body = asked.json()
    assert body["code"] == "challenge_required"
    assert body["detail"] == "请先完成安全验证，再获取验证码。"
    assert body["challenge_url"] == "/api/v1/gate/challenge"
    assert body["challenge"]["parameters"]["algorithm"] == "PBKDF2/SHA-256"
    assert not has_code(client, 3)
    # Another network is not asked.
    assert send(client, 4, ip="192.0.2.44").status_code == 202

    proof = solve(body["challenge"])
    assert send(client, 3, altcha=proof).status_code == 202
    # Single use: the same proof again is refused, with a fresh challenge.
    replay = send(client, 5, altcha=proof)
    assert replay.status_code == 403
    assert replay.json()["code"] == "challenge_failed"
    assert replay.json()["challenge"]["signature"] != body["challenge"]["signature"]
    # A proof from the challenge endpoint works as well.
    fresh = client.get("/api/v1/gate/challenge")
    assert fresh.status_code == 200
    assert "no-store" in fresh.headers["cache-control"]
    assert send(client, 5, altcha=solve(fresh.json())).status_code == 202
    assert all(has_code(client, n) for n in range(1, 6))


def test_the_global_rate_asks_everyone_for_a_proof(
    make_client: Callable[..., Browserish],
) -> None:
    client = make_client(otp_hourly_budget=10, otp_pow_budget_percent=20)
    assert send(client, 1, ip="192.0.2.1").status_code == 202
    assert send(client, 2, ip="192.0.2.2").status_code == 202
    fresh_network = send(client, 3, ip="192.0.2.3")
    assert fresh_network.status_code == 403
    assert fresh_network.json()["code"] == "challenge_required"


def test_bad_proofs_are_refused_cleanly(make_client: Callable[..., Browserish]) -> None:
    client = make_client(otp_pow_ip_hourly=0)
    challenge = client.get("/api/v1/gate/challenge").json()
    proof = json.loads(base64.b64decode(solve(challenge)))
    expired = expired_challenge(client)
    tampered = json.loads(json.dumps(proof))
    tampered["challenge"]["parameters"]["keyPrefix"] = ""
    wrong_counter = json.loads(json.dumps(proof))
    wrong_counter["solution"]["counter"] += 1

    def b64(value: Any) -> str:
        return base64.b64encode(json.dumps(value).encode()).decode()

    for bad in (
        "not base64!",
        b64([1, 2]),
        b64({"challenge": "x", "solution": 1}),
        b64(tampered),
        b64(wrong_counter),
        solve(expired),
        "A" * 4000,
    ):
        refused = send(client, 1, altcha=bad)
        assert refused.status_code == 403, bad[:40]
        assert refused.json()["code"] == "challenge_failed"
    too_long = send(client, 1, altcha="A" * 5000)
    assert too_long.status_code == 400
    assert not has_code(client, 1)
    assert send(client, 1, altcha=b64(proof)).status_code == 202


def test_a_refused_proof_is_logged_with_why(make_client: Callable[..., Browserish]) -> None:
    """Whoever looks into SMS pumping reads why each proof was refused in the gate's log, at
    INFO: malformed or wrong ("invalid"), too old ("expired"), or spent before ("replayed")."""
    client = make_client(otp_pow_ip_hourly=0)
    expired = expired_challenge(client)
    proof = solve(client.get("/api/v1/gate/challenge").json())
    assert send(client, 1, altcha=proof).status_code == 202
    with every_log_record() as records:
        for n, bad in enumerate(("not base64!", solve(expired), proof), start=2):
            assert send(client, n, altcha=bad).json()["code"] == "challenge_failed"
    logged = [
        (r.levelno, r.getMessage())
        for r in records
        if r.name == "leadkit.gate" and r.getMessage().startswith("proof")
    ]
    assert logged == [
        (logging.INFO, "proof of work refused: invalid"),
        (logging.INFO, "proof of work refused: expired"),
        (logging.INFO, "proof of work refused: replayed"),
    ]


def test_the_page_shows_the_widget_only_when_asked(make_client: Callable[..., Browserish]) -> None:
    client = make_client(otp_pow_ip_hourly=1)
    assert "altcha" not in client.get("/t/guide-demo").text
    form = {"phone": phone(1), "consent": "on", "next": "/t/guide-demo"}
    htmx = {"HX-Request": "true", "x-forwarded-for": "203.0.113.1"}
    first = client.submit("/gate/code", form, headers=htmx)
    assert first.status_code == 200
    assert "altcha-widget" not in first.text  # the code was sent; no widget

    asked = client.submit("/gate/code", form | {"phone": phone(2)}, headers=htmx)
    assert asked.status_code == 403
    page = soup(asked)
    widget = page.select_one("form altcha-widget")
    assert widget is not None
    assert widget["challenge"] == "/api/v1/gate/challenge"
    assert widget["name"] == "altcha"
    assert widget["data-src"].startswith("/static/vendor/altcha-3.2.2.min.js")
    texts = json.loads(widget["data-strings"])
    assert texts["label"] == "我不是机器人"
    assert page.select_one('script[src^="/static/js/gate-pow.js"]') is not None
    assert page.select_one('link[href^="/static/vendor/altcha-3.2.2.css"]') is not None
    assert not page.select("[style]") and not page.select("script:not([src])")
    assert "请先完成安全验证" in page.text

    challenge = client.get("/api/v1/gate/challenge").json()
    sent = client.submit(
        "/gate/code", form | {"phone": phone(2), "altcha": solve(challenge)}, headers=htmx
    )
    assert sent.status_code == 200
    assert "A code was sent" in sent.text or "验证码已发送" in sent.text


def test_vendored_widget_files_are_served() -> None:
    from pathlib import Path

    vendor = Path(__file__).resolve().parent.parent / "static" / "vendor"
    for name in ("altcha-3.2.2.min.js", "altcha-3.2.2.css", "altcha-3.2.2.pbkdf2-worker.js"):
        assert (vendor / name).stat().st_size > 1000, name
    assert "MIT License" in (vendor / "altcha-3.2.2.LICENSE").read_text()


# --- refunds in the shared counters ----------------------------------------------------------


def limiters(client: Browserish) -> list[RateLimiter]:
    return [part(client.app, RateLimiter), MemoryRateLimiter()]


def test_refund_and_release_on_every_limiter(client: Browserish) -> None:
    async def check(limiter: RateLimiter) -> None:
        at = time.time()
        assert (await limiter.hit("t:k", 2, 3600)).count == 1
        assert (await limiter.hit("t:k", 2, 3600)).count == 2
        await limiter.refund("t:k", 3600, at)
        assert (await limiter.peek("t:k", 2, 3600)).count == 1
        await limiter.refund("t:k", 3600, at)
        await limiter.refund("t:k", 3600, at)  # never below zero
        assert (await limiter.peek("t:k", 2, 3600)).count == 0
        assert (await limiter.hit("t:k", 2, 3600)).count == 1
        await limiter.refund("t:none", 3600, at)  # nothing counted: nothing happens
        assert (await limiter.peek("t:none", 2, 3600)).count == 0
        # A refund for an earlier window leaves the current one alone.
        await limiter.refund("t:k", 3600, at - 7200)
        assert (await limiter.peek("t:k", 2, 3600)).count == 1

        assert await limiter.cooldown("t:gap", 60) == 0
        assert await limiter.cooldown("t:gap", 60) > 0
        await limiter.release("t:gap")
        assert await limiter.cooldown("t:gap", 60) == 0
        await limiter.release("t:never-taken")

    for limiter in limiters(client):
        client.raw.blocking_portal.call(check, limiter)
