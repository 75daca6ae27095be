"""Staff accounts: sign-in, sessions, roles, the admin pages, API tokens."""

from __future__ import annotations

from app.core.state import part
from app.db.engine import Storage
from app.staff import tokens
from app.staff.auth import SESSION_COOKIE
from tests.helpers import PASSWORD, Browserish, soup


def test_home_and_health(client: Browserish) -> None:
    home = client.get("/")
    assert home.status_code == 200
    assert "实用小工具" in home.text
    health = client.get("/healthz")
    assert health.status_code == 200
    expected_redis = "ok" if part(client.app, Storage).redis is not None else "absent"
    assert health.json() == {"status": "ok", "database": "ok", "redis": expected_redis}


def test_admin_signs_in_and_out(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    response = client.login("boss")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/"
    cookie = response.cookies.get(SESSION_COOKIE)
    assert cookie and "HttpOnly" in response.headers["set-cookie"]
    page = client.get("/staff/")
    assert page.status_code == 200
    assert "boss" in page.text
    out = client.submit("/staff/logout", {}, page="/staff/", follow_redirects=False)
    assert out.status_code == 303
    assert client.count("staff_session") == 0
    again = client.get("/staff/", follow_redirects=False)
    assert again.status_code in (302, 303)
    assert again.headers["location"].startswith("/staff/login")


def test_wrong_password_is_refused_and_changes_nothing(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    response = client.login("boss", "not-the-password")
    assert response.status_code == 401
    alert = soup(response).find(class_="alert")
    assert alert is not None and "用户名或密码错误" in alert.text
    assert SESSION_COOKIE not in response.cookies
    assert client.count("staff_session") == 0
    unknown = client.login("nobody", "whatever")
    assert unknown.status_code == 401


def test_forged_csrf_token_is_refused(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    client.csrf()
    forged = client.raw.post(
        "/staff/login", data={"username": "boss", "password": PASSWORD, "_csrf_token": "forged"}
    )
    assert forged.status_code == 403
    missing = client.raw.post("/staff/login", data={"username": "boss", "password": PASSWORD})
    assert missing.status_code == 403
    assert client.count("staff_session") == 0


def test_admin_creates_sales_user_who_cannot_open_admin(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    created = client.add_member(
        username="xiaozhang", password="sales-password-1", role="sales", display_name="小张"
    )
    assert created.status_code == 200
    rows = [row.get("id") for row in soup(created).select("#staff-list tbody tr")]
    assert len(rows) == 2
    assert "xiaozhang" in created.text
    client.submit("/staff/logout", {}, page="/staff/")
    assert client.login("xiaozhang", "sales-password-1").status_code == 303
    assert client.get("/staff/").status_code == 200
    denied = client.get("/staff/admin/users")
    assert denied.status_code == 403
    assert "没有权限" in denied.text


def test_duplicate_username_is_a_clear_error(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    response = client.add_member(username="Boss", password="another-password", role="sales")
    assert response.status_code == 409
    assert "该用户名已被占用" in response.text
    assert client.count("staff_user") == 1


def test_invalid_staff_form_changes_nothing(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    for bad in (
        {"username": "x", "password": "long-enough-pw", "role": "sales"},
        {"username": "ok_name", "password": "short", "role": "sales"},
        {"username": "ok_name", "password": "long-enough-pw", "role": "emperor"},
        {"username": "<script>alert(1)</script>", "password": "long-enough-pw", "role": "sales"},
        {"username": "a" * 5000, "password": "long-enough-pw", "role": "sales"},
        {"password": "long-enough-pw", "role": "sales"},
    ):
        response = client.add_member(**bad)
        assert response.status_code == 400, bad
        assert "请求无法识别" in response.text
        assert "<script>alert(1)</script>" not in response.text
    assert client.count("staff_user") == 1


def test_role_change_ends_sessions_and_last_admin_is_kept(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    users = client.get("/staff/admin/users")
    boss_id = soup(users).select_one("#staff-list tbody tr")["id"].removeprefix("staff-")
    demote = client.submit(
        f"/staff/admin/users/{boss_id}",
        {"role": "sales", "is_active": "true"},
        page="/staff/admin/users",
    )
    assert demote.status_code == 409
    assert "最后一个启用的管理员" in demote.text
    client.make_staff("xiaoli", "host")
    other = Browserish(client.raw)
    assert other.get("/staff/admin/users").status_code == 200


def test_api_tokens(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    page = client.submit(
        "/staff/admin/tokens", {"name": "crm", "role": "marketer"}, page="/staff/admin/tokens"
    )
    token = soup(page).select_one("#new-token").text.strip()
    assert token.startswith("lk_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json() == {"name": "crm", "role": "marketer", "via": "token"}
    # Session cookies do not authenticate the JSON API.
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer lk_nope"}).status_code == 401
    token_id = soup(page).select_one("form[action$='/revoke']")["action"].split("/")[-2]
    client.submit(f"/staff/admin/tokens/{token_id}/revoke", {}, page="/staff/admin/tokens")
    revoked = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401
    assert revoked.headers["content-type"].startswith("application/problem+json")


def test_json_api_creates_staff_with_admin_token(client: Browserish) -> None:
    from app.staff.schemas import ApiTokenCreate

    _, admin_token = client.run(tokens.create_token, None, ApiTokenCreate(name="ops", role="admin"))
    _, sales_token = client.run(tokens.create_token, None, ApiTokenCreate(name="s", role="sales"))
    body = {"username": "api_user", "password": "api-password-1", "role": "host"}
    created = client.post(
        "/api/v1/admin/staff", json=body, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert created.status_code == 201
    assert created.json()["username"] == "api_user"
    again = client.post(
        "/api/v1/admin/staff", json=body, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    denied = client.post(
        "/api/v1/admin/staff",
        json={**body, "username": "other"},
        headers={"Authorization": f"Bearer {sales_token}"},
    )
    assert denied.status_code == 403
    assert client.count("staff_user") == 1


def test_expired_session_during_htmx_sends_the_whole_page_to_login(client: Browserish) -> None:
    client.make_staff("boss", "admin")
    response = client.get("/staff/admin/users", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/staff/login?next=/staff/admin/users"


def test_validation_details_on_pages_are_in_chinese(client: Browserish) -> None:
    client.sign_in("boss", "admin")
    response = client.add_member(username="ok_name", password="short", role="sales")
    assert response.status_code == 400
    assert "缺失、过长或格式不正确" in response.text
    assert "Expected" not in response.text
