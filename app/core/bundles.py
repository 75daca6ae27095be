"""Several of a request's parts given to a handler as one dependency: a frozen dataclass whose
fields are filled by name (``dependencies = {"visit": bundle(GateVisit)}``), so the handlers
that share them take one parameter and the methods that use them live on the class.

A field is the dependency of its name and type; ``db`` is the request's ``db_session``; a
``Request`` field is the request itself; an ``Annotated`` field (``FromPath[str]``) is taken
as written (a path or query parameter)."""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import Annotated, Any, get_origin, get_type_hints

from litestar import Request
from litestar.di import NamedDependency, Provide

# Fields read from a dependency of another name.
_SOURCES = {"db": "db_session"}


def _source(kind: Any) -> Any:
    """How a field of type ``kind`` is asked for."""
    if get_origin(kind) is Annotated:
        return kind
    base = get_origin(kind) or kind  # Request[Any, Any, Any] is a Request
    if inspect.isclass(base) and issubclass(base, Request):
        return kind
    named: Any = NamedDependency  # subscripted at run time, with the field's type
    return named[kind]


def bundle(cls: type[Any]) -> Provide:
    """The dependency that builds ``cls`` from the request's parts, one per field."""
    hints = get_type_hints(cls, include_extras=True)
    names = {field.name: _SOURCES.get(field.name, field.name) for field in fields(cls)}

    def provide(**parts: Any) -> Any:
        return cls(**{name: parts[source] for name, source in names.items()})

    # What Litestar reads to resolve the parts: each by name with its type, and the result.
    wanted = {source: _source(hints[name]) for name, source in names.items()}
    provide.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(source, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=kind)
            for source, kind in wanted.items()
        ],
        return_annotation=cls,
    )
    provide.__annotations__ = {**wanted, "return": cls}
    return Provide(provide, sync_to_thread=False)
