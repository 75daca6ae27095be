"""A staff page its handlers show again, after a change or with why it was refused: the request
(htmx gets the partial), the request's session and who is asking, given to the controller's
handlers as one dependency (``dependencies = {"page": UsersPage.dependency()}``). A subclass's
own fields are dependencies of the same names (``LinksPage.where``, ``Desk.settings``)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from litestar.di import NamedDependency, Provide
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from app.staff.schemas import Staff


@dataclass(frozen=True, slots=True)
class StaffPage:
    request: HTMXRequest
    db: AsyncSession
    staff: Staff

    @classmethod
    def dependency(cls) -> Provide:
        """The page for the request: its handlers take it by name instead of its parts."""
        hints = get_type_hints(cls)
        wanted: dict[str, Any] = {
            "request": HTMXRequest,
            "db_session": NamedDependency[AsyncSession],
            "staff": NamedDependency[Staff],
        }
        own = [field.name for field in fields(cls)][len(wanted) :]
        named: Any = NamedDependency  # subscripted at run time, with each field's type
        wanted |= {name: named[hints[name]] for name in own}

        def provide(
            request: HTMXRequest, db_session: AsyncSession, staff: Staff, **more: Any
        ) -> StaffPage:
            return cls(request, db_session, staff, **more)

        # What Litestar reads to resolve the dependencies: every part by name, and the type.
        provide.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=kind)
                for name, kind in wanted.items()
            ],
            return_annotation=cls,
        )
        provide.__annotations__ = {**wanted, "return": cls}
        return Provide(provide, sync_to_thread=False)
