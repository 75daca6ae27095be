"""Every page of the app, in Chinese: no untranslated message, no raw identifier, no English.

A first-time user must never meet ``grab_won n: 1`` or ``Sold out`` on a Chinese page. This
test builds real activity on SQLite, in-process — the demo tools, a visitor who comes through a
tracked link, answers a calculator, authorises a phone, grabs and has the voucher redeemed and
the redemption undone, a lead with a status change and a note, a visitor who withdraws consent
— plus one timeline entry of every funnel event with its typical properties; then it renders
every GET route of the app's route table (as an anonymous visitor, an authorised one, and each
staff role, following the links and htmx partials each page offers), the error pages, and the
pages answered by the forms used on the way. It fails on:

(a) a msgid without a zh_CN translation reaching a page: the app's gettext is wrapped to record
    every miss, whichever template or Python code asked for it (app/core/i18n.py);
(b) a raw identifier in the visible text: a snake_case word (``grab_won``, ``wrong_code``) or a
    field name with a colon (``n: 1``, ``step: inputs``);
(c) an English word in the visible text, besides the few names and abbreviations in
    ``ALLOWED`` and data: what the test itself typed (usernames, slugs, codes), addresses,
    voucher codes and the names a marketer gives in a calculator's definition.

Visible text is BeautifulSoup's text of the page without scripts and styles and without what
``<code>``, ``<pre>``, ``<kbd>``, ``<samp>`` and ``<textarea>`` hold (codes, formulas, file
formats), plus the attributes a person reads: placeholder, title, alt, aria-label and
confirmation questions.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import msgspec
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from app.bookings.schemas import PARTS
from app.calculators.builtins import BUILTIN_SLUGS, builtin
from app.calculators.schemas import CalculatorDef
from app.core import i18n
from app.core.clock import china_today
from app.core.state import part
from app.demo.service import seed_tools
from app.draws.schemas import NotEligible
from app.events import schemas as ev
from app.events.labels import EVENT_LABELS, HIDDEN, PROPERTY_LABELS, VALUE_LABELS
from app.events.service import Tracker, visitor_context
from app.gate.service import CodeExpired, WrongCode
from app.grabs.schemas import ClaimRefusal, Result
from app.guides.routes import PDF_ITEM
from app.leads.schemas import PhoneAuthorisation
from app.settings import Settings
from app.visitors.models import Visitor
from tests.helpers import Browserish
from tests.test_calc_flow import form_values
from tests.test_grabs import bearer

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Names and format examples a Chinese page may show in Latin letters.
ALLOWED = {
    "leadkit",  # the product
    "WeChat",
    "Douyin",
    "PDF",
    "YYYY-MM-DD",
    "English",  # the language switch names English in English
    # Technical abbreviations Chinese staff pages use as they are.
    "API",
    "BOM",
    "CSV",
    "IP",
    "JPEG",
    "KB",
    "MB",
    "PNG",
    "SVG",
    "TOML",
}
CODE_TAGS = ("code", "pre", "kbd", "samp", "textarea")
URL = re.compile(r"https?://\S*|(?<![\w/])/[\w./{}-]*")
VOUCHER = re.compile(r"\b[0-9A-Z]{1,8}(?: [0-9A-Z]{4}){3}\b")
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
FIELD = re.compile(r"(?<![A-Za-z/])[a-z][a-z_]*:\s")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’._-]*[A-Za-z0-9]|[A-Za-z]")
READ_ATTRIBUTES = ("placeholder", "title", "alt", "aria-label", "data-confirm", "hx-confirm")

STAFF = {"ada": "admin", "mara": "marketer", "hana": "host", "sam": "sales"}
VISITOR_PHONE, WITHDRAWING_PHONE = "13700001111", "13700002222"
STORE = "徐汇旗舰店"
# Routes no Chinese page is made of: machine answers (JSON, streams, files) are requested and
# must answer, but only HTML is read; /schema is the API's developer console (Swagger UI).
NOT_PAGES = ("/schema",)
# A route whose path names a file (a PDF, a QR code, the brand's stylesheet and logo) answers
# a file, not a page: nothing of it is read here.
FILE = re.compile(r"\.[a-z]{2,4}$")
# Each event of the funnel with its typical properties, on one lead's timeline. Values come
# from the declared sets where there are some (grab results, gate methods and levels).
TYPICAL: list[ev.Event] = [
    ev.LinkOpened(code="live01"),
    ev.ToolViewed(src="live01"),
    ev.ToolViewed(src="x9k2", known_src=False),
    ev.StepStarted(step="inputs"),
    ev.StepCompleted(step="inputs"),
    ev.TeaserShown(),
    ev.GateShown(),
    ev.CodeSent(method="sms"),
    *[ev.CodeRejected(reason=error.code) for error in (WrongCode, CodeExpired)],
    *[
        ev.PhoneVerified(method=method, level=level)
        for method in typing.get_args(typing.get_type_hints(PhoneAuthorisation)["method"])
        for level in typing.get_args(typing.get_type_hints(PhoneAuthorisation)["level"])
    ],
    ev.LeadCreated(),
    ev.LeadMerged(),
    ev.ResultShown(),
    ev.Download(item="report"),
    ev.Download(item=PDF_ITEM),
    ev.Shared(target="wechat"),
    ev.Shared(target="douyin"),
    ev.CtaClicked(cta="预约免费量房"),
    ev.ConsentWithdrawn(),
    ev.DataDeleted(),
    ev.GrabClicked(),
    ev.GrabWon(n=1),
    *[
        ev.GrabRefused(reason=reason)
        for reason in (
            *(r for r in typing.get_args(Result) if r != "won"),
            *typing.get_args(typing.get_type_hints(ClaimRefusal)["result"]),
        )
    ],
    ev.GrabWaitlisted(),
    ev.VoucherRedeemed(store=STORE),
    ev.VoucherRedemptionUndone(store=STORE),
    *[ev.DrawEntered(referral=r) for r in ("", "counted", "unknown_code", "own_code", "not_new")],
    *[ev.DrawEntered(referral=r) for r in ("cap_reached", "off")],
    *[
        ev.DrawRefused(reason=r)
        for r in ("not_open", "rate_limited", *typing.get_args(NotEligible))
    ],
    ev.DrawWon(tier=1),
    ev.DrawClaimed(tier=2),
    *[ev.BookingMade(service="免费量房", day="2026-12-03", part=part) for part in PARTS],
    ev.BookingChanged(service="免费量房", day="2026-12-04", part="evening"),
    ev.BookingCancelled(service="免费量房"),
]


@pytest.fixture
def backend() -> str:
    """SQLite only: the pages are the same on both backends, and this test reads them all."""
    return "sqlite"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The visitors here prove a phone twice in a row (the gate, then the privacy page)."""
    return msgspec.structs.replace(settings, otp_resend_seconds=0)


@pytest.fixture
def misses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every msgid looked up in the zh_CN catalog without a translation there."""
    found: list[str] = []
    real = i18n.translations

    class Recording:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def gettext(self, message: str) -> str:
            if message and message not in self.inner._catalog:
                found.append(message)
            return str(self.inner.gettext(message))

        def ngettext(self, singular: str, plural: str, n: int) -> str:
            if (singular, 0) not in self.inner._catalog:
                found.append(singular)
            return str(self.inner.ngettext(singular, plural, n))

    def recording(locale: str) -> Any:
        found_catalog = real(locale)
        return Recording(found_catalog) if locale == "zh_CN" else found_catalog

    monkeypatch.setattr(i18n, "translations", recording)
    return found


def visible_texts(html: str) -> Iterator[str]:
    """The page's text a person reads, less code: what a ``<code>``, ``<pre>``, ``<kbd>`` or
    ``<samp>`` shows, or a ``<textarea>`` holds, is a code, a formula or a file format the
    person types (a link code, a CSV header), not the page's own words."""
    page = BeautifulSoup(html, "html.parser")
    for tag in page(["script", "style", "template", *CODE_TAGS]):
        tag.decompose()
    if page.title is not None:
        yield page.title.get_text()
    root = page.body or page
    yield from root.stripped_strings
    for tag in root.find_all(True):
        for name in READ_ATTRIBUTES:
            if tag.get(name):
                yield str(tag[name])


def words_of(text: str) -> str:
    """``text`` without what is data in any language: addresses and voucher codes."""
    return VOUCHER.sub(" ", URL.sub(" ", text))


class Reader:
    """Requests pages as a browser would and records what is wrong with each."""

    def __init__(self, client: Browserish, misses: list[str]) -> None:
        self.client = client
        self.misses = misses
        self.problems: dict[str, set[str]] = defaultdict(set)
        # What the test typed or the test client is: usernames, slugs, the client's address;
        # "demo" publishes the demo content (app/kinds.py), as a username would.
        self.data: set[str] = {*STAFF, "testclient", "demo"}
        self.routes = _route_patterns(client)
        self.answered: set[str] = set()  # route patterns that answered below 400

    def read(self, response: httpx.Response, where: str) -> httpx.Response:
        for message in self.misses:
            self.problems[f"(a) untranslated msgid {message!r}"].add(where)
        self.misses.clear()
        pattern = self.route_of(urlsplit(str(response.request.url)).path)
        if pattern and response.status_code < 400:
            self.answered.add(pattern)
        if "text/html" not in response.headers.get("content-type", ""):
            return response
        for text in map(words_of, visible_texts(response.text)):
            for found in SNAKE.findall(text) + FIELD.findall(text):
                if found not in self.data:
                    self.problems[f"(b) raw identifier {found.strip()!r} in {text[:80]!r}"].add(
                        where
                    )
            for word in WORD.findall(text):
                if word in ALLOWED or word in self.data or any(c.isdigit() for c in word):
                    continue
                if SNAKE.fullmatch(word):
                    continue  # reported as (b)
                self.problems[f"(c) English {word!r} in {text[:80]!r}"].add(where)
        return response

    def get(self, who: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(url, follow_redirects=False, **kwargs)
        return self.read(response, f"{who} GET {url}")

    def post(self, who: str, url: str, data: dict[str, str], page: str) -> httpx.Response:
        response = self.client.submit(url, data, page=page, follow_redirects=False)
        self.misses.clear()  # the CSRF page read by submit() is read on its own elsewhere
        return self.read(response, f"{who} POST {url}")

    def route_of(self, path: str) -> str | None:
        return next((p for p, rx in self.routes.items() if rx.fullmatch(path)), None)

    def crawl(self, who: str, seeds: list[str], per_route: int = 6) -> None:
        """Every page reachable from ``seeds`` by a link, a GET form or an htmx GET, with at
        most ``per_route`` addresses per route (query variants of one list are alike)."""
        queue = [(url, None) for url in seeds]
        seen: set[str] = set()
        per: dict[str, int] = defaultdict(int)
        while queue:
            url, target = queue.pop(0)
            key = f"{url} {target}"
            pattern = self.route_of(urlsplit(url).path)
            if key in seen or pattern is None or pattern.startswith(NOT_PAGES):
                continue
            if per[pattern] >= per_route:
                continue
            seen.add(key)
            per[pattern] += 1
            headers = {"HX-Request": "true", "HX-Target": target} if target is not None else {}
            page = self.get(who, url, headers=headers)
            if "text/html" in page.headers.get("content-type", ""):
                queue.extend(_links(page.text, url))


def _route_patterns(client: Browserish) -> dict[str, re.Pattern[str]]:
    patterns = {}
    for route in client.app.routes:
        if "GET" not in (getattr(route, "methods", None) or ()):
            continue
        rx = re.sub(r"\{\w+:int\}", r"[0-9]+", route.path)
        rx = re.sub(r"\{\w+:path\}", r".+", rx)
        rx = re.sub(r"\{\w+:str\}", r"[^/]+", rx)
        patterns[route.path] = re.compile(rx + "/?")
    return patterns


def _links(html: str, base: str) -> Iterator[tuple[str, str | None]]:
    page = BeautifulSoup(html, "html.parser")
    for a in page.select("a[href]"):
        yield from _local(str(a["href"]), base, None)
    for el in page.select("[hx-get]"):
        target = str(el.get("hx-target") or "")
        target_id = target[1:] if target.startswith("#") else str(el.get("id") or "")
        yield from _local(str(el["hx-get"]), base, target_id)
    for form in page.select("form"):
        if str(form.get("method", "get")).lower() != "get":
            continue
        values = [
            (str(f["name"]), str(f.get("value") or ""))
            for f in form.select("input[name]")
            if f.get("type") not in ("checkbox", "radio", "submit")
        ]
        for select_ in form.select("select[name]"):
            options = select_.select("option")
            for option in options[:4]:  # each choice of a filter is a page of its own
                chosen = [*values, (str(select_["name"]), str(option.get("value") or ""))]
                action = str(form.get("action") or base)
                yield from _local(f"{action}?{urlencode(chosen)}", base, None)


def _local(url: str, base: str, target: str | None) -> Iterator[tuple[str, str | None]]:
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return
    query = parse_qsl(parts.query)
    if any(name == "lang" for name, _ in query):
        return  # another language: this test reads the Chinese pages
    yield (parts.path + (f"?{parts.query}" if parts.query else ""), target)


# The activity: what real use leaves behind, each answer read on the way.


def definition_names(definition: CalculatorDef) -> set[str]:
    """The names a marketer gives in a calculator's definition — fields, steps, tables and
    their rows and columns, variables, outputs, option values: the words of its formulas,
    which the editor shows as they are."""
    names = {*definition.variables, *definition.teaser, *definition.full}
    for field in definition.fields:
        names |= {field.key, *(option.value for option in field.options)}
    for table in definition.tables:
        names |= {table.key, *(str(k) for k in (*table.rows, *table.cols))}
    names |= {step.key for step in definition.steps} | {o.key for o in definition.outputs}
    return names


def login(reader: Reader, username: str) -> None:
    reader.client.raw.cookies.clear()
    assert reader.client.login(username).status_code == 303


def authorise_by_form(reader: Reader, who: str, phone: str, page: str) -> None:
    """The gate's own forms, as the visitor taps them: send, a wrong code, the right one."""
    sent = reader.post(
        who, "/gate/code", {"phone": phone, "consent": "on", "next": page}, page=page
    )
    assert sent.status_code == 200, sent.text[:300]
    wrong = reader.post(
        who, "/gate/verify", {"phone": phone, "code": "000000", "next": page}, page=page
    )
    assert wrong.status_code == 400
    code = reader.client.get("/dev/sms", params={"phone": phone}).json()["code"]
    right = reader.post(
        who, "/gate/verify", {"phone": phone, "code": code, "next": page}, page=page
    )
    assert right.status_code == 303


def activity(reader: Reader) -> dict[str, Any]:
    client = reader.client
    client.run(seed_tools)
    for username, role in STAFF.items():
        client.make_staff(username, role)
    reader.data.update({"guide-demo", "grab-demo", *BUILTIN_SLUGS})
    for slug in BUILTIN_SLUGS:
        reader.data.update(definition_names(builtin(slug)))

    # A visitor from the live stream's link reads the guide, answers the calculator.
    who = "visitor"
    client.raw.cookies.clear()
    reader.get(who, "/s/live01")
    reader.get(who, "/t/guide-demo")
    for slug in BUILTIN_SLUGS:
        reader.get(who, f"/t/{slug}")
        values = form_values(client, f"/t/{slug}")
        reader.post(who, f"/t/{slug}/evaluate", values, page=f"/t/{slug}")
    events = [
        {"event": {"name": "step_started", "step": "inputs"}, "tool": "renovation"},
        {"event": {"name": "shared", "target": "wechat"}, "tool": "guide-demo"},
    ]
    assert client.post("/api/v1/events", json={"events": events}).status_code == 202
    authorise_by_form(reader, who, VISITOR_PHONE, "/t/renovation")
    for slug in (*BUILTIN_SLUGS, "guide-demo"):
        reader.get(who, f"/t/{slug}")

    # The host opens the grab; the visitor grabs one, taps again; staff redeem and undo.
    visitor_cookies = dict(client.raw.cookies)
    login(reader, "hana")
    reader.post("host", "/staff/grabs/grab-demo/mode", {"mode": "open"}, page="/staff/grabs/")
    client.raw.cookies.clear()
    client.raw.cookies.update(visitor_cookies)
    for tap in ("first", "again"):  # the second tap is refused: one per phone
        reader.post(who, "/t/grab-demo/grab", {"idempotency_key": tap}, "/t/grab-demo")
    code = _voucher_code(client)
    reader.data.update([code, *code.split()])
    login(reader, "sam")
    form = {"store": STORE, "code": code}
    reader.post("sales", "/staff/vouchers/lookup", form, page="/staff/vouchers/")
    reader.post("sales", "/staff/vouchers/redeem", form, page="/staff/vouchers/")
    claim_id = _redeemed_claim(client)
    reader.post("sales", f"/staff/vouchers/{claim_id}/undo", {}, page="/staff/vouchers/")
    unknown = {"store": STORE, "code": "LK0000"}
    reader.post("sales", "/staff/vouchers/lookup", unknown, page="/staff/vouchers/")

    # Sales works the lead: status, a note; the number revealed.
    lead_id = _lead_id(client, VISITOR_PHONE)
    update = {"status": "contacted", "owner_id": "", "note": "客户想下周上门量房"}
    reader.post("sales", f"/staff/leads/{lead_id}", update, page=f"/staff/leads/{lead_id}")
    reader.post("sales", f"/staff/leads/{lead_id}/phone", {}, page=f"/staff/leads/{lead_id}")
    bad = {"status": "nonsense", "owner_id": "", "note": ""}
    reader.post("sales", f"/staff/leads/{lead_id}", bad, page=f"/staff/leads/{lead_id}")

    # Every funnel event, with its typical properties, on the lead's timeline.
    _record_typical(client, lead_id)

    # A second visitor authorises, then withdraws consent on the privacy page.
    client.raw.cookies.clear()
    reader.get("visitor 2", "/t/guide-demo")
    authorise_by_form(reader, "visitor 2", WITHDRAWING_PHONE, "/t/guide-demo")
    _prove_on_privacy_page(reader, "visitor 2", WITHDRAWING_PHONE)
    reader.post("visitor 2", "/privacy/withdraw", {}, page="/privacy/manage")
    client.raw.blocking_portal.call(part(client.app, Tracker).flush)
    return {"visitor_cookies": visitor_cookies, "lead_id": lead_id}


def _prove_on_privacy_page(reader: Reader, who: str, phone: str) -> None:
    reader.get(who, "/privacy/manage")
    reader.post(who, "/privacy/code", {"phone": phone, "consent": "on"}, page="/privacy/manage")
    wrong = {"phone": phone, "code": "000000"}
    reader.post(who, "/privacy/verify", wrong, page="/privacy/manage")
    code = reader.client.get("/dev/sms", params={"phone": phone}).json()["code"]
    reader.post(who, "/privacy/verify", {"phone": phone, "code": code}, page="/privacy/manage")
    reader.get(who, "/privacy/manage")


def _voucher_code(client: Browserish) -> str:
    page = BeautifulSoup(client.get("/t/grab-demo").text, "html.parser")
    found = page.select_one("[data-voucher-code]")
    assert found is not None, "the visitor won a voucher"
    return found.get_text(strip=True)


def _redeemed_claim(client: Browserish) -> int:
    async def work(db: Any) -> int:
        from app.grabs.models import GrabClaim

        return int((await db.execute(select(GrabClaim.id))).scalars().first())

    return int(client.run(work))


def _lead_id(client: Browserish, phone: str) -> int:
    async def work(db: Any) -> int:
        from app.leads.models import Lead

        leads = (await db.execute(select(Lead.id, Lead.phone_masked))).all()
        return next(i for i, masked in leads if masked.endswith(phone[-4:]))

    return int(client.run(work))


def _record_typical(client: Browserish, lead_id: int) -> None:
    tracker = part(client.app, Tracker)

    async def work(db: Any) -> None:
        from app.tools.models import Tool

        query = select(Visitor).where(Visitor.lead_id == lead_id)
        visitor = (await db.execute(query)).scalars().first()
        tool_id = await db.scalar(select(Tool.id).where(Tool.slug == "renovation"))
        ctx = visitor_context(visitor, tool_id, 1)
        for event in TYPICAL:
            if event.outcome:
                tracker.record(db, ctx, event)
            else:
                tracker.track(ctx, event)

    client.run(work)


def test_every_event_has_typical_properties_here() -> None:
    named = {str(type(e).__struct_config__.tag) for e in TYPICAL}
    assert named == set(ev.EVENT_NAMES), "add the new event to TYPICAL"


def test_every_event_property_and_coded_value_has_a_label() -> None:
    assert set(EVENT_LABELS) == set(ev.EVENT_NAMES)
    for event in ev.ALL_EVENTS:
        for field in msgspec.structs.fields(event):
            assert field.name in PROPERTY_LABELS or field.name in HIDDEN, field.name
    for event in TYPICAL:
        for key, value in msgspec.to_builtins(event).items():
            if key in VALUE_LABELS:
                assert str(value) in VALUE_LABELS[key], (key, value)


def test_every_page_speaks_chinese(client: Browserish, misses: list[str]) -> None:
    reader = Reader(client, misses)
    state = activity(reader)
    lead_id = state["lead_id"]
    tools = ["/t/guide-demo", "/t/grab-demo", "/t/renovation", "/t/insurance"]
    public = ["/", "/privacy", "/privacy/manage", "/staff/login", "/s/live01", *tools]

    client.raw.cookies.clear()
    reader.crawl("anonymous", public)
    client.raw.cookies.update(state["visitor_cookies"])
    # A booking, so the visitor's booking page and the sales inbox show one (app/bookings).
    day = (china_today() + dt.timedelta(days=1)).isoformat()
    booked = client.post("/api/v1/bookings/renovation", json={"day": day, "part": "evening"})
    assert booked.status_code == 201, booked.text
    reader.get("authorised visitor", "/api/v1/bookings/renovation")
    reader.crawl("authorised visitor", [*public, "/t/guide-demo/guide.pdf"])
    for username, role in STAFF.items():
        login(reader, username)
        reader.crawl(role, ["/staff/", f"/staff/leads/{lead_id}", "/staff/leads", *tools])

    # Error pages: not found, not allowed, bad input, signed out.
    client.raw.cookies.clear()
    for url in ("/t/no-such-tool", "/s/no-such-link", "/no/such/page", "/staff/leads"):
        reader.get("anonymous", url)
    reader.get("anonymous", "/t/no-such-tool", headers={"HX-Request": "true"})
    reader.get("anonymous", "/t/renovation/report.pdf")
    login(reader, "sam")
    reader.get("sales", "/staff/funnels")
    reader.get("sales", "/staff/leads/999999")
    reader.get("sales", "/staff/leads?status=nonsense")
    login(reader, "mara")
    reader.get("marketer", "/staff/funnels?from=2026-02-30")
    reader.get("marketer", "/staff/calculators/no-such-calculator")
    # Machine answers: their messages (problem details the pages' scripts show) are read too.
    for url in (
        "/healthz",
        "/ping",
        "/api/v1/grabs/grab-demo",
        "/api/v1/gate/challenge",
        "/api/v1/bookings/insurance",
    ):
        reader.get("anonymous", url)
    reader.get("marketer", "/api/v1/me", headers=bearer(client, "marketer"))
    assert "lk_lang" not in client.raw.cookies

    # A draw's own pages no link leads a stranger to: the claim page, and the panel the page
    # fetches again when the draw changes (static/js/draw.js).
    for url in ("/t/draw-demo/claim", "/t/draw-demo/panel", "/api/v1/draws/draw-demo"):
        reader.get("anonymous", url)
    # Live streams, and a draw's proof bundle (JSON once every tier is drawn; the demo draw is
    # not drawn here: tests/test_draws.py and the verify page's tests read it).
    unread = (
        "/api/v1/grabs/{slug:str}/events",
        "/api/v1/draws/{slug:str}/events",
        "/api/v1/draws/{slug:str}/proof",
    )
    skipped = ("/static", "/dev/sms", *unread, *NOT_PAGES)
    not_read = sorted(
        p
        for p in reader.routes
        if p not in reader.answered and not p.startswith(skipped) and not FILE.search(p)
    )
    assert not_read == [], f"GET routes no page led to: {not_read}"
    report = "\n".join(
        f"{problem}\n    on {', '.join(sorted(where)[:3])}"
        for problem, where in sorted(reader.problems.items())
    )
    if reader.problems:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "zh-pages-problems.txt").write_text(report + "\n")
    assert not reader.problems, f"{len(reader.problems)} problems on Chinese pages:\n{report}"
