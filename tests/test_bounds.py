"""Every number and date is bounded where it enters, so no value answers 5xx: ids in paths and
queries past 64 bits, dates near year 1 or 9999, stock and limits past their columns, hostile
calculator answers. Out of range is 404 for a path and 400 naming the field otherwise; pages
that list what was stored keep answering 200. Every test runs on SQLite and PostgreSQL + Redis.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.params import ParameterKwarg
from sqlalchemy import select, update

from app.core.bounds import MAX_ID
from app.demo.service import seed_tools
from app.grabs.models import Grab
from app.grabs.schemas import GrabCreate
from app.tools.models import Tool
from tests.grab_support import add_grab, grab_form
from tests.helpers import Browserish, soup
from tests.test_bad_input import assert_no_leak, assert_problem
from tests.test_calc_editor import EDITOR, editor_form, tool_row
from tests.test_calc_flow import form_values
from tests.test_grabs import bearer

HUGE_IDS = ("0", "-1", str(2**63), "99999999999999999999", "9" * 40)
GOOD_GRAB_FORM = grab_form()


@pytest.fixture
def admin(client: Browserish) -> Browserish:
    client.run(seed_tools)
    return client.sign_in("boss", "admin")


def int_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path) of every route with an integer path parameter."""
    found = []
    for route in app.routes:
        if ":int}" not in route.path:
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append((method, route.path))
    return found


# --- ids in paths and queries ----------------------------------------------------------------


def test_every_int_path_and_query_parameter_is_bounded(app: Litestar) -> None:
    """A new route with a bare ``int`` parameter fails here: use app/core/params.py."""
    unbounded = []
    for route in app.routes:
        for handler in route.route_handlers:
            dependencies = handler.resolve_dependencies()
            for name, field in handler.parsed_fn_signature.parameters.items():
                if name in dependencies or name in ("data", "request", "self"):
                    continue
                if not (
                    {int, float} & {field.annotation, *(t.annotation for t in field.inner_types)}
                ):
                    continue
                kwarg = field.kwarg_definition
                bounded = (
                    isinstance(kwarg, ParameterKwarg)
                    and kwarg.ge is not None
                    and kwarg.le is not None
                    and kwarg.le <= MAX_ID
                )
                if not bounded:
                    unbounded.append(f"{route.path} {name}")
    assert not unbounded, unbounded


@pytest.mark.parametrize("value", HUGE_IDS)
def test_out_of_range_ids_in_every_path_are_404(admin: Browserish, value: str) -> None:
    routes = int_routes(admin.app)
    assert len(routes) >= 9, routes
    token = admin.csrf("/staff/")
    for method, template in routes:
        path = re.sub(r"\{(\w+):int\}", value, template).replace("{slug:str}", "renovation")
        answer = admin.raw.request(
            method, path, data={"_csrf_token": token} if method == "POST" else None
        )
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text[:300])
        assert_no_leak(answer)


def test_largest_id_is_an_ordinary_404(admin: Browserish) -> None:
    for path in (f"/staff/leads/{MAX_ID}", f"/staff/links/{MAX_ID}/qr.svg"):
        assert admin.get(path).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/staff/links?account=99999999999999999999",
        "/staff/links?kind=brand&account=-5",
        "/staff/leads?account=99999999999999999999",
        "/staff/leads?account=%C2%B2",  # "²": str.isdigit() says yes, int() says no
        "/staff/calculators/renovation/replay?n=99999999999999999999",
        "/staff/calculators/renovation/publish?n=-1",
        "/staff/calculators/renovation/versions?published=99999999999999999999",
        "/staff/calculators/renovation/diff?a=99999999999999999999",
    ],
)
def test_out_of_range_query_numbers_are_400(admin: Browserish, path: str) -> None:
    answer = admin.get(path)
    assert answer.status_code == 400, answer.text[:300]
    assert_no_leak(answer)


def test_odd_page_and_version_numbers_fall_back(admin: Browserish) -> None:
    for path in (
        "/staff/leads?page=%C2%B2",
        "/staff/leads?page=99999999999999999999",
        "/staff/calculators/renovation/diff?a=1&b=%C2%B2",
    ):
        answer = admin.get(path)
        assert answer.status_code in (200, 404), (path, answer.text[:300])


def test_ids_typed_into_forms_are_bounded(admin: Browserish) -> None:
    huge = "99999999999999999999"
    account = admin.submit(
        "/staff/links/accounts",
        {"kind": "brand", "name": "主号", "platform": "douyin", "owner_id": huge},
        page="/staff/links",
    )
    assert account.status_code == 400 and "owner_id" in account.text
    link = admin.submit(
        "/staff/links",
        {"account_id": huge, "channel": "live", "target_slug": "renovation"},
        page="/staff/links",
    )
    assert link.status_code == 400 and "account_id" in link.text


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("starts_at", "9999-12-31T20:00:00Z"),
        ("starts_at", "9999-12-31T20:00:00-12:00"),
        ("starts_at", "0001-01-01T01:00:00+14:00"),
        ("starts_at", "1970-01-01T00:00:00Z"),
        ("ends_at", "2101-01-01T00:00:00+08:00"),
    ],
)
def test_grab_api_refuses_dates_out_of_range(client: Browserish, field: str, value: str) -> None:
    body: dict[str, Any] = {"slug": "flash", "title": "t", "stock": 5, field: value}
    if field == "ends_at":
        body["starts_at"] = "2030-01-01T00:00:00Z"
    answer = client.post("/api/v1/admin/grabs", json=body, headers=bearer(client, "marketer"))
    problem = assert_problem(answer, 400, field)
    assert "2000" in problem["detail"] and "2100" in problem["detail"]
    assert client.get("/api/v1/grabs/flash").status_code == 404


def test_grab_api_refuses_numbers_out_of_range(client: Browserish) -> None:
    marketer = bearer(client, "marketer")
    for field, value in (
        ("stock", 10**20),
        ("stock", -1),
        ("per_phone_limit", 10**6),
        ("per_phone_limit", 0),
        ("voucher_valid_days", 10**9),
    ):
        body = {"slug": "flash", "title": "t", "stock": 5, field: value}
        answer = client.post("/api/v1/admin/grabs", json=body, headers=marketer)
        assert_problem(answer, 400, field)
    assert client.get("/api/v1/grabs/flash").status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("starts_at", "9999-12-31T20:00"),
        ("starts_at", "0001-01-01T00:00"),
        ("ends_at", "2101-01-01T00:00"),
        ("stock", "99999999999999999999"),
        ("per_phone_limit", "100"),
        ("voucher_valid_days", "99999"),
    ],
)
def test_grab_staff_form_refuses_values_out_of_range(
    admin: Browserish, field: str, value: str
) -> None:
    refused = admin.submit(
        "/staff/grabs/new", {**GOOD_GRAB_FORM, field: value}, page="/staff/grabs/new"
    )
    assert refused.status_code == 400, refused.text[:300]
    assert field in refused.text
    assert_no_leak(refused)
    assert admin.get("/api/v1/grabs/sofa-day").status_code == 404
    # And on the edit form of an existing grab.
    created = admin.submit(
        "/staff/grabs/new", GOOD_GRAB_FORM, page="/staff/grabs/new", follow_redirects=False
    )
    assert created.status_code == 303
    edit = "/staff/grabs/sofa-day/edit"
    refused = admin.submit(edit, {**GOOD_GRAB_FORM, field: value}, page=edit)
    assert refused.status_code == 400 and field in refused.text
    assert admin.get("/api/v1/grabs/sofa-day").json()["stock_total"] == 20


def test_a_grab_stored_with_a_far_date_still_shows_and_can_be_fixed(admin: Browserish) -> None:
    """Dates stored before the bound: the console, the visitor page and the edit page answer,
    and the edit form refuses the date until it is fixed."""
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    admin.run(add_grab, GrabCreate(slug="far", title="远期", stock=3, starts_at=start))

    async def push_to_the_end(db: Any) -> None:
        far = dt.datetime(9999, 12, 31, 20, 0, tzinfo=dt.UTC)
        tool_id = await db.scalar(select(Tool.id).where(Tool.slug == "far"))
        await db.execute(
            update(Grab).where(Grab.tool_id == tool_id).values(starts_at=far, ends_at=far)
        )

    admin.run(push_to_the_end)  # before any page has read (and cached) the grab
    for path in ("/staff/grabs/", "/t/far", "/staff/grabs/far/edit", "/api/v1/grabs/far"):
        page = admin.get(path)
        assert page.status_code == 200, (path, page.text[:300])
    shown = soup(admin.get("/staff/grabs/far/edit")).select_one("[name=starts_at]")
    assert shown is not None and str(shown["value"]).startswith("9999-12-31")
    form = {**GOOD_GRAB_FORM, "title": "远期", "stock": "3", "starts_at": str(shown["value"])}
    refused = admin.submit("/staff/grabs/far/edit", form, page="/staff/grabs/far/edit")
    assert refused.status_code == 400 and "starts_at" in refused.text
    fixed = admin.submit(
        "/staff/grabs/far/edit",
        {**form, "starts_at": "2030-01-01T20:00", "ends_at": ""},
        page="/staff/grabs/far/edit",
        follow_redirects=False,
    )
    assert fixed.status_code == 303
    assert admin.get("/staff/grabs/").status_code == 200


@pytest.mark.parametrize(
    "query",
    ["from=9999-12-31&to=9999-12-31", "from=0001-01-01", "to=1999-12-31", "from=2101-01-01"],
)
def test_report_date_filters_out_of_range_are_400(admin: Browserish, query: str) -> None:
    for page in ("/staff/leads", "/staff/funnels"):
        answer = admin.get(f"{page}?{query}")
        assert answer.status_code == 400, (page, answer.text[:300])
        assert "2000" in answer.text and "2100" in answer.text
        assert_no_leak(answer)
    assert admin.get("/staff/leads?from=2026-01-01&to=2026-01-31").status_code == 200


# --- calculator definitions ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e300", "-1e16", "inf", "nan"])
def test_calculator_numbers_out_of_range_are_refused_in_toml(admin: Browserish, value: str) -> None:
    page = soup(admin.get(EDITOR))
    text = page.select_one('textarea[name="toml"]').text
    changed = text.replace("max = 500", f"max = {value}", 1)
    assert changed != text
    before = tool_row(admin).draft
    refused = admin.submit(
        f"{EDITOR}/toml",
        {"toml": changed, "base": page.select_one('input[name="base"]')["value"]},
        page=EDITOR,
    )
    assert refused.status_code in (400, 422)
    assert "10¹⁵" in refused.text or "数字" in refused.text
    assert tool_row(admin).draft == before


def test_calculator_editor_form_numbers_out_of_range_change_nothing(admin: Browserish) -> None:
    before = tool_row(admin).draft
    for value in ("1e300", "99999999999999999999", "-1e16"):
        form = {**editor_form(admin), "fields.area.max": value}
        refused = admin.submit(f"{EDITOR}/draft", form, page=EDITOR)
        assert refused.status_code in (400, 422), value
    assert tool_row(admin).draft == before


# --- hostile calculator answers --------------------------------------------------------------

HOSTILE = st.one_of(
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            "-0",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "1e308",
            "-1e308",
            "١٢٣",
            "１２３",
            "²",
            "",
            " ",
            "x" * 10_000,
            "\x00",
            "1\x00",
            "9" * 400,
            "1,,,,,,,,,,,5",
            "0x10",
            "1_000",
            "true",
            "是",
            "\u202e1",
            "上海",
        ]
    ),
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
)


def _post_form(client: Browserish, slug: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    return client.raw.post(
        f"/t/{slug}/evaluate",
        content=httpx.QueryParams(pairs).__str__(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


@pytest.mark.parametrize("slug", ["renovation", "insurance"])
def test_hostile_calculator_form_posts_never_fail(client: Browserish, slug: str) -> None:
    client.run(seed_tools)
    base = form_values(client, f"/t/{slug}")
    keys = [k for k in base if k != "_csrf_token"]

    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        key=st.sampled_from(keys),
        value=HOSTILE,
        repeat=st.booleans(),
        unknown=st.booleans(),
    )
    def post(key: str, value: str, repeat: bool, unknown: bool) -> None:
        pairs = [(k, v) for k, v in base.items() if k != key]
        pairs.append((key, value))
        if repeat:
            pairs.append((key, "2"))  # area=1&area=2
        if unknown:
            pairs += [("zz_unknown", "1"), ("__proto__", "x")]
        answer = _post_form(client, slug, pairs)
        assert answer.status_code in (200, 400, 422), (key, value, answer.text[:300])
        assert_no_leak(answer)
        if answer.status_code == 422:
            page = soup(answer)
            assert page.select_one(".alert") is not None
            assert page.select_one(".field.invalid .field-error") is not None
            # The other answers are kept in the form.
            kept = {
                str(el["name"]): str(el.get("value", ""))
                for el in page.select("form.calc-form input[type=number]")
            }
            for name, original in base.items():
                if name in kept and name != key and original:
                    assert float(kept[name]) == float(original), (name, kept[name])

    post()
    assert client.get(f"/t/{slug}").status_code == 200


def test_hostile_calculator_api_answers_never_fail(client: Browserish) -> None:
    client.run(seed_tools)
    bodies = [
        b'{"inputs":{"area":1e400}}',
        b'{"inputs":{"area":-1e400}}',
        b'{"inputs":{"area":NaN}}',
        b'{"inputs":{"area":99999999999999999999999999999999}}',
        b'{"inputs":{"area":-0.0}}',
        b'{"inputs":{"area":[1,2]}}',
        b'{"inputs":{"area":"\\u0000"}}',
        b'{"inputs":{"\\u0000":"1"}}',
        b'{"inputs":{"city":99999999999999999999}}',
        b'{"inputs":{"area":"' + b"9" * 10_000 + b'"}}',
        b'{"inputs":[]}',
    ]
    for body in bodies:
        answer = client.post(
            "/api/v1/calculators/renovation/evaluate",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert answer.status_code in (400, 422), (body[:60], answer.text[:300])
        problem = assert_problem(answer, answer.status_code)
        assert problem["title"] != "Error"  # translated like every other problem
    assert client.get("/t/renovation").status_code == 200
