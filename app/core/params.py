"""Bounded integer path and query parameters, for every route that takes one.

``{lead_id:int}`` alone parses any number of digits, and an id past 64 bits reached the
database and failed there (500). Out of range, a path parameter answers 404 like any other
path naming nothing (app/core/handlers.py), a query parameter 400 naming it.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

from app.core.bounds import MAX_ID, MAX_INT32

# A row id (BigInteger primary keys).
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
QueryId = Annotated[int, QueryParameter(ge=1, le=MAX_ID)]
OptionalQueryId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]
# A version number or a count (Integer columns).
PathNumber = Annotated[int, PathParameter(ge=1, le=MAX_INT32)]
QueryNumber = Annotated[int, QueryParameter(ge=1, le=MAX_INT32)]
OptionalQueryNumber = Annotated[int | None, QueryParameter(ge=1, le=MAX_INT32)]
# A short text filter in a query string.
QueryText = Annotated[str, QueryParameter(max_length=64)]
