"""Staff forms and API bodies. HTML forms are parsed into these, so validation lives here."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.core.i18n import N_

Role = Literal["admin", "marketer", "host", "sales"]
ROLES: tuple[str, ...] = ("admin", "marketer", "host", "sales")
# Role names are shown translated: _(role).
ROLE_LABELS = (N_("admin"), N_("marketer"), N_("host"), N_("sales"))
# What a form that grants a role starts at: the least privilege; admin is always a choice.
DEFAULT_ROLE = "sales"

Username = Annotated[str, msgspec.Meta(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+\Z")]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
NewPassword = Annotated[str, msgspec.Meta(min_length=10, max_length=256)]
# No control characters (NUL, newlines; PostgreSQL refuses NUL in text) and no invisible
# format characters (zero-width, bidi overrides) that make one name look like another.
PLAIN_TEXT = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]*\Z"
DisplayName = Annotated[str, msgspec.Meta(max_length=64, pattern=PLAIN_TEXT)]
TokenName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=PLAIN_TEXT)]


class LoginForm(msgspec.Struct, kw_only=True):
    username: Annotated[str, msgspec.Meta(max_length=256, pattern=PLAIN_TEXT)] = ""
    password: Annotated[str, msgspec.Meta(max_length=256)] = ""
    next: Annotated[str, msgspec.Meta(max_length=512)] = ""


class LoginLimitClear(msgspec.Struct, kw_only=True):
    """An admin lifting a sign-in limit: an address, a (username, address) pair or a
    username's slow-down."""

    kind: Literal["ip", "user_ip", "user"]
    username: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9_.\-]*\Z")] = ""
    # Not "ip": Litestar reports a body field named like a dependency (the request's ``ip``)
    # that fails validation as a server error (500) instead of a 400.
    address: Annotated[str, msgspec.Meta(max_length=64, pattern=PLAIN_TEXT)] = ""


class StaffCreate(msgspec.Struct, kw_only=True):
    username: Username
    password: NewPassword
    role: Role
    display_name: DisplayName = ""


class StaffUpdate(msgspec.Struct, kw_only=True):
    role: Role
    is_active: bool = False
    display_name: DisplayName = ""
    password: Annotated[str, msgspec.Meta(max_length=256)] = ""


class ApiTokenCreate(msgspec.Struct, kw_only=True):
    name: TokenName
    role: Role


class MeAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """GET /api/v1/me: who the token belongs to."""

    name: str
    role: Role
    via: Literal["session", "token"]


class StaffCreated(msgspec.Struct, kw_only=True, frozen=True):
    """201 from POST /api/v1/admin/staff."""

    id: int
    username: str
    role: Role
    display_name: str


class Staff(msgspec.Struct, kw_only=True, frozen=True):
    """The authenticated staff member (or API token) behind a request."""

    id: int
    username: str
    display_name: str
    role: str
    via: Literal["session", "token"] = "session"

    def has_role(self, *roles: str) -> bool:
        # admin can act in every role; the others only in their own.
        return self.role == "admin" or self.role in roles
