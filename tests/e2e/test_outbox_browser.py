"""The admin's outbox page on a phone (390 x 844), against a served app: a given-up text is
listed with its masked number and error; "Retry now" hands it back to the app's own sender,
which sends it (console provider) — the page then says so."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.crypto import DataCipher
from app.settings import load_settings
from tests.e2e.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    SECRET_KEY,
    STAFF_ENV,
    Tab,
    e2e_server,
)
from tests.e2e.test_staff_browser import sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    env = {**STAFF_ENV, "LEADKIT_OUTBOX_POLL_SECONDS": "0.5"}
    with e2e_server(tmp_path_factory, "outbox", env) as app:
        yield app.url, Path(app.env["LEADKIT_DATA_DIR"]) / "leadkit.db"


def given_up_text(db: Path, phone: str) -> None:
    """A winner's text that the gateway kept refusing (as the sender leaves one)."""
    cipher = DataCipher(load_settings({}, secret_key=SECRET_KEY))
    payload = {"to": cipher.encrypt(phone), "masked": "138****5678", "template": "SMS_1"}
    at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO outbox_message (kind, key, payload, status, attempts, next_attempt_at,"
            " locked_by, last_error, created_at) VALUES ('sms', 'e2e', ?, 'dead', 8, ?, '', ?, ?)",
            (
                json.dumps(payload | {"params": {"code": "204518"}}),
                at,
                "SmsNotSent: isv.BUSINESS_LIMIT_CONTROL: 触发天级流控",
                at,
            ),
        )


def test_an_admin_retries_a_given_up_text_on_a_phone(
    server: tuple[str, Path], open_tab: Callable[..., Tab]
) -> None:
    base, db = server
    given_up_text(db, "+8613812345678")
    tab = open_tab("phone")
    sign_in(tab, base, ADMIN_USERNAME, ADMIN_PASSWORD)
    tab.goto(f"{base}/staff/admin/outbox")
    row = tab.page.locator("#outbox-list tbody tr").first
    assert "138****5678" in row.inner_text() and "短信" in row.inner_text()
    assert "13812345678" not in tab.page.content()
    assert row.get_attribute("data-status") == "dead"
    tab.screenshot("outbox-dead-phone")

    row.get_by_role("button", name="立即重试").click()
    tab.page.locator("#outbox-panel [role=status]").wait_for()
    for _ in range(40):  # the app's sender polls every half second
        tab.goto(f"{base}/staff/admin/outbox")
        if tab.page.locator("#outbox-list tbody tr").first.get_attribute("data-status") == "sent":
            break
        time.sleep(0.25)
    row = tab.page.locator("#outbox-list tbody tr").first
    assert row.get_attribute("data-status") == "sent"
    assert "已发送" in row.inner_text()
    tab.screenshot("outbox-sent-phone")
    tab.assert_clean()
