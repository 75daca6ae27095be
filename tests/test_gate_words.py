"""What the gate says, exactly: the refusals' words and waits, the budget alerts' lines, the
code's shape (mutation testing: tests/mutation.py, area gate)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.core.state import part
from app.gate import service
from app.gate.service import Gate
from app.settings import Settings
from tests.helpers import Browserish
from tests.test_gate import CALM, PHONE, client_maker, every_log_record, is_aliyun, send_from


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., Browserish]]:
    with client_maker(settings, **CALM) as make:
        yield make


@pytest.fixture(params=["fake_aliyun", "fake_tencent"])
def gateway(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


def budget_lines(records: list[Any]) -> list[str]:
    return [r.getMessage() for r in records if "SMS budget" in r.getMessage()]


def test_a_code_is_six_digits_from_000000_to_999999(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []

    def top(n: int) -> int:
        drawn.append(n)
        return n - 1

    monkeypatch.setattr(service.secrets, "randbelow", top)
    assert service.new_code() == "999999"
    monkeypatch.setattr(service.secrets, "randbelow", lambda n: 7)
    assert service.new_code() == "000007"
    assert drawn == [1_000_000]


def test_the_resend_gap_says_how_long_to_wait(make_client: Callable[..., Browserish]) -> None:
    client = make_client(otp_resend_seconds=90)
    assert send_from(client).status_code == 202
    again = send_from(client)
    assert again.status_code == 429
    assert 85 <= int(again.headers["retry-after"]) <= 90  # the gap's own length, not 60
    assert again.json()["detail"] == "验证码刚刚已发送，请稍后再试。"


def test_no_consent_is_refused_on_the_consent_field(make_client: Callable[..., Browserish]) -> None:
    client = make_client()
    refused = client.post("/api/v1/gate/code", json={"phone": PHONE, "consent": False})
    assert refused.status_code == 400, refused.text
    assert list(refused.json()["errors"]) == ["consent"]


def test_the_gateways_limit_for_a_number_is_said_in_words(
    gateway: Any, make_client: Callable[..., Browserish]
) -> None:
    client = make_client(**gateway.settings_overrides())
    limit = (
        "isv.BUSINESS_LIMIT_CONTROL"
        if is_aliyun(gateway)
        else "LimitExceeded.PhoneNumberOneHourLimit"
    )
    gateway.fail_next(limit)
    refused = send_from(client)
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "3600"
    assert refused.json()["detail"] == "该号码获取验证码次数过多，请稍后再试。"


def test_the_daily_budget_alert_names_its_setting(make_client: Callable[..., Browserish]) -> None:
    client = make_client(otp_daily_budget=2, otp_budget_alert_percent=100)
    with every_log_record() as records:
        for n in range(2):
            assert send_from(client, f"1390000000{n}", ip=f"198.51.100.{n}").status_code == 202
    assert budget_lines(records) == [
        "SMS budget spent: 2 of 2 codes this day (LEADKIT_OTP_DAILY_BUDGET)"
    ]


def test_the_nearly_spent_alert_comes_at_the_percentage_not_before(
    make_client: Callable[..., Browserish],
) -> None:
    """1 % of 101 codes is 1.01 codes: the first code is under it, the second the first past."""
    client = make_client(otp_hourly_budget=101, otp_budget_alert_percent=1)
    with every_log_record() as records:
        assert send_from(client, "13900000001", ip="198.51.100.1").status_code == 202
        assert budget_lines(records) == []
        assert send_from(client, "13900000002", ip="198.51.100.2").status_code == 202
    assert budget_lines(records) == [
        "SMS budget nearly spent: 2 of 101 codes this hour (LEADKIT_OTP_HOURLY_BUDGET)"
    ]


def test_a_budget_spent_elsewhere_is_logged_by_the_send_that_finds_it(
    make_client: Callable[..., Browserish],
) -> None:
    """Codes counted against the budget by other workers, with no alert logged here (its
    once-only mark lost, or the budget lowered since): the first send that finds the budget
    spent logs it, with the count and the budget."""
    client = make_client(otp_hourly_budget=2)
    gate = part(client.app, Gate)
    _, key, budget, window = next(b for b in gate._budgets() if b[0] == "hour")
    for _ in range(budget):
        client.raw.blocking_portal.call(gate.limiter.hit, key, budget, window)
    with every_log_record() as records:
        refused = send_from(client)
    assert refused.status_code == 429, refused.text
    assert budget_lines(records) == [
        "SMS budget spent: 2 of 2 codes this hour (LEADKIT_OTP_HOURLY_BUDGET)"
    ]
