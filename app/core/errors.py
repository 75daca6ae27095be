"""Domain errors. Services raise these; one handler at the edge turns them into responses.

``message`` is an English msgid translated at the edge through the i18n catalog.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.core.i18n import N_, gettext


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"
    default_message: ClassVar[str] = N_("The request could not be processed.")

    def __init_subclass__(
        cls,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        **kwargs: Any,
    ) -> None:
        """A subclass's HTTP status, machine code and default msgid in its header.

        ``class NotClosed(Conflict, code="not_closed", message=N_("..."))``: what is not given
        is inherited; class attributes set in the body work as well.
        """
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code
        if message is not None:
            cls.default_message = message

    def __init__(
        self, message: str | None = None, *, fields: dict[str, str] | None = None, **params: Any
    ) -> None:
        self.message: str = message or type(self).default_message
        self.fields = fields or {}
        self.params = params
        super().__init__(self.message)

    @property
    def translated(self) -> str:
        """The message in the request's language, with its parameters filled in."""
        text = gettext(self.message)
        return text % self.params if self.params else text


class InvalidInput(
    DomainError, status=400, code="invalid_input", message=N_("Some fields are not valid.")
):
    """A form or body holds values the rules refuse; ``fields`` names them."""


class AuthenticationFailed(
    DomainError, status=401, code="authentication_failed", message=N_("Wrong username or password.")
):
    """A sign-in named no active account or gave the wrong password."""


class LoginRequired(
    DomainError, status=401, code="login_required", message=N_("Please sign in first.")
):
    """A staff page or API was asked for with no staff member signed in."""


class PermissionDenied(
    DomainError,
    status=403,
    code="permission_denied",
    message=N_("You do not have permission to do this."),
):
    """The signed-in staff member lacks the role this needs."""


class NotFound(
    DomainError, status=404, code="not_found", message=N_("The page or item was not found.")
):
    """What the request names does not exist (or is not published)."""


class Conflict(
    DomainError, status=409, code="conflict", message=N_("This conflicts with an existing item.")
):
    """The request clashes with the current state of what it would change."""


class RateLimited(
    DomainError,
    status=429,
    code="rate_limited",
    message=N_("Too many attempts. Please wait and try again."),
):
    """An attempt past a rate limit; ``retry_after`` (seconds) is sent as Retry-After."""

    def __init__(self, message: str | None = None, *, retry_after: int = 60, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after
