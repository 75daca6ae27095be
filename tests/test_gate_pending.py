"""The gate remembers a code on its way (app/gate/pending.py), keeps what the visitor typed
after a refusal, and says its kind's words (or the tool's own) on every form it renders."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.calculators.builtins import builtin
from app.core.crypto import DataCipher
from app.core.state import part
from app.demo.service import seed_tools
from app.gate.pending import PENDING_COOKIE, Pending, read_pending
from app.settings import Settings
from app.tools import service as tools
from tests.helpers import Browserish, soup
from tests.test_calc_flow import form_values

PHONE = "13612340001"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def visitor(client: Browserish) -> Browserish:
    client.run(seed_tools)
    assert client.get("/t/renovation").status_code == 200
    return client


def teaser(client: Browserish, slug: str = "renovation") -> None:
    values = form_values(client, f"/t/{slug}")
    answer = client.submit(f"/t/{slug}/evaluate", values, page=f"/t/{slug}", headers=HTMX)
    assert answer.status_code == 200, answer.text[:300]


def ask(client: Browserish, phone: str = PHONE, **extra: str) -> Any:
    form = {"phone": phone, "consent": "on", "next": "/t/renovation#result", **extra}
    return client.submit("/gate/code", form, page="/t/renovation", headers=HTMX)


def test_the_code_box_comes_back_after_a_reload(visitor: Browserish) -> None:
    teaser(visitor)
    sent = ask(visitor)
    assert sent.status_code == 200
    assert PENDING_COOKIE in sent.cookies
    page = soup(visitor.get("/t/renovation"))
    gate = page.select_one("#gate")
    assert gate is not None
    assert gate.select_one("input[name=code]") is not None
    assert "136****0001" in gate.select_one(".sent-to").get_text()
    assert gate.select_one("input[name=phone]")["value"] == "+8613612340001"
    countdown = int(gate.select_one(".resend button")["data-countdown"])
    assert 55 <= countdown <= 60
    # Asking again for the same number within the gap: the code box, not a refusal.
    again = ask(visitor, "136 1234 0001")
    assert again.status_code == 200
    assert soup(again).select_one("input[name=code]") is not None
    assert soup(again).select_one(".alert") is None
    # Another number within the gap is its own request (sent: no gap for it).
    assert soup(ask(visitor, "13612340002")).select_one("input[name=code]") is not None


def test_another_number_can_be_typed_while_a_code_is_pending(visitor: Browserish) -> None:
    teaser(visitor)
    ask(visitor)
    changed = visitor.submit(
        "/gate/change", {"next": "/t/renovation#result"}, page="/t/renovation", headers=HTMX
    )
    assert changed.status_code == 200
    gate = soup(changed)
    assert gate.select_one("input[name=code]") is None
    assert gate.select_one("input[name=phone]")["value"] == ""
    assert gate.select_one("h2").get_text() == "验证手机号，查看完整测算结果"
    # The first number's code is still on its way: asking for it again brings its box back.
    assert soup(ask(visitor)).select_one("input[name=code]") is not None


def test_verifying_forgets_the_pending_code(visitor: Browserish) -> None:
    teaser(visitor)
    ask(visitor)
    code = visitor.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    form = {"phone": "+8613612340001", "code": code, "next": "/t/renovation#result"}
    done = visitor.submit(
        "/gate/verify", form, page="/t/renovation", headers=HTMX, follow_redirects=False
    )
    assert done.status_code == 200
    assert done.headers["HX-Redirect"] == "/t/renovation#result"
    assert PENDING_COOKIE not in visitor.cookies or not visitor.cookies[PENDING_COOKIE]
    plain = visitor.get("/t/renovation")
    assert soup(plain).select_one("#gate") is None
    assert soup(plain).select_one("table.breakdown") is not None


def test_a_wrong_code_keeps_the_countdown(visitor: Browserish) -> None:
    teaser(visitor)
    ask(visitor)
    form = {"phone": "+8613612340001", "code": "000000", "next": "/t/renovation#result"}
    refused = visitor.submit("/gate/verify", form, page="/t/renovation", headers=HTMX)
    assert refused.status_code == 400
    resend = soup(refused).select_one(".resend button")
    assert 50 <= int(resend["data-countdown"]) <= 60


def test_a_plain_post_lands_on_the_result(visitor: Browserish) -> None:
    teaser(visitor)
    ask(visitor)
    code = visitor.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    form = {"phone": "+8613612340001", "code": code, "next": "/t/renovation#result"}
    done = visitor.submit("/gate/verify", form, page="/t/renovation", follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/t/renovation#result"


def test_a_pending_code_is_only_read_for_its_visitor_and_in_time(client: Browserish) -> None:
    settings = part(client.app, Settings)
    cipher = DataCipher(settings)
    made = Pending(visitor="v1", phone="+8613612340001", sent_at=1_000_000)
    token = cipher.encrypt(msgspec.json.encode(made).decode())

    def scope(value: str) -> dict[str, Any]:
        return {"type": "http", "headers": [(b"cookie", f"{PENDING_COOKIE}={value}".encode())]}

    assert read_pending(scope(token), settings, cipher, "v1", now=1_000_010) == made
    assert read_pending(scope(token), settings, cipher, "v2", now=1_000_010) is None
    late = 1_000_000 + settings.otp_ttl_seconds
    assert read_pending(scope(token), settings, cipher, "v1", now=late) is None
    assert read_pending(scope(token), settings, cipher, "v1", now=999_000) is None
    assert read_pending(scope("forged"), settings, cipher, "v1", now=1_000_010) is None
    assert read_pending(scope(token[:-4]), settings, cipher, "v1", now=1_000_010) is None
    assert made.resend_in(settings, 1_000_010) == settings.otp_resend_seconds - 10
    assert made.resend_in(settings, 1_000_000 + 3_600) == 0


def test_a_refusal_keeps_the_number_and_the_consent(visitor: Browserish) -> None:
    teaser(visitor)
    refused = ask(visitor, "12345")
    assert refused.status_code == 400
    gate = soup(refused)
    assert gate.select_one("input[name=consent]").has_attr("checked")
    assert gate.select_one("input[name=phone]")["value"] == "12345"
    # Without the box ticked, it stays unticked.
    unticked = visitor.submit(
        "/gate/code",
        {"phone": "13612340003", "next": "/t/renovation"},
        page="/t/renovation",
        headers=HTMX,
    )
    assert unticked.status_code == 400
    assert not soup(unticked).select_one("input[name=consent]").has_attr("checked")


def test_a_refused_answer_keeps_what_was_typed(visitor: Browserish) -> None:
    values = form_values(visitor, "/t/renovation")
    refused = visitor.submit(
        "/t/renovation/evaluate",
        values | {"area": "600", "bedrooms": "abc"},
        page="/t/renovation",
        headers=HTMX,
    )
    assert refused.status_code == 422
    form = soup(refused)
    assert form.select_one("input[name=area]")["value"] == "600"
    assert form.select_one("input[name=bedrooms]")["value"] == "abc"
    # The page lands on the first refused field, in the order the form shows them.
    land = form.select_one("[data-land]")
    assert land is not None and land.find_parent(class_="field").select_one("[name=area]")
    assert len(form.select("[data-land]")) == 1
    # Focused without JavaScript too: only the first refused field.
    assert form.select_one("input[name=area]").has_attr("autofocus")
    assert len(form.select("[autofocus]")) == 1
    assert form.select_one("form.calc-form")["action"].endswith("/evaluate#land")


def test_each_kind_has_its_words_and_a_tool_may_have_its_own(visitor: Browserish) -> None:
    teaser(visitor)
    calculator = soup(visitor.get("/t/renovation")).select_one("#gate")
    assert calculator.select_one("h2").get_text() == "验证手机号，查看完整测算结果"
    guide = soup(visitor.get("/t/guide-demo")).select_one("#gate")
    assert guide.select_one("h2").get_text() == "验证手机号，阅读完整指南"
    for gate in (calculator, guide):
        assert "发送结果" not in gate.get_text()

    # A calculator of its own words: the page and the gate's own forms say them.
    definition = msgspec.to_builtins(builtin("renovation"))
    definition["gate"] = {"title": "留个电话，看完整明细", "note": "只用于发送报价单。"}

    async def publish(db: Any) -> None:
        await tools.create_and_publish(
            db, slug="own-words", kind="calculator", title="自定义", definition=definition, by="t"
        )

    visitor.run(publish)
    teaser(visitor, "own-words")
    own = soup(visitor.get("/t/own-words")).select_one("#gate")
    assert own.select_one("h2").get_text() == "留个电话，看完整明细"
    assert "只用于发送报价单。" in own.get_text()
    form = {"phone": "13612340004", "consent": "on", "next": "/t/own-words#result"}
    sent = visitor.submit("/gate/code", form, page="/t/own-words", headers=HTMX)
    assert soup(sent).select_one("h2").get_text() == "留个电话，看完整明细"
    # An unknown page: the neutral words.
    form = {"phone": "13612340005", "consent": "on", "next": "/t/nothing-here"}
    neutral = visitor.submit("/gate/code", form, page="/t/renovation", headers=HTMX)
    assert soup(neutral).select_one("h2").get_text() == "验证手机号"
