"""Live-update streams (server-sent events) under a cap, and the answer that sends a page to
polling instead.

A stream holds a connection for minutes, and a worker serves a bounded number of connections
(``LEADKIT_MAX_CONNECTIONS``): uncapped, a live room's streams take them all and page loads
queue behind streams that end only after minutes. So every stream endpoint (grab stock today,
draws next) opens its stream through :func:`live_stream`, which takes a slot from the worker's
one :class:`StreamSlots` (the app's part, app/core/state.py): at most
``LEADKIT_STREAMS_PER_WORKER`` streams per worker and ``LEADKIT_STREAMS_PER_IP`` per client
address in it.

Over a cap the endpoint answers at once with a short, complete event stream and closes the
connection::

    event: poll
    data: {"poll_seconds": 5, "retry_seconds": 57}
    retry: 57000

The page then polls its plain JSON endpoint every ``poll_seconds``; the browser's EventSource
opens the stream again by itself after ``retry`` milliseconds (jittered, so pages refused
together do not come back together), and the page stops polling once a stream delivers again.
The status is 200 because EventSource gives up for good on any other; ``Retry-After`` tells
other clients the same.

When a worker is asked to stop (SIGTERM, SIGINT), its streams end at once
(:func:`end_streams_on_shutdown`): a stream would otherwise hold the worker's graceful stop for
minutes, until it is killed with its buffered funnel events. The browsers reconnect after
``RECONNECT_MS``, to another worker or to the restarted server.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.response import Stream
from litestar.response.sse import ServerSentEventMessage

from app.core.api import answer
from app.core.live import LiveHub, Topic
from app.core.state import part
from app.core.web import client_ip
from app.settings import Settings

# A refused page tries the stream again after about this long.
RETRY_SECONDS = 60
# A stream that ends (or drops) is reopened by the browser after this long.
RECONNECT_MS = 3000
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
# A status stream ends after this long (the EventSource reconnects by itself: no stream lives
# forever) and says something at least this often (a comment when nothing changed).
STREAM_SECONDS = 300
HEARTBEAT_SECONDS = 15

S = TypeVar("S")


class StreamSlot:
    """One open stream's place under the caps; given back once, by ``release`` or when the
    slot is garbage (a stream whose body never started still frees its place)."""

    __slots__ = ("_ip", "_owner")

    def __init__(self, owner: StreamSlots, ip: str) -> None:
        self._owner: StreamSlots | None = owner
        self._ip = ip

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._give_back(self._ip)

    def __del__(self) -> None:
        self.release()


class StreamSlots:
    """Counts this process's open streams, in all and per client address."""

    def __init__(self, per_worker: int, per_ip: int) -> None:
        self.per_worker = per_worker
        self.per_ip = per_ip
        self.open = 0
        self.refused = 0
        self._by_ip: dict[str, int] = {}
        # Set when the worker is stopping: every stream ends, new ones are told to poll.
        self.closing = asyncio.Event()

    def close(self) -> None:
        self.closing.set()

    def take(self, ip: str) -> StreamSlot | None:
        """A slot for a new stream from ``ip``, or None when a cap is reached."""
        held = self._by_ip.get(ip, 0)
        if self.open >= self.per_worker or held >= self.per_ip or self.closing.is_set():
            self.refused += 1
            return None
        self.open += 1
        self._by_ip[ip] = held + 1
        return StreamSlot(self, ip)

    def held_by(self, ip: str) -> int:
        return self._by_ip.get(ip, 0)

    def _give_back(self, ip: str) -> None:
        self.open -= 1
        held = self._by_ip.get(ip, 0) - 1
        if held > 0:
            self._by_ip[ip] = held
        else:
            self._by_ip.pop(ip, None)


def poll_instead(poll_seconds: int, retry_seconds: float = RETRY_SECONDS) -> Response[bytes]:
    """The answer over the cap: poll every ``poll_seconds``, try the stream again later."""
    retry = round(retry_seconds * random.uniform(0.8, 1.2))
    hint = msgspec.json.encode({"poll_seconds": poll_seconds, "retry_seconds": retry})
    body = ServerSentEventMessage(data=hint.decode(), event="poll", retry=retry * 1000).encode()
    return Response(
        body,
        media_type="text/event-stream",
        # Closed after the answer: an idle keep-alive connection would hold one of the
        # worker's connections for nothing.
        headers={**STREAM_HEADERS, "Retry-After": str(retry), "Connection": "close"},
    )


def live_stream(
    request: Request[Any, Any, Any],
    messages: Callable[[], AsyncIterator[ServerSentEventMessage]],
) -> Response[Any]:
    """A server-sent-event stream of ``messages()`` if a slot is free, else ``poll_instead``.

    ``messages`` is called only once the stream has its slot; the slot is given back when the
    stream ends, fails, or the client goes away.
    """
    settings = part(request, Settings)
    slots = part(request, StreamSlots)
    slot = slots.take(client_ip(request.scope, settings.trust_proxy))
    if slot is None:
        return poll_instead(settings.stream_poll_seconds)
    body = _held(slot, messages(), slots.closing)
    return Stream(body, media_type="text/event-stream", headers=STREAM_HEADERS)


def status_stream_answer(thing: str, status_path: str) -> Any:
    """The documented 200 answer of a ``live_status`` endpoint: ``thing`` ("the grab") and the
    path of its plain status JSON (what the page polls instead)."""
    return answer(
        str,
        f"Server-sent events: `status` ({thing}'s status JSON, as `GET {status_path}`) "
        f"whenever it changes, a comment every {HEARTBEAT_SECONDS} s; the stream ends after "
        f"{STREAM_SECONDS // 60} minutes (EventSource reconnects). Over the stream caps the "
        'answer is one `poll` event, `{"poll_seconds", "retry_seconds"}`, and the end: poll '
        f"`GET {status_path}` that often; the browser retries the stream by itself.",
        "text/event-stream",
    )


def live_status(
    request: Request[Any, Any, Any],
    read: Callable[[], Awaitable[S]],
    live: LiveHub,
    topic: Topic,
    wait_seconds: Callable[[S], float],
    news: Callable[[S], object] | None = None,
) -> Response[Any]:
    """A thing's status as a live stream (under the caps, :func:`live_stream`): ``read()``'s
    JSON as a ``status`` event whenever it changes, a comment when quiet for
    ``HEARTBEAT_SECONDS``; between reads the stream sleeps until ``topic`` changes on the hub
    or ``wait_seconds(status)`` pass. ``news(status)``, when given, is what must differ for a
    read to be news (a countdown that changes by itself is not)."""

    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        last = b""
        quiet_since = time.monotonic()
        until = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < until:
            status = await read()
            payload = msgspec.json.encode(status if news is None else news(status))
            if payload != last:
                last, quiet_since = payload, time.monotonic()
                data = payload if news is None else msgspec.json.encode(status)
                yield ServerSentEventMessage(data=data.decode(), event="status")
            elif time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                quiet_since = time.monotonic()
                yield ServerSentEventMessage(comment="keep-alive")
            await live.wait(topic, wait_seconds(status))

    return live_stream(request, messages)


async def _held(
    slot: StreamSlot, messages: AsyncIterator[ServerSentEventMessage], closing: asyncio.Event
) -> AsyncIterator[bytes]:
    """The stream's bytes: ``messages`` until they end or ``closing`` is set."""
    stop = asyncio.ensure_future(closing.wait())
    step: asyncio.Future[ServerSentEventMessage] | None = None
    try:
        yield f"retry: {RECONNECT_MS}\r\n\r\n".encode()
        while not closing.is_set():
            step = asyncio.ensure_future(anext(messages))
            await asyncio.wait((step, stop), return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                break  # the worker is stopping: end the stream now
            try:
                message = step.result()
            except StopAsyncIteration:
                break
            step = None
            yield message.encode()
    finally:
        slot.release()
        stop.cancel()
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await step
        close = getattr(messages, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


def end_streams_on_shutdown(slots: StreamSlots) -> Callable[[], Awaitable[None]]:
    """An ``on_startup`` hook for a served worker: SIGTERM or SIGINT also ends its streams.

    granian installs its own handlers on the event loop before the app starts; this one runs
    first and then calls granian's, which stops the worker. Without a handler to chain (the app
    not served by granian), nothing is installed.
    """

    async def install() -> None:
        loop = asyncio.get_running_loop()
        # asyncio's Unix event loops keep the handlers added with add_signal_handler here.
        installed = getattr(loop, "_signal_handlers", None)
        if not isinstance(installed, dict):
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = installed.get(signum)
            if not isinstance(previous, asyncio.Handle):
                continue

            def on_signal(previous: asyncio.Handle = previous) -> None:
                slots.close()
                previous._run()

            loop.add_signal_handler(signum, on_signal)

    return install
