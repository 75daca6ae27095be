"""The gate's bad input: each a clear message, nothing half-written."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from app.asgi import create_app
from app.core.crypto import DataCipher
from app.core.phone import normalise
from app.core.state import part
from app.db.engine import Storage
from app.demo.service import seed_tools
from app.events.service import Tracker
from app.gate.models import OtpCode
from app.gate.service import CodeExpired, Gate, WrongCode
from app.gate.store import RedisOtpStore
from app.leads.schemas import PhoneAuthorisation
from app.settings import Settings
from tests.helpers import Browserish

PHONE = "13812345678"


@pytest.fixture
def visitor(client: Browserish) -> Browserish:
    client.run(seed_tools)
    assert client.get("/t/guide-demo").status_code == 200
    return client


def send(client: Browserish, phone: object = PHONE, consent: object = True) -> object:
    return client.post("/api/v1/gate/code", json={"phone": phone, "consent": consent})


def code_for(client: Browserish, phone: str = PHONE) -> str:
    return str(client.get("/dev/sms", params={"phone": phone}).json()["code"])


def verify(client: Browserish, code: str, phone: str = PHONE) -> object:
    return client.post("/api/v1/gate/verify", json={"phone": phone, "code": code})


@pytest.mark.parametrize(
    "phone",
    [
        "12345",
        "1381234567",
        "138123456789",
        "23812345678",
        "+8612812345678",
        "abc",
        "<script>",
        "1" * 500,
        "",
        "+1 202 555 01",
        "13812345678\x00",
    ],
)
def test_malformed_phones_are_refused(visitor: Browserish, phone: str) -> None:
    response = send(visitor, phone)
    assert response.status_code == 400, phone
    body = response.json()
    assert body["code"] in ("invalid_phone", "country_not_allowed", "bad_request")
    assert visitor.otp_codes() == 0


@contextmanager
def client_maker(settings: Settings, **defaults: Any) -> Iterator[Callable[..., Browserish]]:
    """Makes visitors on apps whose settings differ from ``settings`` by ``defaults``, then
    by each call's ``overrides``; every app is closed on the way out."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Browserish:
            app = create_app(msgspec.structs.replace(settings, **(defaults | overrides)))
            raw = stack.enter_context(TestClient(app=app, base_url="http://testserver.local"))
            client = Browserish(raw)
            client.run(seed_tools)
            client.get("/t/guide-demo")
            return client

        yield make


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., Browserish]]:
    """A visitor on an app whose settings differ from the test's by ``overrides``."""
    with client_maker(settings) as make:
        yield make


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("138 1234 5678", "+8613812345678"),
        ("+86 138-1234-5678", "+8613812345678"),
        ("+44 7911 123456", "+447911123456"),
        ("+1 202-555-0143", "+12025550143"),
    ],
)
def test_foreign_and_formatted_numbers_normalise(
    make_client: Callable[..., Browserish], raw: str, e164: str
) -> None:
    client = make_client(otp_allowed_countries="86,44,1")
    response = send(client, raw)
    assert response.status_code == 202, response.text
    assert response.json()["phone"] == e164


# SMS pumping targets premium-rate international ranges: satellite (+881), Côte d'Ivoire,
# Iraq, Nigeria, Lithuania, Russia, the UK.
@pytest.mark.parametrize(
    "phone",
    [
        "+881 6 3212 3456",
        "+225 07 0123 4567",
        "+964 750 123 4567",
        "+234 803 123 4567",
        "+370 612 34567",
        "+7 912 345 6789",
        "+44 7911 123456",
        "0044 7911 123456",
    ],
)
def test_countries_outside_the_allow_list_are_refused(visitor: Browserish, phone: str) -> None:
    response = send(visitor, phone)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] in ("country_not_allowed", "invalid_phone"), body
    if phone.startswith("+"):
        assert body["code"] == "country_not_allowed"
        assert body["detail"] == "暂不支持向该国家或地区的手机号发送短信。"
    assert visitor.otp_codes() == 0


@pytest.mark.parametrize("consent", [False, None, "true", 1, "on"])
def test_consent_must_be_literally_true(visitor: Browserish, consent: object) -> None:
    response = send(visitor, PHONE, consent)
    assert response.status_code == 400
    assert visitor.otp_codes() == 0


def test_wrong_types_and_missing_fields(visitor: Browserish) -> None:
    for body in (
        {"consent": True},
        {"phone": 13812345678, "consent": True},
        [],
        "x",
        {"phone": None},
    ):
        assert visitor.post("/api/v1/gate/code", json=body).status_code == 400
    bad_json = visitor.post(
        "/api/v1/gate/code", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.headers["content-type"].startswith("application/problem+json")
    assert verify(visitor, "12ab56").status_code == 400
    assert visitor.count("lead") == 0


def test_wrong_code_six_times_kills_the_code(visitor: Browserish) -> None:
    assert send(visitor).status_code == 202
    right = code_for(visitor)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    codes = [verify(visitor, wrong).json()["code"] for _ in range(5)]
    assert codes == ["wrong_code"] * 5
    sixth = verify(visitor, right)
    assert sixth.status_code == 400
    assert sixth.json()["code"] == "code_expired"
    assert "已失效" in sixth.json()["detail"] or "expired" in sixth.json()["detail"]
    assert visitor.count("lead") == 0


def test_replayed_code_is_refused(visitor: Browserish) -> None:
    send(visitor)
    code = code_for(visitor)
    assert verify(visitor, code).status_code == 200
    replay = verify(visitor, code)
    assert replay.status_code == 400
    assert replay.json()["code"] == "code_expired"
    assert visitor.count("lead") == 1
    assert visitor.count("consent") == 1


@pytest.fixture
def short_ttl(settings: Settings) -> Iterator[Browserish]:
    app = create_app(msgspec.structs.replace(settings, otp_ttl_seconds=1))
    with TestClient(app=app, base_url="http://testserver.local") as raw:
        client = Browserish(raw)
        client.run(seed_tools)
        client.get("/t/guide-demo")
        yield client


def test_expired_code_is_refused(short_ttl: Browserish) -> None:
    send(short_ttl)
    code = code_for(short_ttl)
    time.sleep(1.5)
    response = verify(short_ttl, code)
    assert response.status_code == 400
    assert response.json()["code"] == "code_expired"
    assert short_ttl.count("lead") == 0


def test_a_thousand_sends_from_one_ip(make_client: Callable[..., Browserish]) -> None:
    # The per-address daily cap alone: no proof of work, a budget larger than the rush.
    visitor = make_client(otp_pow_ip_hourly=10_000, otp_hourly_budget=10_000)
    cap = part(visitor.app, Settings).otp_ip_daily_cap
    statuses = [send(visitor, f"139{n:08d}").status_code for n in range(1000)]
    assert statuses.count(202) == cap
    assert statuses.count(429) == 1000 - cap
    refused = send(visitor, "13700000000")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


def test_resend_gap_per_phone(visitor: Browserish) -> None:
    assert send(visitor).status_code == 202
    again = send(visitor)
    assert again.status_code == 429
    assert again.json()["code"] == "rate_limited"


def test_dev_inbox_is_absent_without_a_code(visitor: Browserish) -> None:
    assert visitor.get("/dev/sms", params={"phone": PHONE}).status_code == 404
    assert visitor.get("/dev/sms", params={"phone": "nonsense"}).status_code == 400


@pytest.fixture(params=["fake_aliyun", "fake_tencent"])
def gateway(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture
def gateway_client(gateway: Any, make_client: Callable[..., Browserish]) -> tuple[Browserish, Any]:
    return make_client(**gateway.settings_overrides()), gateway


def is_aliyun(gateway: Any) -> bool:
    return gateway.__class__.__name__ == "FakeAliyun"


def test_real_gateway_protocol_end_to_end(gateway_client: tuple[Browserish, Any]) -> None:
    client, gateway = gateway_client
    assert send(client).status_code == 202
    code = gateway.last_code("+8613812345678")
    assert code is not None and len(code) == 6
    # Only the console provider feeds the development inbox.
    assert client.get("/dev/sms", params={"phone": PHONE}).status_code == 404
    assert verify(client, code).status_code == 200
    assert client.count("lead") == 1


@pytest.mark.parametrize(
    ("aliyun", "tencent", "status", "code"),
    [
        ("isp.SYSTEM_ERROR", "InternalError.Timeout", 503, "sms_unavailable"),
        ("isv.BUSINESS_LIMIT_CONTROL", "LimitExceeded.PhoneNumberDailyLimit", 429, None),
    ],
    ids=["failure_is_a_clear_503", "frequency_limit_is_a_429"],
)
def test_gateway_refusal(
    gateway_client: tuple[Browserish, Any], aliyun: str, tencent: str, status: int, code: str | None
) -> None:
    client, gateway = gateway_client
    gateway.fail_next(aliyun if gateway.__class__.__name__ == "FakeAliyun" else tencent)
    response = send(client)
    assert response.status_code == status
    if code is not None:
        assert response.json()["code"] == code
        assert client.count("lead") == 0


# --- what the gateway answers, through the gate (both fakes, both backends) ---------------

INVALID_NUMBER = {
    "FakeAliyun": ["isv.MOBILE_NUMBER_ILLEGAL"],
    "FakeTencent": [
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "UnsupportedOperation.UnsupportedRegion",
    ],
}


def test_number_the_gateway_refuses_is_a_400(gateway_client: tuple[Browserish, Any]) -> None:
    client, gateway = gateway_client
    for code in INVALID_NUMBER[gateway.__class__.__name__]:
        gateway.fail_next(code)
        response = send(client)
        assert response.status_code == 400, (code, response.text)
        body = response.json()
        assert body["code"] == "number_cannot_receive"
        assert body["detail"] == "该号码无法接收短信，请检查号码或换一个号码。"
        assert body["errors"] == {"phone": "cannot_receive"}
    # Nothing was sent, so nothing was spent: the same phone gets its code right away.
    assert send(client).status_code == 202
    assert gateway.last_code("+8613812345678") is not None


def test_a_failed_send_costs_nothing(gateway: Any, make_client: Callable[..., Browserish]) -> None:
    # One code per phone and hour, one per address a day, a budget of one: any of them would
    # refuse the retry if the failed send had been counted.
    client = make_client(
        **gateway.settings_overrides(),
        otp_phone_hourly_cap=1,
        otp_ip_daily_cap=1,
        otp_hourly_budget=1,
        otp_daily_budget=1,
        otp_pow_ip_hourly=1,
        otp_pow_budget_percent=100,
    )
    failures = (
        ["isp.SYSTEM_ERROR", "isv.BUSINESS_LIMIT_CONTROL", "isv.MOBILE_NUMBER_ILLEGAL"]
        if is_aliyun(gateway)
        else ["InternalError.Timeout", "LimitExceeded.PhoneNumberDailyLimit", "InternalError"]
    )
    for failure in failures:
        gateway.fail_next(failure)
        assert send(client).status_code in (400, 429, 503), failure
    gateway.stall_next(10)
    assert send(client).status_code == 503  # the timeout (LEADKIT_SMS_TIMEOUT_SECONDS)
    retry = send(client)
    assert retry.status_code == 202, retry.text
    assert gateway.last_code("+8613812345678") is not None
    # …and the successful one was counted: the gap, the caps and the budget hold again.
    again = send(client)
    assert again.status_code == 429
    assert again.json()["code"] == "rate_limited"


def test_gateway_failure_says_when_to_retry(gateway_client: tuple[Browserish, Any]) -> None:
    client, gateway = gateway_client
    gateway.fail_next("isp.SYSTEM_ERROR" if is_aliyun(gateway) else "InternalError")
    response = send(client)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    # The page (plain form) says the same; htmx gets the partial with the countdown.
    form = {"phone": PHONE, "consent": "on", "next": "/t/guide-demo"}
    gateway.fail_next("isp.SYSTEM_ERROR" if is_aliyun(gateway) else "InternalError")
    page = client.submit("/gate/code", form)
    assert page.status_code == 503
    assert page.headers["retry-after"] == "60"
    assert "请稍后" in page.text or "一分钟" in page.text
    gateway.fail_next("isp.SYSTEM_ERROR" if is_aliyun(gateway) else "InternalError")
    partial = client.submit("/gate/code", form, headers={"HX-Request": "true"})
    assert partial.status_code == 200  # htmx swaps no 5xx; the partial carries the message
    assert partial.headers["retry-after"] == "60"
    assert 'data-countdown="60"' in partial.text
    assert 'role="alert"' in partial.text


SECRETS_AND_NUMBERS = ("13812345678", "Signature=", "Signature%3D", "AccessKeyId")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def every_log_record() -> Iterator[list[logging.LogRecord]]:
    """Every record at every level, as LEADKIT_LOG_LEVEL=DEBUG would let through. (Not
    caplog: the app's start-up reconfigures the root logger and drops caplog's handler.)"""
    root = logging.getLogger()
    handler, level = Records(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize("outcome", ["sent", "refused", "wrong_secret"])
def test_nothing_secret_reaches_the_logs(
    gateway: Any, make_client: Callable[..., Browserish], outcome: str
) -> None:
    overrides = gateway.settings_overrides()
    if outcome == "wrong_secret":
        overrides["sms_access_key_secret"] = "not-the-secret"
    client = make_client(**overrides)
    if outcome == "refused":
        gateway.fail_next("isv.MOBILE_NUMBER_ILLEGAL" if is_aliyun(gateway) else "InternalError")
    with every_log_record() as records:
        status = send(client).status_code
    assert status == {"sent": 202, "refused": 400 if is_aliyun(gateway) else 503}.get(outcome, 503)
    logged = "\n".join(record.getMessage() for record in records)
    assert logged, "nothing was captured"
    secrets = [
        *SECRETS_AND_NUMBERS,
        overrides["sms_access_key_id"],
        overrides["sms_access_key_secret"],
    ]
    code = gateway.last_code(PHONE)
    leaked = [s for s in (*secrets, *([code] if code else [])) if s in logged]
    assert not leaked, f"{leaked} in the logs:\n{logged}"
    # The send itself is logged, masked: at DEBUG when sent, as a warning when it failed.
    assert "sms via" in logged
    if outcome == "sent":
        provider = "aliyun" if is_aliyun(gateway) else "tencent"
        assert f"sms via {provider}: a code sent to 138****5678" in logged


# --- the gate's rules, each at its boundary (mutation testing: tests/mutation.py) ------------

BEIJING = dt.timezone(dt.timedelta(hours=8))
# No proof of work and no global budget in the way unless a test asks for them; the address
# comes from X-Forwarded-For so a test can use several networks.
CALM = {
    "trust_proxy": True,
    "otp_pow_ip_hourly": 10_000,
    "otp_pow_budget_percent": 100,
    "otp_hourly_budget": 10_000,
    "otp_daily_budget": 10_000,
}


class Clock:
    """``time.time()`` under the test's hand: the limiter's fixed windows read it. Starts at
    00:00:05 Beijing time on a day after today, so every window starts where the test says."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        tomorrow = dt.datetime.now(BEIJING).date() + dt.timedelta(days=2)
        self.day = dt.datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=BEIJING)
        self.now = self.day.timestamp() + 5
        monkeypatch.setattr(time, "time", lambda: self.now)

    def set(self, hour: int, minute: int = 0, second: int = 0, days: int = 0) -> None:
        """Beijing time on the test's first day (or ``days`` later)."""
        at = self.day + dt.timedelta(days=days, hours=hour, minutes=minute, seconds=second)
        self.now = at.timestamp()


def phone_hash(client: Browserish, phone: str = PHONE) -> str:
    return str(part(client.app, DataCipher).lookup_hash(normalise(phone)))


def gap_passes(client: Browserish, phone: str = PHONE) -> None:
    """The 60 s between two codes to one phone are over (the gap itself is tested above; the
    Redis store keeps it with a real TTL, which the test clock cannot move)."""
    limiter = part(client.app, Gate).limiter
    client.raw.blocking_portal.call(limiter.release, f"otp:gap:{phone_hash(client, phone)}")


def send_from(client: Browserish, phone: str = PHONE, ip: str = "203.0.113.1") -> Any:
    return client.post(
        "/api/v1/gate/code",
        json={"phone": phone, "consent": True},
        headers={"x-forwarded-for": ip},
    )


def refused_for(response: Any) -> str:
    """Which limit a 429 names: the phone's caps or the network's."""
    assert response.status_code == 429, response.text
    detail = response.json()["detail"]
    return {
        "该号码获取验证码次数过多，请稍后再试。": "phone",
        "今天从该网络获取验证码的次数过多。": "network",
        "验证码刚刚已发送，请稍后再试。": "gap",
    }.get(detail, detail)


def test_phone_hourly_cap_at_the_boundary_and_its_window(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    clock.set(1, 0, 5)
    client = make_client(**CALM, otp_phone_hourly_cap=3, otp_phone_daily_cap=100)
    for _ in range(3):  # exactly the cap: each one sent
        assert send_from(client).status_code == 202
        gap_passes(client)
    refused = send_from(client)
    assert refused_for(refused) == "phone"
    assert refused.headers["retry-after"] == str(3600 - 5)  # until the hour (window) ends
    # Another phone on the same network is not held up by this phone's cap.
    assert send_from(client, "13912345678").status_code == 202
    clock.set(1, 59, 59)
    assert refused_for(send_from(client)) == "phone"  # the window is a whole hour…
    clock.set(2)
    assert send_from(client).status_code == 202  # …and no longer


def test_phone_daily_cap_at_the_boundary_and_its_window(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    client = make_client(**CALM, otp_phone_hourly_cap=2, otp_phone_daily_cap=4)
    for hour in (1, 2):  # the hourly cap in two hours: exactly the daily cap
        clock.set(hour)
        for _ in range(2):
            assert send_from(client).status_code == 202
            gap_passes(client)
    clock.set(3, 0, 0)
    refused = send_from(client)
    assert refused_for(refused) == "phone"
    assert refused.headers["retry-after"] == str(21 * 3600)  # until midnight in Beijing
    assert send_from(client, "13912345678").status_code == 202  # another phone is not held up
    clock.set(23, 59, 59)
    assert refused_for(send_from(client)) == "phone"  # the window is the whole day…
    clock.set(0, days=1)
    assert send_from(client).status_code == 202  # …until midnight in Beijing


def test_network_daily_cap_at_the_boundary_and_its_window(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    clock.set(9)
    client = make_client(**CALM, otp_ip_daily_cap=3)
    assert [send_from(client, f"139{n:08d}").status_code for n in range(3)] == [202] * 3
    refused = send_from(client, "13900000003")
    assert refused_for(refused) == "network"
    assert refused.headers["retry-after"] == str(15 * 3600)
    assert send_from(client, "13900000003", ip="198.51.100.7").status_code == 202
    clock.set(23, 59, 59)
    assert refused_for(send_from(client, "13900000004")) == "network"
    clock.set(0, days=1)
    assert send_from(client, "13900000004").status_code == 202


def test_a_refused_code_costs_no_other_count(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused by one cap, a request takes back what it counted against the others: a phone
    over its cap does not eat its network's daily allowance (nor the budget)."""
    clock = Clock(monkeypatch)
    clock.set(10)
    limits = {"otp_phone_hourly_cap": 2, "otp_ip_daily_cap": 4, "otp_hourly_budget": 4}
    client = make_client(**(CALM | limits))
    for _ in range(2):
        assert send_from(client).status_code == 202
        gap_passes(client)
    for _ in range(5):
        assert refused_for(send_from(client)) == "phone"
    # The network and the budget have 2 of their 4 spent: two more phones get theirs.
    assert send_from(client, "13900000001").status_code == 202
    assert send_from(client, "13900000002").status_code == 202
    assert refused_for(send_from(client, "13900000003")) == "network"


def test_an_alert_in_the_last_second_of_its_hour_leaves_the_next_hours(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget alert is logged once per window: its once-only mark lasts until the window
    ends (at least a second), so an alert in an hour's last second does not silence the next
    hour's. (SQL counters: the test clock moves them; Redis keeps the mark with a real TTL.)"""
    from app.core.ratelimit import RedisRateLimiter

    clock = Clock(monkeypatch)
    clock.set(10, 59, 59)
    client = make_client(**(CALM | {"otp_hourly_budget": 1}))
    if isinstance(part(client.app, Gate).limiter, RedisRateLimiter):
        pytest.skip("Redis expires the once-only mark in real time")
    with every_log_record() as records:
        assert send_from(client, "13900000001", ip="198.51.100.1").status_code == 202
        clock.set(11)
        assert send_from(client, "13900000002", ip="198.51.100.2").status_code == 202
    alerts = [r.getMessage() for r in records if "SMS budget" in r.getMessage()]
    assert alerts == ["SMS budget spent: 1 of 1 codes this hour (LEADKIT_OTP_HOURLY_BUDGET)"] * 2


@pytest.mark.parametrize(
    ("spent", "refusal"),
    [("phone hourly", "phone"), ("network", "network"), ("hourly", "budget"), ("daily", "budget")],
)
def test_a_cap_spent_by_another_worker_meanwhile_refuses_the_count(
    make_client: Callable[..., Browserish],
    monkeypatch: pytest.MonkeyPatch,
    spent: str,
    refusal: str,
) -> None:
    """The gate looks at the caps first, then counts the code against all of them at once.
    When another worker spends what was left in between, the count refuses: with the answer
    the look would have given (the phone's caps, the network's, the budget), and taking back
    what it counted, so the refused request costs nothing."""
    from app.gate.service import DAY, HOUR

    clock = Clock(monkeypatch)
    clock.set(10)
    caps = {
        "phone hourly": ("otp_phone_hourly_cap", "otp:h:{phone}", HOUR),
        "network": ("otp_ip_daily_cap", "otp:ip:198.51.100.7", DAY),
        "hourly": ("otp_hourly_budget", "otp:budget:h", HOUR),
        "daily": ("otp_daily_budget", "otp:budget:d", DAY),
    }
    setting, key, window = caps[spent]
    client = make_client(**(CALM | {setting: 1}))
    gate = part(client.app, Gate)
    limiter, portal = gate.limiter, client.raw.blocking_portal
    key = key.format(phone=phone_hash(client))
    looked = limiter.cooldown  # the resend gap: taken after the look, before the count

    async def another_worker_sends_then(name: str, seconds: int) -> int:
        if name.startswith("otp:gap:"):
            assert (await limiter.hit(key, 1, window)).allowed
        return await looked(name, seconds)

    monkeypatch.setattr(limiter, "cooldown", another_worker_sends_then)
    refused = send_from(client, ip="198.51.100.7")
    monkeypatch.setattr(limiter, "cooldown", looked)
    if refusal == "budget":
        assert refused.status_code == 429
        assert refused.json()["code"] == "sms_budget_spent"
    else:
        assert refused_for(refused) == refusal
    assert 0 < int(refused.headers["retry-after"]) <= window
    assert client.get("/dev/sms", params={"phone": PHONE}).status_code == 404  # nothing sent
    # Only the other worker's code is counted: the refused one was taken back everywhere.
    counted = {
        name: portal.call(limiter.peek, k.format(phone=phone_hash(client)), 1, w).count
        for name, (_, k, w) in caps.items()
    }
    assert counted == {name: int(name == spent) for name in caps}
    # The resend gap was released too: the phone may ask again at once.
    assert portal.call(limiter.cooldown, f"otp:gap:{phone_hash(client)}", 60) == 0


@pytest.mark.parametrize("period", ["hourly", "daily"])
def test_the_budget_window_is_an_hour_or_a_day(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch, period: str
) -> None:
    clock = Clock(monkeypatch)
    clock.set(8, 30)
    client = make_client(**(CALM | {f"otp_{period}_budget": 2}))
    ips = iter(f"198.51.100.{n}" for n in range(1, 50))
    for n in range(2):
        assert send_from(client, f"139{n:08d}", ip=next(ips)).status_code == 202
    spent = send_from(client, "13900000002", ip=next(ips))
    assert spent.status_code == 429 and spent.json()["code"] == "sms_budget_spent"
    hourly = period == "hourly"
    assert spent.headers["retry-after"] == str(1800 if hourly else 15 * 3600 + 1800)
    clock.set(9)  # a new hour: the hourly budget is new, the daily one is not
    again = send_from(client, "13900000002", ip=next(ips))
    assert again.status_code == (202 if hourly else 429), again.text
    clock.set(23, 59, 59)
    if not hourly:
        assert send_from(client, "13900000002", ip=next(ips)).status_code == 429
    clock.set(0, days=1)
    assert send_from(client, "13900000003", ip=next(ips)).status_code == 202


def test_verify_without_a_code_sent_authorises_nobody(visitor: Browserish) -> None:
    # Redis cannot tell a code that expired (its key is gone) from one never sent.
    on_redis = isinstance(part(visitor.app, Gate).store, RedisOtpStore)
    for code in ("000000", "123456"):
        refused = verify(visitor, code)
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "code_expired"
        assert refused.json()["errors"] == {"code": "expired" if on_redis else "none"}
    # Another phone's code does not open this one.
    assert send(visitor, "13912345678").status_code == 202
    other = code_for(visitor, "13912345678")
    assert verify(visitor, other).status_code == 400
    assert visitor.count("lead") == 0 and visitor.count("consent") == 0
    assert "gate" in visitor.get("/t/guide-demo").text  # still gated
    assert verify(visitor, other, phone="13912345678").status_code == 200


def test_a_right_code_is_recorded_as_an_sms_code(visitor: Browserish) -> None:
    """What the gate vouches for is written down as such: the lead and the visitor were
    authorised by "sms", the consent and the phone_verified event say "sms" at level "otp"
    (a code we sent was typed; a platform's word would be "platform"), at the moment it was."""
    from app.events.models import FunnelEvent
    from app.leads.models import Consent, Lead
    from app.visitors.models import Visitor

    assert send(visitor).status_code == 202
    before = dt.datetime.now(dt.UTC)
    assert verify(visitor, code_for(visitor)).status_code == 200
    after = dt.datetime.now(dt.UTC)

    async def recorded(db: Any) -> dict[str, Any]:
        lead = (await db.execute(select(Lead))).scalar_one()
        return {
            "lead": lead.auth_method,
            "visitors": (await db.execute(select(Visitor.auth_method))).scalars().all(),
            "consent": (await db.execute(select(Consent.detail))).scalar_one(),
            "event": (
                await db.execute(
                    select(FunnelEvent.props).where(FunnelEvent.name == "phone_verified")
                )
            ).scalar_one(),
            "at": (await db.execute(select(Consent.granted_at))).scalar_one(),
        }

    found = visitor.run(recorded)
    assert found["lead"] == "sms"
    assert found["visitors"] == ["sms"]
    assert found["consent"] == {"method": "sms", "level": "otp"}
    assert {k: found["event"].get(k) for k in ("method", "level")} == {
        "method": "sms",
        "level": "otp",
    }
    assert before <= found["at"] <= after


def test_after_a_resend_the_newest_code_works(visitor: Browserish) -> None:
    assert send(visitor).status_code == 202
    first = code_for(visitor)
    gap_passes(visitor)
    assert send(visitor).status_code == 202
    second = code_for(visitor)
    if first == second:  # one chance in a million: a third code differs
        gap_passes(visitor)
        assert send(visitor).status_code == 202
        second = code_for(visitor)
    # The earlier code died when the new one was issued.
    old = verify(visitor, first)
    assert old.status_code == 400 and old.json()["code"] in ("wrong_code", "code_expired")
    assert verify(visitor, second).status_code == 200
    assert visitor.count("lead") == 1


def test_codes_are_stored_hashed_and_bound_to_the_phone(
    gateway_client: tuple[Browserish, Any],
) -> None:
    client, gateway = gateway_client
    assert send(client).status_code == 202
    code = gateway.last_code("+8613812345678")
    assert code is not None
    owner = phone_hash(client)
    expected = hashlib.sha256(f"{owner}:{code}".encode()).hexdigest()
    store = part(client.app, Gate).store
    if isinstance(store, RedisOtpStore):

        async def stored() -> dict[str, str]:
            raw = await store._redis.hgetall(store._prefix + owner)
            return {k.decode(): v.decode() for k, v in raw.items()}

        row = client.raw.blocking_portal.call(stored)
        assert row["hash"] == expected and row["state"] == "live"
    else:

        async def rows() -> list[dict[str, Any]]:
            async with part(client.app, Storage).side_engine.connect() as conn:
                found = await conn.execute(select(OtpCode.__table__))
                return [dict(r._mapping) for r in found]

        (row,) = client.raw.blocking_portal.call(rows)
        assert row["code_hash"] == expected and row["phone_hash"] == owner
        assert row["dev_code"] == ""  # a real gateway: no development inbox
    assert not any(code in str(value) for value in row.values()), row
    assert verify(client, code).status_code == 200


async def warm_pool(gate: Any) -> None:
    """Open the code store's connections first, as on a running server: a cold pool opens
    one connection at a time and serialises the race the test means to run."""
    await asyncio.gather(*(gate.dev_inbox(PHONE) for _ in range(24)))


def test_parallel_verifies_of_one_code_exactly_one_succeeds(visitor: Browserish) -> None:
    assert send(visitor).status_code == 202
    code = code_for(visitor)
    gate = part(visitor.app, Gate)

    async def race() -> list[Any]:
        await warm_pool(gate)
        tries = (gate.verify(PHONE, code) for _ in range(24))
        return list(await asyncio.gather(*tries, return_exceptions=True))

    outcomes = visitor.raw.blocking_portal.call(race)
    assert sum(isinstance(o, PhoneAuthorisation) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, PhoneAuthorisation | CodeExpired) for o in outcomes), outcomes
    # The others are told the code is used up, whether they read it before or after.
    assert all(o.fields == {"code": "dead"} for o in outcomes if isinstance(o, CodeExpired))


def test_parallel_wrong_guesses_kill_the_code(visitor: Browserish) -> None:
    assert send(visitor).status_code == 202
    right = code_for(visitor)
    gate = part(visitor.app, Gate)
    wrong = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(1, 25)]

    async def race() -> list[Any]:
        await warm_pool(gate)
        return list(
            await asyncio.gather(*(gate.verify(PHONE, w) for w in wrong), return_exceptions=True)
        )

    outcomes = visitor.raw.blocking_portal.call(race)
    limit = part(visitor.app, Settings).otp_max_attempts
    assert sum(isinstance(o, WrongCode) for o in outcomes) == limit, outcomes
    assert all(isinstance(o, WrongCode | CodeExpired) for o in outcomes), outcomes
    # The guesses past the limit are told the code is dead, as one after them would be.
    assert all(o.fields == {"code": "dead"} for o in outcomes if isinstance(o, CodeExpired))
    assert verify(visitor, right).json()["code"] == "code_expired"


def test_a_code_used_during_wrong_guesses_stays_used(visitor: Browserish) -> None:
    """A wrong guess racing the right one must not bring the used code back to life."""
    assert send(visitor).status_code == 202
    right = code_for(visitor)
    gate = part(visitor.app, Gate)
    wrong = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(1, 4)]  # under the limit

    async def race() -> list[Any]:
        await warm_pool(gate)
        tries = [gate.verify(PHONE, right), *(gate.verify(PHONE, w) for w in wrong)]
        return list(await asyncio.gather(*tries, return_exceptions=True))

    for _ in range(3):
        outcomes = visitor.raw.blocking_portal.call(race)
        assert sum(isinstance(o, PhoneAuthorisation) for o in outcomes) <= 1, outcomes
        assert verify(visitor, right).json()["code"] == "code_expired"
        gap_passes(visitor)
        assert send(visitor).status_code == 202
        right = code_for(visitor)
        wrong = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(1, 4)]


def test_forgetting_a_phone_leaves_nothing_of_it(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person who deleted their data: their codes go, and so do the resend gap and the caps
    counted under their phone; another phone's are untouched."""
    clock = Clock(monkeypatch)
    clock.set(10)
    client = make_client(**CALM, otp_phone_hourly_cap=1, otp_phone_daily_cap=1)
    other = "13912345678"
    assert send_from(client).status_code == 202
    assert send_from(client, other).status_code == 202
    assert refused_for(send_from(client)) == "gap"  # and then each cap: one code is the limit
    gate = part(client.app, Gate)
    client.raw.blocking_portal.call(gate.forget, phone_hash(client))
    client.raw.blocking_portal.call(gate.forget, phone_hash(client))  # idempotent
    assert client.get("/dev/sms", params={"phone": PHONE}).status_code == 404
    assert client.get("/dev/sms", params={"phone": other}).status_code == 200
    assert client.otp_codes() == 1
    assert send_from(client).status_code == 202  # no gap, no count left under the phone
    assert refused_for(send_from(client, other)) == "gap"  # the other phone's gap stands


def stored_code(client: Browserish, phone: str = PHONE) -> dict[str, Any]:
    """The phone's newest stored code as the store keeps it (side SQL row or Redis hash)."""
    store = part(client.app, Gate).store
    owner = phone_hash(client, phone)
    if isinstance(store, RedisOtpStore):

        async def in_redis() -> dict[str, Any]:
            raw = await store._redis.hgetall(store._prefix + owner)
            found = {k.decode(): v.decode() for k, v in raw.items()}
            return {
                "state": found.get("state"),
                "attempts": int(found.get("attempts", -1)),
                "dev_code": found.get("dev", ""),
            }

        return dict(client.raw.blocking_portal.call(in_redis))

    async def in_sql() -> dict[str, Any]:
        async with part(client.app, Storage).side_engine.connect() as conn:
            found = await conn.execute(
                select(OtpCode.state, OtpCode.attempts, OtpCode.dev_code)
                .where(OtpCode.phone_hash == owner)
                .order_by(OtpCode.id.desc())
            )
            return dict(found.first()._mapping)

    return dict(client.raw.blocking_portal.call(in_sql))


def test_a_code_is_live_then_used_or_dead(visitor: Browserish) -> None:
    """The store's life of a code: live (its plain text kept only for the development inbox),
    then used (the plain text gone) or dead after the allowed wrong attempts."""
    assert send(visitor).status_code == 202
    code = code_for(visitor)
    assert stored_code(visitor) == {"state": "live", "attempts": 0, "dev_code": code}
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = verify(visitor, wrong)
    assert refused.json()["errors"] == {"code": "wrong"}
    assert stored_code(visitor) == {"state": "live", "attempts": 1, "dev_code": code}
    assert verify(visitor, code).status_code == 200
    assert stored_code(visitor) == {"state": "used", "attempts": 1, "dev_code": ""}
    assert verify(visitor, code).json()["errors"] == {"code": "dead"}  # used up

    gap_passes(visitor)
    assert send(visitor).status_code == 202
    code = code_for(visitor)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    limit = part(visitor.app, Settings).otp_max_attempts
    for _ in range(limit):
        verify(visitor, wrong)
    assert stored_code(visitor)["state"] == "dead"
    assert verify(visitor, code).json()["errors"] == {"code": "dead"}
    # A dead code is not offered by the development inbox any more.
    assert visitor.get("/dev/sms", params={"phone": PHONE}).status_code == 404


def test_one_phones_code_never_touches_anothers(visitor: Browserish) -> None:
    other = "13912345678"
    assert send(visitor).status_code == 202
    assert send(visitor, other).status_code == 202
    mine, theirs = code_for(visitor), code_for(visitor, other)
    wrong = f"{(int(mine) + 1) % 1_000_000:06d}"
    limit = part(visitor.app, Settings).otp_max_attempts
    for _ in range(limit):  # this phone's code dies…
        verify(visitor, wrong)
    assert stored_code(visitor, other) == {"state": "live", "attempts": 0, "dev_code": theirs}
    gap_passes(visitor)
    assert send(visitor).status_code == 202
    assert verify(visitor, code_for(visitor)).status_code == 200  # …and this one is used…
    assert stored_code(visitor, other)["state"] == "live"
    assert verify(visitor, theirs, phone=other).status_code == 200  # …the other's still works


def test_a_code_lives_exactly_its_ttl(client: Browserish, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQL store: valid until ``ttl`` seconds after it was issued, not at that instant. (Redis
    lets the key expire with the same TTL.)"""
    from app.gate import store as otp_store

    store = part(client.app, Gate).store
    if isinstance(store, RedisOtpStore):
        pytest.skip("Redis expires the key itself")
    issued = dt.datetime(2030, 1, 1, 8, 0, tzinfo=dt.UTC)
    clock = [issued]
    monkeypatch.setattr(otp_store, "_now", lambda: clock[0])
    portal = client.raw.blocking_portal
    for phone in ("a", "b"):
        portal.call(store.issue, phone, "123456", 300, "")
    clock[0] = issued + dt.timedelta(seconds=300) - dt.timedelta(microseconds=1)
    assert portal.call(store.check, "a", "123456", 5) == "ok"
    clock[0] = issued + dt.timedelta(seconds=300)
    assert portal.call(store.check, "b", "123456", 5) == "expired"


def test_budget_alerts_near_and_reached(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admins are told when a budget is nearly spent (at the alert percentage, not one code
    before) and when it is spent, with the counts."""
    from app.gate.service import BudgetAlert

    clock = Clock(monkeypatch)
    clock.set(10)
    # 1 % of 101 codes is 1.01 codes: the second code is the first at or past it.
    client = make_client(
        **(CALM | {"otp_hourly_budget": 101, "otp_daily_budget": 3}),
        otp_budget_alert_percent=1,
    )
    gate = part(client.app, Gate)

    def alerts() -> list[BudgetAlert]:
        return list(client.raw.blocking_portal.call(gate.budget_alerts))

    assert alerts() == []
    assert send_from(client, "13900000001", ip="198.51.100.1").status_code == 202
    assert alerts() == [BudgetAlert(period="day", level="near", count=1, budget=3)]
    assert send_from(client, "13900000002", ip="198.51.100.2").status_code == 202
    assert send_from(client, "13900000003", ip="198.51.100.3").status_code == 202
    assert alerts() == [
        BudgetAlert(period="hour", level="near", count=3, budget=101),
        BudgetAlert(period="day", level="reached", count=3, budget=3),
    ]


class Monotonic:
    """``time`` as app/gate/service.py sees it, with ``monotonic()`` under the test's hand
    (the rest, ``time()`` included, is the real module or the test's ``Clock``)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_the_budget_banner_is_read_again_after_five_seconds(
    make_client: Callable[..., Browserish], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every admin page shows the SMS budget banner, so a worker keeps what it read from the
    shared counters for ALERTS_TTL = 5 s: codes another worker counted show once 5 s have
    passed (at exactly 5 s, not a moment before); a code this worker counted shows at once."""
    from app.gate import service as gate_service
    from app.gate.service import ALERTS_TTL, DAY, BudgetAlert

    assert ALERTS_TTL == 5.0
    clock = Clock(monkeypatch)
    clock.set(10)
    mono = Monotonic()
    monkeypatch.setattr(gate_service, "time", mono)
    client = make_client(**(CALM | {"otp_daily_budget": 10}), otp_budget_alert_percent=10)
    gate = part(client.app, Gate)
    portal = client.raw.blocking_portal

    def alerts() -> list[BudgetAlert]:
        return list(portal.call(gate.budget_alerts))

    def near(count: int) -> list[BudgetAlert]:
        return [BudgetAlert(period="day", level="near", count=count, budget=10)]

    assert alerts() == []
    # Another worker sends a code: the shared daily budget counter moves, this gate is not told.
    portal.call(gate.limiter.hit, "otp:budget:d", 10, DAY)
    mono.now += 4.999
    assert alerts() == []
    mono.now = 1_000.0 + ALERTS_TTL
    assert alerts() == near(1)
    portal.call(gate.limiter.hit, "otp:budget:d", 10, DAY)
    assert alerts() == near(1)  # read at 1005: kept until 1010
    # A code sent through this worker's gate forgets what it kept.
    assert send_from(client, "13900000001", ip="198.51.100.1").status_code == 202
    assert alerts() == near(3)


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def test_a_malformed_code_costs_no_attempt(visitor: Browserish) -> None:
    """Only six digits are compared with the code: anything else is refused as malformed and
    does not count against the code's attempts (nor does it reach the store)."""
    seen: list[Any] = []
    part(visitor.app, Tracker).listeners.append(lambda ctx, event, at: seen.append(event))
    assert send(visitor).status_code == 202
    code = code_for(visitor)
    for typed in ("12345", "1234567", "12a456", "١٢٣٤٥٦", "", code + "0"):
        refused = verify(visitor, typed)
        assert refused.status_code == 400, typed
        assert refused.json()["code"] == "wrong_code"
        assert refused.json()["errors"] == {"code": "format"}, typed
    assert stored_code(visitor)["attempts"] == 0
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert verify(visitor, wrong).json()["errors"] == {"code": "wrong"}
    # Spaces around are fine, and so are full-width digits (a Chinese keyboard's).
    assert verify(visitor, f" {code.translate(FULL_WIDTH)} ").status_code == 200
    reasons = [e.reason for e in seen if type(e).__name__ == "CodeRejected"]
    assert reasons == ["wrong_code"] * 7
