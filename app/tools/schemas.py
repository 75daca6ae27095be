"""What the published-tool look-up hands out: plain frozen values, never session-bound rows.

They are cached per process and shared between requests, so they must outlive the session that
read them: a rolled-back session expires its ORM rows, and a cached row would then fail every
later request that reads it (``DetachedInstanceError``).
"""

from __future__ import annotations

import datetime as dt

import msgspec


class PublishedTool(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    slug: str
    kind: str  # calculator | guide | grab | draw
    title: str
    status: str
    current_version: int


class PublishedVersion(msgspec.Struct, kw_only=True, frozen=True):
    """An immutable version, without its (large) definition: ``tools.definition`` loads it."""

    id: int
    tool_id: int
    number: int
    published_at: dt.datetime
    published_by: str = ""

    @property
    def key(self) -> tuple[object, ...]:
        """Names the definition in per-process caches: versions never change, and the
        publication time keeps two databases in one process (tests) apart."""
        return (self.id, self.tool_id, self.number, self.published_at)
