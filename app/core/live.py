"""Live updates: "topic T changed" fans out to every process (Redis pub/sub) or stays in this
one (embedded default), and wakes whatever waits on T (the server-sent-event streams).

A topic is a feature's name and a row id: ``("grab", 12)``, ``("draw", 3)``. One hub serves
every feature, on one Redis channel (``{prefix}live:changed``, messages ``grab:12``). A burst of
changes makes one message per topic per ``THROTTLE`` seconds, not one per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable

from redis.asyncio import Redis

log = logging.getLogger("leadkit.live")
THROTTLE = 0.25
Topic = tuple[str, int]
_MESSAGE = re.compile(r"^([a-z_]{1,32}):([0-9]{1,19})\Z")


async def stop_task(task: asyncio.Task[None], seconds: float = 3.0) -> None:
    """Cancel a background task and wait for it, but never longer than ``seconds``: a client
    library that swallows the cancellation must not hang the server's shutdown."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        log.warning("background task %s did not stop within %.0f s", task.get_name(), seconds)
        return
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def encode(topic: Topic) -> str:
    return f"{topic[0]}:{topic[1]}"


def decode(data: str | bytes) -> Topic | None:
    text = data.decode() if isinstance(data, bytes) else data
    match = _MESSAGE.match(text)
    return (match.group(1), int(match.group(2))) if match else None


class LiveHub:
    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self._redis = redis
        self._channel = f"{prefix}live:changed"
        self._waiters: dict[Topic, set[asyncio.Event]] = {}
        self._pending: set[Topic] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Called with the topic whenever it changed here or in another process.
        self.listeners: list[Callable[[Topic], None]] = []

    async def start(self) -> None:
        """Listen to the other processes (idempotent: several features may start the hub)."""
        if self._redis is not None and self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._listen(), name="live-listener")

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            task, self._task = self._task, None
            await stop_task(task)

    def changed(self, topic: Topic, *, now: bool = False) -> None:
        """``topic`` changed; ``now`` skips the throttling delay (a state change, a result)."""
        if now:
            self._pending.discard(topic)
            asyncio.get_running_loop().create_task(self._flush(topic))
            return
        if topic in self._pending:
            return
        self._pending.add(topic)
        asyncio.get_running_loop().call_later(THROTTLE, self._flush_later, topic)

    def _flush_later(self, topic: Topic) -> None:
        if topic in self._pending:
            self._pending.discard(topic)
            asyncio.get_running_loop().create_task(self._flush(topic))

    async def _flush(self, topic: Topic) -> None:
        if self._redis is None:
            self._wake(topic)
            return
        try:
            await self._redis.publish(self._channel, encode(topic))
        except Exception:  # the streams fall back to their periodic refresh
            log.warning("could not publish a live change", exc_info=True)
            self._wake(topic)

    def forget_here(self, topic: Topic) -> None:
        """What this process holds of ``topic`` is not to be trusted — it was read in a
        transaction that did not commit — so the listeners (the caches) drop it. Nothing
        changed: no stream is woken and no other process is told."""
        for listener in self.listeners:
            listener(topic)

    def _wake(self, topic: Topic) -> None:
        self.forget_here(topic)
        for event in self._waiters.get(topic, ()):
            event.set()

    async def _listen(self) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            topic = decode(message["data"])
                            if topic is not None:
                                self._wake(topic)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closing:  # the client may turn the cancellation into an error
                    return
                log.warning("live listener lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(1)

    async def wait(self, topic: Topic, seconds: float) -> None:
        """Until ``topic`` changes or ``seconds`` pass."""
        event = asyncio.Event()
        waiters = self._waiters.setdefault(topic, set())
        waiters.add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(topic, None)
