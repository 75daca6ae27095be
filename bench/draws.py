"""`make bench` (draws): the draw computation and its verification, with same-run baselines;
then entries and the host's tap against `leadkit serve` (bench/draws_served.py).

For 100,000 entrants (1 to 5 chances each, a few phones with two entries) and 100 winners in
three tiers (3 + 20 + 77, with 2 + 5 + 0 reserves), in drand mode with quicknet's genuine
round 1000, it times:

- freeze + hash + select: sort the entries, group them by phone, check them, serialise the
  canonical list, SHA-256 it, then draw every tier (app/draws/: entrants.freeze, fairness.draw);
  once with the entries in random order and once in id order (as SQL's ORDER BY id gives
  them);
- the proof bundle: build it and encode it to JSON;
- verification: decode the JSON bundle and recompute everything, the drand signature included
  (proof.verify), as `leadkit draws verify` does;
- baselines in the same run: SHA-256 of the same list bytes with hashlib alone, and
  msgspec decoding the same JSON alone.

Targets (issue 13): freeze + hash + select ≤ 100 ms; verification ≤ 1 s. Each figure is the
median of the runs, wall clock and CPU time of this process; on a busy machine (see the load
average printed) the CPU time is the steadier one. Figures for comparing changes, not tests.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.draws.drand import QUICKNET_CHAIN, SCHEME, ChainInfo, DrandRound
from app.draws.entrants import Entry, freeze
from app.draws.fairness import TierRule, draw
from app.draws.proof import Proof, decode_proof, encode_proof, prove, verify
from bench import draws_served

TARGET_DRAW_MS = 100.0
TARGET_VERIFY_MS = 1000.0
RULES = [TierRule("一等奖", 3, 2), TierRule("二等奖", 20, 5), TierRule("三等奖", 77)]
# quicknet's genuine round 1000 (docs/draws.md, drand): a real signature to verify.
QUICKNET = ChainInfo(
    hash=QUICKNET_CHAIN,
    public_key="83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6"
    "c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c"
    "76a4bc09e76eae8991ef5ece45a",
    period=3,
    genesis_time=1692803367,
    group_hash="f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
    beacon_id="quicknet",
    scheme=SCHEME,
)
ROUND_1000 = DrandRound(
    round=1000,
    randomness="fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
    signature="b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2"
    "bacbe47e4b6b63ed5e39",
    chain=QUICKNET,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entrants", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (median shown)")
    parser.add_argument("--only", choices=("computation", "served"), help="one half only")
    draws_served.add_arguments(parser)
    return parser.parse_args()


def make_entries(n: int) -> list[Entry]:
    rng = random.Random(20260820)
    ids = rng.sample(range(1, 3 * n), n)
    ids.sort()
    entries = []
    for position, entry_id in enumerate(ids):
        # One phone in a hundred entered twice (a second entry some positions later). The
        # phone key is what the draw will pass: the lead's id.
        phone = position - 7 if position % 100 == 99 else position
        entries.append(
            Entry(
                id=entry_id,
                phone_key=phone + 1,
                phone=f"1{38 + phone % 50}****{phone % 10_000:04d}",
                chances=rng.randint(1, 5),
            )
        )
    return entries


def measure(work: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of ``runs`` calls (after one warm-up)."""
    work()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def row(name: str, figures: tuple[float, float], baseline: tuple[float, float], note: str) -> None:
    wall, cpu = figures
    ratio = cpu / baseline[1] if baseline[1] else float("inf")
    print(f"  {name:34} {wall:9.1f} {cpu:9.1f} {ratio:10.1f}x  {note}")


def main() -> int:
    args = parse_args()
    if args.only != "served":
        computation(args)
    return 0 if args.only == "computation" else draws_served.main(args)


def computation(args: argparse.Namespace) -> None:
    in_order = make_entries(args.entrants)
    shuffled = list(in_order)
    random.Random(1).shuffle(shuffled)
    seed = bytes(range(32))
    frozen = freeze(in_order)
    proof = prove(seed, frozen, RULES, one_win_per_phone=True, beacon=ROUND_1000)
    data = encode_proof(proof)
    assert verify(decode_proof(data), trusted_chain=QUICKNET_CHAIN) == []
    winners = sum(len(t.winners) for t in proof.tiers)
    randomness = bytes.fromhex(ROUND_1000.randomness)

    def freeze_and_draw(entries: list[Entry]) -> None:
        draw(seed, freeze(entries), RULES, one_win_per_phone=True, randomness=randomness)

    sha = measure(lambda: hashlib.sha256(frozen.data).hexdigest(), args.runs)
    decode_only = measure(lambda: msgspec.json.decode(data, type=Proof), args.runs)
    shuffled_draw = measure(lambda: freeze_and_draw(shuffled), args.runs)
    ordered_draw = measure(lambda: freeze_and_draw(in_order), args.runs)
    bundle = measure(
        lambda: encode_proof(prove(seed, frozen, RULES, one_win_per_phone=True, beacon=ROUND_1000)),
        args.runs,
    )
    verification = measure(
        lambda: verify(decode_proof(data), trusted_chain=QUICKNET_CHAIN), args.runs
    )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"draws: {frozen.count:,} entrants ({len(frozen.data):,} list bytes), {winners} winners "
        f"+ {sum(len(t.reserves) for t in proof.tiers)} reserves in {len(RULES)} tiers, drand "
        f"mode; bundle {len(data):,} bytes of JSON; median of {args.runs} runs; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"  {'':34} {'wall ms':>9} {'CPU ms':>9} {'x SHA-256':>11}")
    row("baseline: SHA-256 of the list", sha, sha, "hashlib alone, the same bytes")
    row("baseline: decode the JSON bundle", decode_only, sha, "msgspec alone")
    row(
        "freeze + hash + select (shuffled)",
        shuffled_draw,
        sha,
        f"target ≤ {TARGET_DRAW_MS:.0f} ms: {verdict(shuffled_draw, TARGET_DRAW_MS)}",
    )
    row(
        "freeze + hash + select (id order)",
        ordered_draw,
        sha,
        f"target ≤ {TARGET_DRAW_MS:.0f} ms: {verdict(ordered_draw, TARGET_DRAW_MS)}",
    )
    row("build + encode the proof bundle", bundle, sha, "draw included")
    row(
        "verify the bundle (from JSON)",
        verification,
        sha,
        f"target ≤ {TARGET_VERIFY_MS:.0f} ms: {verdict(verification, TARGET_VERIFY_MS)}",
    )


def verdict(figures: tuple[float, float], target: float) -> str:
    wall, cpu = figures
    if wall <= target:
        return "met"
    return "met in CPU time (the machine is busy)" if cpu <= target else "MISSED"


if __name__ == "__main__":
    sys.exit(main())
