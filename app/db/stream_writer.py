"""A durable writer from Redis streams to SQL, shared by every hot path that decides in Redis
and records in SQL: the grabs' claims (app/grabs/store/redis_writer.py) and the draws' entries
(app/draws/entry_writer.py).

A hot path's Lua script appends what it decided to a stream; every process runs one writer
task that reads the streams through one consumer group and hands the entries to ``write``, its
subclass's SQL (an insert that a redelivered entry leaves unchanged, in one transaction).
Entries stay in the stream, unacknowledged, until they are written; then they are acknowledged
and deleted. A writer that dies leaves what it had read to another process, which takes it over
once it has been idle for ``CLAIM_IDLE_MS``. During a rush the writer waits ``BATCH_PAUSE`` after
a small batch, so the next transaction carries hundreds of entries instead of one or two
(group commit).

The streams are a fixed list (``streams``) and, with ``registry``, the members of a Redis set
(one stream per draw: a Redis Cluster keeps each next to its draw's other keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.core.live import stop_task

Fields = dict[bytes, bytes]


class StreamWriter:
    """Drains ``streams`` (and the streams named in the set ``registry``) into SQL through
    ``write``, which subclasses define."""

    GROUP = "writers"
    BATCH = 500
    BATCH_PAUSE = 0.1  # seconds
    CLAIM_IDLE_MS = 30_000  # another writer's unacknowledged entries are taken over after this

    def __init__(
        self,
        redis: Redis,
        *,
        streams: Sequence[str] = (),
        registry: str | None = None,
        log: logging.Logger,
        name: str,
    ) -> None:
        self._redis = redis
        self._streams = list(streams)
        self._registry = registry
        self._log = log
        self._name = name
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._grouped: set[str] = set()  # streams whose group this process has made sure of

    async def write(self, entries: list[Fields]) -> None:
        """Write ``entries`` (the streams' fields) to SQL in one transaction; an entry written
        before (a redelivery) must change nothing."""
        raise NotImplementedError

    async def streams(self) -> list[str]:
        """The streams to read now: the fixed ones and the registry's members."""
        found = list(self._streams)
        if self._registry is not None:
            members: Any = await self._redis.smembers(self._registry)
            found += sorted(m.decode() for m in members)
        for stream in found:
            if stream not in self._grouped:
                await self.ensure_group(stream)
        return found

    async def ensure_group(self, stream: str) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self._redis.xgroup_create(stream, self.GROUP, id="0", mkstream=True)
        self._grouped.add(stream)

    async def pending(self) -> int:
        """Stream entries not yet written to SQL (read or not)."""
        total = 0
        for stream in await self.streams():
            try:
                total += int(await self._redis.xlen(stream))
            except ResponseError:
                continue
        return total

    async def start(self) -> None:
        self._grouped.clear()
        await self.streams()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        # The last entries, best effort and bounded: what is left stays in the stream and the
        # next writer (any process) takes it over.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                written = await self._step(block_ms=1000)
                if 0 < written < self.BATCH:
                    # Group commit: during a rush entries arrive a few at a time; a short pause
                    # lets the next transaction carry hundreds of them instead of one or two.
                    # The entries stay in the stream, unacknowledged, until they are written.
                    await asyncio.sleep(self.BATCH_PAUSE)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or Redis hiccup: the entries stay pending
                self._log.exception("%s failed; retrying", self._name)
                self._grouped.clear()  # a Redis that lost the stream lost its group too
                await asyncio.sleep(1)

    async def drain(self) -> None:
        """Write whatever is in the streams now (tests, the check command, shutdown)."""
        self._grouped.clear()
        while await self._step(block_ms=None) > 0:
            pass

    async def flush(self, stream: str, seconds: float = 10.0) -> None:
        """Until ``stream`` is empty: every entry in it written to SQL, whoever had read it.
        Entries another process read and has not acknowledged are taken over at once and
        written again (which changes nothing); a writer in the middle of writing them is waited
        for by the database (its unique keys). Runs as a task of its own, outside the caller's
        request: its SQL is the writer's, never a second connection of the request."""
        task = asyncio.get_running_loop().create_task(
            self._flush(stream), name=f"{self._name}-flush", context=contextvars.Context()
        )
        await asyncio.wait_for(task, seconds)

    async def _flush(self, stream: str) -> None:
        await self.ensure_group(stream)
        while True:
            claimed: Any = await self._redis.xautoclaim(
                stream, self.GROUP, self._consumer, min_idle_time=0, count=self.BATCH
            )
            entries = [(stream, entry_id, fields) for entry_id, fields in claimed[1]]
            fresh: Any = await self._redis.xreadgroup(
                self.GROUP, self._consumer, {stream: ">"}, count=self.BATCH
            )
            for name, items in fresh or []:
                entries += [(_text(name), entry_id, fields) for entry_id, fields in items]
            if entries:
                await self._done(entries)
            elif int(await self._redis.xlen(stream)) == 0:
                return
            else:  # acknowledged by another writer, not deleted yet
                await asyncio.sleep(0.01)

    async def _step(self, block_ms: int | None) -> int:
        streams = await self.streams()
        if not streams:
            if block_ms:
                await asyncio.sleep(block_ms / 1000)
            return 0
        entries: list[tuple[str, bytes, Fields]] = []
        for stream in streams:
            # Entries another writer read but never acknowledged (it died) come back.
            claimed: Any = await self._redis.xautoclaim(
                stream,
                self.GROUP,
                self._consumer,
                min_idle_time=self.CLAIM_IDLE_MS,
                count=self.BATCH,
            )
            entries += [(stream, entry_id, fields) for entry_id, fields in claimed[1]]
        mine: Any = await self._redis.xreadgroup(
            self.GROUP, self._consumer, dict.fromkeys(streams, "0"), count=self.BATCH
        )
        for name, items in mine:
            entries += [(_text(name), entry_id, fields) for entry_id, fields in items]
        if not entries:
            fresh: Any = await self._redis.xreadgroup(
                self.GROUP,
                self._consumer,
                dict.fromkeys(streams, ">"),
                count=self.BATCH,
                block=block_ms,
            )
            for name, items in fresh or []:
                entries += [(_text(name), entry_id, fields) for entry_id, fields in items]
        if not entries:
            return 0
        await self._done(entries)
        return len(entries)

    async def _done(self, entries: list[tuple[str, bytes, Fields]]) -> None:
        """Write the entries, then acknowledge and delete them, stream by stream."""
        await self.write([fields for _, _, fields in entries if fields])
        by_stream: dict[str, list[bytes]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            await self._redis.xack(stream, self.GROUP, *ids)
            await self._redis.xdel(stream, *ids)


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name
