"""Hand-made mutants of what mutmut leaves alone: the Redis Lua scripts and module-level limits.

    .venv/bin/python tests/mutation_hand.py            # every hand mutant
    .venv/bin/python tests/mutation_hand.py gate-lua   # those whose name starts so

mutmut (tests/mutation.py) mutates the code inside functions, and runs the SQLite half of most
areas. Two kinds of rule escape it: a Lua script is a string constant to Python, and a limit
such as ``DAY = 86_400`` or ``IDEMPOTENCY_TTL`` is a module-level constant. Each mutant below
changes one of them the way a slip would; the tests that state the rule must then fail — the
Lua ones on PostgreSQL + Redis, where the scripts run.

Each mutant runs in a scratch copy of app/ and tests/ (var/mutation/hand/), never in the
working tree. The exit status is 0 even when mutants survive: the list is for a person to read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation" / "hand"
PYTEST = Path(sys.executable).with_name("pytest")

GATE = ("tests/test_gate.py", "tests/test_gate_defences.py")
GRABS = ("tests/test_grabs.py", "tests/test_grabs_concurrency.py")
PRIVACY = ("tests/test_privacy.py",)
VOUCHERS = ("tests/test_vouchers.py",)
ON_REDIS = "postgres"  # the -k expression of the PostgreSQL + Redis half
ON_SQLITE = "sqlite"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str  # exact text, found once in the file
    new: str
    tests: tuple[str, ...]
    only: str  # pytest -k


MUTANTS = (
    # The one-time code check (app/gate/store.py _CHECK).
    Mutant(
        "gate-lua: a used or dead code is checked again",
        "app/gate/store.py",
        "if redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 'dead' end\n",
        "",
        GATE,
        ON_REDIS,
    ),
    Mutant(
        "gate-lua: a right code is not used up",
        "app/gate/store.py",
        "  redis.call('HSET', KEYS[1], 'state', 'used')\n",
        "",
        GATE,
        ON_REDIS,
    ),
    Mutant(
        "gate-lua: one more wrong attempt than allowed",
        "app/gate/store.py",
        "if attempts >= tonumber(ARGV[2])",
        "if attempts > tonumber(ARGV[2])",
        GATE,
        ON_REDIS,
    ),
    # The claim (app/grabs/store/redis_scripts.py CLAIM_LUA, its arguments in redis_store.py).
    Mutant(
        "grabs-lua: the answer's field without the phone",
        "app/grabs/store/redis_store.py",
        'f"{who.phone_hash}:{key}" if key else "",',
        'f"{key}" if key else "",',
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: a replayed key is decided again",
        "app/grabs/store/redis_scripts.py",
        "  if prev then return {'replay', prev} end\n",
        "",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: tap counters never expire",
        "app/grabs/store/redis_scripts.py",
        "redis.call('EXPIRE', KEYS[4 + i], tonumber(ARGV[13 + 2 * i]) + 1)",
        "redis.call('TYPE', KEYS[4 + i])",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: one tap more than the limit",
        "app/grabs/store/redis_scripts.py",
        "count > tonumber(ARGV[12 + 2 * i])",
        "count > tonumber(ARGV[12 + 2 * i]) + 1",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: one unit more per phone than its limit",
        "app/grabs/store/redis_scripts.py",
        "if have >= tonumber(ARGV[2]) then",
        "if have > tonumber(ARGV[2]) then",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: the last unit sold twice (oversell)",
        "app/grabs/store/redis_scripts.py",
        "elseif tonumber(stock) <= 0 then",
        "elseif tonumber(stock) < 0 then",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: a win takes no unit",
        "app/grabs/store/redis_scripts.py",
        "  redis.call('DECR', KEYS[1])\n",
        "",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: a win never reaches SQL",
        "app/grabs/store/redis_scripts.py",
        "  redis.call('XADD', KEYS[4], '*',",
        "  local _ = ('XADD', KEYS[4], '*',",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: answers to keys never expire",
        "app/grabs/store/redis_scripts.py",
        "  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[11]))\n",
        "",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: the stock is initialised twice",
        "app/grabs/store/redis_scripts.py",
        "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n",
        "",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: restocking to exactly the units won refused",
        "app/grabs/store/redis_scripts.py",
        "if tonumber(ARGV[1]) < won then return -1 end",
        "if tonumber(ARGV[1]) <= won then return -1 end",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: restocking leaves the stock as it was",
        "app/grabs/store/redis_scripts.py",
        "then redis.call('SET', KEYS[1], tonumber(ARGV[1]) - won) end",
        "then return won end",
        GRABS,
        ON_REDIS,
    ),
    Mutant(
        "grabs-lua: a deleted person's units stop counting",
        "app/grabs/store/redis_scripts.py",
        "redis.call('HINCRBY', KEYS[1], ARGV[2], tonumber(won))\n",
        "",
        (*GRABS, *PRIVACY),
        ON_REDIS,
    ),
    # Module-level limits.
    Mutant(
        "gate-limit: a day is an hour",
        "app/gate/service.py",
        "DAY, HOUR = 86_400, 3_600",
        "DAY, HOUR = 3_600, 3_600",
        GATE,
        ON_SQLITE,
    ),
    Mutant(
        "gate-limit: an hour is two",
        "app/gate/service.py",
        "DAY, HOUR = 86_400, 3_600",
        "DAY, HOUR = 86_400, 7_200",
        GATE,
        ON_SQLITE,
    ),
    Mutant(
        "grabs-limit: answers to keys kept a second longer",
        "app/grabs/store/claims.py",
        "IDEMPOTENCY_TTL = 86_400",
        "IDEMPOTENCY_TTL = 86_401",
        GRABS,
        ON_SQLITE,
    ),
    Mutant(
        "vouchers-limit: 31 look-ups a minute",
        "app/vouchers/service.py",
        "LOOKUPS_PER_MINUTE = 30",
        "LOOKUPS_PER_MINUTE = 31",
        VOUCHERS,
        ON_SQLITE,
    ),
    Mutant(
        "vouchers-limit: the undo window is 11 minutes",
        "app/settings.py",
        "voucher_undo_minutes: int = 10",
        "voucher_undo_minutes: int = 11",
        VOUCHERS,
        ON_SQLITE,
    ),
)


def scratch() -> Path:
    """A copy of the code and tests to mutate; templates and static files are linked."""
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "artifacts")
    for name in ("app", "tests"):
        shutil.copytree(ROOT / name, WORK / name, ignore=ignore)
    for name in ("templates", "static", "calculators"):
        (WORK / name).symlink_to(ROOT / name, target_is_directory=True)
    shutil.copy(ROOT / "pyproject.toml", WORK / "pyproject.toml")
    return WORK


def run(mutant: Mutant, where: Path) -> tuple[str, float]:
    target = where / mutant.path
    original = target.read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        return f"not applied ({original.count(mutant.old)} matches: the code moved)", 0.0
    target.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    started = time.monotonic()
    try:
        done = subprocess.run(
            [
                str(PYTEST),
                *("-x", "-q", "-p", "no:cacheprovider", "-m", "not e2e and not served"),
                *("-k", mutant.only, *mutant.tests),
            ],
            cwd=where,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        status = {0: "SURVIVED", 1: "killed", 5: "no tests"}.get(
            done.returncode, f"error (pytest exit {done.returncode})"
        )
        if done.returncode == 1:
            failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
            status += f" by {failed[0].removeprefix('FAILED ').split(' - ')[0]}" if failed else ""
    except subprocess.TimeoutExpired:
        status = "timeout"
    finally:
        target.write_text(original, encoding="utf-8")
    return status, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prefixes", nargs="*", help="run the mutants whose name starts so")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.prefixes or m.name.startswith(tuple(args.prefixes))]
    where = scratch()
    killed = 0
    for mutant in chosen:
        status, seconds = run(mutant, where)
        killed += status.startswith("killed")
        print(f"{mutant.name:60} {status}  ({seconds:.0f} s)", flush=True)
    print(f"\n== hand mutants: {killed} / {len(chosen)} killed ==")
    return 0


if __name__ == "__main__":
    sys.exit(main())
