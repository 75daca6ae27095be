"""The canonical entrant list of a draw (docs/draws.md, "The canonical entrant list").

At close the entries are frozen into one line per entry — entry id, masked phone, chances,
phone group — sorted by entry id, serialised to exact bytes and hashed. Phones stay private: an
entry's phone key never leaves ``freeze``; the published ``group`` (the smallest entry id among
the entries of the same phone) is all a verifier needs to apply the one-win-per-phone rule.

Pure functions: no database, no web framework.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import compress, count
from operator import attrgetter, ge, ne, not_

import msgspec

# Bounds that keep every sum below 2**64 (the selection draws 64-bit integers): at most
# 10,000,000 entries x 1,000,000 chances = 10**13 < 2**64.
MAX_ENTRANTS = 10_000_000
MAX_CHANCES = 1_000_000
MAX_ENTRY_ID = 2**63 - 1
MAX_PHONE_CHARS = 32

# A masked phone is printable ASCII without spaces (138****5678, +852****78): it can never hold
# the list's separators (tab, line feed) and has one byte form.
_PHONE = re.compile(rf"[\x21-\x7e]{{1,{MAX_PHONE_CHARS}}}")


class DrawInputError(ValueError):
    """Entries, rules or a bundle the algorithm refuses; the message says what and where."""


class Entry(msgspec.Struct, frozen=True):
    """An entry as the draw hands it over. ``phone_key`` (the lead's id, or the normalised
    phone) only groups entries of one phone; it is never published."""

    id: int
    phone_key: int | str
    phone: str
    chances: int = 1


class Entrant(msgspec.Struct, frozen=True):
    """One line of the published list: entry id, masked phone, chances, phone group."""

    id: int
    phone: str
    chances: int
    group: int


class FrozenList:
    """The entrant list at close, column by column (ids ascending), with its canonical bytes
    (the downloadable file), their SHA-256 (hex) and the count. Not checked: ``freeze``
    builds a checked one, ``list_problems`` says what is wrong with a published one."""

    __slots__ = ("chances", "count", "data", "groups", "hash", "ids", "phones")

    def __init__(
        self, ids: list[int], phones: list[str], chances: list[int], groups: list[int]
    ) -> None:
        self.ids, self.phones, self.chances, self.groups = ids, phones, chances, groups
        # One f-string per line in a comprehension: the fastest plain-Python form measured.
        text = "".join(
            [
                f"{i}\t{p}\t{c}\t{g}\n"
                for i, p, c, g in zip(ids, phones, chances, groups, strict=True)
            ]
        )
        self.data = text.encode()
        self.hash = hashlib.sha256(self.data).hexdigest()
        self.count = len(ids)

    @classmethod
    def of(cls, entrants: Sequence[Entrant]) -> FrozenList:
        """A published list, in the order given."""
        return cls(
            list(map(attrgetter("id"), entrants)),
            list(map(attrgetter("phone"), entrants)),
            list(map(attrgetter("chances"), entrants)),
            list(map(attrgetter("group"), entrants)),
        )

    @property
    def entrants(self) -> list[Entrant]:
        return list(map(Entrant, self.ids, self.phones, self.chances, self.groups))


def canonical_bytes(entrants: Sequence[Entrant]) -> bytes:
    """``id TAB phone TAB chances TAB group LF`` per entrant, in the order given, UTF-8."""
    return FrozenList.of(entrants).data


def freeze(entries: Iterable[Entry]) -> FrozenList:
    """Sort the entries by id, give each its phone group, serialise and hash the list."""
    ordered = sorted(entries, key=attrgetter("id"))
    ids = list(map(attrgetter("id"), ordered))
    keys = list(map(attrgetter("phone_key"), ordered))
    # Later pairs win in a dict: fed from the end, each phone key keeps its smallest entry id.
    first = dict(zip(keys[::-1], ids[::-1], strict=True))
    # One entry per phone (the usual case): every entry leads its own group.
    groups = ids if len(first) == len(ids) else list(map(first.__getitem__, keys))
    frozen = FrozenList(
        ids,
        list(map(attrgetter("phone"), ordered)),
        list(map(attrgetter("chances"), ordered)),
        groups,
    )
    problems = list_problems(frozen)
    if problems:
        raise DrawInputError("; ".join(problems))
    return frozen


def _first(flags: Iterable[object]) -> int | None:
    """The index of the first true flag, or None (the loop runs at C speed)."""
    return next(compress(count(), flags), None)


def list_problems(frozen: FrozenList) -> list[str]:
    """Why a list is not canonical (empty when it is), each at its first line: ids ascending
    from 1, masked phones, chances, and groups naming their group's smallest entry id.

    Each rule is checked over whole columns at C speed (100,000 lines in a few milliseconds);
    only a broken rule is searched line by line, for the message."""
    ids, phones, chances, groups = frozen.ids, frozen.phones, frozen.chances, frozen.groups
    problems: list[str] = []

    def at(index: int | None, problem: str) -> None:
        problems.append(f"line {index + 1 if index is not None else 0}: {problem}")

    if not ids:
        return problems
    if len(ids) > MAX_ENTRANTS:
        problems.append(f"more than {MAX_ENTRANTS} entrants")
    bad = _first(map(ge, [0, *ids], ids))  # an id not above the one before (or 0)
    if bad is not None:
        at(bad, f"entry {ids[bad]}: ids ascend, starting from 1")
    if max(ids) > MAX_ENTRY_ID:
        at(_first(map(MAX_ENTRY_ID.__lt__, ids)), "an id is at most 2**63 - 1")
    text = "".join(phones)
    lengths = list(map(len, phones))
    # ASCII and printable is 0x20-0x7e; without the space, the masked phone's alphabet.
    if not (
        text.isascii()
        and text.isprintable()
        and " " not in text
        and min(lengths) >= 1
        and max(lengths) <= MAX_PHONE_CHARS
    ):
        at(
            _first(map(not_, map(_PHONE.fullmatch, phones))),
            f"a masked phone is 1 to {MAX_PHONE_CHARS} printable ASCII characters, no spaces",
        )
    if not (min(chances) >= 1 and max(chances) <= MAX_CHANCES):
        at(
            _first(map(not_, map(range(1, MAX_CHANCES + 1).__contains__, chances))),
            f"chances are 1 to {MAX_CHANCES}",
        )
    for index in compress(count(), map(ne, groups, ids)):
        group = groups[index]
        leader = bisect_left(ids, group, hi=index)
        if leader == index or ids[leader] != group or groups[leader] != group:
            at(index, f"entry {ids[index]}: group {group} is not an earlier entry leading it")
            break
    return problems
