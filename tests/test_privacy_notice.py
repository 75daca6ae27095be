"""The privacy notice says what PIPL asks it to say — who collects (the business, by its
configured name), how to reach them, how long data is kept, who sends the text messages — and
the manage page shows times and numbers the way every other page does (China time,
``137 0000 1111``), through the one formatter."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient
from sqlalchemy import update

from app.asgi import create_app
from app.leads.models import Consent
from app.settings import Settings
from tests.helpers import Browserish, soup
from tests.test_privacy import PHONE, _wait_out_resend_gap, become_lead, prove

ROOT = Path(__file__).resolve().parent.parent

# Chosen so that the UTC date and the China date differ: 2026-03-01 20:30 UTC is 04:30 on
# 2 March in China.
GRANTED_UTC = dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.UTC)


def _notice(client: Browserish, **params: str) -> str:
    page = client.get("/privacy", params=params)
    assert page.status_code == 200
    return " ".join(soup(page).get_text(" ").split())


@contextmanager
def _client(settings: Settings, **changes: object) -> Iterator[Browserish]:
    app = create_app(msgspec.structs.replace(settings, **changes))
    with TestClient(app=app, base_url="http://testserver.local") as raw:
        yield Browserish(raw)


def test_the_notice_names_business_contact_retention_and_processor(settings: Settings) -> None:
    with _client(
        settings,
        privacy_business_name="上海装修家装饰工程有限公司",
        privacy_contact="privacy@zhuangxiujia.example",
        privacy_retention_days=730,
        sms_provider="aliyun",
    ) as client:
        text = _notice(client)
        english = _notice(client, lang="en")
    assert "上海装修家装饰工程有限公司" in text
    assert "privacy@zhuangxiujia.example" in text
    assert "730 天" in text
    assert "阿里云计算有限公司" in text
    assert "730 days" in english and "Alibaba Cloud" in english
    assert "1 days" not in english
    # Only the business's own name (and the link back to Chinese) is not English.
    rest = english.replace("上海装修家装饰工程有限公司", "").replace("中文", "")
    assert not re.search("[\u4e00-\u9fff]", rest)


def test_a_contact_number_is_shown_as_read_with_a_link_to_call(settings: Settings) -> None:
    with _client(settings, privacy_contact="021-61234567", privacy_retention_days=1) as client:
        page = soup(client.get("/privacy"))
        english = _notice(client, lang="en")
    link = page.select_one("#privacy-contact a")
    assert link is not None
    assert link.get_text(strip=True) == "021 6123 4567"
    assert link["href"] == "tel:+862161234567"
    assert "for 1 day after" in english


@pytest.mark.parametrize(
    ("provider", "named"),
    [
        ("aliyun", "阿里云短信服务（阿里云计算有限公司）"),
        ("tencent", "腾讯云短信（腾讯云计算（北京）有限责任公司）"),
        ("console", "不会真正发出"),
    ],
)
def test_the_processor_is_the_configured_sms_provider(
    settings: Settings, provider: str, named: str
) -> None:
    with _client(settings, sms_provider=provider) as client:
        text = _notice(client)
    assert named in text
    for other in ("阿里云", "腾讯云"):
        if other not in named:
            assert other not in text


def test_without_a_business_name_the_brand_is_named(settings: Settings) -> None:
    with _client(settings, brand_name="装修家") as client:
        text = _notice(client)
    assert "装修家" in text
    assert "365 天" in text  # the default retention


def test_the_manage_page_shows_china_time_and_the_number_as_read(client: Browserish) -> None:
    become_lead(client)

    async def granted_at_evening_utc(db: object) -> None:
        await db.execute(update(Consent).values(granted_at=GRANTED_UTC))  # type: ignore[attr-defined]

    client.run(granted_at_evening_utc)
    _wait_out_resend_gap(client)
    token = client.csrf("/privacy/manage")
    code_step = client.post(
        "/privacy/code", data={"_csrf_token": token, "phone": PHONE, "consent": "on"}
    )
    assert code_step.status_code == 200
    shown = " ".join(soup(code_step).select_one("main").get_text(" ").split())
    assert "139 1234 5678" in shown
    assert "+86" not in shown
    _wait_out_resend_gap(client)
    prove(client)
    consents = soup(client.get("/privacy/manage")).select_one("ul.consents").get_text(" ")
    assert "2026-03-02 04:30" in consents
    assert "2026-03-01" not in consents


FORMATTERS = {"app/core/clock.py"}
# Wire formats, not display: the SMS gateways' request signatures need UTC in their format.
WIRE_FORMATS = {"app/sms/aliyun.py", "app/sms/tencent.py"}


def test_dates_and_numbers_are_formatted_in_one_place() -> None:
    """Templates format no date themselves (the ``china_time`` filter does) and show no phone
    number without the ``phone`` filter or a formatted value; Python formats dates for people
    only in app/core/clock.py."""
    strays = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            # A date input's value is the browser's ISO format, not something a person reads.
            outside_inputs = re.sub(r'<input[^>]*type="date"[^>]*>', "", line)
            if re.search(r"\.strftime\(|\.isoformat\(\)", outside_inputs):
                strays.append(f"templates/{path.relative_to(ROOT / 'templates')}:{n}")
    for path in sorted((ROOT / "app").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name in FORMATTERS | WIRE_FORMATS:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ".strftime(" in line:
                strays.append(f"{name}:{n}")
    assert strays == []
