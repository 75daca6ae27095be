"""Real Chromium on a phone-size page: a sales member signs in, types a voucher code, checks it
and redeems it; redeeming it again is refused with who, when and where; the scan button reads
a QR code from the camera (Chromium's fake camera plays a Y4M picture of the code) through the
vendored jsQR, and the same decoder reads a segno PNG drawn in the page.

Its own server (not the shared one): the vouchers are written into its database before it
starts, since the grab engine that issues them is not needed to test redemption.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

from app.core.i18n import translations
from app.grabs.codes import display
from tests.e2e.conftest import ARTIFACTS, PHONE, SECRET_KEY, Tab, chromium
from tests.served import clean_env, run_leadkit, running_server

pytestmark = pytest.mark.e2e

TYPED_CODE = "LK7K3M9QX2PF4H"
SCANNED_CODE = "LKW4RT0N8JD6QA"
STORE = "徐汇旗舰店"
SALES = ("e2e.sam", "销售 小陈", "e2e-sales-password-2026")
OTHER = ("e2e.sue", "销售 小王", "e2e-sales-password-2027")


def zh(msgid: str, **params: Any) -> str:
    """What the page shows for ``msgid`` in Chinese: the catalog's text once merged, the
    msgid until then (new msgids wait in .i18n-pending/ for the catalog merge)."""
    text = translations("zh_CN").gettext(msgid)
    return text % params if params else text


async def _seed(database_url: str) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    import app.models  # noqa: F401  (every table, for the foreign keys)
    from app.core.crypto import DataCipher
    from app.grabs.models import Grab, GrabClaim
    from app.settings import load_settings
    from app.staff import service
    from app.staff.schemas import StaffCreate
    from app.tools.models import Tool
    from tests.grab_support import lead_row

    settings = load_settings({}, secret_key=SECRET_KEY, database_url=database_url)
    cipher = DataCipher(settings)
    engine = create_async_engine(database_url)
    now = dt.datetime.now(dt.UTC)
    async with async_sessionmaker(engine)() as db, db.begin():
        for username, name, password in (SALES, OTHER):
            await service.create_user(
                db,
                None,
                StaffCreate(username=username, password=password, role="sales", display_name=name),
            )
        tool = Tool(slug="grab-e2e", kind="grab", title="到店免费量房", status="published")
        db.add(tool)
        await db.flush()
        grab = Grab(tool_id=tool.id, offer="价值 299 元的上门量房", initial_stock=10, stock=8)
        db.add(grab)
        await db.flush()
        for n, (code, phone) in enumerate(
            ((TYPED_CODE, "+8613812345678"), (SCANNED_CODE, "+8613987654321")), start=1
        ):
            lead = lead_row(cipher, phone)
            db.add(lead)
            await db.flush()
            db.add(
                GrabClaim(
                    grab_id=grab.id,
                    phone_hash=lead.phone_hash,
                    n=n,
                    lead_id=lead.id,
                    claimed_at=now,
                    code=code,
                    expires_at=now + dt.timedelta(days=30),
                )
            )
    await engine.dispose()


def seed(database_url: str) -> None:
    asyncio.run(_seed(database_url))


def qr_png(text: str) -> bytes:
    # make_qr, as the grab page does: make() turns a short code into a Micro QR, which jsQR
    # (and most phone cameras) cannot read.
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="png", scale=8, border=4)
    return out.getvalue()


def write_y4m(path: Path, text: str) -> None:
    """One 640×480 4:2:0 frame with the QR code in the middle; Chromium loops it."""
    frame = Image.new("RGB", (640, 480), "white")
    code = Image.open(io.BytesIO(qr_png(text))).convert("RGB")
    code = code.resize((300, 300), Image.Resampling.NEAREST)
    frame.paste(code, ((640 - 300) // 2, (480 - 300) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (320, 240)
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        out.write(b"FRAME\n")
        out.write(y.tobytes())
        out.write(cb.resize(half, Image.Resampling.BILINEAR).tobytes())
        out.write(cr.resize(half, Image.Resampling.BILINEAR).tobytes())


@pytest.fixture(scope="module")
def voucher_server() -> Iterator[str]:
    """`leadkit serve` on a fresh SQLite database holding two vouchers and two sales staff."""
    with tempfile.TemporaryDirectory(prefix="leadkit-e2e-vouchers-") as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/leadkit.db"
        env = clean_env(
            DATABASE_URL=database_url,
            LEADKIT_DATA_DIR=tmp,
            LEADKIT_SECRET_KEY=SECRET_KEY,
            LEADKIT_ENV="dev",
        )
        log = Path(tmp) / "server.log"
        run_leadkit("db", "upgrade", env=env, log=log)
        subprocess.run(
            [sys.executable, "-c", f"from {__name__} import seed; seed({database_url!r})"],
            env=env,
            check=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
        with running_server(env, log) as url:
            yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium whose fake camera shows a QR code of SCANNED_CODE."""
    with tempfile.TemporaryDirectory(prefix="leadkit-e2e-camera-") as tmp:
        video = Path(tmp) / "qr.y4m"
        write_y4m(video, SCANNED_CODE)
        with chromium(
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ) as launched:
            yield launched


@pytest.fixture
def phone(browser: Any, voucher_server: str) -> Iterator[Callable[[], Tab]]:
    contexts: list[Any] = []

    def open_() -> Tab:
        context = browser.new_context(**PHONE)
        context.grant_permissions(["camera"], origin=voucher_server)
        contexts.append(context)
        return Tab(context)

    yield open_
    for context in contexts:
        context.close()


def shot(tab: Tab, name: str, full_page: bool = True) -> None:
    """Tab.screenshot, but with the caret left alone: Playwright hides it by leaving
    ``style=""`` on inputs, which htmx then copies while settling a swap, and the CSP (rightly)
    reports that as an inline style."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page, caret="initial")


def sign_in(tab: Tab, base: str, username: str, password: str) -> None:
    tab.goto(f"{base}/staff/login")
    tab.page.get_by_label("用户名").fill(username)
    tab.page.get_by_label("密码").fill(password)
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="登录").click()
    assert tab.page.url == f"{base}/staff/", tab.page.url


def open_redemption(tab: Tab, base: str) -> None:
    tab.page.locator("header nav").get_by_role("link", name=zh("Vouchers")).click()
    tab.page.wait_for_url(f"{base}/staff/vouchers")
    tab.page.wait_for_function("() => window.htmx && window.leadkitVouchers && window.jsQR")
    overflow = tab.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the redemption page scrolls sideways by {overflow}px"


def look_up(tab: Tab, base: str, code: str, status: int = 200) -> None:
    page = tab.page
    page.locator("#voucher-code").fill(code)
    if status >= 400:
        tab.expect_failed_load(f"{base}/staff/vouchers/lookup")
    with page.expect_response(lambda r: r.url.endswith("/staff/vouchers/lookup")) as answer:
        page.locator("#voucher-lookup").click()
    assert answer.value.status == status
    page.locator("#voucher-result").wait_for()


def test_sales_redeems_on_a_phone_and_a_second_redemption_is_refused(
    voucher_server: str, phone: Callable[[], Tab]
) -> None:
    base = voucher_server
    sam, sue = phone(), phone()
    sign_in(sam, base, SALES[0], SALES[2])
    sign_in(sue, base, OTHER[0], OTHER[2])
    for tab in (sam, sue):
        open_redemption(tab, base)
        tab.page.locator("#voucher-store").fill(STORE)
    shot(sam, "voucher-redeem-empty-phone")

    # Typed the way people type: lower case, spaces, a dash, the letter O for zero.
    typed = "lk 7k3m-9qx2 pf4h"
    for tab in (sam, sue):
        look_up(tab, base, typed)
        card = tab.page.locator("#voucher-result")
        assert "到店免费量房" in card.inner_text()
        assert "138****5678" in card.inner_text()
        assert display(TYPED_CODE) in card.inner_text()
        assert tab.page.locator("#voucher-confirm").is_visible()
    shot(sam, "voucher-found-phone")

    with sam.page.expect_response(lambda r: r.url.endswith("/staff/vouchers/redeem")) as done:
        sam.page.locator("#voucher-confirm").click()
    assert done.value.status == 200
    assert done.value.request.headers.get("x-csrftoken")
    ok = sam.page.locator("#voucher-result.ok")
    ok.wait_for()
    assert zh("Redeemed.") in ok.inner_text()
    assert sam.page.locator("#voucher-recent tbody tr").count() == 1
    shot(sam, "voucher-redeemed-phone")

    # Sue still has the confirm button from before: the server refuses, and says why.
    sue.expect_failed_load(f"{base}/staff/vouchers/redeem")
    with sue.page.expect_response(lambda r: r.url.endswith("/staff/vouchers/redeem")) as again:
        sue.page.locator("#voucher-confirm").click()
    assert again.value.status == 409
    refused = sue.page.locator("#voucher-result.refused")
    refused.wait_for()
    message = refused.inner_text()
    # Who and where, around the time it was redeemed.
    head = zh(
        "Already redeemed on %(at)s by %(by)s at %(store)s. It cannot be redeemed again.",
        at="\0",
        by=SALES[1],
        store=STORE,
    ).split("\0")
    assert head[0] in message and head[1] in message, message
    shot(sue, "voucher-refused-phone")

    # Sam types it again: refused at the look-up already.
    look_up(sam, base, TYPED_CODE, status=409)
    assert head[1] in sam.page.locator("#voucher-result.refused").inner_text()
    assert sam.page.locator("#voucher-confirm").count() == 0
    shot(sam, "voucher-twice-phone")

    for tab in (sam, sue):
        tab.assert_clean()


def test_scan_button_reads_the_qr_code_from_the_camera(
    voucher_server: str, phone: Callable[[], Tab]
) -> None:
    base = voucher_server
    tab = phone()
    sign_in(tab, base, OTHER[0], OTHER[2])
    open_redemption(tab, base)
    tab.page.locator("#voucher-store").fill(STORE)
    with tab.page.expect_response(
        lambda r: r.url.endswith("/staff/vouchers/lookup"), timeout=20_000
    ) as answer:
        tab.page.locator("#voucher-scan").click()
        tab.page.locator("#voucher-scanner video").wait_for(state="attached")
    assert answer.value.status == 200
    card = tab.page.locator("#voucher-result")
    card.wait_for()
    assert display(SCANNED_CODE) in card.inner_text()
    assert "139****4321" in card.inner_text()
    shot(tab, "voucher-scanned-phone")
    # The camera is released once the code is read.
    assert tab.page.locator("#voucher-scanner").is_hidden()
    assert tab.page.evaluate("document.getElementById('voucher-video').srcObject") is None
    tab.assert_clean()


def test_the_decoder_reads_a_segno_png(voucher_server: str, phone: Callable[[], Tab]) -> None:
    """The function the scanner runs on every frame, on an <img> of a code and on a link."""
    tab = phone()
    sign_in(tab, voucher_server, SALES[0], SALES[2])
    open_redemption(tab, voucher_server)
    decode = """async (src) => {
        const img = new Image();
        img.src = src;
        await img.decode();
        return window.leadkitVouchers.decode(img, img.naturalWidth, img.naturalHeight);
    }"""
    for text in (TYPED_CODE, f"{voucher_server}/v/{SCANNED_CODE}"):
        src = "data:image/png;base64," + base64.b64encode(qr_png(text)).decode()
        assert tab.page.evaluate(decode, src) == text
    assert (
        tab.page.evaluate(
            "(t) => window.leadkitVouchers.codeFrom(t)", f"{voucher_server}/v/{SCANNED_CODE}"
        )
        == SCANNED_CODE
    )
    blank = "data:image/png;base64," + base64.b64encode(_blank_png()).decode()
    assert tab.page.evaluate(decode, blank) is None
    tab.assert_clean()


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(out, format="PNG")
    return out.getvalue()
