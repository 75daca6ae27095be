"""The gate's bad input: each a clear message, nothing half-written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from app.asgi import create_app
from app.demo.service import seed_tools
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
    assert body["code"] in ("invalid_phone", "bad_request")
    assert visitor.count("otp_code") == 0


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("138 1234 5678", "+8613812345678"),
        ("+86 138-1234-5678", "+8613812345678"),
        ("+44 7911 123456", "+447911123456"),
        ("+1 202-555-0143", "+12025550143"),
    ],
)
def test_foreign_and_formatted_numbers_normalise(visitor: Browserish, raw: str, e164: str) -> None:
    response = send(visitor, raw)
    assert response.status_code == 202, response.text
    assert response.json()["phone"] == e164


@pytest.mark.parametrize("consent", [False, None, "true", 1, "on"])
def test_consent_must_be_literally_true(visitor: Browserish, consent: object) -> None:
    response = send(visitor, PHONE, consent)
    assert response.status_code == 400
    assert visitor.count("otp_code") == 0


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


def test_a_thousand_sends_from_one_ip(visitor: Browserish) -> None:
    cap = visitor.app.state.settings.otp_ip_daily_cap
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
def gateway_client(
    request: pytest.FixtureRequest, settings: Settings
) -> Iterator[tuple[Browserish, Any]]:
    gateway = request.getfixturevalue(request.param)
    app = create_app(msgspec.structs.replace(settings, **gateway.settings_overrides()))
    with TestClient(app=app, base_url="http://testserver.local") as raw:
        client = Browserish(raw)
        client.run(seed_tools)
        client.get("/t/guide-demo")
        yield client, gateway


def test_real_gateway_protocol_end_to_end(gateway_client: tuple[Browserish, Any]) -> None:
    client, gateway = gateway_client
    assert send(client).status_code == 202
    code = gateway.last_code("+8613812345678")
    assert code is not None and len(code) == 6
    # Only the console provider feeds the development inbox.
    assert client.get("/dev/sms", params={"phone": PHONE}).status_code == 404
    assert verify(client, code).status_code == 200
    assert client.count("lead") == 1


def test_gateway_failure_is_a_clear_503(gateway_client: tuple[Browserish, Any]) -> None:
    client, gateway = gateway_client
    gateway.fail_next(
        "isp.SYSTEM_ERROR"
        if gateway.__class__.__name__ == "FakeAliyun"
        else "InternalError.Timeout"
    )
    response = send(client)
    assert response.status_code == 503
    assert response.json()["code"] == "sms_unavailable"
    assert client.count("lead") == 0


def test_gateway_frequency_limit_is_a_429(gateway_client: tuple[Browserish, Any]) -> None:
    client, gateway = gateway_client
    gateway.fail_next(
        "isv.BUSINESS_LIMIT_CONTROL"
        if gateway.__class__.__name__ == "FakeAliyun"
        else "LimitExceeded.PhoneNumberDailyLimit"
    )
    response = send(client)
    assert response.status_code == 429
