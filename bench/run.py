"""`make bench`: performance figures for leadkit, each with a baseline from the same run.

Starts a real server (`leadkit db upgrade`, `leadkit demo`, `leadkit serve`) on a free loopback
port with a throwaway SQLite database, drives a fixed concurrency at a few pages for a fixed
time, and prints requests/s and p50/p99 latency with the ratio to GET /healthz measured by the
same server in the same run. Also prints the gzipped weight of the visitor page and its CSS and
JS against the 30 KB budget. With --postgres, the same again on PostgreSQL + Redis (a database
``leadkit_bench_<pid>`` is created and dropped) when 127.0.0.1:5432 and :6379 answer.

Figures are for comparing changes on one machine, never for pass/fail tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The benches share the test suite's helpers (scratch databases, people with cookies).
sys.path.insert(0, str(ROOT))

from tests.helpers import answers  # noqa: E402
from tests.served import drop_redis_keys, free_port, scratch_postgres  # noqa: E402

HOST = "127.0.0.1"
BUDGET_BYTES = 30 * 1024
GZIP_LEVEL = 6  # what nginx and most CDNs use by default
ADMIN = "admin"


def venv_bin() -> Path:
    """The virtualenv's bin directory: the one running us, else the repository's .venv."""
    here = Path(sys.executable).parent
    return here if (here / "leadkit").exists() else ROOT / ".venv" / "bin"


def leadkit(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run the ``leadkit`` command (e.g. ``grabs check SLUG``): its exit status and output."""
    done = subprocess.run(
        [str(venv_bin() / "leadkit"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


# --- the server under test ------------------------------------------------------------------


class Server:
    """`leadkit serve` as a child process in its own process group, always cleaned up."""

    running: list[Server] = []  # noqa: RUF012 (every server started, for the signal handler)

    def __init__(self, env: dict[str, str], workers: int, workdir: Path, app: str = "") -> None:
        self.env = env
        self.workers = workers
        # An ASGI factory ("module:function") to serve instead of `leadkit serve`'s own app.
        self.app = app
        self.port = free_port()
        self.log_path = workdir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _cli(self, *args: str) -> None:
        code, output = leadkit(self.env, *args)
        if code != 0:
            raise RuntimeError(f"leadkit {' '.join(args)} failed:\n{output}")

    def start(self) -> None:
        self._cli("db", "upgrade")
        self._cli("demo")
        log = self.log_path.open("wb")
        command = [str(venv_bin() / "leadkit"), "serve"]
        if self.app:
            command = [str(venv_bin() / "python"), "-m", "granian", "--interface", "asgi"]
            command += ["--factory", "--no-access-log", "--working-dir", str(ROOT), self.app]
        self.proc = subprocess.Popen(
            [*command, "--host", HOST, "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go down with it
        )
        log.close()
        Server.running.append(self)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer /healthz within 30 s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self in Server.running:
            Server.running.remove(self)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP into an exception so every `finally` (server, database) runs.
    raise SystemExit(128 + signum)


def run_bench(name: str, body: Callable[[Path, str], bool]) -> int:
    """The frame of every bench: SIGTERM and SIGHUP end it through its ``finally`` blocks,
    ``body`` gets a throwaway work directory and the admin's password, every server it
    started is stopped, and a failure to run is reported rather than raised. The exit status:
    0 when ``body`` says all went well."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    password = "bench-" + secrets.token_urlsafe(12)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=f"leadkit-bench-{name}-") as tmp:
            ok = body(Path(tmp), password)
    except (RuntimeError, OSError) as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in list(Server.running):
            server.stop()
    print(f"\ndone in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


# --- a small HTTP/1.1 keep-alive load generator --------------------------------------------


@dataclass
class Result:
    name: str
    path: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    ok_status: int = 200

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; returns (status, server closes the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            await reader.readexactly(size + 2)
    return status, headers.get("connection") == "close"


class Connection:
    """One kept-alive HTTP/1.1 connection to the app: each request answered in full, the
    connection opened again whenever the server closes it."""

    def __init__(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.port, self.reader, self.writer = port, reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(port, *await asyncio.open_connection(HOST, port))

    async def ask(self, request: bytes) -> tuple[int, float]:
        """Send ``request`` and read its whole answer: (the status, the seconds it took)."""
        started = time.perf_counter()
        self.writer.write(request)
        status, close = await _read_response(self.reader)
        took = time.perf_counter() - started
        if close:
            self.writer.close()
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        return status, took

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def _worker(
    port: int,
    request: bytes,
    stop_at: float,
    result: Result,
    interval: float = 0.0,
    offset: float = 0.0,
) -> None:
    """Send requests back to back, or one every ``interval`` seconds (an open-loop pace, so a
    slow answer does not slow the offered load down)."""
    conn = await Connection.open(port)
    # Paced connections start staggered, so the offered load is smooth rather than bursts.
    next_at = time.perf_counter() + offset - interval
    try:
        while (started := time.perf_counter()) < stop_at:
            if interval:
                next_at += interval
                if next_at > started:
                    await asyncio.sleep(next_at - started)
            status, took = await conn.ask(request)
            result.latencies.append(took)
            if status != result.ok_status:
                result.errors += 1
    finally:
        await conn.close()


def http_request(
    port: int, path: str, cookies: dict[str, str], body: bytes = b"", method: str = "GET"
) -> bytes:
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: leadkit-bench\r\n"
        "Accept: text/html,application/json\r\nAccept-Encoding: identity\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + (
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            if method != "GET"
            else ""
        )
        + "\r\n"
    ).encode("latin-1")
    return head + body


async def load(
    port: int,
    name: str,
    path: str,
    cookies: dict[str, str],
    concurrency: int,
    seconds: float,
    body: bytes = b"",
    ok_status: int = 200,
    rate: float = 0.0,
) -> Result:
    """``rate`` > 0: offer that many requests per second in all, spread over the connections."""
    method = "POST" if body else "GET"
    request = http_request(port, path, cookies, body, method)
    result = Result(name, path, seconds, ok_status=ok_status)
    started = time.perf_counter()
    stop_at = started + seconds
    interval = concurrency / rate if rate else 0.0
    await asyncio.gather(
        *(
            _worker(port, request, stop_at, result, interval, interval * i / concurrency)
            for i in range(concurrency)
        )
    )
    result.seconds = time.perf_counter() - started  # includes the last in-flight requests
    return result


# --- what gets measured ---------------------------------------------------------------------


def staff_cookies(base: str, password: str) -> dict[str, str]:
    """Sign in through the form like a browser: CSRF cookie + hidden token, then the POST."""
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/staff/login")
        match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        if page.status_code != 200 or match is None or "lk_csrf" not in client.cookies:
            raise RuntimeError(f"/staff/login gave no CSRF token (status {page.status_code})")
        signed_in = client.post(
            "/staff/login",
            data={"_csrf_token": match.group(1), "username": ADMIN, "password": password},
        )
        if signed_in.status_code != 303 or "lk_staff" not in client.cookies:
            raise RuntimeError(f"sign-in failed: {signed_in.status_code} {signed_in.text[:300]}")
        if client.get("/staff/").status_code != 200:
            raise RuntimeError("signed in, but /staff/ did not answer 200")
        return dict(client.cookies.items())


def first_visit_cookies(base: str, path: str) -> dict[str, str]:
    """The cookies a browser would have after its first visit (a returning visitor)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        return dict(client.cookies.items())


def page_weight(base: str) -> list[tuple[str, int, int]]:
    """(asset, bytes, gzipped bytes) for the visitor page and the CSS and JS it loads."""
    with httpx.Client(base_url=base, timeout=10) as client:
        html = client.get("/").text
        assets = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', html)
        assets += re.findall(r'<script[^>]+src="([^"]+)"', html)
        rows = [("/ (HTML)", html.encode())]
        for asset in assets:
            response = client.get(asset)
            response.raise_for_status()
            rows.append((asset, response.content))
    return [(name, len(body), len(gzip.compress(body, GZIP_LEVEL))) for name, body in rows]


def run_backend(
    label: str, env: dict[str, str], args: argparse.Namespace, workdir: Path
) -> list[Result]:
    server = Server(env, args.workers, workdir)
    print(f"\n== {label}: starting leadkit serve --workers {args.workers} on {server.url}")
    server.start()
    try:
        base = server.url
        targets = [
            ("healthz (baseline)", "/healthz", {}),
            ("visitor page", "/", first_visit_cookies(base, "/")),
            ("staff login page", "/staff/login", first_visit_cookies(base, "/staff/login")),
            ("staff dashboard", "/staff/", staff_cookies(base, env["LEADKIT_ADMIN_PASSWORD"])),
            ("healthz (again)", "/healthz", {}),
        ]
        results = []
        for name, path, cookies in targets:
            asyncio.run(load(server.port, name, path, cookies, args.concurrency, args.warmup))
            result = asyncio.run(
                load(server.port, name, path, cookies, args.concurrency, args.duration)
            )
            results.append(result)
            print(f"   {name:<20} {result.rps:8.0f} req/s  ({len(result.latencies)} requests)")
        print_table(label, results, args.concurrency)
        if label.startswith("SQLite"):
            print_weight(page_weight(base))
        spine_under_ingest(server.port, base, results[0], args)
        return results
    finally:
        server.stop()


EVENT_BATCH = 100
TOOL_PAGE = "/t/guide-demo"


def spine_under_ingest(port: int, base: str, healthz: Result, args: argparse.Namespace) -> None:
    """Issue 3's target: POST /api/v1/events at >= 5,000 events/s while a tool page keeps
    p99 <= 100 ms. Measures the tool page alone and the ingest alone (closed loop: as fast as
    they go), then both together at a fixed offered load (open loop), so the page's latency is
    read under a known ingest rate rather than under a saturated CPU."""
    cookies = first_visit_cookies(base, TOOL_PAGE)
    batch = json.dumps(
        {
            "events": [
                {"event": {"name": "step_completed", "step": f"s{i}"}, "tool": "guide-demo"}
                for i in range(EVENT_BATCH)
            ]
        }
    ).encode()
    conns = max(1, args.concurrency // 4)

    def page(seconds: float, rate: float = 0.0) -> asyncio.Future[Result]:
        return load(port, "tool page", TOOL_PAGE, cookies, conns, seconds, rate=rate)  # type: ignore[return-value]

    def ingest(seconds: float, rate: float = 0.0) -> asyncio.Future[Result]:
        return load(  # type: ignore[return-value]
            port,
            "events",
            "/api/v1/events",
            cookies,
            conns,
            seconds,
            body=batch,
            ok_status=202,
            rate=rate,
        )

    async def together() -> tuple[Result, Result]:
        paged, ingested = await asyncio.gather(
            page(args.duration, args.page_rate),
            ingest(args.duration, args.events_rate / EVENT_BATCH),
        )
        return paged, ingested

    asyncio.run(page(args.warmup))
    alone = asyncio.run(page(args.duration))
    ingest_alone = asyncio.run(ingest(args.duration))
    paced_page, paced_ingest = asyncio.run(together())

    def events_per_s(r: Result) -> float:
        return (len(r.latencies) - r.errors) * EVENT_BATCH / r.seconds

    print(
        f"\n  Visitor spine: tool page {TOOL_PAGE} and POST /api/v1/events "
        f"(batches of {EVENT_BATCH}), {conns} connections each"
    )
    print(
        f"  {'':<44} {'req/s':>8} {'x healthz':>10} {'events/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'errors':>7}"
    )
    rows = (
        ("tool page alone, as fast as it goes", alone, 0.0),
        ("events alone, as fast as they go", ingest_alone, events_per_s(ingest_alone)),
        (f"tool page at {args.page_rate:.0f}/s offered, during ingest", paced_page, 0.0),
        (
            f"events at {args.events_rate:,.0f}/s offered, with the page",
            paced_ingest,
            events_per_s(paced_ingest),
        ),
    )
    for name, r, eps in rows:
        print(
            f"  {name:<44} {r.rps:8.0f} {r.rps / healthz.rps:10.2f} "
            f"{(f'{eps:,.0f}' if eps else '-'):>9} {r.percentile(0.5) * 1000:8.2f} "
            f"{r.percentile(0.99) * 1000:8.2f} {r.errors:7d}"
        )
    achieved = events_per_s(paced_ingest)
    p99 = paced_page.percentile(0.99) * 1000
    print(
        f"  target: >= 5,000 events/s ingested ({achieved:,.0f}/s: "
        f"{'met' if achieved >= 5000 else 'NOT met'}) while the tool page keeps p99 <= 100 ms "
        f"({p99:.1f} ms: {'met' if p99 <= 100 else 'NOT met'})"
    )


def print_table(label: str, results: list[Result], concurrency: int) -> None:
    base = results[0]
    noise = abs(results[-1].rps - base.rps) / base.rps if base.rps else float("nan")
    print(
        f"\n{label}: {len(results)} runs of {results[0].seconds:.1f} s, "
        f"{concurrency} concurrent keep-alive connections"
    )
    header = (
        f"  {'endpoint':<20} {'path':<14} {'req/s':>8} {'x healthz':>10} "
        f"{'p50 ms':>8} {'x healthz':>10} {'p99 ms':>8} {'errors':>7}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        p50 = r.percentile(0.50)
        print(
            f"  {r.name:<20} {r.path:<14} {r.rps:8.0f} {r.rps / base.rps:10.2f} "
            f"{p50 * 1000:8.2f} {p50 / base.percentile(0.5):10.2f} "
            f"{r.percentile(0.99) * 1000:8.2f} {r.errors:7d}"
        )
    print(
        f"  run-to-run noise: healthz again differs from the baseline by {noise:.0%}; "
        "ratios closer than that are not a difference"
    )
    print(
        "  /healthz opens a database connection (and pings Redis when configured), so pages "
        "that never touch the database can beat it (x healthz > 1)"
    )


def print_weight(rows: list[tuple[str, int, int]]) -> None:
    total = sum(gz for _, _, gz in rows)
    print(f"\nVisitor page weight (gzip level {GZIP_LEVEL}), budget {BUDGET_BYTES / 1024:.0f} KB")
    for name, raw, gz in rows:
        print(f"  {name:<44} {raw / 1024:7.1f} KB  -> {gz / 1024:6.1f} KB gzipped")
    verdict = "within" if total <= BUDGET_BYTES else "OVER"
    print(
        f"  {'total':<44} {'':>7}        {total / 1024:6.1f} KB gzipped = "
        f"{total / BUDGET_BYTES:.0%} of the budget ({verdict})"
    )


# --- backends -------------------------------------------------------------------------------


def base_env(workdir: Path, password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADKIT_")}
    for name in ("DATABASE_URL", "REDIS_URL", "HOST", "PORT"):
        env.pop(name, None)
    env.update(
        {
            "LEADKIT_ENV": "dev",
            "LEADKIT_DATA_DIR": str(workdir / "data"),
            "LEADKIT_ADMIN_USERNAME": ADMIN,
            "LEADKIT_ADMIN_PASSWORD": password,
            "LEADKIT_LOG_LEVEL": "WARNING",
            "HOST": HOST,
            # One bench run signs in once, but never let the limiter skew a rerun.
            "LEADKIT_LOGIN_MAX_PER_IP": "1000",
            # All bench traffic comes from one address; real visitors come from many.
            "LEADKIT_EVENTS_IP_PER_MINUTE": "10000000",
        }
    )
    return env


@contextlib.contextmanager
def postgres_database(user: str) -> Iterator[str]:
    name = f"leadkit_bench_{os.getpid()}"
    with scratch_postgres(name, host=HOST, port=5432, user=user) as url:
        yield url
    print(f"   dropped database {name}")


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    prefix = f"leadkit-bench-{os.getpid()}:"
    try:
        yield prefix
    finally:
        drop_redis_keys(url, prefix)


def backends(
    workdir: Path, password: str, args: argparse.Namespace
) -> Iterator[tuple[str, dict[str, str]]]:
    """(label, server environment): SQLite, then, with ``args.postgres`` and both services
    answering, PostgreSQL + Redis on a throwaway database and key prefix."""
    env = base_env(workdir, password)
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    yield "SQLite (embedded mode)", env
    if not args.postgres:
        return
    if not (answers(HOST, 5432) and answers(HOST, 6379)):
        print("\n== PostgreSQL + Redis: skipped, 127.0.0.1:5432 or :6379 not answering")
        return
    with postgres_database(args.pg_user) as url, redis_prefix(args.redis_url) as prefix:
        pg_env = base_env(workdir, password)
        pg_env.update(
            {
                "DATABASE_URL": url,
                "REDIS_URL": args.redis_url,
                "LEADKIT_REDIS_PREFIX": prefix,
                "LEADKIT_DATA_DIR": str(workdir / "data-pg"),
            }
        )
        yield "PostgreSQL + Redis", pg_env


def run_on_backends(
    name: str,
    args: argparse.Namespace,
    run_backend: Callable[[str, dict[str, str], argparse.Namespace, Path], object],
) -> int:
    """``run_backend`` on each of ``backends`` in turn, inside ``run_bench``."""

    def body(workdir: Path, password: str) -> bool:
        for label, env in backends(workdir, password, args):
            run_backend(label, env, args, workdir)
        return True

    return run_bench(name, body)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--events-rate", type=float, default=6000.0, help="events/s offered in the spine run"
    )
    parser.add_argument(
        "--page-rate", type=float, default=100.0, help="tool page req/s offered in the spine run"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="also run on PostgreSQL + Redis when they answer"
    )
    parser.add_argument("--pg-user", default=os.environ.get("LEADKIT_TEST_PG_USER", "postgres"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    cores = os.cpu_count() or 1
    print(
        f"leadkit bench: {cores} CPU cores, shared by the server ({args.workers} worker "
        f"process{'es' if args.workers > 1 else ''}) and this load generator (one asyncio "
        "process, up to one core) on loopback; absolute figures are low and noisy on a small "
        "machine, the ratios to /healthz in the same run are what to compare."
    )
    return run_on_backends("pages", args, run_backend)


if __name__ == "__main__":
    sys.exit(main())
