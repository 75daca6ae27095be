"""Test helpers: a client that reads pages like a browser would (CSRF tokens, forms)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from bs4 import BeautifulSoup, Tag
from litestar.testing import TestClient
from sqlalchemy import event

from app.core.state import part
from app.db.engine import Storage
from app.gate.service import Gate
from app.staff import service
from app.staff.schemas import StaffCreate

PASSWORD = "correct-horse-battery"

# What a visitor's first visit records, from the link they opened to the lead their phone made.
LINK_TO_LEAD = [
    "link_opened",
    "tool_viewed",
    "gate_shown",
    "code_sent",
    "phone_verified",
    "lead_created",
]


def soup(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


@contextmanager
def edge_commit_fails() -> Iterator[None]:
    """Inside the block, the next commit at a request's edge (app/db/uow.py: after its route
    answered) fails as a lost database would. Other commits — the sign-in middleware's own
    short transaction, a test's set-up — go through."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from app.core.scope import current_request

    armed = [True]

    def fail(_session: Any) -> None:
        scope = current_request()
        if armed and scope is not None and scope.status is not None:
            armed.clear()
            raise OperationalError("COMMIT", {}, Exception("database went away"))

    event.listen(Session, "before_commit", fail)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", fail)


def answers(host: str, port: int) -> bool:
    """Whether something accepts TCP connections there (PostgreSQL, Redis, a server)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def statements(client: Browserish) -> Iterator[list[str]]:
    """The statements the app's main database runs meanwhile."""
    seen: list[str] = []
    engine = part(client.app, Storage).engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def form_values(form: Tag) -> dict[str, str]:
    """Every value ``form`` would post, as a browser would: boxes and radios only when
    checked, a select's chosen option (else its first), a textarea's text."""
    values: dict[str, str] = {}
    for el in form.select("input, textarea, select"):
        name = el.get("name")
        if not name:
            continue
        if el.get("type") in ("checkbox", "radio"):
            if el.has_attr("checked"):
                values[str(name)] = str(el.get("value", "on"))
            continue
        if el.name == "textarea":
            values[str(name)] = el.text
        elif el.name == "select":
            chosen = el.select_one("option[selected]") or el.select_one("option")
            values[str(name)] = str(chosen["value"]) if chosen else ""
        else:
            values[str(name)] = str(el.get("value", ""))
    return values


class Browserish:
    """Wraps Litestar's TestClient with the habits of a browser: it reads the CSRF token
    from the page it was given and posts forms with it."""

    def __init__(self, client: TestClient) -> None:
        self.raw = client
        self.app = client.app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def csrf(self, page: str = "/staff/login") -> str:
        response = self.raw.get(page)
        meta = soup(response).find("meta", attrs={"name": "csrf-token"})
        assert meta is not None, f"{page} has no csrf meta"
        return str(meta["content"])

    def submit(
        self, path: str, data: dict[str, str], *, page: str = "/staff/login", **kwargs: Any
    ) -> httpx.Response:
        payload = {"_csrf_token": self.csrf(page), **data}
        return self.raw.post(path, data=payload, **kwargs)

    def add_member(self, **form: str) -> httpx.Response:
        """The signed-in admin's "add a member" form on /staff/admin/users, posted as ``form``."""
        return self.submit("/staff/admin/users", form, page="/staff/admin/users")

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.submit(
            "/staff/login", {"username": username, "password": password}, follow_redirects=False
        )

    def run(self, coro_fn: Any, *args: Any) -> Any:
        """Run ``coro_fn(db, *args)`` in the app's loop, inside a committed transaction."""

        async def work() -> Any:
            async with part(self.app, Storage).sessionmaker() as db, db.begin():
                return await coro_fn(db, *args)

        return self.raw.blocking_portal.call(work)

    def make_staff(self, username: str, role: str, password: str = PASSWORD) -> None:
        self.run(
            service.create_user, None, StaffCreate(username=username, password=password, role=role)
        )  # type: ignore[arg-type]

    def sign_in(self, username: str, role: str) -> Browserish:
        """A new staff member of ``role``, signed in on this client."""
        self.make_staff(username, role)
        assert self.login(username).status_code == 303
        return self

    def authorise(self, phone: str, *, tool: str | None = None) -> None:
        """Prove ``phone`` through the gate as a visitor would: ask for a code (from ``tool``'s
        page when named), read it from the development inbox, type it in."""
        asked: dict[str, object] = {"phone": phone, "consent": True}
        sent = self.post("/api/v1/gate/code", json=asked | ({"tool": tool} if tool else {}))
        assert sent.status_code == 202, sent.text
        code = self.get("/dev/sms", params={"phone": phone}).json()["code"]
        verified = self.post("/api/v1/gate/verify", json={"phone": phone, "code": code})
        assert verified.status_code == 200, verified.text

    def count(self, table: str) -> int:
        """Rows in ``table``, wherever it lives: counters and one-time codes are in the side
        store (app/db/engine.py), everything else in the main database."""
        from sqlalchemy import text

        from app.models import SIDE_TABLES

        query = text(f"SELECT count(*) FROM {table}")  # noqa: S608
        if table in {t.name for t in SIDE_TABLES}:

            async def side() -> int:
                async with part(self.app, Storage).side_engine.connect() as conn:
                    return int((await conn.execute(query)).scalar_one())

            return int(self.raw.blocking_portal.call(side))

        async def work(db: Any) -> int:
            return int((await db.execute(query)).scalar_one())

        return int(self.run(work))

    def otp_codes(self) -> int:
        """One-time codes issued, in whichever store holds them (side SQL or Redis)."""
        from app.gate.store import RedisOtpStore

        store = part(self.app, Gate).store
        if not isinstance(store, RedisOtpStore):
            return self.count("otp_code")

        async def keys() -> int:
            return len([k async for k in store._redis.scan_iter(match=f"{store._prefix}*")])

        return int(self.raw.blocking_portal.call(keys))
