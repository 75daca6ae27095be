"""`make bench` (calculators): the calculator page against a bare Jinja page of its size.

Serves the app (bench/calc_app.py: the real app plus one bench-only route that renders the same
template from a context built once) and drives, at a fixed concurrency and in the same run:

- GET /healthz, the usual baseline;
- GET /bench/bare-calculator, tools/calculator.html with no per-request work;
- GET /t/renovation as a returning visitor: tool + version lookup, cookie, attribution, the
  tool_viewed event, the latest submission, compiled-definition cache, template;
- POST /api/v1/calculators/renovation/evaluate: validate, evaluate, store the submission.

Target (issue 4): the calculator page's throughput ≥ 50% of the bare page's. Figures are for
comparing changes on one machine, never pass/fail tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import httpx
from run import Result, Server, first_visit_cookies, load, run_on_backends

TARGET = 0.50
EVALUATE_BODY = json.dumps(
    {
        "inputs": {
            "city": "北京",
            "area": 100,
            "bedrooms": 2,
            "bathrooms": 1,
            "condition": "毛坯房",
            "grade": "精装",
            "kitchen": True,
            "bathroom": True,
            "flooring": True,
        }
    },
    ensure_ascii=False,
).encode()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--postgres", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    return parser.parse_args()


def size(base: str, path: str, cookies: dict[str, str]) -> int:
    with httpx.Client(base_url=base, timeout=10, cookies=cookies) as client:
        response = client.get(path)
        response.raise_for_status()
        return len(response.content)


def run_backend(label: str, env: dict[str, str], args: argparse.Namespace, workdir: Path) -> None:
    server = Server(env, args.workers, workdir, app="bench.calc_app:create_app")
    print(f"\n== {label}: serving bench/calc_app.py with {args.workers} worker(s) on {server.url}")
    server.start()
    try:
        base = server.url
        visitor = first_visit_cookies(base, "/t/renovation")
        targets: list[tuple[str, str, dict[str, str], bytes]] = [
            ("healthz", "/healthz", {}, b""),
            ("bare Jinja page", "/bench/bare-calculator", {}, b""),
            ("calculator page", "/t/renovation", visitor, b""),
            ("evaluate (JSON)", "/api/v1/calculators/renovation/evaluate", visitor, EVALUATE_BODY),
            ("bare Jinja again", "/bench/bare-calculator", {}, b""),
        ]
        results: dict[str, Result] = {}
        for name, path, cookies, body in targets:
            asyncio.run(load(server.port, name, path, cookies, args.concurrency, args.warmup, body))
            results[name] = asyncio.run(
                load(server.port, name, path, cookies, args.concurrency, args.duration, body)
            )
        bare = results["bare Jinja page"]
        print(
            f"  page sizes: bare {size(base, '/bench/bare-calculator', {}) / 1024:.1f} KB, "
            f"calculator {size(base, '/t/renovation', visitor) / 1024:.1f} KB (uncompressed HTML)"
        )
        print(
            f"  {'endpoint':<18} {'req/s':>8} {'x bare':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'errors':>7}"
        )
        for name, r in results.items():
            print(
                f"  {name:<18} {r.rps:8.0f} {r.rps / bare.rps:8.2f} "
                f"{r.percentile(0.5) * 1000:8.2f} {r.percentile(0.99) * 1000:8.2f} {r.errors:7d}"
            )
        ratio = results["calculator page"].rps / bare.rps
        noise = abs(results["bare Jinja again"].rps - bare.rps) / bare.rps
        verdict = "meets" if ratio >= TARGET else "MISSES"
        print(
            f"  calculator page = {ratio:.0%} of the bare Jinja page ({verdict} the "
            f"≥ {TARGET:.0%} target); run-to-run noise on the bare page {noise:.0%}"
        )
    finally:
        server.stop()


def main() -> int:
    args = parse_args()
    return run_on_backends("calc", args, run_backend)


if __name__ == "__main__":
    sys.exit(main())
