"""Stopping the app's parts in turn, each within a bound, so a shutdown never hangs.

A part that does not stop in time (a connection stuck in the network, a task that swallows
its cancellation) is cancelled and left behind with a warning naming it, and the next part
is stopped: the process exits, and its supervisor (or the test) is not held forever by one
part. What such a part had in hand is covered by the parts' own rules (an outbox lease runs
out and the message is sent again; the claim stream is read again from where it was)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Step = tuple[str, Callable[[], Awaitable[object]]]


async def stop_in_turn(steps: list[Step], seconds: float = 10.0) -> list[str]:
    """Run each ``(name, stop)`` in order, at most ``seconds`` each; the names of the parts
    that did not stop in time (or failed), in order."""
    stuck: list[str] = []
    for name, stop in steps:
        task = asyncio.ensure_future(stop())
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            task.cancel()
            log.warning("shutdown: %s did not stop within %s s; left behind", name, seconds)
            stuck.append(name)
        elif task.exception() is not None:
            log.warning("shutdown: stopping %s failed", name, exc_info=task.exception())
            stuck.append(name)
    return stuck
