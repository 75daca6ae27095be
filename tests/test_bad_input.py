"""Bad input gets a clear 4xx and changes nothing: unknown routes, wrong methods, oversized
bodies, malformed JSON, wrong types, missing fields, hostile strings, bad bearer tokens,
replayed requests, open redirects. Every test runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update

from app.core.state import part
from app.demo.service import seed_tools
from app.settings import Settings
from app.staff import tokens
from app.staff.auth import SESSION_COOKIE
from app.staff.models import ApiToken
from app.staff.schemas import ApiTokenCreate
from tests.helpers import PASSWORD, Browserish, soup

API_STAFF = "/api/v1/admin/staff"
SCRIPT = "<script>alert(1)</script>"
SQLISH = "'; DROP TABLE staff_user; --"
RTL_OVERRIDE = "\u202eevil"
ZERO_WIDTH = "bo\u200bss"
NUL = "bo\x00ss"
GOOD_BODY = {"username": "api_user", "password": "api-password-1", "role": "host"}


def admin_token(client: Browserish, name: str = "ops") -> tuple[ApiToken, str]:
    token, raw = client.run(tokens.create_token, None, ApiTokenCreate(name=name, role="admin"))
    return token, raw


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def assert_no_leak(response: httpx.Response) -> None:
    """Error pages say what went wrong in words, never with a stack trace."""
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    assert "sqlalchemy" not in response.text.lower()


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict:
    """An RFC 9457 problem with the given status that, when ``field`` is given, names it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"] and body["title"] and body["code"]
    if field is not None:
        errors = body.get("errors", {})
        assert field in errors or any(f"`{field}`" in str(v) for v in errors.values()), body
    assert_no_leak(response)
    return body


def assert_error_page(response: httpx.Response, status: int, *phrases: str) -> None:
    """A Chinese HTML error page with the security headers."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    for phrase in phrases:
        assert phrase in response.text
    assert_security_headers(response)
    assert_no_leak(response)


def assert_security_headers(response: httpx.Response) -> None:
    assert "frame-ancestors" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"]


# --- unknown routes and wrong methods -------------------------------------------------------


def test_unknown_page_is_a_chinese_404_with_security_headers(client: Browserish) -> None:
    response = client.get("/nope")
    assert_error_page(response, 404, "页面不存在", "您访问的页面或内容不存在")
    assert soup(response).find(class_="error") is not None


def test_unknown_api_route_is_problem_json(client: Browserish) -> None:
    body = assert_problem(client.get("/api/v1/nope"), 404)
    assert body["code"] == "not_found"
    # Even with a valid token, an unknown route is a 404, not a 401 or a 500.
    _, raw = admin_token(client)
    assert_problem(client.post("/api/v1/nope", json={}, headers=bearer(raw)), 404)


def test_wrong_method_is_405(client: Browserish) -> None:
    page = client.delete("/staff/login")
    assert_error_page(page, 405, "此处不允许该操作")
    assert "POST" in page.headers.get("allow", "") or "GET" in page.headers.get("allow", "")
    logout = client.get("/staff/logout")
    assert_error_page(logout, 405)
    _, raw = admin_token(client)
    api = client.get(API_STAFF, headers=bearer(raw))
    assert_problem(api, 405)
    assert "POST" in api.headers.get("allow", "")
    assert client.put("/api/v1/me", headers=bearer(raw)).status_code == 405


# --- oversized bodies -----------------------------------------------------------------------


def test_oversized_login_form_is_413_and_signs_nobody_in(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    limit = part(client.app, Settings).max_body_bytes
    response = client.submit(
        "/staff/login",
        {"username": "boss", "password": PASSWORD, "next": "/" + "a" * limit},
        follow_redirects=False,
    )
    assert_error_page(response, 413, "内容过大", "提交的内容过大")
    assert SESSION_COOKIE not in response.cookies
    assert client.count("staff_session") == 0
    assert client.count("staff_user") == 1


def test_oversized_json_is_413_and_writes_nothing(client: Browserish) -> None:
    _, raw = admin_token(client)
    limit = part(client.app, Settings).max_body_bytes
    huge = json.dumps({**GOOD_BODY, "display_name": "x" * limit}).encode()
    response = client.post(
        API_STAFF, content=huge, headers={**bearer(raw), "content-type": "application/json"}
    )
    assert_problem(response, 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
        yield huge[: len(huge) // 2]
        yield huge[len(huge) // 2 :]

    streamed = client.post(
        API_STAFF, content=chunks(), headers={**bearer(raw), "content-type": "application/json"}
    )
    assert_problem(streamed, 413)
    assert client.count("staff_user") == 0
    assert client.count("staff_session") == 0


# --- malformed JSON, wrong types, missing fields, hostile strings on the JSON API ------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"username": "api_user", "password": ',
        b"\xff\xfe\x00garbage",
        b"",
        b"null",
        b"[1, 2, 3]",
        b'"just a string"',
        b"[" * 50_000 + b"]" * 50_000,
        b'{"username": "api_user", "username": {"nested": true}}',
    ],
    ids=["truncated", "not-utf8", "empty", "null", "array", "string", "deep", "dup-key"],
)
def test_malformed_json_is_400_and_writes_nothing(client: Browserish, content: bytes) -> None:
    _, raw = admin_token(client)
    response = client.post(
        API_STAFF, content=content, headers={**bearer(raw), "content-type": "application/json"}
    )
    assert_problem(response, 400)
    assert client.count("staff_user") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD_BODY, "username": 5}, "username"),
        ({**GOOD_BODY, "username": None}, "username"),
        ({**GOOD_BODY, "password": ["a-list", "of-things"]}, "password"),
        ({**GOOD_BODY, "role": {"name": "admin"}}, "role"),
        ({**GOOD_BODY, "display_name": 10**400}, "display_name"),
        ({"password": "api-password-1", "role": "host"}, "username"),
        ({"username": "api_user", "role": "host"}, "password"),
        ({"username": "api_user", "password": "api-password-1"}, "role"),
        ({**GOOD_BODY, "role": "emperor"}, "role"),
        ({**GOOD_BODY, "role": "ADMIN"}, "role"),
        ({**GOOD_BODY, "password": "short"}, "password"),
        ({**GOOD_BODY, "username": "u" * 100_000}, "username"),
        ({**GOOD_BODY, "password": "p" * 100_000}, "password"),
        ({**GOOD_BODY, "display_name": "名" * 10_000}, "display_name"),
        ({**GOOD_BODY, "username": SCRIPT}, "username"),
        ({**GOOD_BODY, "username": SQLISH}, "username"),
        ({**GOOD_BODY, "username": ZERO_WIDTH}, "username"),
        ({**GOOD_BODY, "username": NUL}, "username"),
        ({**GOOD_BODY, "username": "boss\n"}, "username"),
        ({**GOOD_BODY, "display_name": RTL_OVERRIDE}, "display_name"),
        ({**GOOD_BODY, "display_name": "小\u200b张"}, "display_name"),
        ({**GOOD_BODY, "display_name": "a\x00b"}, "display_name"),
        ({**GOOD_BODY, "display_name": "line\r\nbreak"}, "display_name"),
    ],
)
def test_invalid_staff_json_names_the_field_and_writes_nothing(
    client: Browserish, body: dict[str, Any], field: str
) -> None:
    _, raw = admin_token(client)
    audit_before = client.count("audit_entry")
    response = client.post(API_STAFF, json=body, headers=bearer(raw))
    problem = assert_problem(response, 400, field)
    # Messages describe the rule; they never echo the hostile value back.
    assert SCRIPT not in response.text and "\x00" not in problem["detail"]
    assert client.count("staff_user") == 0
    assert client.count("audit_entry") == audit_before


def test_hostile_display_name_is_stored_verbatim_and_escaped_on_pages(client: Browserish) -> None:
    """Markup and SQL in a free-text field are data: stored as sent, shown escaped."""
    _, raw = admin_token(client)
    for username, name in (("xss_user", SCRIPT), ("sql_user", SQLISH)):
        created = client.post(
            API_STAFF,
            json={**GOOD_BODY, "username": username, "display_name": name},
            headers=bearer(raw),
        )
        assert created.status_code == 201, created.text
        assert created.json()["display_name"] == name
    assert client.count("staff_user") == 2  # the table is still there
    client.sign_in("boss", "admin")
    page = client.get("/staff/admin/users")
    assert page.status_code == 200
    assert SCRIPT not in page.text
    assert "&lt;script&gt;" in page.text
    shown = [field["value"] for field in soup(page).select("input[name=display_name]")]
    assert SCRIPT in shown and SQLISH in shown


def test_wrong_content_type_is_a_clear_4xx(client: Browserish) -> None:
    _, raw = admin_token(client)
    plain = client.post(
        API_STAFF,
        content=json.dumps(GOOD_BODY).replace("{", "").encode(),
        headers={**bearer(raw), "content-type": "text/plain"},
    )
    assert_problem(plain, 415)
    form = client.post(API_STAFF, data=GOOD_BODY, headers=bearer(raw))
    assert_problem(form, 415)
    assert client.count("staff_user") == 0


# --- bearer tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "Basic x",
        "bearer lk_" + "a" * 10_240,
        "Bearer lk_not-a-real-token",
        "Bearer not-even-our-prefix",
        f"Bearer lk_{SQLISH}",
        "Token lk_abc",
    ],
)
def test_bad_bearer_token_is_401_problem(client: Browserish, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    me = client.get("/api/v1/me", headers=headers)
    body = assert_problem(me, 401)
    assert body["code"] == "login_required"
    create = client.post(API_STAFF, json=GOOD_BODY, headers=headers)
    assert_problem(create, 401)
    assert client.count("staff_user") == 0


def test_revoked_token_is_401_and_cannot_create(client: Browserish) -> None:
    token, raw = admin_token(client)
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 200

    async def revoke(db: Any) -> None:
        await db.execute(
            update(ApiToken)
            .where(ApiToken.id == token.id)
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )

    client.run(revoke)
    assert_problem(client.get("/api/v1/me", headers=bearer(raw)), 401)
    assert_problem(client.post(API_STAFF, json=GOOD_BODY, headers=bearer(raw)), 401)
    assert client.count("staff_user") == 0


def test_session_cookie_does_not_open_the_api(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    assert_problem(client.post(API_STAFF, json=GOOD_BODY), 401)
    assert client.count("staff_user") == 1


# --- replayed requests ----------------------------------------------------------------------


def test_logged_out_session_cookie_cannot_be_replayed(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    stolen = client.cookies.get(SESSION_COOKIE)
    assert stolen
    assert client.get("/staff/").status_code == 200
    client.submit("/staff/logout", {}, page="/staff/", follow_redirects=False)
    client.cookies.clear()
    replay = client.get(
        "/staff/", headers={"cookie": f"{SESSION_COOKIE}={stolen}"}, follow_redirects=False
    )
    assert replay.status_code in (302, 303)
    assert replay.headers["location"].startswith("/staff/login")
    admin = client.get(
        "/staff/admin/users",
        headers={"cookie": f"{SESSION_COOKIE}={stolen}"},
        follow_redirects=False,
    )
    assert admin.status_code in (302, 303)
    assert client.count("staff_session") == 0


def test_tampered_session_cookie_is_ignored(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    real = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    for value in (real[:-2] + "xx", "garbage", "a" * 4000, '"quoted"'):
        response = client.get(
            "/staff/", headers={"cookie": f"{SESSION_COOKIE}={value}"}, follow_redirects=False
        )
        assert response.status_code in (302, 303), value
        assert response.headers["location"].startswith("/staff/login")


def test_reposting_the_same_create_form_creates_one_user(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    form = {
        "_csrf_token": client.csrf("/staff/admin/users"),
        "username": "xiaozhang",
        "password": "sales-password-1",
        "role": "sales",
        "display_name": "小张",
    }
    audit_before = client.count("audit_entry")
    first = client.post("/staff/admin/users", data=form)
    assert first.status_code == 200
    second = client.post("/staff/admin/users", data=form)  # double click, back + resubmit
    assert second.status_code == 409
    assert "该用户名已被占用" in second.text
    assert_no_leak(second)
    assert client.count("staff_user") == 2
    assert client.count("audit_entry") == audit_before + 1


def test_csrf_token_from_another_browser_is_refused(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    theirs = client.csrf()  # another browser's token, and the cookie that goes with it
    client.cookies.clear()
    mine = client.csrf()
    assert mine != theirs and client.cookies.get("lk_csrf")
    response = client.raw.post(
        "/staff/login", data={"username": "boss", "password": PASSWORD, "_csrf_token": theirs}
    )
    assert_error_page(response, 403)
    header = client.raw.post(
        "/staff/login",
        data={"username": "boss", "password": PASSWORD},
        headers={"x-csrftoken": theirs},
    )
    assert header.status_code == 403
    assert client.count("staff_session") == 0


# --- hostile strings in the login form ------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    ["u" * 300, "u" * 100_000, NUL, "boss\r\n", RTL_OVERRIDE],
    ids=["300", "100k", "nul", "crlf", "rtl"],
)
def test_unusable_login_username_is_a_clear_400(client: Browserish, username: str) -> None:
    client.make_staff("boss", "admin")
    response = client.submit(
        "/staff/login", {"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert_error_page(response, 400, "请求无法识别")
    assert "username" in response.text
    assert username not in response.text
    assert SESSION_COOKIE not in response.cookies
    assert client.count("staff_session") == 0


@pytest.mark.parametrize("username", [SCRIPT, SQLISH, "boss' OR '1'='1", '"><img src=x>'])
def test_hostile_login_username_is_escaped_and_refused(client: Browserish, username: str) -> None:
    client.make_staff("boss", "admin")
    response = client.submit(
        "/staff/login",
        {"username": username, "password": PASSWORD, "next": '"><script>alert(2)</script>'},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert "<script>alert" not in response.text
    assert "<img src=x>" not in response.text
    form = soup(response).find("form")
    assert form is not None
    field = form.find("input", attrs={"name": "username"})
    assert field is not None and field["value"] == username[:64]
    assert SESSION_COOKIE not in response.cookies
    assert client.count("staff_session") == 0
    assert client.count("staff_user") == 1
    assert_no_leak(response)


def test_password_with_nul_and_huge_password_are_refused_cleanly(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    nul = client.login("boss", PASSWORD + "\x00")
    assert nul.status_code == 401
    huge = client.login("boss", "p" * 10_000)
    assert_error_page(huge, 400)
    assert client.count("staff_session") == 0


# --- open redirects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "http://evil.example/staff/",
        "/\\evil.example",
        "\\\\evil.example",
        " //evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "//evil.example/%2F..",
    ],
)
def test_login_never_redirects_off_site(client: Browserish, target: str) -> None:
    client.make_staff("boss", "admin")
    response = client.submit(
        "/staff/login",
        {"username": "boss", "password": PASSWORD, "next": target},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    if target.startswith(("//", "http", "\\", " ", "javascript")):
        assert location == "/staff/"
    # Already signed in, the login page redirects with the same rule.
    again = client.get("/staff/login", params={"next": target}, follow_redirects=False)
    assert again.status_code in (302, 303)
    again_parts = urlsplit(again.headers["location"])
    assert not again_parts.scheme and not again_parts.netloc


# --- NUL characters reaching the database (PostgreSQL refuses them, SQLite stores them) -----


def test_nul_in_public_urls_and_events_is_a_clear_4xx(client: Browserish) -> None:
    client.run(seed_tools)
    assert client.get("/t/guide-demo").status_code == 200  # the visitor cookie
    visitors = client.count("visitor")
    for path in ("/s/ab%00cd", "/t/gu%00ide", "/staff/login?next=%00"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code < 500, (path, response.status_code)
        assert_no_leak(response)
    events = client.post(
        "/api/v1/events",
        json={"events": [{"event": {"name": "step_started", "step": "a"}, "tool": "gu\x00ide"}]},
    )
    assert_problem(events, 400)
    assert client.count("visitor") == visitors


# --- no tracebacks anywhere -----------------------------------------------------------------


def test_error_pages_never_leak_tracebacks(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    _, raw = admin_token(client)
    responses = [
        client.get("/nope"),
        client.get("/staff/admin/users/not-a-number"),
        client.delete("/staff/"),
        client.raw.post("/staff/login", data={"username": "boss"}),  # no CSRF token
        client.submit("/staff/login", {"username": NUL, "password": "x"}),
        client.post(
            API_STAFF, content=b"{", headers={**bearer(raw), "content-type": "application/json"}
        ),
        client.post(API_STAFF, json={**GOOD_BODY, "display_name": "a\x00b"}, headers=bearer(raw)),
        client.get("/api/v1/me", headers={"Authorization": "Bearer lk_\x7f"}),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code)
        assert_no_leak(response)
        assert_security_headers(response)
