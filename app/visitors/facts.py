"""What a page needs to know about a returning visitor, kept per process: no query to serve it.

A tool page needs five facts about its visitor — the row's id, lead, last tracked link,
platform and when it was last seen — and reading them was the page's only database round
trip. ``VisitorFacts`` holds them as a frozen value (never an ORM row: a row dies with its
session), cached per database and process, for at most ``TTL`` seconds.

A cached entry is used only while it cannot be stale:

- In this process, any committed or flushed change to a visitor row forgets it: a flushed
  ``Visitor`` forgets its own entry, a bulk UPDATE or DELETE of visitors forgets them all
  (listeners below, on every session: requests, background tasks, commands, tests).
- Across processes, each browser carries a stamp (cookie ``lk_vs``, app/visitors/web.py): an
  opaque token that changes in the response of any request that changed its visitor's facts —
  stored it, authorised it, attributed it to a link. An entry holds the stamp it was cached
  with and is used only when the browser shows the same one, so a process never serves a
  browser facts older than its latest change, made anywhere. (A forged stamp only costs a
  query: the facts are still looked up by the signed visitor cookie.)
- What no stamp can carry — a visitor deleted from another of the person's devices — is
  bounded by ``TTL``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import weakref
from typing import Any

import msgspec
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from app.visitors.models import Visitor

TTL = 60.0  # seconds; bounds only what no stamp can carry (see the module)
MAX_ENTRIES = 20_000  # per database and process; the oldest go first


class VisitorFacts(msgspec.Struct, frozen=True, kw_only=True):
    """A stored visitor, as a page reads it (``visitor_context``, ``authorised``)."""

    id: int
    public_id: str
    lead_id: int | None
    last_link_id: int | None
    platform: str
    last_seen_at: dt.datetime

    @classmethod
    def of(cls, visitor: Visitor) -> VisitorFacts | None:
        """The facts of a stored ``visitor``; None while it is not stored, or when its row
        has expired (read only what is loaded: after a commit nothing may be loaded again)."""
        loaded = inspect(visitor).dict
        try:
            values = {name: loaded[name] for name in cls.__struct_fields__}
        except KeyError:
            return None
        return cls(**values) if values["id"] is not None else None

    def same_page(self, other: VisitorFacts | None) -> bool:
        """Whether a page would read ``other`` as these facts (``last_seen_at`` aside: a page
        that finds it old re-reads the row anyway)."""
        return other is not None and (
            self.id,
            self.lead_id,
            self.last_link_id,
            self.platform,
        ) == (other.id, other.lead_id, other.last_link_id, other.platform)


def new_stamp() -> str:
    return secrets.token_urlsafe(6)


def bulk_changes() -> int:
    """How many bulk UPDATEs or DELETEs of visitors this process has run: a request that
    saw the count change may have read a visitor that is no more, and caches nothing."""
    return _bulk_changes


_bulk_changes = 0  # bulk UPDATEs and DELETEs of visitors seen by this process

_Entries = dict[str, tuple[float, str, VisitorFacts]]  # public_id -> (expiry, stamp, facts)
_caches: weakref.WeakKeyDictionary[Engine, _Entries] = weakref.WeakKeyDictionary()


def _entries(bind: object) -> _Entries | None:
    return _caches.setdefault(bind, {}) if isinstance(bind, Engine) else None


def cached(db: AsyncSession, public_id: str, stamp: str) -> VisitorFacts | None:
    """The facts of ``public_id`` cached under the browser's ``stamp``, if still good."""
    entries = _entries(db.sync_session.bind)
    hit = entries.get(public_id) if entries is not None else None
    if hit is None or hit[1] != stamp or hit[0] < time.monotonic():
        return None
    return hit[2]


def remember(db: AsyncSession, facts: VisitorFacts, stamp: str) -> None:
    """Cache ``facts`` as the browser holding ``stamp`` sees them (call once committed)."""
    entries = _entries(db.sync_session.bind)
    if entries is None:
        return
    entries.pop(facts.public_id, None)  # re-inserted last: the oldest entries go first
    entries[facts.public_id] = (time.monotonic() + TTL, stamp, facts)
    while len(entries) > MAX_ENTRIES:
        del entries[next(iter(entries))]


# Coherence in this process: a change to a visitor row forgets what was cached of it.


@event.listens_for(Session, "after_flush")
def _forget_flushed(session: Session, _context: Any) -> None:
    changed = [
        obj.public_id
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, Visitor)
    ]
    if changed:
        entries = _entries(session.bind)
        if entries is not None:
            for public_id in changed:
                entries.pop(public_id, None)


@event.listens_for(Session, "do_orm_execute")
def _forget_on_bulk_change(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and mapper.class_ is Visitor:
        global _bulk_changes
        _bulk_changes += 1
        entries = _entries(state.session.bind)
        if entries is not None:
            entries.clear()
