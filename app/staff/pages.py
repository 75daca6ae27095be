"""A staff page its handlers show again, after a change or with why it was refused: the request
(htmx gets the partial), the request's session and who is asking, given to the controller's
handlers as one dependency (``dependencies = {"page": UsersPage.dependency()}``). A subclass's
own fields are dependencies of the same names (``LinksPage.where``, ``Desk.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.di import Provide
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.bundles import bundle
from app.staff.schemas import Staff


@dataclass(frozen=True, slots=True)
class StaffPage:
    request: HTMXRequest
    db: AsyncSession
    staff: Staff

    @classmethod
    def dependency(cls) -> Provide:
        """The page for the request: its handlers take it by name instead of its parts."""
        return bundle(cls)
