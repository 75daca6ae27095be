"""Faults: what visitors see while worker processes are killed, what a killed worker leaves
behind, and page loads while a live room holds thousands of streams.

Every scenario runs against `leadkit serve` and, as the same-run baseline, against granian
started the way `leadkit serve` started it before (``granian --factory --workers 2
--respawn-failed-workers app.asgi:create_served_app``: each worker with a socket of its own,
granian's crash-loop rule). Both serve the same app on a throwaway SQLite database.

Crash scenarios (2 workers, 8 visitors requesting the guide page back to back, kill -9):
one worker; one worker slot twice within 5 s; both workers 3 s apart; both at once. For each:
failed requests, the recovery time (from the last kill until every request succeeds again),
the slowest answer, how long the replacement worker took to start, and whether the server is
still running. Then: processes a killed worker left running, and processes left once the
server is stopped with SIGTERM (to its main process only, not to its process group).

Live room (1 worker): N streams of grab stock from N addresses, then 12 page loads.

Figures are for comparing changes on one machine, never for pass/fail tests. Linux only: the
process tree is read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import HOST, ROOT, Server, _read_response, base_env, run_bench, venv_bin
from tests.proctree import alive, children, descendants, marked

VISITORS = 8
PAGE = "/t/guide-demo"
EVENTS = "/api/v1/grabs/grab-demo/events"
TIMEOUT = 10.0  # a request unanswered this long counts as failed
SETTLE = 10.0  # seconds watched after a scenario's last kill
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    return total / 1024 / 1024


# --- servers ---------------------------------------------------------------------------------


class Served(Server):
    """bench.run's Server with the command chosen here, and a log read as it is written."""

    def __init__(self, label: str, command: list[str], env: dict[str, str], workdir: Path):
        super().__init__(env, workers=0, workdir=workdir)
        self.label = label
        self.command = command
        self.lines: list[tuple[float, str]] = []

    def start(self) -> None:
        self._cli("db", "upgrade")
        self._cli("demo")
        self.lines = []
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*self.command, "--host", HOST, "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        Server.running.append(self)
        threading.Thread(target=self._follow, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def _follow(self, proc: subprocess.Popen[bytes]) -> None:
        with self.log_path.open("r", errors="replace") as log:
            while proc.poll() is None:
                line = log.readline()
                if line:
                    self.lines.append((time.monotonic(), line.strip()))
                else:
                    time.sleep(0.01)

    def answers(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self, count: int, seconds: float = 60) -> list[int]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pids = children(self.pid)
            if len(pids) == count and self.answers():
                return pids
            time.sleep(0.05)
        raise RuntimeError(f"{self.label}: {count} workers not back:\n{self.log_tail()}")

    def started_after(self, at: float) -> float | None:
        """Seconds from ``at`` until a worker spawned after it logged that it started."""
        spawned = next((t for t, line in self.lines if t >= at and "Spawning worker" in line), 0)
        started = next((t for t, line in self.lines if t >= at and "Started worker" in line), 0)
        return started - spawned if spawned and started else None

    def terminate_main(self, seconds: float = 20) -> None:
        """SIGTERM to the main process alone (what systemd sends it first)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=seconds)
        self.stop()


def servers(env: dict[str, str], workdir: Path, workers: int) -> list[Served]:
    bin_ = venv_bin()
    granian = [str(bin_ / "python"), "-m", "granian", "--interface", "asgi", "--factory"]
    granian += ["--no-access-log", "--respawn-failed-workers", "--workers", str(workers)]
    return [
        Served(
            "granian as before",
            [*granian, "app.asgi:create_served_app"],
            env | {"LEADKIT_DATA_DIR": str(workdir / "data-granian")},
            workdir,
        ),
        Served(
            "leadkit serve",
            [str(bin_ / "leadkit"), "serve", "--workers", str(workers)],
            env | {"LEADKIT_DATA_DIR": str(workdir / "data-leadkit")},
            workdir,
        ),
    ]


# --- visitors ----------------------------------------------------------------------------------


@dataclass
class Sample:
    start: float
    end: float
    ok: bool


@dataclass
class Visitors:
    """``VISITORS`` keep-alive clients requesting a page back to back, in a thread."""

    port: int
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    async def _one(self) -> None:
        request = (
            f"GET {PAGE} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: leadkit-bench\r\n\r\n"
        ).encode()
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while not self._stop.is_set():
            start = time.monotonic()
            ok = False
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), TIMEOUT)
                reader, writer = conn
                writer.write(request)
                status, close = await asyncio.wait_for(_read_response(reader), TIMEOUT)
                ok = status == 200
                if close:
                    writer.close()
                    conn = None
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                if conn is not None:
                    conn[1].close()
                conn = None
            self.samples.append(Sample(start, time.monotonic(), ok))
            if not ok:
                await asyncio.sleep(0.02)
        if conn is not None:
            conn[1].close()

    async def _all(self) -> None:
        await asyncio.gather(*(self._one() for _ in range(VISITORS)))

    def __enter__(self) -> Visitors:
        self._thread = threading.Thread(target=asyncio.run, args=(self._all(),), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT + 5)


@dataclass
class Outcome:
    name: str
    requests: int
    failed: int
    recovery: float
    slowest: float
    worker_start: float | None
    survived: bool


def judge(name: str, server: Served, samples: list[Sample], kills: list[float]) -> Outcome:
    first, last = kills[0], kills[-1]
    window = [s for s in samples if s.end >= first]
    failed = [s for s in window if not s.ok]
    return Outcome(
        name=name,
        requests=len(window),
        failed=len(failed),
        recovery=max((s.end - last for s in failed), default=0.0),
        slowest=max((s.end - s.start for s in window if s.ok), default=0.0),
        worker_start=server.started_after(first),
        survived=server.running(),
    )


def kill(pid: int) -> float:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def one_worker(server: Served) -> list[float]:
    return [kill(server.worker_pids(2)[0])]


def same_slot_twice(server: Served) -> list[float]:
    first = server.worker_pids(2)
    kills = [kill(first[0])]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        fresh = [p for p in children(server.pid) if p not in first]
        if fresh:
            kills.append(kill(fresh[0]))
            break
        time.sleep(0.02)
    return kills


def both_apart(server: Served) -> list[float]:
    pair = server.worker_pids(2)
    kills = [kill(pair[0])]
    time.sleep(3)
    kills.append(kill(pair[1]))
    return kills


def both_at_once(server: Served) -> list[float]:
    return [kill(pid) for pid in server.worker_pids(2)]


SCENARIOS: list[tuple[str, Callable[[Served], list[float]]]] = [
    ("one worker", one_worker),
    ("one slot twice in 5 s", same_slot_twice),
    ("both, 3 s apart", both_apart),
    ("both at once", both_at_once),
]


def crashes(server: Served) -> tuple[list[Outcome], int, float, int, float]:
    """The crash scenarios, then (orphans, their MB, left after stop, their MB)."""
    outcomes = []
    orphans: set[int] = set()
    server.start()
    try:
        for name, scenario in SCENARIOS:
            if not server.running():
                server.stop()
                server.start()
            server.worker_pids(2)
            time.sleep(1)
            with Visitors(server.port) as visitors:
                time.sleep(1)
                kills = scenario(server)
                time.sleep(SETTLE)
            outcomes.append(judge(name, server, visitors.samples, kills))
            if server.running():
                orphans |= marked(server.env["LEADKIT_DATA_DIR"]) - descendants(server.pid)
        if not server.running():
            server.stop()
            server.start()
        orphans |= marked(server.env["LEADKIT_DATA_DIR"]) - descendants(server.pid)
        orphans = {p for p in orphans if alive(p)}
        orphan_mb = rss_mb(orphans)
    finally:
        server.terminate_main()
    time.sleep(2)
    left = marked(server.env["LEADKIT_DATA_DIR"])
    left_mb = rss_mb(left)
    for pid in left | orphans:  # the bench started them; it leaves nothing behind
        kill(pid)
    return outcomes, len(orphans), orphan_mb, len(left), left_mb


# --- a live room -------------------------------------------------------------------------------


async def _stream(port: int, address: str) -> tuple[str, asyncio.StreamWriter | None]:
    """Opens a grab stream from ``address``: ("status" and the open connection), ("poll",
    None) or ("no answer", None)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
        writer.write(
            f"GET {EVENTS} HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: {address}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )

        async def first_event() -> str:
            while True:
                line = await reader.readline()
                if not line:
                    return "closed"
                if line.startswith(b"event:"):
                    return line.split(b":", 1)[1].strip().decode()

        kind = await asyncio.wait_for(first_event(), TIMEOUT)
    except (OSError, TimeoutError):
        kind = "no answer"
    if kind != "status" and writer is not None:
        writer.close()
        writer = None
    return kind, writer


async def _page(port: int) -> tuple[bool, float]:
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
        writer.write(
            f"GET /t/grab-demo HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
        )
        status, _ = await asyncio.wait_for(_read_response(reader), TIMEOUT)
        writer.close()
        return status == 200, time.monotonic() - start
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
        return False, time.monotonic() - start


async def live_room(port: int, streams: int) -> str:
    gate = asyncio.Semaphore(256)

    async def one(i: int) -> tuple[str, asyncio.StreamWriter | None]:
        async with gate:
            return await _stream(port, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")

    opened = await asyncio.gather(*(one(i) for i in range(streams)))
    pages = await asyncio.gather(*(_page(port) for _ in range(12)))
    kinds: dict[str, int] = {}
    for kind, _ in opened:
        kinds[kind] = kinds.get(kind, 0) + 1
    for _, writer in opened:
        if writer is not None:
            writer.close()
    answered = [t for ok, t in pages if ok]
    return (
        f"streams: {kinds.get('status', 0)} live, {kinds.get('poll', 0)} told to poll, "
        f"{kinds.get('no answer', 0) + kinds.get('closed', 0)} unanswered; page loads: "
        f"{len(answered)}/12 answered"
        + (f", slowest {max(answered) * 1000:.0f} ms" if answered else "")
    )


# --- the report --------------------------------------------------------------------------------


def print_crashes(label: str, result: tuple[list[Outcome], int, float, int, float]) -> None:
    outcomes, orphans, orphan_mb, left, left_mb = result
    print(f"\n== {label}: 2 workers, {VISITORS} visitors on {PAGE}")
    print(
        f"   {'scenario':<22} {'requests':>8} {'failed':>7} {'recovery':>9} {'slowest':>8} "
        f"{'worker start':>13} {'server':>8}"
    )
    for o in outcomes:
        start = f"{o.worker_start:.2f} s" if o.worker_start is not None else "-"
        print(
            f"   {o.name:<22} {o.requests:>8} {o.failed:>7} {o.recovery:>7.2f} s "
            f"{o.slowest:>6.2f} s {start:>13} {'running' if o.survived else 'EXITED':>8}"
        )
    print(f"   processes left by killed workers while serving: {orphans} ({orphan_mb:.0f} MB)")
    print(f"   processes left after SIGTERM to the server: {left} ({left_mb:.0f} MB)")


def main() -> int:
    if not sys.platform.startswith("linux"):
        print("bench/faults.py reads /proc: Linux only")
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--streams", default="1100,3500", help="live-room sizes, comma-separated (1 worker)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="leadkit serve only")
    args = parser.parse_args()
    print(
        f"leadkit faults bench: {os.cpu_count()} CPU cores shared by the server and this "
        "load generator; kill -9 of workers while visitors keep requesting a page."
    )

    def body(workdir: Path, password: str) -> bool:
        env = base_env(workdir, password) | {
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
            "LEADKIT_TRUST_PROXY": "true",  # the live room's addresses, as a proxy says
        }
        chosen = servers(env, workdir, workers=2)
        if args.skip_baseline:
            chosen = chosen[1:]
        for server in chosen:
            print_crashes(server.label, crashes(server))
        for server in servers(env, workdir, workers=1):
            if args.skip_baseline and server.label != "leadkit serve":
                continue
            print(f"\n== {server.label}: a live room, 1 worker")
            server.start()
            try:
                for size in (int(n) for n in args.streams.split(",") if n):
                    print(f"   {size:>5} streams -> {asyncio.run(live_room(server.port, size))}")
                    time.sleep(2)
            finally:
                server.stop()
        return True

    return run_bench("faults", body)


if __name__ == "__main__":
    sys.exit(main())
