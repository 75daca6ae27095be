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


class InvalidInput(DomainError):
    status = 400
    code = "invalid_input"
    default_message = N_("Some fields are not valid.")


class AuthenticationFailed(DomainError):
    status = 401
    code = "authentication_failed"
    default_message = N_("Wrong username or password.")


class LoginRequired(DomainError):
    status = 401
    code = "login_required"
    default_message = N_("Please sign in first.")


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"
    default_message = N_("You do not have permission to do this.")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = N_("The page or item was not found.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = N_("This conflicts with an existing item.")


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    default_message = N_("Too many attempts. Please wait and try again.")

    def __init__(self, message: str | None = None, *, retry_after: int = 60, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after
