"""leadkit-draw-v1: who wins a draw, as a function anyone can recompute (docs/draws.md).

Commit–reveal, optionally with drand:

1. At publication a 32-byte secret seed is drawn and ``commitment(seed)`` published.
2. At close the entries are frozen into the canonical entrant list (app/draws/entrants.py);
   its SHA-256 and count are published.
3. The winners are ``draw(seed, list, rules, drand randomness)``: HMAC-SHA256 in counter mode
   keyed by (seed, list hash, randomness) drives a weighted selection without replacement —
   weights are the entries' chances — tier after tier, each tier's winners then its reserves.
4. The seed is revealed with the proof bundle, which anyone can recompute (app/draws/proof.py).

Pure functions: no database, no web framework, no clock. Integers only (no floats), and
rejection sampling, so every entry's chance is exactly its weight over the pool's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import accumulate, compress, count
from operator import and_, ne, sub

import msgspec

from app.draws.entrants import DrawInputError, FrozenList

ALGORITHM = "leadkit-draw-v1"
SEED_BYTES = 32
MAX_TIERS = 100
MAX_TIER_NAME = 100
MAX_QUANTITY = 100_000
MAX_RESERVES = 10_000
U64 = 2**64


def new_seed() -> bytes:
    """A secret seed from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """What is published before the draw: hex SHA-256 of the seed's 32 bytes."""
    return hashlib.sha256(seed).hexdigest()


# --- the random stream -----------------------------------------------------------------


def drbg_key(seed: bytes, entrants_hash: bytes, randomness: bytes | None) -> bytes:
    """K = HMAC-SHA256(seed, "leadkit-draw-v1" ‖ 0x00 ‖ list hash ‖ drand randomness)."""
    message = ALGORITHM.encode() + b"\x00" + entrants_hash + (randomness or b"")
    return hmac.digest(seed, message, "sha256")


class Drbg:
    """HMAC-SHA256 in counter mode: block i = HMAC-SHA256(K, i as 8 bytes big-endian), read
    8 bytes at a time (four numbers per block) as unsigned big-endian 64-bit integers."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._block = b""
        self._offset = 32

    def next_u64(self) -> int:
        if self._offset == 32:
            self._block = hmac.digest(self._key, self._counter.to_bytes(8, "big"), "sha256")
            self._counter += 1
            self._offset = 0
        start = self._offset
        self._offset += 8
        return int.from_bytes(self._block[start : start + 8], "big")


def uniform(next_u64: Callable[[], int], n: int) -> int:
    """An integer in [0, n) with no modulo bias: 64-bit numbers at or above the largest
    multiple of n below 2**64 are thrown away and the next one is read."""
    if not 1 <= n <= U64:
        raise DrawInputError(f"cannot draw below {n}")
    limit = U64 - U64 % n
    while True:
        x = next_u64()
        if x < limit:
            return x % n


# --- the selection ---------------------------------------------------------------------


class TierRule(msgspec.Struct, frozen=True):
    """A prize tier as published with the rules: name, prizes, reserves to draw after them."""

    name: str
    quantity: int
    reserves: int = 0


class TierResult(msgspec.Struct, frozen=True):
    name: str
    quantity: int
    reserve_quantity: int
    winners: tuple[int, ...]  # entry ids, in the order drawn
    reserves: tuple[int, ...]  # entry ids, in the order they are called up

    @property
    def undrawn(self) -> int:
        """Prizes left undrawn because the pool ran out of entrants."""
        return self.quantity - len(self.winners)


def rule_problems(rules: Sequence[TierRule]) -> list[str]:
    problems: list[str] = []
    if not 1 <= len(rules) <= MAX_TIERS:
        problems.append(f"a draw has 1 to {MAX_TIERS} tiers, not {len(rules)}")
    for number, rule in enumerate(rules, start=1):
        if not 1 <= len(rule.name) <= MAX_TIER_NAME:
            problems.append(f"tier {number}: the name is 1 to {MAX_TIER_NAME} characters")
        if not 1 <= rule.quantity <= MAX_QUANTITY:
            problems.append(f"tier {number}: the quantity is 1 to {MAX_QUANTITY}")
        if not 0 <= rule.reserves <= MAX_RESERVES:
            problems.append(f"tier {number}: the reserves are 0 to {MAX_RESERVES}")
    return problems


class _Pool:
    """The entrants still in the running, as a Fenwick tree of their weights: finding the
    entrant at a cumulative weight and removing one both cost O(log n), so 100 picks among
    100,000 entrants stay in milliseconds. The result is the same as walking the list."""

    def __init__(self, weights: list[int]) -> None:
        size = len(weights)
        prefix = [0, *accumulate(weights)]
        # Node i (1-based) holds the weights of entrants i - lowbit(i) + 1 .. i, that is
        # prefix[i] - prefix[i & (i - 1)]; built from the prefix sums at C speed.
        below = map(prefix.__getitem__, map(and_, range(1, size + 1), range(size)))
        self.tree = [0, *map(sub, prefix[1:], below)]
        self.size = size
        self.weights = list(weights)
        self.total = prefix[-1]
        self.top = 1 << (size.bit_length() - 1) if size else 0

    def copy(self) -> _Pool:
        pool = object.__new__(_Pool)
        pool.size, pool.top, pool.total = self.size, self.top, self.total
        pool.tree, pool.weights = list(self.tree), list(self.weights)
        return pool

    def find(self, target: int) -> int:
        """The index of the first entrant whose running weight sum exceeds ``target``."""
        position, step, tree = 0, self.top, self.tree
        while step:
            after = position + step
            if after <= self.size and tree[after] <= target:
                position = after
                target -= tree[after]
            step >>= 1
        return position

    def remove(self, index: int) -> None:
        weight = self.weights[index]
        if weight:
            self.weights[index] = 0
            self.total -= weight
            i = index + 1
            while i <= self.size:
                self.tree[i] -= weight
                i += i & -i


def select(
    frozen: FrozenList,
    rules: Sequence[TierRule],
    *,
    one_win_per_phone: bool,
    next_u64: Callable[[], int],
) -> tuple[TierResult, ...]:
    """Tier by tier, ``quantity`` winners then ``reserves`` reserves, each pick weighted by
    chances among the pool; a pick takes its whole phone group out of the pool. With
    ``one_win_per_phone`` the pool carries over from tier to tier, otherwise each tier starts
    from every entrant. An empty pool ends the tier's picks: those prizes stay undrawn."""
    ids, groups = frozen.ids, frozen.groups
    fresh = _Pool(frozen.chances)
    members: dict[int, list[int]] = {}  # group -> its entrants' indexes, for groups of 2+
    for index in compress(count(), map(ne, groups, ids)):
        group = groups[index]
        if group not in members:
            leader = bisect_left(ids, group)
            if leader == len(ids) or ids[leader] != group:
                raise DrawInputError(f"entry {ids[index]}: no entry {group} leads its group")
            members[group] = [leader]
        members[group].append(index)
    pool = fresh
    results = []
    for rule in rules:
        if not one_win_per_phone:
            pool = fresh.copy()
        picked: list[list[int]] = []
        for wanted in (rule.quantity, rule.reserves):
            drawn: list[int] = []
            while len(drawn) < wanted and pool.total:
                index = pool.find(uniform(next_u64, pool.total))
                drawn.append(ids[index])
                for member in members.get(groups[index], (index,)):
                    pool.remove(member)
            picked.append(drawn)
        results.append(
            TierResult(rule.name, rule.quantity, rule.reserves, tuple(picked[0]), tuple(picked[1]))
        )
    return tuple(results)


def draw(
    seed: bytes,
    frozen: FrozenList,
    rules: Sequence[TierRule],
    *,
    one_win_per_phone: bool,
    randomness: bytes | None = None,
) -> tuple[TierResult, ...]:
    """The winners and reserves of every tier: a deterministic function of the seed, the
    canonical list (through its hash) and, in drand mode, the round's randomness."""
    problems = rule_problems(rules)
    if problems:
        raise DrawInputError("; ".join(problems))
    drbg = Drbg(drbg_key(seed, bytes.fromhex(frozen.hash), randomness))
    return select(frozen, rules, one_win_per_phone=one_win_per_phone, next_u64=drbg.next_u64)
