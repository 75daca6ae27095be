"""Staff pages: sign in and out, the dashboard, staff and API-token administration, sign-in
limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api import TOKEN_REQUIRED, problems
from app.core.forms import catch_refusal
from app.core.i18n import gettext as _
from app.core.pages import page_or_partial
from app.core.params import PathId
from app.core.ratelimit import RateLimiter
from app.core.state import part
from app.core.web import safe_next
from app.settings import Settings
from app.staff import login, passwords, service, sessions, tokens
from app.staff.auth import (
    SESSION_COOKIE,
    raw_session_token,
    requires_role,
    requires_staff,
    session_cookie,
)
from app.staff.pages import StaffPage
from app.staff.schemas import (
    DEFAULT_ROLE,
    ROLES,
    ApiTokenCreate,
    LoginForm,
    LoginLimitClear,
    MeAnswer,
    Staff,
    StaffCreate,
    StaffCreated,
    StaffUpdate,
)


class AuthController(Controller):
    path = "/staff"

    @get("/login")
    async def login_page(
        self, staff: NamedDependency[Staff | None], next: FromQuery[str] = ""
    ) -> Template | Redirect:
        if staff is not None:
            return Redirect(safe_next(next, "/staff/"))
        return Template("staff/login.html", context={"next": next[:512], "error": None})

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        limiter: NamedDependency[RateLimiter],
        ip: NamedDependency[str],
        data: URLEncodedBody[LoginForm],
    ) -> Template | Redirect:
        async with catch_refusal() as refused:
            user = await login.authenticate(
                db_session,
                limiter,
                part(request, passwords.PasswordChecks),
                login.LoginPolicy.from_settings(settings),
                username=data.username,
                password=data.password,
                ip=ip,
            )
        if refused:
            return Template(
                "staff/login.html",
                status_code=refused.status,
                headers=refused.headers,
                context={
                    "next": data.next,
                    "error": refused.message,
                    "username": data.username[:64],
                },
            )
        raw = await sessions.start_session(
            db_session,
            user,
            ttl_hours=settings.session_ttl_hours,
            ip=ip,
            user_agent=request.headers.get("user-agent", ""),
        )
        return Redirect(
            safe_next(data.next, "/staff/"),
            cookies=[session_cookie(settings, raw)],
            status_code=303,
        )

    @post("/logout", status_code=303)
    async def logout(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        raw = raw_session_token(settings, request.cookies.get(SESSION_COOKIE))
        if raw:
            await sessions.end_session(db_session, raw)
        return Redirect("/staff/login", cookies=[session_cookie(settings, None)], status_code=303)


@dataclass(frozen=True, slots=True)
class UsersPage(StaffPage):
    """The staff accounts."""

    async def render(
        self, error: str | None = None, status: int = 200, form: dict[str, str] | None = None
    ) -> Template:
        context = {
            "staff": self.staff,
            "users": await service.list_users(self.db),
            "roles": ROLES,
            "default_role": DEFAULT_ROLE,
            "error": error,
            "form": form or {},
        }
        return page_or_partial(self.request, "staff/users.html", context, status_code=status)


@dataclass(frozen=True, slots=True)
class TokensPage(StaffPage):
    """The API tokens, and a new token's secret once, right after it was made."""

    async def render(self, new_token: str | None = None) -> Template:
        context = {
            "staff": self.staff,
            "tokens": await tokens.list_tokens(self.db),
            "roles": ROLES,
            "default_role": DEFAULT_ROLE,
            "new_token": new_token,
        }
        return Template("staff/tokens.html", context=context)


@dataclass(frozen=True, slots=True)
class LockoutsPage(StaffPage):
    """The sign-in limits in force, with a notice or why lifting one was refused."""

    limiter: RateLimiter
    settings: Settings

    @property
    def policy(self) -> login.LoginPolicy:
        return login.LoginPolicy.from_settings(self.settings)

    async def render(
        self, notice: str | None = None, error: str | None = None, status: int = 200
    ) -> Template:
        policy = self.policy
        context = {
            "staff": self.staff,
            "policy": policy,
            "limits": await login.login_limits(self.limiter, policy),
            "notice": notice,
            "error": error,
        }
        return page_or_partial(self.request, "staff/lockouts.html", context, status_code=status)


class AdminController(Controller):
    path = "/staff/admin"
    guards = [requires_role("admin")]  # noqa: RUF012
    dependencies = {  # noqa: RUF012
        "users": UsersPage.dependency(),
        "keys": TokensPage.dependency(),
        "limits": LockoutsPage.dependency(),
    }

    @get("/users")
    async def users(self, users: NamedDependency[UsersPage]) -> Template:
        return await users.render()

    @post("/users", status_code=200)
    async def create_user(
        self,
        users: NamedDependency[UsersPage],
        ip: NamedDependency[str],
        data: URLEncodedBody[StaffCreate],
    ) -> Template:
        async with catch_refusal(users.db) as refused:
            await service.create_user(users.db, users.staff, data, ip)
        if refused:
            form = {"username": data.username, "display_name": data.display_name, "role": data.role}
            return await users.render(refused.message, refused.status, form)
        return await users.render()

    @post("/users/{user_id:int}", status_code=200)
    async def update_user(
        self,
        users: NamedDependency[UsersPage],
        ip: NamedDependency[str],
        user_id: PathId,
        data: URLEncodedBody[StaffUpdate],
    ) -> Template:
        async with catch_refusal(users.db) as refused:
            await service.update_user(users.db, users.staff, user_id, data, ip)
        if refused:
            return await users.render(refused.message, refused.status)
        return await users.render()

    @get("/tokens")
    async def tokens(self, keys: NamedDependency[TokensPage]) -> Template:
        return await keys.render()

    @post("/tokens", status_code=200)
    async def create_token(
        self,
        keys: NamedDependency[TokensPage],
        ip: NamedDependency[str],
        data: URLEncodedBody[ApiTokenCreate],
    ) -> Template:
        _, raw = await tokens.create_token(keys.db, keys.staff, data, ip)
        return await keys.render(new_token=raw)

    @post("/tokens/{token_id:int}/revoke", status_code=303)
    async def revoke_token(
        self, keys: NamedDependency[TokensPage], ip: NamedDependency[str], token_id: PathId
    ) -> Redirect:
        await tokens.revoke_token(keys.db, keys.staff, token_id, ip)
        return Redirect("/staff/admin/tokens", status_code=303)

    @get("/lockouts")
    async def lockouts(self, limits: NamedDependency[LockoutsPage]) -> Template:
        return await limits.render()

    @post("/lockouts/clear", status_code=200)
    async def clear_lockout(
        self,
        limits: NamedDependency[LockoutsPage],
        ip: NamedDependency[str],
        data: URLEncodedBody[LoginLimitClear],
    ) -> Template:
        async with catch_refusal() as refused:
            await login.clear_login_limit(
                limits.db, limits.limiter, limits.policy, limits.staff, data, ip
            )
        if refused:
            return await limits.render(error=refused.message, status=refused.status)
        return await limits.render(notice=_("Limit lifted."))


@get(
    "/api/v1/me",
    summary="The token's owner and role",
    guards=[requires_staff],
    tags=["staff"],
    security=TOKEN_REQUIRED,
    responses=problems(401),
)
async def api_me(staff: NamedDependency[Staff]) -> MeAnswer:
    """Who the bearer token belongs to; integrations use it to check a token."""
    return MeAnswer(name=staff.display_name, role=staff.role, via=staff.via)  # type: ignore[arg-type]


@post(
    "/api/v1/admin/staff",
    summary="Create a staff member",
    guards=[requires_role("admin")],
    status_code=201,
    tags=["staff"],
    security=TOKEN_REQUIRED,
    responses=problems(400, 401, 403, 413, 415, why={409: "The username is taken."}),
)
async def api_create_staff(
    db_session: NamedDependency[AsyncSession],
    staff: NamedDependency[Staff],
    ip: NamedDependency[str],
    data: JSONBody[StaffCreate],
) -> StaffCreated:
    """Create a staff member from JSON (admin token)."""
    user = await service.create_user(db_session, staff, data, ip)
    return StaffCreated(
        id=user.id,
        username=user.username,
        role=user.role,  # type: ignore[arg-type]
        display_name=user.display_name,
    )


ROUTES: list[ControllerRouterHandler] = [AuthController, AdminController, api_me, api_create_staff]
