"""Limited-quantity grabs under a rush: the issue's scenario, with same-run baselines.

For each backend (PostgreSQL + Redis, PostgreSQL alone, SQLite) it starts `leadkit serve` with
2 worker processes, writes authorised visitors straight to the database (a lead and a visitor
each, cookies signed with the app's own signer, no SMS), and measures:

- ``GET /ping``: the trivial endpoint, the baseline (again at the end, for the noise);
- claims while selling: a grab with a large stock (per-phone limit 1). Half the visitors tap
  once first (warm-up); then all of them tap in turn, so the measured taps are first taps that
  win (a claim written to SQL through the Redis stream) and repeat taps answered
  "already_claimed" — every one through rate limits and the claim store;
- the rush: 50,000 claim attempts from the visitors on a 100-unit grab (per-phone limit 1);
  then `leadkit grabs check` must pass and exactly 100 vouchers exist;
- claims once sold out (the in-process sold-out flag answers).

Prints requests/s, p50/p99 and each claim figure's ratio to /ping. Targets (Redis backend):
p99 <= 100 ms and zero 5xx in the rush; >= 25 % of /ping while selling, >= 60 % sold out.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    HOST,
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

SECRET = "bench-grabs-secret-" + "x" * 24


def seed(env: dict[str, str], visitors: int) -> list[str]:
    """Two grabs (bench-100: 100 units; bench-big: plenty) and ``visitors`` authorised
    visitors with their signed cookies."""
    import app.models  # noqa: F401 (every table, for the foreign keys)
    from app.db.engine import make_engine, make_sessionmaker
    from app.grabs.schemas import GrabCreate
    from app.grabs.service import create_grab
    from app.settings import load_settings
    from tests.grab_support import make_people

    settings = load_settings(env)

    async def run() -> list[str]:
        engine = make_engine(settings)
        now = dt.datetime.now(dt.UTC)
        async with make_sessionmaker(engine)() as db, db.begin():
            for slug, stock, limit in (("bench-100", 100, 1), ("bench-big", 1_000_000, 1)):
                await create_grab(
                    db,
                    GrabCreate(
                        slug=slug,
                        title=slug,
                        stock=stock,
                        per_phone_limit=limit,
                        starts_at=now - dt.timedelta(minutes=1),
                    ),
                )
            people = await make_people(db, settings, visitors)
            cookies = [person.cookie for person in people]
        await engine.dispose()
        return cookies

    return asyncio.run(run())


async def claims(
    port: int,
    slug: str,
    cookies: list[str],
    concurrency: int,
    *,
    seconds: float = 0.0,
    total: int = 0,
) -> tuple[Result, Counter[int]]:
    """POST claims, each from the next visitor in turn, for ``seconds`` or ``total`` requests."""
    path = f"/api/v1/grabs/{slug}/claim"
    return await taps(
        port, f"claim {slug}", path, cookies, concurrency, seconds=seconds, total=total
    )


def check(env: dict[str, str], slug: str) -> tuple[int, str]:
    return leadkit(env, "grabs", "check", slug)


def run_backend(label: str, env: dict[str, str], args: argparse.Namespace, workdir: Path) -> bool:
    print(f"\n== {label}: {args.workers} worker processes, {args.concurrency} connections")
    server = Server(env, args.workers, workdir)
    server.start()
    try:
        cookies = seed(env, args.visitors)
        port, c = server.port, args.concurrency
        asyncio.run(load(port, "warm-up", "/ping", {}, c, args.warmup))
        # Half the visitors have tapped once already (their first win is behind them and the
        # server knows them); while selling, the other half win on their first tap and
        # everyone else taps again: the mix a rush has before the stock runs out.
        half = len(cookies) // 2
        asyncio.run(claims(port, "bench-big", cookies[:half], c, total=half))
        ping = asyncio.run(load(port, "GET /ping", "/ping", {}, c, args.duration))
        print(line(ping, None))
        selling, _ = asyncio.run(claims(port, "bench-big", cookies, c, seconds=args.duration))
        selling.name = "claim while selling"
        print(line(selling, ping))
        rush, statuses = asyncio.run(claims(port, "bench-100", cookies, c, total=args.attempts))
        rush.name = f"rush: {args.attempts} claims"
        print(line(rush, ping) + f"  statuses {dict(statuses)}")
        sold_out, _ = asyncio.run(claims(port, "bench-100", cookies, c, seconds=args.duration))
        sold_out.name = "claim once sold out"
        print(line(sold_out, ping))
        again = asyncio.run(load(port, "GET /ping (again)", "/ping", {}, c, args.duration))
        print(line(again, None) + f"  noise {abs(again.rps - ping.rps) / ping.rps:.0%}")
        time.sleep(1.5)  # the Redis writer drains its stream
    finally:
        server.stop()
    code, report = check(env, "bench-100")
    print("  leadkit grabs check bench-100: " + report.replace("\n", " | "))
    ok = code == 0 and "won 100 by 100 phones" in report and rush.errors == 0
    ok = ok and sold_out.errors == 0 and selling.errors == 0
    verdict = [
        f"exactly 100 vouchers and invariants: {'yes' if ok else 'NO'}",
        f"zero 5xx: {'yes' if rush.errors + selling.errors + sold_out.errors == 0 else 'NO'}",
        f"rush p99 {rush.percentile(0.99) * 1000:.0f} ms (target <= 100)",
        f"selling {selling.rps / ping.rps:.0%} of /ping (target >= 25%)",
        f"sold out {sold_out.rps / ping.rps:.0%} of /ping (target >= 60%)",
    ]
    print("  " + "; ".join(verdict))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--attempts", type=int, default=50_000)
    parser.add_argument("--pg-user", default=os.environ.get("LEADKIT_TEST_PG_USER", "postgres"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument(
        "--backends", default="redis,postgres,sqlite", help="comma-separated: redis,postgres,sqlite"
    )
    args = parser.parse_args()
    print(
        f"leadkit grabs bench: {os.cpu_count()} CPU cores shared by the server and this load "
        "generator; compare the ratios to /ping, not the absolute figures."
    )
    wanted = args.backends.split(",")

    def body(workdir: Path, password: str) -> bool:
        ok = True
        env = base_env(workdir, password) | {
            "LEADKIT_SECRET_KEY": SECRET,
            # One address and a few thousand visitors tapping as fast as they can: the
            # limits would answer most attempts with 429 instead of exercising the store.
            "LEADKIT_GRAB_IP_PER_MINUTE": "100000000",
            "LEADKIT_GRAB_VISITOR_PER_MINUTE": "100000000",
        }
        pg_ok = answers(HOST, 5432)
        for backend in wanted:
            if backend == "sqlite":
                sqlite_env = env | {
                    "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'grabs.db'}",
                    "LEADKIT_DATA_DIR": str(workdir / "data-sqlite"),
                }
                ok &= run_backend("SQLite (SQL claims)", sqlite_env, args, workdir)
            elif not pg_ok or (backend == "redis" and not answers(HOST, 6379)):
                print(f"\n== {backend}: skipped, PostgreSQL or Redis not answering")
            else:
                with postgres_database(args.pg_user) as url, redis_prefix(args.redis_url) as p:
                    pg_env = env | {
                        "DATABASE_URL": url,
                        "REDIS_URL": args.redis_url if backend == "redis" else "",
                        "LEADKIT_REDIS_PREFIX": p,
                        "LEADKIT_DATA_DIR": str(workdir / f"data-{backend}"),
                    }
                    name = "PostgreSQL + Redis" if backend == "redis" else "PostgreSQL (SQL)"
                    ok &= run_backend(name, pg_env, args, workdir)
        return ok

    return run_bench("grabs", body)


if __name__ == "__main__":
    sys.exit(main())
