"""The API contract in-process: /schema documents exactly the JSON API (types, problem
answers, bearer auth), its viewer needs no CDN and no inline code, and /api/ refuses bodies that
are not JSON with 415, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bs4 import BeautifulSoup
from litestar.routes import HTTPRoute

from app.core.api import SWAGGER_UI_VERSION, is_json_media_type
from app.core.templating import STATIC
from app.demo.service import seed_tools
from app.staff import tokens
from app.staff.schemas import ApiTokenCreate
from tests.helpers import Browserish

PHONE = "13812345678"
# What a host does to a draw through the admin API (app/draws/routes.py).
DRAW_ACTIONS = ("open", "close", "draw", "redraw")
STAFF_GUARDED = {
    ("get", "/api/v1/me"),
    ("post", "/api/v1/admin/staff"),
    ("post", "/api/v1/admin/grabs"),
    ("post", "/api/v1/admin/grabs/{slug}/open"),
    ("post", "/api/v1/admin/grabs/{slug}/close"),
    ("post", "/api/v1/admin/draws"),
    *(("post", f"/api/v1/admin/draws/{{slug}}/{action}") for action in DRAW_ACTIONS),
    ("post", "/api/v1/vouchers/redeem"),
}


def schema(client: Browserish) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/")
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def token(client: Browserish, role: str) -> str:
    _, raw = client.run(tokens.create_token, None, ApiTokenCreate(name=f"t-{role}", role=role))
    return str(raw)


# --- the schema -------------------------------------------------------------------------------


def test_schema_documents_exactly_the_api_routes(client: Browserish) -> None:
    document = schema(client)
    assert document["openapi"].startswith("3.")
    documented = {(m, p) for m, p, _ in operations(document)}
    served = {
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in client.app.routes
        if isinstance(route, HTTPRoute)
        and (route.path.startswith("/api/") or route.path == "/healthz")
        for method in route.methods
        if method not in ("HEAD", "OPTIONS")
    }
    assert served, "the app serves no /api/ routes?"
    assert documented == served
    # Pages, forms, static files and the development inbox are not part of the contract.
    for path in document["paths"]:
        assert path.startswith("/api/v1/") or path == "/healthz", path


def test_every_operation_has_typed_bodies_and_problem_answers(client: Browserish) -> None:
    document = schema(client)
    components = document["components"]["schemas"]
    assert {"Problem", "CodeSentAnswer", "EvaluateAnswer", "GrabStatus", "MeAnswer"} <= set(
        components
    )
    assert set(components["Problem"]["required"]) == {"type", "title", "status", "code", "detail"}
    for method, path, op in operations(document):
        where = f"{method.upper()} {path}"
        assert op.get("summary") and op.get("tags"), where
        success = [code for code in op["responses"] if code.startswith("2")]
        assert success, where
        for code in success:
            for media, content in op["responses"][code].get("content", {}).items():
                if media == "application/json":
                    # A named Struct, never a free-form dict.
                    assert "$ref" in content["schema"], (where, code, content)
        if "requestBody" in op:
            assert set(op["requestBody"]["content"]) == {"application/json"}, where
            assert "$ref" in op["requestBody"]["content"]["application/json"]["schema"], where
            assert "415" in op["responses"], f"{where} takes a body but does not document 415"
        for code, answer in op["responses"].items():
            if code.startswith("4") or (code.startswith("5") and path != "/healthz"):
                assert list(answer.get("content", {})) == ["application/problem+json"], (
                    where,
                    code,
                )
        if (method, path) in STAFF_GUARDED:
            assert op.get("security") == [{"bearerToken": []}], where
            assert {"401", "403"} <= set(op["responses"]) or path == "/api/v1/me", where
        else:
            assert not op.get("security"), where
    scheme = document["components"]["securitySchemes"]["bearerToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


def _nodes(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def test_unions_never_call_a_valid_value_invalid(client: Browserish) -> None:
    """A oneOf must match exactly one branch: integer and number side by side (``int | float``)
    make every whole number invalid, and a client (or a fuzzer) that trusts the schema breaks."""
    for node in _nodes(schema(client)):
        types = [branch.get("type") for branch in node.get("oneOf", [])]
        assert not {"integer", "number"} <= set(types), node


def test_whole_numbers_are_calculator_inputs(client: Browserish) -> None:
    client.run(seed_tools)
    response = client.post(
        "/api/v1/calculators/renovation/evaluate", json={"inputs": {"area": 90, "city": "x"}}
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert "area" not in response.json()["errors"]


def test_path_parameters_name_demo_objects(client: Browserish) -> None:
    document = schema(client)
    evaluate = document["paths"]["/api/v1/calculators/{slug}/evaluate"]["post"]
    examples = [e["value"] for p in evaluate["parameters"] for e in p["examples"].values()]
    assert {"renovation", "insurance"} <= set(examples)
    grab = document["paths"]["/api/v1/grabs/{slug}"]["get"]
    assert [e["value"] for p in grab["parameters"] for e in p["examples"].values()] == ["grab-demo"]


def test_viewer_runs_from_vendored_files_without_inline_code(client: Browserish) -> None:
    page = client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = BeautifulSoup(page.text, "html.parser")
    assert not html.find_all("style") and not html.select("[style]")
    scripts = html.find_all("script")
    assert scripts and all(s.get("src") and not s.string for s in scripts)
    urls = [s["src"] for s in scripts] + [link["href"] for link in html.find_all("link")]
    assert f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}.bundle.js" in page.text
    for url in urls:
        assert url.startswith(("/static/", "data:")), url  # no CDN
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url
    assert (STATIC / f"vendor/swagger-ui-{SWAGGER_UI_VERSION}.LICENSE").exists()
    assert html.select_one("#swagger-ui")["data-spec-url"] == "/schema/openapi.json"


# --- JSON-only bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/merge-patch+json",
    ],
)
def test_json_media_types(content_type: str) -> None:
    assert is_json_media_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    ["", "text/plain", "text/json", "application/jsonp", "application/x-www-form-urlencoded"],
)
def test_not_json_media_types(content_type: str) -> None:
    assert not is_json_media_type(content_type)


BODY = b'{"phone": "13812345678", "consent": true}'


def not_json(kind: str) -> dict[str, Any]:
    """How a cross-site page (or a careless client) sends a body without a CORS preflight."""
    if kind == "text/plain":
        return {"content": BODY, "headers": {"content-type": "text/plain;charset=UTF-8"}}
    if kind == "form":
        return {"data": {"phone": PHONE, "consent": "true"}}
    if kind == "multipart":
        return {"files": {"phone": (None, PHONE)}}
    assert kind == "no content type"
    return {"content": BODY}


@pytest.mark.parametrize("kind", ["text/plain", "form", "multipart", "no content type"])
def test_api_refuses_bodies_that_are_not_json(client: Browserish, kind: str) -> None:
    client.run(seed_tools)
    request = client.build_request("POST", "/api/v1/gate/code", **not_json(kind))
    if kind == "no content type":
        assert "content-type" not in request.headers
    response = client.send(request)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 415 and body["code"] == "unsupported_media_type" and body["detail"]
    # Nothing happened: no code was issued, no visitor was created.
    assert client.get("/dev/sms", params={"phone": PHONE}).status_code == 404
    assert client.count("visitor") == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/gate/verify",
        "/api/v1/events",
        "/api/v1/calculators/renovation/evaluate",
        "/api/v1/grabs/grab-demo/claim",
        "/api/v1/admin/staff",
        "/api/v1/admin/grabs/grab-demo/open",
        "/api/v1/vouchers/redeem",
    ],
)
def test_every_api_post_refuses_text_plain(client: Browserish, path: str) -> None:
    """One mechanism for every route, with or without a token, before anything else runs."""
    client.run(seed_tools)
    admin = token(client, "admin")
    for headers in ({}, {"Authorization": f"Bearer {admin}"}):
        response = client.post(
            path, content=b"{}", headers={**headers, "content-type": "text/plain"}
        )
        assert response.status_code == 415, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.count("staff_user") == 0


def test_json_with_charset_is_accepted(client: Browserish) -> None:
    client.run(seed_tools)
    response = client.post(
        "/api/v1/gate/code",
        content=BODY,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"status", "phone", "expires_in", "resend_in"}


def test_a_post_without_a_body_needs_no_content_type(client: Browserish) -> None:
    """Body-less POSTs (open, close, claim) pass the check; the route answers for itself."""
    client.run(seed_tools)
    marketer = token(client, "marketer")
    request = client.build_request(
        "POST",
        "/api/v1/admin/grabs/grab-demo/open",
        headers={"Authorization": f"Bearer {marketer}"},
    )
    assert "content-type" not in request.headers
    response = client.send(request)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "open"
    claim = client.post("/api/v1/grabs/grab-demo/claim")
    assert claim.status_code == 401


def test_pages_still_take_forms(client: Browserish) -> None:
    """The rule is for /api/ only: the gate partial's form keeps working."""
    client.run(seed_tools)
    assert client.get("/t/guide-demo").status_code == 200
    response = client.submit(
        "/gate/code",
        {"phone": PHONE, "consent": "on", "next": "/t/guide-demo"},
        page="/t/guide-demo",
    )
    assert response.status_code == 200, response.text


# --- bodies are checked as strictly as the schema documents them -----------------------------

GRAB = {"slug": "strict-grab", "title": "限量", "stock": 5}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stock": "5"}, "stock"),  # a string is not an integer
        ({"stock": 5.0}, "stock"),
        ({"per_phone_limit": "2"}, "per_phone_limit"),
        ({"starts_at": 1767225600}, "starts_at"),  # a number is not a date-time string
        ({"title": ["限量"]}, "title"),
    ],
)
def test_json_bodies_are_not_coerced(
    client: Browserish, change: dict[str, Any], field: str
) -> None:
    marketer = token(client, "marketer")
    response = client.post(
        "/api/v1/admin/grabs",
        json={**GRAB, **change},
        headers={"Authorization": f"Bearer {marketer}"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["errors"], response.json()
    assert client.count("grab") == 0


def test_a_strictly_valid_body_is_still_accepted(client: Browserish) -> None:
    marketer = token(client, "marketer")
    response = client.post(
        "/api/v1/admin/grabs",
        json={**GRAB, "starts_at": "2030-01-01T10:00:00+08:00"},
        headers={"Authorization": f"Bearer {marketer}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["stock_total"] == 5


# --- answers are the documented Structs -------------------------------------------------------


def test_claim_refusals_are_problem_documents_with_a_result(client: Browserish) -> None:
    client.run(seed_tools)
    marketer = token(client, "marketer")
    client.post(
        "/api/v1/admin/grabs/grab-demo/open", headers={"Authorization": f"Bearer {marketer}"}
    )
    refused = client.post("/api/v1/grabs/grab-demo/claim")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["result"] == "gate_required" and body["code"] == "gate_required"
    assert body["status"] == 401 and body["title"] and body["detail"]
    assert "retry_after" not in body


def test_me_and_staff_answers_keep_their_fields(client: Browserish) -> None:
    admin = token(client, "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json() == {
        "name": "t-admin",
        "role": "admin",
        "via": "token",
    }
    created = client.post(
        "/api/v1/admin/staff",
        json={"username": "xiaoli", "password": "long-enough-pw", "role": "sales"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"id", "username", "role", "display_name"}
