"""Every public API route, called against `leadkit serve --workers 2` (SQLite, then PostgreSQL
+ Redis) by a plain HTTP client that keeps no cookies: a new visitor on every call, as a
script, a crawler or a cross-site page would be.

The routes come from the served /schema/openapi.json, so a new API route is called here
without anyone adding it. Each is called with a valid body and with bad ones, without a token,
with a bogus one and with a token of each role. Whatever the input: never a 5xx, never a hang
(10 s), a documented status, and errors as problem documents.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.served import REQUEST_TIMEOUT, Served
from tests.test_api_contract import STAFF_GUARDED

ROLES = ("admin", "marketer", "host", "sales")
# Every route: the staff's (test_api_contract's list) and the public ones.
PUBLIC_GET = (
    "/api/v1/grabs/{slug}",
    "/api/v1/grabs/{slug}/events",
    "/api/v1/draws/{slug}",
    "/api/v1/draws/{slug}/proof",
    "/api/v1/draws/{slug}/events",
    "/healthz",
    "/api/v1/bookings/{slug}",
)
PUBLIC_POST = (
    "/api/v1/gate/code",
    "/api/v1/gate/verify",
    "/api/v1/events",
    "/api/v1/calculators/{slug}/evaluate",
    "/api/v1/grabs/{slug}/claim",
    "/api/v1/draws/{slug}/enter",
    "/api/v1/draws/{slug}/claim",
    "/api/v1/bookings/{slug}",
    "/api/v1/bookings/{slug}/cancel",
)
KNOWN = {
    *STAFF_GUARDED,
    *(("get", path) for path in PUBLIC_GET),
    *(("post", path) for path in PUBLIC_POST),
}
# Bodies that pass validation (the answer may still be a refusal: no visitor cookie, …).
VALID: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/gate/code"): {"phone": "13812345678", "consent": True, "tool": "renovation"},
    ("post", "/api/v1/gate/verify"): {"phone": "13812345678", "code": "123456"},
    ("post", "/api/v1/events"): {
        "events": [{"event": {"name": "step_started", "step": "area"}, "tool": "renovation"}]
    },
    ("post", "/api/v1/calculators/{slug}/evaluate"): {"inputs": {"area": 90}},
    ("post", "/api/v1/admin/grabs"): {"slug": "served-grab", "title": "抢购", "stock": 5},
    ("post", "/api/v1/admin/draws"): {
        "slug": "served-draw",
        "title": "抽奖",
        "tiers": [{"name": "一等奖", "quantity": 1}],
    },
    ("post", "/api/v1/vouchers/redeem"): {"code": "LF-2345-6789", "store": "一号店"},
    # A cookie-less client has no phone: 401 gate_required (tests/test_bookings.py books).
    ("post", "/api/v1/bookings/{slug}"): {"day": "2099-01-01", "part": "morning", "note": "x"},
    ("post", "/api/v1/admin/staff"): {
        "username": "served_user",
        "password": "served-password-1",
        "role": "sales",
    },
}
HOSTILE = "\x00<script>alert(1)</script>'; DROP TABLE tool; --\u202e" + "长" * 3000
BAD_RAW = [b"{", b"null", b"[]", b"{}", b'{"a": ' * 2000 + b"1" + b"}" * 2000, b"\xff\xfe"]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _minimal(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A small instance of ``schema``: the body for a route this file has no example for."""
    schema = _resolve(document, schema)
    for option in schema.get("oneOf", []) + schema.get("anyOf", []):
        if option.get("type") != "null":
            return _minimal(document, option)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _minimal(document, props[k]) for k in schema.get("required", []) if k in props}
    if kind == "array":
        return [_minimal(document, schema["items"])] * schema.get("minItems", 0)
    if kind == "string":
        return schema.get("enum", ["x" * max(1, schema.get("minLength", 1))])[0]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return None


def bodies(document: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> list[Any]:
    """The valid body first, then bad ones: hostile strings, wrong types, broken JSON."""
    if "requestBody" not in op:
        return [None]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    valid = VALID.get((method, path)) or _minimal(document, schema)
    out: list[Any] = [valid]
    if isinstance(valid, dict):
        out.append({k: HOSTILE if isinstance(v, str) else v for k, v in valid.items()})
        out.append({k: {"nested": [v]} for k, v in valid.items()})
        out.append({**valid, "unexpected": HOSTILE})
    out.extend(BAD_RAW)
    return out


def path_variants(op: dict[str, Any], path: str) -> list[str]:
    """The schema's examples (real demo objects), then one that does not exist."""
    params = [p for p in op.get("parameters", []) if p["in"] == "path"]
    if not params:
        return [path]
    filled = path
    for param in params:
        examples = [e["value"] for e in param.get("examples", {}).values()] or ["x"]
        filled = filled.replace("{" + param["name"] + "}", str(examples[0]))
    missing = path
    for param in params:
        missing = missing.replace("{" + param["name"] + "}", "no-such-thing")
    return [filled, missing]


@pytest.fixture(scope="module")
def document(served: Served) -> dict[str, Any]:
    response = served.request("GET", "/schema/openapi.json")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def tokens(served: Served) -> dict[str, str]:
    return {role: served.token(role) for role in ROLES}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return sorted(
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    )


def test_the_served_schema_lists_the_api(document: dict[str, Any]) -> None:
    found = {(method, path) for method, path, _ in operations(document)}
    assert found, "the served schema documents no route"
    assert found >= KNOWN, f"missing: {sorted(KNOWN - found)}"


def check(
    served: Served,
    op: dict[str, Any],
    method: str,
    url_path: str,
    headers: dict[str, str],
    body: Any,
) -> str | None:
    """One call; what is wrong with the answer, or None."""
    kwargs: dict[str, Any] = {"headers": dict(headers)}
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs["headers"]["content-type"] = "application/json"
    elif body is not None:
        kwargs["content"] = json.dumps(body, ensure_ascii=False).encode()
        kwargs["headers"]["content-type"] = "application/json"
    streaming = "text/event-stream" in op["responses"].get("200", {}).get("content", {})
    try:
        if streaming:
            # Server-sent events never end by themselves: the first event must come quickly.
            with httpx.stream(
                method.upper(), served.url + url_path, timeout=REQUEST_TIMEOUT, **kwargs
            ) as response:
                if response.status_code == 200:
                    first = next(response.iter_lines(), "")
                    if not first:
                        return "200 event stream without an event"
                else:
                    response.read()
        else:
            response = served.request(method.upper(), url_path, **kwargs)
    except httpx.TimeoutException:
        return f"no answer within {REQUEST_TIMEOUT:.0f}s (a hang)"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if str(status) not in op["responses"]:
        documented = sorted(op["responses"])
        return f"{status} is not a documented answer ({documented}): {response.text[:200]}"
    if status >= 400:
        media = response.headers.get("content-type", "")
        if not media.startswith("application/problem+json"):
            return f"{status} as {media!r}, not application/problem+json: {response.text[:200]}"
        problem = response.json()
        missing = {"type", "title", "status", "code", "detail"} - set(problem)
        if missing or problem["status"] != status:
            return f"{status}: not a problem document ({sorted(missing)} missing): {problem}"
    return None


def test_every_route_with_every_token_and_bad_bodies(
    served: Served,
    document: dict[str, Any],
    tokens: dict[str, str],
    subtests: pytest.Subtests,
) -> None:
    auths: dict[str, dict[str, str]] = {
        "no token": {},
        "bogus token": {"Authorization": "Bearer lk_not-a-real-token"},
        **{role: {"Authorization": f"Bearer {raw}"} for role, raw in tokens.items()},
    }
    for method, path, op in operations(document):
        candidates = bodies(document, method, path, op)
        failures: list[str] = []
        calls = 0
        for url_path in path_variants(op, path):
            for who, headers in auths.items():
                # Every identity with the valid body; the bad bodies without a token and as admin.
                tried = candidates if who in ("no token", "admin") else candidates[:1]
                for n, body in enumerate(tried):
                    calls += 1
                    problem = check(served, op, method, url_path, headers, body)
                    if problem:
                        label = "valid body" if n == 0 else f"bad body #{n}"
                        failures.append(f"{method.upper()} {url_path} [{who}, {label}]: {problem}")
        # One report per route: every failing route is listed, not only the first.
        with subtests.test(msg=f"{method.upper()} {path}"):
            assert not failures, (
                f"{len(failures)} of {calls} calls on {served.backend} failed:\n"
                + "\n".join(failures[:20])
                + f"\n--- server log ---\n{served.log_tail(30)}"
            )


def test_schema_and_viewer_are_served(served: Served) -> None:
    page = served.request("GET", "/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page.text
