"""Taps from many visitors, shared by the benches of features visitors tap (grabs, draws).

``taps`` POSTs to one path, each request from the next authorised visitor in turn (their
signed visitor cookies, prepared straight in the database), for a time or a number of
requests; ``line`` prints a figure next to the same run's trivial endpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

from bench.run import HOST, Connection, Result


async def taps(
    port: int,
    name: str,
    path: str,
    cookies: list[str],
    concurrency: int,
    *,
    seconds: float = 0.0,
    total: int = 0,
) -> tuple[Result, Counter[int]]:
    """POST ``path``, each from the next visitor in turn, for ``seconds`` or ``total`` requests
    (``total`` = ``len(cookies)``: every visitor taps once). The result and the statuses."""
    result = Result(name, path, seconds)
    statuses: Counter[int] = Counter()
    turn = itertools.cycle(cookies)
    sent = itertools.count()
    started = time.perf_counter()
    stop_at = started + seconds if seconds else float("inf")

    def request(cookie: str) -> bytes:
        return (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: leadkit-bench\r\n"
            f"Accept: application/json\r\nCookie: lk_vid={cookie}\r\nContent-Length: 0\r\n\r\n"
        ).encode("latin-1")

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            while time.perf_counter() < stop_at and (not total or next(sent) < total):
                status, took = await conn.ask(request(next(turn)))
                result.latencies.append(took)
                statuses[status] += 1
                if status >= 500:
                    result.errors += 1
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result, statuses


def line(r: Result, base: Result | None, base_name: str = "/ping") -> str:
    ratio = f"{r.rps / base.rps:6.0%} of {base_name}" if base and base.rps else ""
    return (
        f"  {r.name:24} {r.rps:8.0f} req/s  p50 {r.percentile(0.5) * 1000:6.1f} ms  "
        f"p99 {r.percentile(0.99) * 1000:6.1f} ms  5xx {r.errors:<4} {ratio}"
    )
