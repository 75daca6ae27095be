"""Bookings (app/bookings): a tool's call to action books a visit — the slot form for an
authorised visitor, the phone gate first for anyone else — recorded on the lead with its
timeline event, confirmed with change and cancel, shown at the top of the sales inbox. Bad
input changes nothing; a double tap is one booking. Both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from app.bookings import service
from app.bookings.models import Booking
from app.bookings.schemas import BOOKING_DAYS, cta_of
from app.bookings.service import check_slot, slot_choices
from app.brand.book import BrandBook
from app.brand.schemas import Brand
from app.core import clock
from app.core.errors import InvalidInput
from app.core.qr import qr_png
from app.core.state import part
from app.db.engine import Storage
from app.db.uow import finish
from app.demo.service import seed_tools
from app.events.models import FunnelEvent
from app.events.schemas import EventContext
from app.events.service import Tracker
from app.reports.render import QR_URL, LocalFetcher, render_html, render_pdf
from app.reports.schemas import Report, ReportSection
from app.tools import service as tools
from app.tools.models import Tool, ToolVersion
from tests import test_privacy as privacy
from tests.helpers import Browserish, soup
from tests.test_calc_flow import form_values

PHONE = "13712340001"
BOOK = "/t/renovation/book"


def authorise(client: Browserish, phone: str = PHONE) -> None:
    client.post("/api/v1/gate/code", json={"phone": phone, "consent": True, "tool": "renovation"})
    code = client.get("/dev/sms", params={"phone": phone}).json()["code"]
    verified = client.post("/api/v1/gate/verify", json={"phone": phone, "code": code})
    assert verified.status_code == 200, verified.text


def bookings(client: Browserish) -> list[Booking]:
    async def read(db: Any) -> list[Booking]:
        return list((await db.scalars(select(Booking).order_by(Booking.id))).all())

    return list(client.run(read))


def events(client: Browserish, name: str) -> list[FunnelEvent]:
    async def read(db: Any) -> list[FunnelEvent]:
        rows = await db.scalars(select(FunnelEvent).where(FunnelEvent.name == name))
        return list(rows.all())

    return list(client.run(read))


def first_slot() -> dict[str, str]:
    choice = slot_choices()[0]
    return {"day": choice.value, "part": choice.parts[0]}


def tomorrow(part: str = "afternoon", note: str = "") -> dict[str, str]:
    day = clock.china_today() + dt.timedelta(days=1)
    return {"day": day.isoformat(), "part": part, "note": note}


@pytest.fixture
def visitor(client: Browserish) -> Browserish:
    client.run(seed_tools)
    assert client.get("/t/renovation").status_code == 200
    return client


def test_the_calculator_result_books_in_one_tap(visitor: Browserish) -> None:
    values = form_values(visitor, "/t/renovation")
    assert visitor.post("/t/renovation/evaluate", data=values).status_code == 200
    authorise(visitor)
    result = soup(visitor.get("/t/renovation"))
    cta = result.select_one("#cta")
    assert cta is not None and "预约免费量房" in cta.get_text()
    form = cta.select_one("form.booking-form")
    assert form is not None and form["action"] == BOOK
    # The first open slot is chosen already: one tap books.
    day = form.select_one("select[name=day] option[selected]")
    part = form.select_one("input[name=part][checked]")
    assert day is not None and part is not None
    assert {"day": day["value"], "part": part["value"]} == first_slot()
    done = visitor.submit(
        BOOK,
        {"day": str(day["value"]), "part": str(part["value"]), "note": ""},
        page="/t/renovation",
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text[:500]
    assert done.headers["location"] == f"{BOOK}?done=book"
    confirmed = soup(visitor.get(done.headers["location"]))
    assert "已预约" in confirmed.select_one("#booking").get_text()
    assert "待联系" in confirmed.select_one("#booking").get_text()
    [booking] = bookings(visitor)
    assert (booking.service, booking.state) == ("免费量房", "new")
    assert booking.slot_day.isoformat() == day["value"]
    [event] = events(visitor, "booking_made")
    assert event.lead_id == booking.lead_id
    assert event.props == {"service": "免费量房", "day": day["value"], "part": part["value"]}


def test_the_gate_comes_first_then_the_booking(visitor: Browserish) -> None:
    page = soup(visitor.get("/t/guide-demo/book"))
    assert page.select_one("#gate") is not None
    assert {i["value"] for i in page.select("#gate input[name=next]")} == {"/t/guide-demo/book"}
    assert page.select_one("form.booking-form") is None
    # The gate's own forms, as a browser without scripts sends them.
    sent = visitor.submit(
        "/gate/code",
        {"phone": PHONE, "consent": "on", "next": "/t/guide-demo/book"},
        page="/t/guide-demo/book",
    )
    assert sent.status_code == 200, sent.text[:300]
    code = visitor.get("/dev/sms", params={"phone": PHONE}).json()["code"]
    verified = visitor.submit(
        "/gate/verify",
        {"phone": PHONE, "code": code, "next": "/t/guide-demo/book"},
        page="/t/guide-demo/book",
        follow_redirects=False,
    )
    assert verified.status_code == 303
    assert verified.headers["location"] == "/t/guide-demo/book"
    form = soup(visitor.get("/t/guide-demo/book")).select_one("form.booking-form")
    assert form is not None and "免费量房" in form.get_text()


def test_a_double_tap_is_one_booking(visitor: Browserish) -> None:
    authorise(visitor)
    first = visitor.submit(BOOK, tomorrow(note="三室两厅"), page=BOOK, follow_redirects=False)
    assert first.status_code == 303
    again = visitor.submit(BOOK, tomorrow(part="evening"), page=BOOK, follow_redirects=False)
    assert again.status_code == 409
    shown = soup(again)
    assert "已经预约" in shown.select_one("#booking-error").get_text()
    assert shown.select_one("#booking") is not None  # their booking, to change or cancel
    [booking] = bookings(visitor)
    assert (booking.slot_part, booking.note) == ("afternoon", "三室两厅")
    assert len(events(visitor, "booking_made")) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"day": "2020-01-01", "part": "morning"}, "已经过去"),
        ({"day": "", "part": "morning"}, "请选择日期"),
        ({"day": "not-a-day", "part": "morning"}, "请选择日期"),
        ({"part": "noon"}, "请选择时段"),
        ({"note": "长" * 201}, "最多 200 个字"),
        ({"note": "a\x00b"}, "无法显示"),
        ({"note": "\u202eevil"}, "无法显示"),
    ],
)
def test_bad_input_changes_nothing(visitor: Browserish, data: dict[str, str], message: str) -> None:
    authorise(visitor)
    refused = visitor.submit(BOOK, {**tomorrow(), **data}, page=BOOK)
    assert refused.status_code == 400, refused.text[:300]
    assert message in soup(refused).select_one("#booking-error").get_text()
    assert bookings(visitor) == []
    assert events(visitor, "booking_made") == []


def test_a_day_too_far_ahead_is_refused(visitor: Browserish) -> None:
    authorise(visitor)
    far = clock.china_today() + dt.timedelta(days=BOOKING_DAYS)
    refused = visitor.submit(BOOK, {"day": far.isoformat(), "part": "morning"}, page=BOOK)
    assert refused.status_code == 400
    assert "14 天" in refused.text
    assert bookings(visitor) == []


def test_parts_of_today_close_when_they_end() -> None:
    evening = dt.datetime(2026, 3, 2, 19, 30, tzinfo=clock.CHINA_TZ)
    choices = slot_choices(evening)
    assert choices[0].day == dt.date(2026, 3, 2) and choices[0].parts == ("evening",)
    assert choices[1].parts == ("morning", "afternoon", "evening")
    assert len(choices) == BOOKING_DAYS
    check_slot(dt.date(2026, 3, 2), "evening", evening)
    with pytest.raises(InvalidInput):
        check_slot(dt.date(2026, 3, 2), "afternoon", evening)
    late = dt.datetime(2026, 3, 2, 21, 0, tzinfo=clock.CHINA_TZ)
    assert slot_choices(late)[0].day == dt.date(2026, 3, 3)


def test_change_cancel_and_book_again(visitor: Browserish) -> None:
    authorise(visitor)
    assert visitor.submit(BOOK, tomorrow(), page=BOOK, follow_redirects=False).status_code == 303
    changed = visitor.submit(
        f"{BOOK}/change", tomorrow("evening", "晚上七点后"), page=BOOK, follow_redirects=False
    )
    assert changed.status_code == 303
    page = soup(visitor.get(changed.headers["location"]))
    assert "晚上" in page.select_one("#booked-slot").get_text()
    assert "晚上七点后" in page.select_one(".booked-note").get_text()
    same = visitor.submit(f"{BOOK}/change", tomorrow("evening", "晚上七点后"), page=BOOK)
    assert same.status_code == 409
    cancelled = visitor.submit(f"{BOOK}/cancel", {}, page=BOOK, follow_redirects=False)
    assert cancelled.status_code == 303
    page = soup(visitor.get(cancelled.headers["location"]))
    assert page.select_one("#booking") is None
    assert "已取消" in page.get_text()
    assert page.select_one("form.booking-form") is not None  # book again
    again = visitor.submit(f"{BOOK}/cancel", {}, page=BOOK)
    assert again.status_code == 404
    [booking] = bookings(visitor)
    assert booking.state == "cancelled"
    assert [len(events(visitor, n)) for n in ("booking_changed", "booking_cancelled")] == [1, 1]
    rebooked = visitor.submit(BOOK, tomorrow("morning"), page=BOOK, follow_redirects=False)
    assert rebooked.status_code == 303
    [booking] = bookings(visitor)
    assert (booking.state, booking.slot_part) == ("new", "morning")


def test_the_api_books_refuses_and_cancels(visitor: Browserish) -> None:
    api = "/api/v1/bookings/renovation"
    body = {**tomorrow(), "note": "周末也可以"}
    gate = visitor.post(api, json=body)
    assert gate.status_code == 401
    assert gate.json()["code"] == "gate_required"
    authorise(visitor)
    assert visitor.get(api).status_code == 404
    made = visitor.post(api, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["state"] == "new" and made.json()["service"] == "免费量房"
    replay = visitor.post(api, json=body)
    assert replay.status_code == 409
    assert replay.json()["code"] == "already_booked"
    past = visitor.post("/api/v1/bookings/insurance", json={**body, "day": "2020-01-01"})
    assert past.status_code == 400 and past.json()["code"] == "slot_passed"
    long = visitor.post("/api/v1/bookings/insurance", json={**body, "note": "x" * 201})
    assert long.status_code == 400
    assert visitor.get(api).json()["day"] == body["day"]
    cancelled = visitor.post(f"{api}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert visitor.post(f"{api}/cancel").status_code == 404
    assert visitor.post("/api/v1/bookings/no-such-tool", json=body).status_code == 404
    assert len(bookings(visitor)) == 1


def set_cta(client: Browserish, slug: str, cta: dict[str, str]) -> None:
    async def change(db: Any) -> None:
        tool = (await db.execute(select(Tool).where(Tool.slug == slug))).scalar_one()
        version = await db.scalar(select(ToolVersion).where(ToolVersion.tool_id == tool.id))
        version.definition = {**version.definition, "cta": cta}

    client.run(change)


def test_a_cta_may_call_or_link_instead(client: Browserish) -> None:
    client.run(seed_tools)
    set_cta(client, "guide-demo", {"label": "拨打热线", "url": "tel:+864008208820"})
    authorise(client)
    link = soup(client.get("/t/guide-demo")).select_one("#cta a.button")
    assert link is not None and link["href"] == "tel:+864008208820"
    assert link["data-cta"] == "call"
    # Not a booking: no booking page and no booking API for it.
    assert client.get("/t/guide-demo/book").status_code == 404
    assert client.post("/api/v1/bookings/guide-demo", json=tomorrow()).status_code == 404


def test_cta_config_is_read_safely() -> None:
    assert cta_of({}) is None
    assert cta_of({"cta": {"label": ""}}) is None
    assert cta_of({"cta": "x"}) is None
    booking = cta_of({"cta": {"label": "预约", "books": "免费量房"}})
    assert booking is not None and (booking.mode, booking.service) == ("book", "免费量房")
    hostile = cta_of({"cta": {"label": "预约", "url": "javascript:alert(1)"}})
    assert hostile is not None and (hostile.mode, hostile.url) == ("book", "")
    link = cta_of({"cta": {"label": "看看", "href": "https://example.com/a"}})
    assert link is not None and link.mode == "link"


def test_every_kind_shows_its_cta(visitor: Browserish) -> None:
    """The demo configures one on the calculators, the guide and the grab."""
    authorise(visitor)
    for slug, label in (
        ("guide-demo", "预约免费量房"),
        ("grab-demo", "预约免费上门量房"),
        ("insurance", "预约1对1保障规划"),
    ):
        if slug == "insurance":
            # The calculator shows it with the result, once answered.
            page = soup(visitor.get(f"/t/{slug}/book"))
            assert label in page.select_one("h1").get_text()
            continue
        page = soup(visitor.get(f"/t/{slug}"))
        cta = page.select_one("#cta")
        assert cta is not None and label in cta.get_text(), slug
        assert cta.select_one("form.booking-form")["action"] == f"/t/{slug}/book"


def test_the_pdf_report_carries_the_cta_with_phone_and_qr(visitor: Browserish) -> None:
    """The calculator's report ends with its call to action, the brand's phone as people read
    it and a QR code of the tool's address (segno, answered by the report's own fetcher)."""
    book = part(visitor.app, BrandBook)
    book.put(Brand(name="装修家", color="#e8572a", contact_phone="+864008208820", version=7))
    values = form_values(visitor, "/t/renovation")
    assert visitor.post("/t/renovation/evaluate", data=values).status_code == 200
    authorise(visitor)
    pdf = visitor.get("/t/renovation/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf.content, capture_output=True, check=True
    ).stdout.decode()
    assert "预约免费量房" in text
    assert "400 820 8820" in text
    assert "扫码再次打开" in text
    assert pdf.content.count(b"/Image") == 1  # the QR code (the brand has no logo)


def test_the_report_renders_the_qr_of_the_tool_only() -> None:
    report = Report(
        title="装修预算",
        brand="装修家",
        generated_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        watermark="138****0000",
        sections=[ReportSection(heading="结果")],
        cta="设计师上门量房",
        cta_title="预约免费量房",
        cta_phone="+864008208820",
        cta_url="https://leads.example.com/t/renovation",
    )
    html = render_html(report)
    assert QR_URL in html and "致电：400 820 8820" in html
    fetcher = LocalFetcher()
    render_pdf(report, url_fetcher=fetcher)
    assert fetcher.asked == [QR_URL]
    # A QR code of exactly the tool's address.
    assert qr_png("https://leads.example.com/t/renovation").startswith(b"\x89PNG")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**msgspec.to_builtins(report), "cta_url": "javascript:x"}, Report)


def test_the_sales_inbox_shows_and_marks_bookings(visitor: Browserish) -> None:
    authorise(visitor)
    hostile = "<script>alert(1)</script> 周六上午"
    made = visitor.post("/api/v1/bookings/renovation", json={**tomorrow(), "note": hostile})
    assert made.status_code == 201
    visitor.raw.cookies.clear()
    visitor.make_staff("mia", "marketer")
    visitor.make_staff("sam", "sales")
    assert visitor.login("mia").status_code in (302, 303)
    leads = soup(visitor.get("/staff/leads"))
    [row] = leads.select("#bookings tr.booking")
    assert "待联系" in row.get_text() and "免费量房" in row.get_text()
    assert hostile in row.get_text() and leads.select_one("#bookings script") is None
    assert row.select_one("form") is None  # marketers read, sales mark
    [booking] = bookings(visitor)
    refused = visitor.submit(
        f"/staff/bookings/{booking.id}", {"state": "contacted"}, page="/staff/leads"
    )
    assert refused.status_code == 403
    visitor.raw.cookies.clear()
    assert visitor.login("sam").status_code in (302, 303)
    marked = visitor.submit(
        f"/staff/bookings/{booking.id}",
        {"state": "contacted"},
        page="/staff/leads",
        headers={"HX-Request": "true"},
    )
    assert marked.status_code == 200
    assert "已联系" in soup(marked).select_one("tr.booking").get_text()
    again = visitor.submit(
        f"/staff/bookings/{booking.id}", {"state": "contacted"}, page="/staff/leads"
    )
    assert again.status_code == 409
    assert "已经是这个状态" in again.text
    [booking] = bookings(visitor)
    assert (booking.state, booking.contacted_by) == ("contacted", "sam")
    lead_page = soup(visitor.get(f"/staff/leads/{booking.lead_id}"))
    assert "免费量房" in lead_page.select_one("#lead-bookings").get_text()
    assert (
        visitor.submit("/staff/bookings/999999", {"state": "new"}, page="/staff/leads").status_code
        == 404
    )


def test_deleting_ones_data_deletes_the_bookings(client: Browserish) -> None:
    """PIPL deletion (/privacy/delete) takes the bookings with the lead: slot and note."""
    client.run(seed_tools)
    assert client.get("/t/renovation").status_code == 200
    authorise(client, privacy.PHONE)
    made = client.post("/api/v1/bookings/renovation", json={**tomorrow(), "note": "周六上午"})
    assert made.status_code == 201
    assert len(bookings(client)) == 1
    privacy._wait_out_resend_gap(client)
    privacy.prove(client)
    token = client.csrf("/privacy/manage")
    assert client.post("/privacy/delete", data={"_csrf_token": token}).status_code == 200
    assert bookings(client) == []
    for name in ("booking_made",):
        assert all(e.lead_id is None and e.props == {} for e in events(client, name))


def test_two_taps_racing_make_one_booking(visitor: Browserish) -> None:
    """Two requests of the same lead book at the same moment, each in its own transaction:
    the unique key lets one in; the other is AlreadyBooked and leaves nothing behind."""
    authorise(visitor)
    [lead_id] = {b for b in visitor.run(_lead_ids)}
    storage = part(visitor.app, Storage)
    tracker = part(visitor.app, Tracker)

    async def race(db: Any) -> list[str]:
        tool, version = await tools.published(db, "renovation")
        cta = cta_of(await tools.definition(db, version))
        assert cta is not None
        ctx = EventContext(lead_id=lead_id, tool_id=tool.id, tool_version=version.number)
        slot = tomorrow()

        async def tap(note: str) -> str:
            async with storage.sessionmaker() as session:
                try:
                    await service.book(
                        session,
                        tracker,
                        ctx,
                        tool,
                        version,
                        cta,
                        day=dt.date.fromisoformat(slot["day"]),
                        part=slot["part"],
                        note=note,
                    )
                except service.AlreadyBooked:
                    await finish(session, succeeded=False)
                    return "refused"
                await asyncio.sleep(0.05)  # hold the row while the other tap arrives
                await finish(session, succeeded=True)
                return "booked"

        return sorted(await asyncio.gather(tap("一"), tap("二")))

    assert visitor.run(race) == ["booked", "refused"]
    assert len(bookings(visitor)) == 1
    assert len(events(visitor, "booking_made")) == 1


async def _lead_ids(db: Any) -> list[int]:
    from app.leads.models import Lead

    return list((await db.scalars(select(Lead.id))).all())
