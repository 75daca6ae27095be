"""Live updates of grabs: "grab N changed" fans out to every process (Redis pub/sub) or stays
in this one (embedded default), and wakes the server-sent-event streams watching it.

A burst of claims makes one message per grab per ``THROTTLE`` seconds, not one per claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis

log = logging.getLogger("leadkit.grabs")
THROTTLE = 0.25


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


class LiveHub:
    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self._redis = redis
        self._channel = f"{prefix}grabs:changed"
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._pending: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Called with the grab id whenever it changed here or in another process.
        self.listeners: list[Callable[[int], None]] = []

    async def start(self) -> None:
        if self._redis is not None:
            self._task = asyncio.create_task(self._listen(), name="grab-live-listener")

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    def changed(self, grab_id: int, *, now: bool = False) -> None:
        """Grab ``grab_id`` changed (a claim, an edit, open/close); ``now`` skips the delay."""
        if now:
            self._pending.discard(grab_id)
            asyncio.get_running_loop().create_task(self._flush(grab_id))
            return
        if grab_id in self._pending:
            return
        self._pending.add(grab_id)
        asyncio.get_running_loop().call_later(THROTTLE, self._flush_later, grab_id)

    def _flush_later(self, grab_id: int) -> None:
        if grab_id in self._pending:
            self._pending.discard(grab_id)
            asyncio.get_running_loop().create_task(self._flush(grab_id))

    async def _flush(self, grab_id: int) -> None:
        if self._redis is None:
            self._wake(grab_id)
            return
        try:
            await self._redis.publish(self._channel, str(grab_id))
        except Exception:  # the streams fall back to their periodic refresh
            log.warning("could not publish a grab change", exc_info=True)
            self._wake(grab_id)

    def forget_here(self, grab_id: int) -> None:
        """What this process holds of grab ``grab_id`` is not to be trusted — it was read in a
        transaction that did not commit — so the listeners (the caches) drop it. Nothing
        changed: no stream is woken and no other process is told."""
        for listener in self.listeners:
            listener(grab_id)

    def _wake(self, grab_id: int) -> None:
        self.forget_here(grab_id)
        for event in self._waiters.get(grab_id, ()):
            event.set()

    async def _listen(self) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            with contextlib.suppress(ValueError):
                                self._wake(int(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closing:  # the client may turn the cancellation into an error
                    return
                log.warning("grab live listener lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(1)

    async def wait(self, grab_id: int, seconds: float) -> None:
        """Until grab ``grab_id`` changes or ``seconds`` pass."""
        event = asyncio.Event()
        waiters = self._waiters.setdefault(grab_id, set())
        waiters.add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(grab_id, None)
