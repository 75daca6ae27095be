"""Secrets at rest: staff passwords (argon2, hashed in threads of their own, a few at a time)
and the digests that stand for random tokens (session cookies, API tokens)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.errors import RateLimited
from app.core.i18n import N_

T = TypeVar("T")
_hasher = PasswordHasher()
# Verified against when the username is unknown, so both paths cost one argon2 hash.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# Below the event loop (nice 0): see _yield_cpu.
HASHING_NICENESS = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. Without a hash (no such user) it is
    checked against a dummy one, so an unknown name costs the same hash and says no."""
    try:
        return bool(_hasher.verify(password_hash or _DUMMY_HASH, password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with weaker parameters than today's: hash the password again."""
    return bool(_hasher.check_needs_rehash(password_hash))


def token_digest(raw: str) -> str:
    """What is stored for a random token: its SHA-256 (the token itself is never stored)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class PasswordChecks:
    """This worker process's password hashing. argon2 costs a few hundred milliseconds of
    CPU per hash by design, so it runs in threads of its own (the event loop keeps serving
    visitors meanwhile), at most ``concurrency`` at once; up to ``queue`` more wait their turn,
    and any further one is refused at once (429) rather than piling up behind a flood."""

    RETRY_AFTER = 2

    def __init__(self, concurrency: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._pool = _hashing_pool(concurrency)
        self._queue = queue
        self._waiting = 0

    def refusal(self) -> RateLimited:
        return RateLimited(
            N_("Many sign-ins are being checked right now. Please try again in a moment."),
            retry_after=self.RETRY_AFTER,
        )

    def refuse_when_full(self) -> None:
        """Raise ``RateLimited`` when every slot is taken and the queue is full: the cheapest
        answer to a flood, before anything is counted or written."""
        if self._slots.locked() and self._waiting >= self._queue:
            raise self.refusal()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the hashing slots; raises ``RateLimited`` when the queue is full."""
        self.refuse_when_full()
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a hashing thread, inside ``turn()``. The pool has ``concurrency``
        threads, so even a cancelled request's hash, which runs on, keeps the bound."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _hashing_pool(size: int) -> ThreadPoolExecutor:
    # One pool per size in a process (a server has one app; the tests build many).
    if size not in _POOLS:
        _POOLS[size] = ThreadPoolExecutor(
            size, thread_name_prefix="leadkit-password", initializer=_yield_cpu
        )
    return _POOLS[size]


def _yield_cpu() -> None:
    """Hashing threads run below the event loop's CPU priority, so with every core busy
    hashing a page request is still served first (argon2's own lane threads inherit it)."""
    if sys.platform == "linux":  # per thread there; elsewhere it would be the whole process
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
