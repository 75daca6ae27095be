"""Faults: `leadkit serve` keeps serving through worker crashes, a killed worker's PDF renderers
die with it and nothing outlives the server, and live streams stay under their caps while pages
keep loading.

The served tests kill real granian workers with SIGKILL and read the process tree from /proc
(Linux). Timings enter pass/fail only as generous liveness bounds; bench/faults.py measures.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from app.core.streams import StreamSlots, poll_instead
from app.serve import CrashPolicy
from app.settings import SettingsError, load_settings
from tests.proctree import alive, children, cmdline, descendants, marked
from tests.served import Served, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process tree from /proc"
)

T = TypeVar("T")
RECOVERY_SECONDS = 30.0  # liveness bound: a server that needs longer to answer again is down
EVENTS = "/api/v1/grabs/grab-demo/events"


def _server_pid() -> int:
    """The `leadkit serve` process: a child of this test process."""
    servers = [
        p
        for p in children(os.getpid())
        if "leadkit serve" in (line := cmdline(p)) or "granian" in line
    ]
    assert len(servers) == 1, [cmdline(p) for p in children(os.getpid())]
    return servers[0]


def _wait(check: Callable[[], T | None], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:.0f} s: {what}", pytrace=False)
        time.sleep(0.05)


def _workers(server: int, count: int = 2) -> list[int]:
    return _wait(
        lambda: workers if len(workers := children(server)) == count else None,
        RECOVERY_SECONDS,
        f"{count} workers running",
    )


def _renderers(worker: int) -> list[int]:
    """The worker's PDF renderer processes (and any process pool machinery around them)."""
    return sorted(
        p
        for p in descendants(worker)
        if any(kind in cmdline(p) for kind in ("multiprocessing.spawn", "multiprocessing.fork"))
    )


class Prober:
    """A visitor who keeps asking for a page from a thread; records when answers came."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered: list[float] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._stop.is_set():
                try:
                    if http.get(self.url).status_code == 200:
                        self.answered.append(time.monotonic())
                        continue
                except httpx.HTTPError:
                    pass
                self.failed += 1
                time.sleep(0.05)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _answers_again(app: Served, server: int, since: float, prober: Prober) -> None:
    """The server process is alive and answers within the liveness bound of ``since``."""
    _wait(
        lambda: any(at > since for at in prober.answered),
        RECOVERY_SECONDS,
        f"an answer after the kill\n{app.log_tail()}",
    )
    assert alive(server), app.log_tail()
    assert app.request("GET", "/healthz").status_code == 200


def _reap(pids: set[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _kill(pid: int) -> float:
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


# --- item 11: crashes ------------------------------------------------------------------------


@pytest.mark.served
def test_the_server_survives_worker_crashes(tmp_path: Path) -> None:
    with serve("sqlite", tmp_path, workers=2) as app:
        server = _server_pid()
        with Prober(app.url + "/t/guide-demo") as prober:
            first = _workers(server)
            # One slot dying twice within 5 s: granian on its own stops the whole server here.
            killed_at = _kill(first[0])
            replacement = _wait(
                lambda: next((p for p in children(server) if p not in first), None),
                5,
                "a replacement worker",
            )
            _kill(replacement)
            assert time.monotonic() - killed_at < 5
            _answers_again(app, server, killed_at, prober)

            # Both workers, 3 s apart.
            pair = _workers(server)
            _kill(pair[0])
            time.sleep(3)
            killed_at = _kill(pair[1])
            _answers_again(app, server, killed_at, prober)

            # And once more.
            killed_at = _kill(_workers(server)[0])
            _answers_again(app, server, killed_at, prober)
            _workers(server)
        assert "crash loop" not in app.log.read_text().lower()


def test_the_crash_policy_restarts_at_once_then_backs_off_then_gives_up() -> None:
    policy = CrashPolicy(window=60, limit=5, first_delay=0.5, max_delay=2)
    assert policy.crashed(0, 100.0) == 0  # the first crash: start again at once
    assert policy.crashed(1, 100.5) == 0  # other slots count on their own
    assert policy.crashed(0, 101.0) == 0.5
    assert policy.crashed(0, 102.0) == 1.0
    assert policy.crashed(0, 103.0) == 2.0  # capped at max_delay
    assert policy.crashed(0, 104.0) is None  # the fifth within the window: give up
    fresh = CrashPolicy(window=60, limit=3)
    assert fresh.crashed(0, 0.0) == 0
    assert fresh.crashed(0, 30.0) == fresh.first_delay
    # Crashes older than the window are forgotten: a worker that ran a while starts at once.
    assert fresh.crashed(0, 200.0) == 0


RLIMIT_PROBE = """
import resource
from app.serve import raise_open_files_limit
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))
raise_open_files_limit(8192)
print(*resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def test_serve_lifts_the_open_files_limit_as_far_as_the_hard_limit_allows() -> None:
    result = subprocess.run(
        [sys.executable, "-c", RLIMIT_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    # The soft limit goes up to the hard one; past it only the service manager can go, and
    # leadkit says so.
    assert result.stdout.split() == ["4096", "4096"]
    assert "LimitNOFILE" in result.stdout + result.stderr


# --- item 12: renderers die with their worker ------------------------------------------------


@pytest.mark.served
def test_a_killed_workers_renderers_die_with_it_and_nothing_outlives_the_server(
    tmp_path: Path,
) -> None:
    with serve("sqlite", tmp_path, workers=2) as app:
        server = _server_pid()
        workers = _workers(server)
        _wait(lambda: all(_renderers(w) for w in workers), 60, "a PDF renderer per worker")
        victim = workers[0]
        left_behind = descendants(victim)
        assert _renderers(victim) and set(_renderers(victim)) <= left_behind
        _kill(victim)
        try:
            _wait(
                lambda: not any(alive(p) for p in left_behind),
                10,
                f"the killed worker's processes exit: {[cmdline(p) for p in left_behind]}",
            )
        except BaseException:
            _reap(left_behind)  # a failing run leaves nothing behind on the machine
            raise
        # The replacement has renderers of its own and the survivor kept its own.
        _wait(
            lambda: len(ws := children(server)) == 2 and all(_renderers(w) for w in ws),
            60,
            f"renderers for both workers again\n{app.log_tail()}",
        )
        tree = {server, *descendants(server), *marked(tmp_path)}

    def left() -> list[str]:
        return [cmdline(p) for p in sorted(tree | marked(tmp_path)) if alive(p)]

    try:
        _wait(lambda: not left(), 20, f"no process left once the server stopped: {left()}")
    finally:
        _reap(tree | left_behind)


LIFELINE_PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {child!r}])
print(child.pid, flush=True)
time.sleep(120)
"""
LIFELINE_CHILD = """
import os, time
from app.core.lifeline import die_with_parent
die_with_parent(os.getppid(), use_prctl={use_prctl}, poll_seconds={poll})
time.sleep(120)
"""


# Each guard on its own: the kernel's (the watchdog polling too rarely to matter), then the
# watchdog's (no prctl).
@pytest.mark.parametrize(
    ("use_prctl", "poll"), [(True, 3600.0), (False, 0.2)], ids=["prctl", "watchdog"]
)
def test_a_child_dies_with_its_parent(use_prctl: bool, poll: float) -> None:
    child_code = LIFELINE_CHILD.format(use_prctl=use_prctl, poll=poll)
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LIFELINE_PARENT.format(child=child_code))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(1.5)  # the child is running, with its guard armed
        assert alive(child)
        parent.kill()
        parent.wait()
        _wait(lambda: not alive(child), 10, "the child exits with its parent")
    finally:
        parent.kill()
        parent.wait()


# --- item 14: live streams under their caps --------------------------------------------------


def test_stream_slots_cap_per_worker_and_per_address_and_come_back() -> None:
    slots = StreamSlots(per_worker=3, per_ip=2)
    a1, a2 = slots.take("a"), slots.take("a")
    assert a1 and a2 and slots.take("a") is None  # the address's cap
    b1 = slots.take("b")
    assert b1 and slots.take("c") is None  # the worker's cap
    assert (slots.open, slots.refused) == (3, 2)
    a1.release()
    a1.release()  # given back once only
    assert slots.open == 2 and slots.held_by("a") == 1
    c1 = slots.take("c")
    assert c1 is not None
    # A slot that is dropped without release (a stream whose body never started) comes back.
    del c1
    gc.collect()
    assert slots.open == 2 and slots.held_by("c") == 0


def test_the_poll_answer_tells_the_page_how_often_and_the_browser_when_to_retry() -> None:
    answer = poll_instead(7, retry_seconds=60)
    body = bytes(answer.content).decode()
    assert answer.media_type == "text/event-stream"
    assert "event: poll" in body and '"poll_seconds":7' in body
    retry = int(answer.headers["Retry-After"])
    assert 48 <= retry <= 72 and f"retry: {retry * 1000}" in body
    assert answer.headers["Connection"] == "close"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_connections": 1000, "streams_per_worker": 950}, "LEADKIT_STREAMS_PER_WORKER"),
        ({"backlog": 10}, "LEADKIT_BACKLOG"),
        ({"stream_poll_seconds": 0}, "LEADKIT_STREAM_POLL_SECONDS"),
        ({"streams_per_ip": -1}, "LEADKIT_STREAMS_PER_IP"),
    ],
)
def test_capacity_settings_are_checked(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({}, **values)
    load_settings({}, max_connections=1000, streams_per_worker=900)


class Stream:
    """One server-sent-event request, read event by event. Keep it referenced while the
    stream should stay open: a dropped line reader closes the connection."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def event(self) -> tuple[str, str]:
        name, data = "", ""
        async for line in self.lines:
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = line.partition(":")[2].strip()
            elif not line and name:
                return name, data
        return name, data

    async def rest(self) -> None:
        async for _ in self.lines:
            pass


async def _open(
    http: httpx.AsyncClient, stack: AsyncExitStack, ip: str | None = None
) -> tuple[Stream, str, str, float]:
    headers = {"X-Forwarded-For": ip} if ip else {}
    started = time.monotonic()
    response = await stack.enter_async_context(http.stream("GET", EVENTS, headers=headers))
    stream = Stream(response)
    name, data = await asyncio.wait_for(stream.event(), 10)
    return stream, name, data, time.monotonic() - started


@pytest.mark.served
def test_streams_over_their_caps_are_told_to_poll_and_pages_keep_loading(
    tmp_path: Path,
) -> None:
    env = {
        "LEADKIT_MAX_CONNECTIONS": "64",
        "LEADKIT_STREAMS_PER_WORKER": "48",
        "LEADKIT_STREAMS_PER_IP": "3",
        "LEADKIT_TRUST_PROXY": "true",  # the test stands in for many addresses
    }
    with serve("sqlite", tmp_path, workers=1, env=env) as app:

        async def scenario() -> None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=0)
            async with (
                httpx.AsyncClient(base_url=app.url, timeout=10, limits=limits) as http,
                AsyncExitStack() as streams,
            ):
                held: list[Stream] = []
                # One address: three live streams, then "poll", at once.
                for _ in range(3):
                    stream, name, _, _ = await _open(http, streams)
                    assert name == "status"
                    held.append(stream)
                async with AsyncExitStack() as refused:
                    stream, name, data, took = await _open(http, refused)
                    assert (name, data.count('"poll_seconds":5')) == ("poll", 1), data
                    assert took < 5 and "retry-after" in stream.response.headers
                    await asyncio.wait_for(stream.rest(), 5)  # and the answer ends
                # Fill the worker from other addresses: 45 more streams are live, then every
                # further one is told to poll, and 12 page loads still answer.
                for i in range(45):
                    stream, name, _, _ = await _open(http, streams, f"10.0.{i // 3}.{i % 3}")
                    assert name == "status", i
                    held.append(stream)
                late = await asyncio.gather(
                    *(_open(http, streams, f"10.1.0.{i}") for i in range(32))
                )
                assert {name for _, name, _, _ in late} == {"poll"}
                assert max(took for *_, took in late) < 10
                pages = await asyncio.gather(*(http.get("/t/grab-demo") for _ in range(12)))
                assert [page.status_code for page in pages] == [200] * 12
                # Streams that end give their places back.
                await streams.aclose()
                held.clear()
                async with AsyncExitStack() as again:
                    deadline = time.monotonic() + 10
                    while True:
                        _, name, _, _ = await _open(http, again, "10.2.0.1")
                        if name == "status" or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.2)
                    assert name == "status"

        asyncio.run(scenario())


@pytest.mark.served
def test_a_stopping_server_ends_its_streams_instead_of_waiting_for_them(tmp_path: Path) -> None:
    with serve("sqlite", tmp_path, workers=2) as app:
        server = _server_pid()

        async def scenario() -> float:
            async with (
                httpx.AsyncClient(base_url=app.url, timeout=30) as http,
                AsyncExitStack() as s,
            ):
                streams = [(await _open(http, s))[0] for _ in range(4)]
                os.kill(server, signal.SIGTERM)
                started = time.monotonic()
                # Each stream ends cleanly (the browser reconnects), not after minutes.
                await asyncio.wait_for(asyncio.gather(*(st.rest() for st in streams)), 15)
                return time.monotonic() - started

        ended = asyncio.run(scenario())
        _wait(lambda: not alive(server), 15, f"the server stops\n{app.log_tail()}")
        log = app.log.read_text()
    assert ended < 15 and "refused to gracefully stop" not in log, log
