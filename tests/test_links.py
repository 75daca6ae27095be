"""Accounts and tracked links: the staff pages, QR codes, CSV import, roles."""

from __future__ import annotations

import codecs
import io
import re
import struct
from typing import Any

import httpx
import pytest
import segno
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.i18n import translations
from app.guides.kind import DEMO_GUIDE
from app.links import service
from app.links.models import Account, TrackedLink
from app.links.schemas import AccountCreate, LinkCreate
from app.tools import service as tools
from tests.helpers import Browserish, soup

BASE = "http://testserver.local"
PAGE = "/staff/links"
IMPORT = "/staff/links/import"
CODE_RULE = "Codes have 3 to 32 characters: letters, digits, - and _."
IMPORTED = "Imported %(rows)s rows: %(accounts)s new accounts, %(links)s new links."
UNKNOWN_CHANNEL = "Unknown channel “%(value)s”: use 直播, 短视频, 主页, 搜索, 扫码 or 分享."
CODE_ELSEWHERE = "Code “%(value)s” is already used for another account, channel or tool."
CODE_TWICE = "Code “%(value)s” is already on row %(row)s of this file."
NO_OWNER = "No staff member with username “%(value)s”."
TOO_MANY = "Too many accounts of this kind: at most %(cap)s."
HEADER = "account_kind,account_name,platform,owner,link_code,channel,campaign,target_tool"
GOOD_CSV = "\n".join(
    [
        HEADER,
        "品牌号,装修家·官方号,抖音,,live11,直播,双11直播,guide-demo",
        "品牌号,装修家·官方号,抖音,,brand-search,搜索,,guide-demo",
        "员工号,设计师小林,douyin,mk,video-lin,短视频,避坑系列,guide-demo",
        "合作号,家居日记,微信,,share-jr,分享,,guide-demo",
        "",
    ]
)


def zh(msgid: str, **params: object) -> str:
    """The Chinese text the page shows for ``msgid``."""
    text = translations("zh_CN").gettext(msgid)
    assert text != msgid or not re.search("[a-z]", msgid), f"untranslated: {msgid}"
    return text % params if params else text


def _tool(client: Browserish, slug: str = "guide-demo") -> None:
    async def make(db: AsyncSession) -> None:
        await tools.create_and_publish(
            db, slug=slug, kind="guide", title=DEMO_GUIDE["title"], definition=DEMO_GUIDE
        )

    client.run(make)


def _marketer(client: Browserish) -> None:
    client.sign_in("mk", "marketer")
    _tool(client)


def _account(client: Browserish, kind: str = "brand", name: str = "官方号") -> int:
    async def make(db: AsyncSession) -> int:
        account = await service.create_account(db, None, AccountCreate(kind=kind, name=name))  # type: ignore[arg-type]
        return account.id

    return int(client.run(make))


def _link(client: Browserish, account_id: int, code: str, target: str = "guide-demo") -> int:
    async def make(db: AsyncSession) -> int:
        data = LinkCreate(account_id=account_id, channel="qr", target_slug=target, code=code)
        return (await service.create_link(db, None, data)).id

    return int(client.run(make))


def _upload(
    client: Browserish, body: bytes | None = None, *, text: str = "", name: str = "links.csv"
) -> httpx.Response:
    files: dict[str, Any] = {"file": (name, body or b"", "text/csv")}
    if body is None:  # the browser still sends an empty file part
        files = {"file": ("", b"", "application/octet-stream")}
    return client.submit(IMPORT, {"text": text}, page=IMPORT, files=files)


def _errors(page: httpx.Response) -> list[tuple[int, str, str]]:
    rows = soup(page).select("#import-errors tbody tr")
    return [
        (int(cells[0].text), cells[1].text.strip(), cells[2].text.strip())
        for cells in (row.find_all("td") for row in rows)
    ]


def _png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_marketer_creates_account_and_link_through_the_forms(client: Browserish) -> None:
    _marketer(client)
    dashboard = client.get("/staff/")
    assert soup(dashboard).select_one("header nav a[href='/staff/links']").text == zh("Links")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert soup(page).select_one("h1").text == zh("Accounts and links")

    created = client.submit(
        f"{PAGE}/accounts",
        {"kind": "employee", "name": " 设计师小林 ", "platform": "douyin", "owner_id": ""},
        page=PAGE,
    )
    assert created.status_code == 200
    row = soup(created).select_one("#account-list tbody tr")
    assert row is not None
    cells = [td.text.strip() for td in row.find_all("td")]
    assert cells[:3] == ["员工号", "设计师小林", "抖音"]
    account_id = row["id"].removeprefix("account-")
    assert "员工号 1/50" in soup(created).select_one("#account-caps").text

    linked = client.submit(
        PAGE,
        {
            "account_id": account_id,
            "channel": "live",
            "target_slug": "guide-demo",
            "campaign": "双11直播",
            "code": "Live-01",
        },
        page=PAGE,
    )
    assert linked.status_code == 200
    assert soup(linked).select_one("#link-created code").text == "Live-01"
    row = soup(linked).select_one("#link-list tbody tr")
    labels = {td["data-label"]: td.text.strip() for td in row.select("td[data-label]")}
    assert row.select_one("td.code code").text == "Live-01"
    assert labels[zh("Channel")] == "直播"
    assert labels[zh("Campaign")] == "双11直播"
    assert labels[zh("Target tool")] == DEMO_GUIDE["title"]  # its title, not its slug
    assert row.select_one("a.public-url")["href"] == f"{BASE}/s/Live-01"
    qr = [a["href"] for a in row.select("td.qr a")]
    assert qr == [f"{PAGE}/{row['id'].removeprefix('link-')}/qr.{ext}" for ext in ("svg", "png")]

    generated = client.submit(
        PAGE,
        {"account_id": account_id, "channel": "share", "target_slug": "guide-demo"},
        page=PAGE,
    )
    code = soup(generated).select_one("#link-created code").text
    assert re.fullmatch(f"[{service.CODE_ALPHABET}]{{8}}", code)
    assert client.count("tracked_link") == 2
    assert client.count("audit_entry WHERE action IN ('account.create', 'link.create')") == 3

    # The filters narrow the list.
    assert len(soup(client.get(f"{PAGE}?channel=live")).select("#link-list tbody tr")) == 1
    assert len(soup(client.get(f"{PAGE}?kind=brand")).select("#link-list tbody tr")) == 0
    assert len(soup(client.get(f"{PAGE}?kind=bogus")).select("#link-list tbody tr")) == 2


def test_short_link_redirects_and_deactivation_stops_it(client: Browserish) -> None:
    _marketer(client)
    link_id = _link(client, _account(client), "poster-a")
    go = client.get("/s/poster-a?utm_source=poster", follow_redirects=False)
    assert go.status_code == 302
    assert go.headers["location"] == "/t/guide-demo?utm_source=poster"

    off = client.submit(f"{PAGE}/{link_id}/active", {"active": "false"}, page=PAGE)
    assert off.status_code == 200
    assert soup(off).select_one(f"#link-{link_id} .state").text == zh("Inactive")
    assert client.get("/s/poster-a", follow_redirects=False).status_code == 404
    on = client.submit(
        f"{PAGE}/{link_id}/active", {"active": "true"}, page=PAGE, headers={"HX-Request": "true"}
    )
    assert on.status_code == 200
    assert on.text.lstrip().startswith('<div id="links-panel">')  # htmx gets the partial
    assert client.get("/s/poster-a", follow_redirects=False).status_code == 302


def test_qr_codes_encode_the_public_url(client: Browserish) -> None:
    _marketer(client)
    link_id = _link(client, _account(client), "qr-shop")
    url = f"{BASE}/s/qr-shop"
    qr = segno.make_qr(url, error="m")

    svg = client.get(f"{PAGE}/{link_id}/qr.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["content-disposition"] == 'attachment; filename="qr-qr-shop.svg"'
    expected_svg = io.BytesIO()
    qr.save(expected_svg, kind="svg", scale=8, border=2, title=url)
    assert svg.content == expected_svg.getvalue()
    assert b"<svg" in svg.content and url.encode() in svg.content

    png = client.get(f"{PAGE}/{link_id}/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == 'attachment; filename="qr-qr-shop.png"'
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    expected_png = io.BytesIO()
    qr.save(expected_png, kind="png", scale=8, border=2)
    assert png.content == expected_png.getvalue()
    side = (qr.symbol_size(scale=1, border=0)[0] + 4) * 8
    assert _png_size(png.content) == (side, side)

    # The QR code follows the host the page was opened on.
    other = client.get(f"{PAGE}/{link_id}/qr.png", headers={"Host": "m.example.cn"})
    assert other.content != png.content
    assert client.get(f"{PAGE}/999999/qr.png").status_code == 404


def test_bad_link_and_account_forms_change_nothing(client: Browserish) -> None:
    _marketer(client)
    account_id = _account(client)
    _link(client, account_id, "taken1")
    for data, status, message in (
        ({"code": "TAKEN1"}, 409, zh("This code is already used by another link.")),
        ({"code": "has space"}, 400, zh(CODE_RULE)),
        ({"code": "x"}, 400, zh(CODE_RULE)),
        ({"target_slug": "no-such-tool"}, 400, zh("No such tool.")),
        ({"account_id": "999999"}, 400, zh("No such account.")),
    ):
        form = {"account_id": str(account_id), "channel": "qr", "target_slug": "guide-demo"}
        response = client.submit(PAGE, {**form, **data}, page=PAGE)
        assert response.status_code == status, data
        assert message in soup(response).select_one("#link-form").find_previous(class_="alert").text
    for data in ({"channel": "telepathy"}, {"code": "c" * 65}):
        form = {"account_id": str(account_id), "channel": "qr", "target_slug": "guide-demo"}
        assert client.submit(PAGE, {**form, **data}, page=PAGE).status_code == 400
    assert client.count("tracked_link") == 1

    hostile = "<script>alert(1)</script>"
    ok = client.submit(f"{PAGE}/accounts", {"kind": "partner", "name": hostile}, page=PAGE)
    assert ok.status_code == 200
    assert hostile not in ok.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ok.text
    again = client.submit(f"{PAGE}/accounts", {"kind": "partner", "name": hostile}, page=PAGE)
    assert again.status_code == 409
    assert zh("An account of this kind with this name already exists.") in again.text
    for data in (
        {"kind": "partner", "name": "长" * 65},
        {"kind": "partner", "name": ""},
        {"kind": "emperor", "name": "x"},
        {"kind": "partner", "name": "x", "owner_id": "abc"},
    ):
        assert client.submit(f"{PAGE}/accounts", data, page=PAGE).status_code == 400, data
    blank = client.submit(f"{PAGE}/accounts", {"kind": "partner", "name": "   "}, page=PAGE)
    assert blank.status_code == 400
    assert zh("The account needs a name.") in blank.text
    assert client.count("account") == 2


def test_account_caps_hold_in_the_form(client: Browserish) -> None:
    _marketer(client)
    for n in range(10):
        _account(client, "brand", f"品牌{n}")
    refused = client.submit(f"{PAGE}/accounts", {"kind": "brand", "name": "品牌10"}, page=PAGE)
    assert refused.status_code == 409
    assert zh("At most %(cap)s accounts of this kind.", cap=10) in refused.text
    assert client.count("account") == 10


def test_csv_import_with_bom_and_chinese_labels_is_idempotent(client: Browserish) -> None:
    _marketer(client)
    body = codecs.BOM_UTF8 + GOOD_CSV.replace("\n", "\r\n").encode()
    first = _upload(client, body)
    assert first.status_code == 200, first.text
    summary = soup(first).select_one("#import-summary").text
    assert zh(IMPORTED, rows=4, accounts=3, links=4) in summary
    assert client.count("account") == 3
    assert client.count("tracked_link") == 4

    async def bound(db: AsyncSession) -> dict[str, tuple[str, str, str, str, str | None]]:
        links = (await db.execute(select(TrackedLink))).scalars()
        return {
            link.code: (
                link.account.kind,
                link.account.name,
                link.channel,
                link.campaign,
                link.account.platform,
            )
            for link in links
        }

    assert client.run(bound) == {
        "live11": ("brand", "装修家·官方号", "live", "双11直播", "douyin"),
        "brand-search": ("brand", "装修家·官方号", "search", "", "douyin"),
        "video-lin": ("employee", "设计师小林", "video", "避坑系列", "douyin"),
        "share-jr": ("partner", "家居日记", "share", "", "wechat"),
    }

    async def owner(db: AsyncSession) -> str | None:
        account = (await db.execute(select(Account).where(Account.kind == "employee"))).scalar()
        assert account is not None and account.owner_id is not None
        from app.staff.models import StaffUser

        user = await db.get(StaffUser, account.owner_id)
        return user.username if user else None

    assert client.run(owner) == "mk"

    second = _upload(client, body)
    assert second.status_code == 200
    assert (
        zh(IMPORTED, rows=4, accounts=0, links=0) in soup(second).select_one("#import-summary").text
    )
    assert client.count("account") == 3
    assert client.count("tracked_link") == 4
    assert client.count("audit_entry WHERE action = 'links.import'") == 2
    assert client.get("/s/video-lin", follow_redirects=False).headers["location"] == (
        "/t/guide-demo"
    )


def test_csv_import_reads_gb18030_and_pasted_tab_separated_rows(client: Browserish) -> None:
    _marketer(client)
    legacy = _upload(client, GOOD_CSV.encode("gb18030"))
    assert legacy.status_code == 200, _errors(legacy)
    assert client.count("tracked_link") == 4
    pasted = (
        "账号类型\t账号名称\t渠道码\t渠道\t目标工具\n投流\t巨量投放1\tads-01\t主页\tguide-demo\n"
    )
    response = _upload(client, text=pasted)
    assert response.status_code == 200, _errors(response)
    assert client.count("account") == 4
    assert client.count("tracked_link") == 5


def test_csv_import_with_bad_rows_imports_nothing_and_lists_them(client: Browserish) -> None:
    _marketer(client)
    _link(client, _account(client, "brand", "老账号"), "taken1")
    rows = [
        HEADER,
        "品牌号,新品牌,抖音,,ok-code,直播,,guide-demo",  # fine on its own
        "员工号,设计师小林,抖音,,vid-1,弹幕,,guide-demo",  # unknown channel
        "合作号,,微信,,,,,",  # missing name
        "合作号,家居日记,微信,,has space,分享,,guide-demo",  # code with spaces
        "员工号,设计师小林,抖音,,taken1,扫码,,guide-demo",  # code bound to another account
        "员工号,设计师小林,抖音,,ok-code,扫码,,guide-demo",  # code repeated in this file
        "品牌号,<b>粗体</b>,抖音,,,,,",  # hostile but valid: kept out by the other rows
        "员工号," + "长" * 65 + ",抖音,,,,,",  # name too long
        "老板号,某某,抖音,,,,,",  # unknown kind
        "员工号,小周,快手,nobody,z-code,直播,,no-tool",  # platform, owner and tool unknown
    ]
    response = _upload(client, "\n".join(rows).encode())
    assert response.status_code == 400
    assert soup(response).select_one("#import-error").text == zh(
        "Nothing was imported: fix the rows listed below and try again."
    )
    errors = _errors(response)
    where = [(row, column) for row, column, _ in errors]
    assert where == [
        (3, "channel"),
        (4, "account_name"),
        (5, "link_code"),
        (6, "link_code"),
        (7, "link_code"),
        (9, "account_name"),
        (10, "account_kind"),
        (11, "platform"),
        (11, "owner"),
        (11, "target_tool"),
    ]
    problems = dict(((row, column), text) for row, column, text in errors)
    assert problems[(3, "channel")] == zh(UNKNOWN_CHANNEL, value="弹幕")
    assert problems[(4, "account_name")] == zh("Required.")
    assert problems[(5, "link_code")] == zh(CODE_RULE)
    assert problems[(6, "link_code")] == zh(CODE_ELSEWHERE, value="taken1")
    assert problems[(7, "link_code")] == zh(CODE_TWICE, value="ok-code", row=2)
    assert problems[(9, "account_name")] == zh("At most %(max)s characters.", max=64)
    assert problems[(11, "owner")] == zh(NO_OWNER, value="nobody")
    assert "<b>" not in response.text.split('id="import-errors"')[1].split("</table>")[0]
    assert client.count("account") == 1
    assert client.count("tracked_link") == 1
    assert client.count("audit_entry WHERE action = 'links.import'") == 0


def test_csv_import_beyond_the_account_caps_is_refused(client: Browserish) -> None:
    _marketer(client)
    for n in range(8):
        _account(client, "brand", f"品牌{n}")
    rows = [HEADER] + [f"品牌号,新品牌{n},抖音,,,,," for n in range(3)]
    rows += [f"合作号,达人{n},抖音,,,,," for n in range(201)]
    response = _upload(client, "\n".join(rows).encode())
    assert response.status_code == 400
    errors = _errors(response)
    assert [(row, column) for row, column, _ in errors] == [
        (4, "account_kind"),
        (205, "account_kind"),
    ]
    assert errors[0][2] == zh(TOO_MANY, cap=10)
    assert errors[1][2] == zh(TOO_MANY, cap=200)
    assert client.count("account") == 8
    fits = _upload(client, "\n".join(rows[:3]).encode())
    assert fits.status_code == 200
    assert client.count("account") == 10


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", None),
        (b"kind,name\nbrand,x\n", "Unknown column."),
        (b"account_name\nx\n", "This column is missing."),
        (b"\xff\xfe\x00\xd8bad", None),
        (
            HEADER.encode() + b"\nbrand,x,douyin,,,,,,,extra\n",
            "This row has more cells than the header.",
        ),
    ],
)
def test_csv_import_rejects_malformed_files(
    client: Browserish, body: bytes, message: str | None
) -> None:
    _marketer(client)
    response = _upload(client, body) if body else _upload(client, text="")
    assert response.status_code == 400
    if message:
        assert zh(message) in [cells[2] for cells in _errors(response)]
    assert client.count("account") == 0


def test_oversized_uploads_get_a_clear_error(client: Browserish) -> None:
    _marketer(client)
    line = "合作号,达人,抖音,,,,,\n".encode()
    big = HEADER.encode() + b"\n" + line * (1_048_576 // len(line) + 1)
    response = _upload(client, big)
    assert response.status_code == 413
    assert zh("The file is larger than 1 MB: split it and import the parts.") in response.text
    huge = big * 3
    response = _upload(client, huge)
    assert response.status_code == 413
    assert zh("What you sent is too large.") in response.text
    assert client.count("account") == 0


@pytest.mark.parametrize("role", ["sales", "host"])
def test_other_roles_get_403_on_every_links_page(client: Browserish, role: str) -> None:
    _tool(client)
    link_id = _link(client, _account(client), "poster-a")
    client.sign_in("someone", role)
    assert "/staff/links" not in client.get("/staff/").text
    for path in (PAGE, IMPORT, f"{PAGE}/{link_id}/qr.svg", f"{PAGE}/{link_id}/qr.png"):
        assert client.get(path).status_code == 403, path
    for path, data in (
        (f"{PAGE}/accounts", {"kind": "brand", "name": "x"}),
        (PAGE, {"account_id": "1", "channel": "qr", "target_slug": "guide-demo"}),
        (f"{PAGE}/{link_id}/active", {"active": "false"}),
    ):
        assert client.submit(path, data, page="/staff/").status_code == 403, path
    files = {"file": ("a.csv", GOOD_CSV.encode(), "text/csv")}
    assert client.submit(IMPORT, {}, page="/staff/", files=files).status_code == 403
    assert client.count("account") == 1
    assert client.count("tracked_link") == 1


def test_admin_holds_the_marketer_role_here(client: Browserish) -> None:
    _tool(client)
    link_id = _link(client, _account(client), "poster-a")
    client.sign_in("boss", "admin")
    nav = soup(client.get("/staff/")).select_one("header nav")
    assert nav is not None and len(nav.select('a[href="/staff/links"]')) == 1
    for path in (PAGE, IMPORT, f"{PAGE}/{link_id}/qr.svg", f"{PAGE}/{link_id}/qr.png"):
        assert client.get(path).status_code == 200, path


def test_signed_out_visitors_are_sent_to_sign_in(client: Browserish) -> None:
    for path in (PAGE, IMPORT):
        response = client.get(path, follow_redirects=False)
        assert response.status_code in (302, 303)
        assert response.headers["location"].startswith("/staff/login")
