"""`bench/draws.py`, served: a live room's entries and the host's tap, against `leadkit serve`.

For SQLite and PostgreSQL (+ Redis when it answers), with 2 worker processes:

- ``GET /healthz``: the same server's trivial endpoint, the baseline;
- entries: N distinct authorised visitors (written straight to the database, as bench/grabs.py
  prepares its people) each POST ``/api/v1/draws/{slug}/enter`` once into one open draw;
  entries/s, p50/p99, 5xx, and *lost*: 200 answers less the entries in SQL afterwards;
- the host's tap: the draw closed, K connections open ``GET /api/v1/draws/{slug}/events``
  (spread over the workers by the kernel), the host draws tier 1 through the admin API, and
  each connection's time from the tap until its stream shows the winners; p50/p99;
- `leadkit draws check` on the result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import time
from pathlib import Path

from bench.run import (
    HOST,
    Connection,
    Result,
    Server,
    answers,
    base_env,
    leadkit,
    load,
    postgres_database,
    redis_prefix,
    run_bench,
)
from bench.taps import line, taps

SLUG = "bench-draw"
SECRET = "bench-draws-secret-" + "x" * 24
STREAM_WAIT = 20.0  # seconds a stream may take to show the winners before it counts as missed
OPENING = 50  # streams opened at once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    entries = int(os.environ.get("LEADKIT_BENCH_DRAW_ENTRIES", "5000"))
    parser.add_argument("--entries", type=int, default=entries, help="visitors entering")
    parser.add_argument("--streams", type=int, default=200, help="open SSE connections")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of /healthz")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="sqlite,postgres (+ Redis when it answers),postgres-sql (PostgreSQL alone)",
    )
    parser.add_argument("--pg-user", default=os.environ.get("LEADKIT_TEST_PG_USER", "postgres"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")


def seed(env: dict[str, str], visitors: int) -> tuple[list[str], str]:
    """The open draw ``SLUG`` (tier 1: 3 prizes and 2 reserves; tier 2: 10 prizes), ``visitors``
    authorised visitors' signed cookies, and a host's API token."""
    import app.models  # noqa: F401 (every table, for the foreign keys)
    from app.db.engine import make_engine, make_sessionmaker
    from app.draws.definition import create_draw
    from app.draws.drawing import set_mode
    from app.draws.schemas import DrawCreate, TierCreate
    from app.settings import load_settings
    from app.staff import tokens
    from app.staff.schemas import ApiTokenCreate
    from tests.grab_support import make_people

    settings = load_settings(env)
    tiers = [
        TierCreate(name="一等奖", quantity=3, reserves=2),
        TierCreate(name="二等奖", quantity=10),
    ]

    async def run() -> tuple[list[str], str]:
        engine = make_engine(settings)
        async with make_sessionmaker(engine)() as db, db.begin():
            await create_draw(db, DrawCreate(slug=SLUG, title="直播抽奖", tiers=tiers))
            await set_mode(db, SLUG, "open")
            people = await make_people(db, settings, visitors)
            _, token = await tokens.create_token(
                db, None, ApiTokenCreate(name="bench-host", role="host")
            )
        await engine.dispose()
        return [person.cookie for person in people], token

    return asyncio.run(run())


def stored_entries(env: dict[str, str]) -> int:
    from sqlalchemy import func, select

    from app.db.engine import make_engine, make_sessionmaker
    from app.draws.models import DrawEntry
    from app.settings import load_settings

    async def run() -> int:
        engine = make_engine(load_settings(env))
        async with make_sessionmaker(engine)() as db:
            found = await db.scalar(select(func.count()).select_from(DrawEntry))
        await engine.dispose()
        return int(found or 0)

    return asyncio.run(run())


async def host(port: int, token: str, action: str) -> tuple[int, float]:
    """The host's POST /api/v1/admin/draws/{slug}/{action}: (status, seconds)."""
    conn = await Connection.open(port)
    try:
        return await conn.ask(
            (
                f"POST /api/v1/admin/draws/{SLUG}/{action} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"User-Agent: leadkit-bench\r\nAuthorization: Bearer {token}\r\n"
                "Accept: application/json\r\nContent-Length: 0\r\n\r\n"
            ).encode("latin-1")
        )
    finally:
        await conn.close()


class Stream:
    """One ``GET /api/v1/draws/{slug}/events``, read event by event (chunked or not)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunked = False
        self.buffer = b""

    @classmethod
    async def open(cls, port: int) -> Stream:
        stream = cls(*await asyncio.open_connection(HOST, port))
        stream.writer.write(
            (
                f"GET /api/v1/draws/{SLUG}/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                "User-Agent: leadkit-bench\r\nAccept: text/event-stream\r\n\r\n"
            ).encode("latin-1")
        )
        head = (await stream.reader.readuntil(b"\r\n\r\n")).lower()
        if not head.startswith(b"http/1.1 200"):
            raise RuntimeError(f"the stream answered {head[:40]!r}")
        stream.chunked = b"transfer-encoding: chunked" in head
        return stream

    async def _more(self) -> bytes:
        if not self.chunked:
            return await self.reader.read(65536)
        size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        return b"" if size == 0 else (await self.reader.readexactly(size + 2))[:-2]

    async def event(self) -> tuple[str, str]:
        """The next event's name and data (comments skipped); EOFError when the stream ends."""
        while True:
            while b"\n\n" not in self.buffer:
                more = await self._more()
                if not more:
                    raise EOFError
                self.buffer = (self.buffer + more).replace(b"\r\n", b"\n")
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            name, data = "message", []
            for field in block.decode().split("\n"):
                key, _, value = field.partition(":")
                if key == "event":
                    name = value.strip()
                elif key == "data":
                    data.append(value[1:] if value.startswith(" ") else value)
            if data:
                return name, "\n".join(data)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def winners_shown(port: int, token: str, streams: int) -> tuple[Result, int, float]:
    """Open ``streams`` event streams (each shows the closed draw first), tap "draw tier 1",
    and time each stream until it shows the winners. (the times, streams that never showed
    them within STREAM_WAIT, the tap's own answer time)."""
    result = Result(f"tap → winners ({streams})", f"/api/v1/draws/{SLUG}/events", 0.0)
    opening = asyncio.Semaphore(OPENING)
    tapped = asyncio.Event()
    tapped_at = 0.0
    settled = [0]  # streams that showed the closed draw, or failed to
    all_settled = asyncio.Event()

    def settle() -> None:
        settled[0] += 1
        if settled[0] >= streams:
            all_settled.set()

    async def watch() -> float | None:
        try:
            async with opening:
                stream = await Stream.open(port)
                name, _ = await stream.event()
        except (OSError, EOFError, RuntimeError, asyncio.IncompleteReadError):
            settle()
            return None
        settle()
        try:
            if name != "status":
                return None  # "poll": over the stream caps
            while True:
                name, data = await stream.event()
                if name == "status" and json.loads(data)["tiers"][0]["winners"]:
                    return time.perf_counter() - tapped_at if tapped.is_set() else None
        except (OSError, EOFError, asyncio.IncompleteReadError):
            return None
        finally:
            await stream.close()

    watchers = [asyncio.create_task(watch()) for _ in range(streams)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_settled.wait(), 60)
    await asyncio.sleep(0.5)  # every stream is asleep on the live hub
    tapped_at = time.perf_counter()
    tapped.set()
    status, took = await host(port, token, "draw?tier=1")
    if status != 200:
        raise RuntimeError(f"drawing tier 1 answered {status}")
    done, pending = await asyncio.wait(watchers, timeout=STREAM_WAIT)
    for task in pending:
        task.cancel()
    result.latencies = [t for t in (task.result() for task in done) if t is not None]
    result.seconds = max(result.latencies, default=0.0)
    return result, streams - len(result.latencies), took


def check(env: dict[str, str]) -> tuple[int, str]:
    return leadkit(env, "draws", "check", SLUG)


def run_backend(label: str, env: dict[str, str], args: argparse.Namespace, workdir: Path) -> bool:
    print(f"\n== {label}: {args.workers} worker processes, {args.concurrency} connections")
    server = Server(env, args.workers, workdir)
    server.start()
    try:
        started = time.perf_counter()
        cookies, token = seed(env, args.entries)
        print(
            f"  {len(cookies)} authorised visitors prepared "
            f"in {time.perf_counter() - started:.1f} s"
        )
        port, c = server.port, args.concurrency
        asyncio.run(load(port, "warm-up", "/healthz", {}, c, 1.0))
        healthz = asyncio.run(load(port, "GET /healthz", "/healthz", {}, c, args.duration))
        print(line(healthz, None))
        path = f"/api/v1/draws/{SLUG}/enter"
        name = f"enter: {len(cookies)} visitors"
        entered, statuses = asyncio.run(taps(port, name, path, cookies, c, total=len(cookies)))
        print(line(entered, healthz, "/healthz") + f"  statuses {dict(statuses)}")
        written = stored_entries(env)
        closed, took = asyncio.run(host(port, token, "close"))
        if closed != 200:
            raise RuntimeError(f"closing the draw answered {closed}")
        # Lost: an entry answered 200 that is not in SQL once the close froze the list (with
        # Redis the close waits for the writer; before it SQL may lag behind the answers).
        in_sql = stored_entries(env)
        lost = statuses[200] - in_sql
        print(
            f"  entries in SQL {written} after the last answer, {in_sql} after the close "
            f"({took * 1000:.0f} ms), 200 answers {statuses[200]}: lost {lost}"
        )
        shown, missed, took = asyncio.run(winners_shown(port, token, args.streams))
        print(
            f"  {shown.name:24} p50 {shown.percentile(0.5) * 1000:6.0f} ms  "
            f"p99 {shown.percentile(0.99) * 1000:6.0f} ms  slowest {shown.seconds * 1000:.0f} ms"
            f"  within 1 s {sum(t <= 1.0 for t in shown.latencies)}/{args.streams}"
            f"  missed {missed}  (the tap answered in {took * 1000:.0f} ms)"
        )
    finally:
        server.stop()
    code, report = check(env)
    print(f"  leadkit draws check {SLUG}: " + " | ".join(report.splitlines()[-1:]))
    p99 = shown.percentile(0.99)
    verdict = [
        f"zero lost: {'yes' if lost == 0 else 'NO'}",
        f"zero 5xx: {'yes' if entered.errors == 0 else 'NO'}",
        f"entry p99 {entered.percentile(0.99) * 1000:.0f} ms (target <= 100)",
        f"entries {entered.rps / healthz.rps:.0%} of /healthz (target >= 40%)",
        f"tap -> winners p99 {p99 * 1000:.0f} ms (target <= 1000), missed {missed}",
    ]
    print("  " + "; ".join(verdict))
    return code == 0 and lost == 0 and missed == 0


def main(args: argparse.Namespace) -> int:
    # Every stream is a socket here and in a worker: lift the soft limit to the hard one.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(
        f"\nleadkit draws bench, served: {os.cpu_count()} CPU cores shared by the server and "
        "this load generator; compare the ratios to /healthz, not the absolute figures."
    )

    def body(workdir: Path, password: str) -> bool:
        ok = True
        env = base_env(workdir, password) | {
            "LEADKIT_SECRET_KEY": SECRET,
            # One address and thousands of visitors: real visitors come from many.
            "LEADKIT_GRAB_IP_PER_MINUTE": "100000000",
            "LEADKIT_GRAB_VISITOR_PER_MINUTE": "100000000",
            "LEADKIT_STREAMS_PER_IP": "100000",
        }
        for backend in args.backends.split(","):
            if backend == "sqlite":
                sqlite_env = env | {
                    "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'draws.db'}",
                    "LEADKIT_DATA_DIR": str(workdir / "data-sqlite"),
                }
                ok &= run_backend("SQLite", sqlite_env, args, workdir)
            elif not answers(HOST, 5432):
                print(f"\n== {backend}: skipped, PostgreSQL not answering")
            else:
                # "postgres-sql": PostgreSQL alone, entries through SQL even when Redis answers.
                redis = backend == "postgres" and answers(HOST, 6379)
                with postgres_database(args.pg_user) as url, redis_prefix(args.redis_url) as p:
                    pg_env = env | {
                        "DATABASE_URL": url,
                        "REDIS_URL": args.redis_url if redis else "",
                        "LEADKIT_REDIS_PREFIX": p,
                        "LEADKIT_DATA_DIR": str(workdir / "data-postgres"),
                    }
                    label = "PostgreSQL + Redis" if redis else "PostgreSQL without Redis"
                    ok &= run_backend(label, pg_env, args, workdir)
        return ok

    return run_bench("draws", body)
