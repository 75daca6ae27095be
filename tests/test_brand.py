"""The brand an admin sets at run time (/staff/admin/brand): name, logo, colour, contact phone —
checked when saved, shown by the landing page, every visitor page's header, /brand.css, the
privacy notice and the PDF reports, in this process at once and in the others within seconds.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from app.brand.book import REFRESH_SECONDS, BrandBook
from app.brand.logo import MAX_LOGO_BYTES
from app.brand.service import DEFAULT_COLOR, contrast_with_white
from app.core.state import part
from app.demo.service import seed_tools
from app.reports.service import ReportRenderer
from tests.helpers import Browserish, soup
from tests.served import ADMIN_PASSWORD, serve

PAGE = "/staff/admin/brand"


def png(width: int = 300, height: int = 100, color: tuple[int, ...] = (20, 90, 200, 255)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A phone photo: EXIF with a GPS position and an orientation."""
    image = Image.new("RGB", (200, 100), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated 90° clockwise
    exif[0x8825] = {2: (31.0, 14.0, 0.0), 4: (121.0, 28.0, 0.0)}  # GPS: Shanghai
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def _admin(client: Browserish) -> None:
    client.sign_in("boss", "admin")


def _save(
    client: Browserish,
    *,
    name: str = "蓝鲸家装",
    color: str = "#1a5fb4",
    phone: str = "400-820-8820",
    logo: tuple[str, bytes, str] | None = None,
    remove_logo: bool = False,
) -> httpx.Response:
    data = {"_csrf_token": client.csrf(PAGE), "name": name, "color": color, "contact_phone": phone}
    if remove_logo:
        data["remove_logo"] = "on"
    files = {"logo": logo} if logo else {"logo": ("", b"", "application/octet-stream")}
    return client.raw.post(PAGE, data=data, files=files)


def _version(client: Browserish) -> int:
    return part(client.app, BrandBook).current().version


def _text(page: httpx.Response) -> str:
    return " ".join(soup(page).get_text(" ").split())


# --- the landing page ---------------------------------------------------------------------------


def test_the_landing_lists_published_tools_as_cards_without_a_staff_link(
    client: Browserish,
) -> None:
    client.run(seed_tools)
    page = soup(client.get("/"))
    cards = {
        a["href"]: {
            "kind": a.select_one(".tool-kind").get_text(strip=True),
            "title": a.select_one(".tool-title").get_text(strip=True),
            "summary": a.select_one(".tool-summary").get_text(strip=True),
        }
        for a in page.select("a.tool-card")
    }
    demos = {"/t/guide-demo", "/t/grab-demo", "/t/draw-demo", "/t/renovation", "/t/insurance"}
    assert set(cards) == demos
    assert cards["/t/renovation"]["title"] == "装修预算计算器"
    assert cards["/t/renovation"]["kind"] == "计算器"
    assert cards["/t/renovation"]["summary"].startswith("输入房屋面积")
    assert len(cards["/t/renovation"]["summary"]) <= 60
    assert cards["/t/grab-demo"]["summary"].startswith("设计师上门量房")
    assert cards["/t/guide-demo"]["summary"].startswith("从量房到验收")
    assert cards["/t/draw-demo"]["kind"] == "抽奖"
    assert cards["/t/draw-demo"]["summary"].startswith("今晚 20:30 直播间现场开奖")
    # Visitors are not sent to the staff sign-in.
    assert page.select("a[href^='/staff']") == []
    # The brand heads the page: LEADKIT_BRAND_NAME until an admin saves one.
    assert page.select_one(".site-name").get_text(strip=True) == "leadkit"
    assert page.select_one("link[href^='/brand.css?v=0']") is not None


def test_an_unpublished_tool_is_not_offered(client: Browserish) -> None:
    client.run(seed_tools)

    async def archive(db: Any) -> None:
        from sqlalchemy import update

        from app.tools.models import Tool

        await db.execute(update(Tool).where(Tool.slug == "insurance").values(status="archived"))

    client.run(archive)
    hrefs = [a["href"] for a in soup(client.get("/")).select("a.tool-card")]
    assert "/t/insurance" not in hrefs and "/t/renovation" in hrefs


# --- the admin page -----------------------------------------------------------------------------


def test_only_admins_reach_the_brand_page(client: Browserish) -> None:
    assert client.get(PAGE, follow_redirects=False).status_code in (302, 303)
    client.sign_in("mara", "marketer")
    assert client.get(PAGE).status_code == 403
    refused = client.raw.post(PAGE, data={"_csrf_token": client.csrf("/staff/"), "name": "x"})
    assert refused.status_code == 403
    assert _version(client) == 0


def test_an_admin_saves_the_brand_and_every_page_shows_it(client: Browserish) -> None:
    client.run(seed_tools)
    _admin(client)
    upload = png()
    saved = _save(client, logo=("logo.png", upload, "image/png"))
    assert saved.status_code == 200, _text(saved)
    assert soup(saved).select_one("#brand-saved") is not None
    assert _version(client) == 1

    home = soup(client.get("/"))
    assert home.select_one(".site-name").get_text(strip=True) == "蓝鲸家装"
    assert home.select_one("title").get_text(strip=True) == "蓝鲸家装"
    logo = home.select_one("img.site-logo")
    assert logo is not None and logo["src"] == "/brand/logo.png?v=1"
    call = home.select_one("#brand-call")
    assert call["href"] == "tel:+864008208820"
    assert "400 820 8820" in call.get_text()
    # Every visitor page carries the brand: a tool page too.
    tool = soup(client.get("/t/guide-demo"))
    assert tool.select_one(".site-name").get_text(strip=True) == "蓝鲸家装"
    assert tool.select_one("link[href='/brand.css?v=1']") is not None

    css = client.get("/brand.css", params={"v": "1"})
    assert css.headers["content-type"].startswith("text/css")
    assert "--brand: #1a5fb4;" in css.text
    assert re.search(r"--brand-dark: #[0-9a-f]{6};", css.text)
    assert "immutable" in css.headers["cache-control"]
    # An old version's URL is answered with the current colours, and not kept.
    stale = client.get("/brand.css", params={"v": "0"})
    assert "--brand: #1a5fb4;" in stale.text and stale.headers["cache-control"] == "no-cache"

    served_logo = client.get("/brand/logo.png", params={"v": "1"})
    assert served_logo.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(served_logo.content)).size == (300, 100)

    # The privacy notice names the brand and its phone while no setting names others.
    notice = _text(client.get("/privacy"))
    assert "蓝鲸家装 会收集" in notice and "400 820 8820" in notice

    assert client.count("audit_entry WHERE action = 'brand.update'") == 1
    # The form shows what was saved, the phone as people read it.
    form = soup(client.get(PAGE))
    assert form.select_one("input[name=contact_phone]")["value"] == "400 820 8820"
    assert form.select_one("input[name=color]")["value"] == "#1a5fb4"


def test_a_second_save_keeps_the_logo_unless_removed(client: Browserish) -> None:
    _admin(client)
    assert _save(client, logo=("logo.png", png(), "image/png")).status_code == 200
    assert _save(client, name="蓝鲸").status_code == 200
    assert _version(client) == 2
    assert client.get("/brand/logo.png").status_code == 200
    assert _save(client, remove_logo=True).status_code == 200
    assert client.get("/brand/logo.png").status_code == 404
    assert soup(client.get("/")).select_one("img.site-logo") is None


def test_a_photo_is_stored_upright_without_its_exif(client: Browserish) -> None:
    _admin(client)
    assert _save(client, logo=("photo.jpg", jpeg_with_gps(), "image/jpeg")).status_code == 200
    stored = client.get("/brand/logo.png").content
    image = Image.open(io.BytesIO(stored))
    assert image.format == "PNG"
    assert image.size == (100, 200)  # turned as the orientation said
    assert not image.getexif()
    assert b"Exif" not in stored


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "请填写品牌名称"),
        ({"name": "   "}, "请填写品牌名称"),
        ({"name": "蓝" * 33}, "最多 32 个字"),
        ({"name": "蓝鲸\u202e家装"}, "无法显示的字符"),
        ({"name": "蓝鲸\n家装"}, "无法显示的字符"),
        ({"color": "red"}, "#e8572a"),
        ({"color": "#fff"}, "#e8572a"),
        ({"color": "#12345g"}, "#e8572a"),
        ({"color": "#1a5fb4;} body{display:none"}, "#e8572a"),
        ({"color": ""}, "#e8572a"),
        ({"color": "#ffff00"}, "太浅"),
        ({"color": "#ffffff"}, "太浅"),
        ({"phone": "12345"}, "联系电话不是有效号码"),
        ({"phone": "call us"}, "联系电话不是有效号码"),
        ({"phone": "1" * 60}, "联系电话不是有效号码"),
    ],
)
def test_bad_fields_are_refused_and_change_nothing(
    client: Browserish, changes: dict[str, str], message: str
) -> None:
    _admin(client)
    assert _save(client, name="安心家装", color="#0b6e4f").status_code == 200
    refused = _save(client, **changes)  # type: ignore[arg-type]
    assert refused.status_code == 400
    assert message in soup(refused).select_one("#brand-error").get_text()
    assert _version(client) == 1
    assert part(client.app, BrandBook).current().name == "安心家装"
    assert "#0b6e4f" in client.get("/brand.css").text
    # What was typed comes back to be corrected.
    typed = soup(refused).select_one("input[name=name]")["value"]
    assert typed == changes.get("name", "蓝鲸家装")


SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="100" height="40"><script>alert(1)</script>
<rect width="100" height="40" fill="#1a5fb4"/></svg>"""


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (100, 40)).save(out, "GIF")
    return out.getvalue()


def _bomb() -> bytes:
    """A small file that says it is a 5000 x 20 image."""
    out = io.BytesIO()
    Image.new("1", (5000, 20)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("logo.svg", SVG, "PNG 或 JPEG"),
        ("logo.png", SVG, "PNG 或 JPEG"),  # named PNG, is SVG
        ("logo.gif", _gif(), "PNG 或 JPEG"),
        ("logo.png", b"not an image at all", "PNG 或 JPEG"),
        ("logo.png", png()[:60], "PNG 或 JPEG"),  # cut short
        ("logo.png", _bomb(), "4096"),
        ("logo.png", png(8, 8), "16"),
        ("logo.png", b"\x89PNG" + b"\0" * MAX_LOGO_BYTES, "512 KB"),
    ],
)
def test_a_logo_that_is_not_a_usable_png_or_jpeg_is_refused(
    client: Browserish, name: str, content: bytes, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As WeasyPrint sets it on import: the check must not depend on who imported what.
    monkeypatch.setattr("PIL.ImageFile.LOAD_TRUNCATED_IMAGES", True)
    _admin(client)
    refused = _save(client, logo=(name, content, "image/png"))
    assert refused.status_code == 400, _text(refused)
    assert message in soup(refused).select_one("#brand-error").get_text()
    assert _version(client) == 0
    assert client.get("/brand/logo.png").status_code == 404


def test_the_default_colour_is_readable_and_the_threshold_holds() -> None:
    assert contrast_with_white(DEFAULT_COLOR) >= 3.0
    assert contrast_with_white("#000000") == pytest.approx(21.0)
    assert contrast_with_white("#ffffff") == pytest.approx(1.0)


# --- PDF reports --------------------------------------------------------------------------------


def test_the_pdf_report_carries_the_brand(client: Browserish, tmp_path: Path) -> None:
    from tests.test_calc_flow import authorise, form_values

    client.run(seed_tools)
    _admin(client)
    assert _save(client, logo=("logo.png", png(), "image/png")).status_code == 200
    client.raw.cookies.clear()
    values = form_values(client, "/t/renovation")
    answered = client.post("/t/renovation/evaluate", data=values, headers={"HX-Request": "true"})
    assert answered.status_code == 200
    authorise(client)
    pdf = client.get("/t/renovation/report.pdf")
    assert pdf.status_code == 200
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(
        [shutil.which("pdftotext") or "pdftotext", "-raw", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "蓝鲸家装" in text and "leadkit" not in text
    images = subprocess.run(
        [shutil.which("pdfimages") or "pdfimages", "-list", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"^\s*1\s+\d+\s+image\s+300\s+100", images, re.MULTILINE), images


def test_a_brand_change_retires_the_cached_reports(client: Browserish, tmp_path: Path) -> None:
    renderer = part(client.app, ReportRenderer)
    renderer.directory.mkdir(parents=True, exist_ok=True)
    before = renderer.path_for("key")
    before.write_bytes(b"%PDF-1.7 old brand %%EOF")
    _admin(client)
    assert _save(client).status_code == 200
    assert renderer.brand_stamp == "1"
    assert renderer.path_for("key") != before
    deadline = time.monotonic() + 5
    while before.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not before.exists(), "a report with the old brand stayed in the cache"


# --- several worker processes -------------------------------------------------------------------


@pytest.mark.served
def test_every_worker_process_shows_a_change_within_seconds(tmp_path: Path) -> None:
    with serve("sqlite", tmp_path, workers=2) as app:
        with httpx.Client(base_url=app.url, timeout=10) as staff:
            token = _csrf(staff.get("/staff/login"))
            signed_in = staff.post(
                "/staff/login",
                data={"_csrf_token": token, "username": "admin", "password": ADMIN_PASSWORD},
            )
            assert signed_in.status_code in (200, 303), signed_in.text
            token = _csrf(staff.get(PAGE))
            saved = staff.post(
                PAGE,
                data={"_csrf_token": token, "name": "多进程家装", "color": "#0b6e4f"},
                files={"logo": ("", b"", "application/octet-stream")},
            )
            assert saved.status_code == 200, saved.text
        deadline = time.monotonic() + REFRESH_SECONDS + 5
        streak = 0
        while streak < 20:
            assert time.monotonic() < deadline, "a worker still shows the old brand"
            # A new connection each time, so both workers answer in turn.
            home = httpx.get(f"{app.url}/", timeout=10)
            css = httpx.get(f"{app.url}/brand.css", timeout=10)
            fresh = "多进程家装" in home.text and "#0b6e4f" in css.text
            streak = streak + 1 if fresh else 0
            time.sleep(0.05)


def _csrf(page: httpx.Response) -> str:
    meta = soup(page).find("meta", attrs={"name": "csrf-token"})
    assert meta is not None
    return str(meta["content"])
