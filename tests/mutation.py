"""`make mutation`: mutation testing of the critical modules with mutmut, one area at a time.

    .venv/bin/python tests/mutation.py                  # every area
    .venv/bin/python tests/mutation.py formula gate     # some areas
    .venv/bin/python tests/mutation.py --keep formula   # reuse the last run's results
    .venv/bin/python tests/mutation.py gate --only 'app.gate.store.*'   # some mutants (a glob)
    .venv/bin/python tests/mutation.py grabs --sample 250   # a uniform random sample of them

An area is a few modules and the tests that state their rules (AREAS below). Each area runs in
its own working directory, var/mutation/<area>/ (git-ignored), holding symlinks to the sources
and a pyproject.toml with the area's [tool.mutmut] table: mutmut reads its configuration from
the current directory, and one directory per area keeps one area's tests (and their stats run)
out of another's. mutmut copies the sources into var/mutation/<area>/mutants/ and runs pytest
there, on SQLite only, without the browser tests, forking one worker per mutant.

After the run, the score of each module (killed / total) and every mutant that was not killed,
with its diff, are printed. The exit status is 0 even when mutants survive: the score is for a
person to read, not a gate in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation"
MUTMUT = Path(sys.executable).with_name("mutmut")


@dataclass(frozen=True)
class Area:
    modules: tuple[str, ...]  # files mutmut mutates
    tests: tuple[str, ...]  # the tests that state the modules' rules (missing files are skipped)
    # LEADKIT_TEST_BACKENDS for the run. Modules with a Redis half (a Redis store beside the SQL
    # one) need the PostgreSQL + Redis tests too: on SQLite alone that half has no tests.
    backends: str = "sqlite"


AREAS: dict[str, Area] = {
    "formula": Area(
        modules=(
            "app/calculators/formula/syntax.py",
            "app/calculators/formula/values.py",
            "app/calculators/formula/build.py",
            "app/calculators/formula/errors.py",
        ),
        tests=(
            "tests/test_calc_formula.py",
            "tests/test_formula_limits.py",
            "tests/test_calc_compiler.py",
        ),
    ),
    "grabs": Area(
        modules=(
            "app/grabs/store/claims.py",
            "app/grabs/store/sql_store.py",
            "app/grabs/store/redis_store.py",
            "app/grabs/store/redis_writer.py",
            # The claim window's rule (window_open: the claim UPDATE's WHERE), shared with draws.
            "app/core/schedule.py",
            # The claim stream's reading loop, shared with the draw entries.
            "app/db/stream_writer.py",
        ),
        # test_privacy: a deleted person's claims and answers (forget, the writer's tombstones);
        # test_reliability: the Redis writer's redelivered entries.
        tests=(
            "tests/test_grabs.py",
            "tests/test_grabs_concurrency.py",
            "tests/test_grab_store_rules.py",
            "tests/test_privacy.py",
            "tests/test_reliability.py",
        ),
        backends="sqlite,postgres",
    ),
    "gate": Area(
        modules=("app/gate/service.py", "app/gate/store.py"),
        tests=("tests/test_gate.py", "tests/test_gate_defences.py", "tests/test_gate_words.py"),
        backends="sqlite,postgres",
    ),
    "vouchers": Area(
        modules=("app/vouchers/service.py",),
        tests=("tests/test_vouchers.py",),
    ),
    # A draw's entries: the SQL path, the Redis script's store and the writer that brings its
    # entries to SQL (the close waits for it: no entry missing from the frozen list).
    "entries": Area(
        modules=(
            "app/draws/entries.py",
            "app/draws/redis_entries.py",
            "app/draws/entry_writer.py",
            "app/db/stream_writer.py",
        ),
        tests=(
            "tests/test_draws.py",
            "tests/test_draws_redis.py",
            "tests/test_draws_tally.py",
            "tests/test_draws_check.py",
        ),
        backends="sqlite,postgres",
    ),
    # The one way out (app/outbox/): rows written with what causes them, sent at least once
    # with backoff, one sender per message across workers (SKIP LOCKED on PostgreSQL).
    "outbox": Area(
        modules=("app/outbox/service.py", "app/outbox/sender.py"),
        tests=("tests/test_outbox.py",),
        backends="sqlite,postgres",
    ),
    # The draw's fairness: pure functions and the drand adapter (its tests serve a fake beacon
    # on 127.0.0.1, no database).
    "draws": Area(
        modules=(
            "app/draws/entrants.py",
            "app/draws/fairness.py",
            "app/draws/proof.py",
            "app/draws/drand.py",
        ),
        tests=("tests/test_draw_fairness.py", "tests/test_draw_drand.py"),
    ),
}

# What the tests need beside app/ and tests/ (templates, CSS, built-in calculators, and docs/
# for the draw tests that check docs/draws.md's worked example): mutmut copies them next to the
# mutated app/, where app/ and the tests look for them.
LINKED = ("app", "tests", "templates", "static", "calculators", "docs")
ALSO_COPY = ("templates", "static", "calculators", "docs")

# A mutant gets (its tests' time when clean + TIMEOUT_CONSTANT) x TIMEOUT_MULTIPLIER x 2 seconds
# of CPU time (mutmut's formula); CPU time, so a busy machine does not turn kills into timeouts.
# mutmut also stops a mutant after half that in wall-clock time. Its "tests' time" counts only
# the test bodies, not fixtures: the app tests' setup (the migrated template database, an app
# per test) is most of their cost, and a smaller constant turned healthy runs into "timeouts",
# which count as kills.
TIMEOUT_MULTIPLIER = 4.0
TIMEOUT_CONSTANT = 10.0

DETECTED = frozenset({"killed", "timeout", "caught by type check"})

# Imported once by mutmut's fork server, so each mutant's process starts with them loaded: the
# app and pytest's plugins. Not the test modules (each mutant's pytest collects those itself,
# see _area_config), nor tests/conftest.py: it names the test database and Redis prefix after
# its process, which must be each mutant's own.
PRELOAD = (
    "app.asgi",
    "tests.helpers",
    "tests.fakes.plugin",
    "hypothesis",
    "litestar.testing",
    "pytest",
    "_hypothesis_pytestplugin",
    "anyio.pytest_plugin",
    "faker.contrib.pytest.plugin",
    "pytest_asyncio.plugin",
    "pytest_timeout",
    "schemathesis.pytest.plugin",
    "xdist.plugin",
)


def _toml_list(items: list[str] | tuple[str, ...]) -> str:
    return json.dumps(list(items), ensure_ascii=False)  # a JSON string list is a TOML array


def _area_config(area: Area) -> str:
    tests = [t for t in area.tests if (ROOT / t).exists()]
    selection = [*tests, "-m", "not e2e and not served"]
    return "\n".join(
        [
            "",
            "# Generated by tests/mutation.py for this area; edit AREAS there, not this file.",
            "[tool.mutmut]",
            'source_paths = ["app/"]',
            f"only_mutate = {_toml_list(area.modules)}",
            f"also_copy = {_toml_list([f'{p}/' for p in ALSO_COPY])}",
            f"pytest_add_cli_args_test_selection = {_toml_list(selection)}",
            # No cache dir in the copy; a stuck test fails after a minute instead of five.
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-o", "timeout=60"]',
            f"timeout_multiplier = {TIMEOUT_MULTIPLIER}",
            f"timeout_constant = {TIMEOUT_CONSTANT}",
            # Fork each mutant from a process that has only collected the tests: forked from
            # one that ran them (mutmut's default), a child inherits the app's threads' locks
            # and the app tests hang until they time out (counted as kills).
            'process_isolation = "forkserver"',
            # The fork server imports the app instead of collecting the tests (mutmut's default):
            # pytest escapes non-ASCII characters in explicit test ids again each time a process
            # collects them, so a child of a server that had collected could not find the tests
            # it was asked to run (pytest exit 4, which mutmut reports as a timeout).
            'forkserver_warmup = "import"',
            'preload_modules_file = "mutmut-preload.txt"',
            "",
        ]
    )


def claim(name: str) -> Path:
    """One run per area at a time (a second one would delete the first one's working copy):
    the area's pid file names the run that has it."""
    pidfile = WORK / f"{name}.pid"
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass
    else:
        sys.exit(f"area {name} is being run by process {pid} ({pidfile}): wait for it")
    WORK.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))
    return pidfile


def prepare(name: str, area: Area, *, keep: bool) -> Path:
    """The area's working directory: links to the sources and its own pyproject.toml."""
    where = WORK / name
    if not keep and where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True, exist_ok=True)
    for entry in LINKED:
        link = where / entry
        if not link.is_symlink():
            link.symlink_to(ROOT / entry, target_is_directory=True)
    (where / "mutmut-preload.txt").write_text("\n".join(PRELOAD) + "\n", encoding="utf-8")
    base = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (where / "pyproject.toml").write_text(base + _area_config(area), encoding="utf-8")
    return where


def _mutmut(
    where: Path, *args: str, capture: bool = False, backends: str = "sqlite"
) -> subprocess.CompletedProcess[str]:
    # SQLite only unless the area says otherwise (tests/conftest.py): one backend's verdict per
    # mutant, and no shared servers. With PostgreSQL + Redis, each test session has a database
    # and key prefix of its own (named after its process), so parallel mutants do not meet.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "LEADKIT_TEST_BACKENDS": backends}
    return subprocess.run(
        [str(MUTMUT), *args],
        cwd=where,
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )


def all_mutants(where: Path, area: Area) -> list[str]:
    """Every mutant of the area, by name. mutmut generates them (and runs the stats it needs to
    test them, which the run after reuses) only as part of `mutmut run`, so this runs it with a
    name that matches nothing: it stops after generating, and the names are in the .meta files
    beside the mutated copies."""
    _mutmut(where, "run", "app.no_such_module.*", capture=True, backends=area.backends)
    names: list[str] = []
    for meta in sorted((where / "mutants").rglob("*.py.meta")):
        names.extend(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    return sorted(names)


def sample(where: Path, area: Area, size: int, seed: int) -> list[str]:
    """A uniform random sample of the area's mutants (the same seed, the same sample): when a
    full run would take hours, a sample of a few hundred estimates the score within a few
    points (the report gives the 95 % interval)."""
    names = all_mutants(where, area)
    if not names:
        sys.exit("mutmut generated no mutants: run without --sample to see its output")
    chosen = random.Random(seed).sample(names, min(size, len(names)))
    print(f"  a sample of {len(chosen)} of {len(names)} mutants (seed {seed})", flush=True)
    return chosen


def interval(killed: int, total: int) -> tuple[float, float]:
    """The Wilson 95 % interval of a score measured on a sample of ``total`` mutants."""
    z = 1.96
    p = killed / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return centre - half, centre + half


def results(where: Path) -> dict[str, str]:
    """mutant name -> status, as `mutmut results --all true` lists them, except that a mutant
    whose tests could not run is an "error", not a "timeout" (a kill)."""
    listing = _mutmut(where, "results", "--all", "true", capture=True)
    statuses: dict[str, str] = {}
    for line in listing.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            statuses[name] = status
    # mutmut 3.8 lists exit status 255 as a timeout; from its fork server's children it means
    # the test runner raised (pytest could not start or find the tests). Real timeouts are
    # SIGXCPU. The exit statuses are in the .meta files next to the mutated copies.
    for meta in (where / "mutants").rglob("*.py.meta"):
        try:
            codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for name, code in codes.items():
            if code == 255 and statuses.get(name) == "timeout":
                statuses[name] = "error"
    return statuses


def report(name: str, where: Path, elapsed: float, *, diffs: bool) -> list[tuple[str, int, int]]:
    statuses = results(where)
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    unchecked = [m for m, s in statuses.items() if s == "not checked"]  # left out by --only
    for mutant, status in statuses.items():
        if status != "not checked":
            by_module[mutant.rsplit(".", 1)[0]][status] += 1
    print(f"\n== mutation score: {name} ({elapsed / 60:.1f} min) ==")
    rows = []
    for module, counts in sorted(by_module.items()):
        total = sum(counts.values())
        killed = sum(n for status, n in counts.items() if status in DETECTED)
        rest = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s not in DETECTED)
        print(f"  {module:32} {killed:4} / {total:4} killed  {100 * killed / total:5.1f} %  {rest}")
        if unchecked:
            low, high = interval(killed, total)
            print(f"  {'':32} (95 % interval {100 * low:.1f}–{100 * high:.1f} % if a sample)")
        rows.append((module, killed, total))
    if unchecked:
        print(f"  ({len(unchecked)} mutants not checked this time: not counted above)")
    if len(rows) > 1:
        killed = sum(k for _, k, _ in rows)
        total = sum(t for *_, t in rows)
        low, high = interval(killed, total)
        print(
            f"  {'the area':32} {killed:4} / {total:4} killed  {100 * killed / total:5.1f} %"
            f"  (95 % interval {100 * low:.1f}–{100 * high:.1f} % if a sample)"
        )
    if not statuses:
        print("  no mutants: see mutmut's output above")
    undetected = sorted(m for m, s in statuses.items() if s not in DETECTED | {"not checked"})
    if undetected:
        print(f"\n-- not killed ({len(undetected)}) --")
    for mutant in undetected:
        if diffs:
            shown = _mutmut(where, "show", mutant, capture=True).stdout.strip()
            print(shown + "\n")
        else:
            print(f"  {mutant}: {statuses[mutant]}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("areas", nargs="*", help=f"some of: {' '.join(AREAS)} (default: all)")
    parser.add_argument(
        "--keep", action="store_true", help="reuse the last run (mutmut's incremental mode)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="parallel mutants (default 1)")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors without diffs")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="run only the mutants whose names match (mutmut's names, e.g. 'app.gate.store.*')",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="run a uniform random sample of N mutants of each area (with --seed)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the sample's seed (default 1)")
    args = parser.parse_args(argv)
    unknown = [a for a in args.areas if a not in AREAS]
    if unknown:
        parser.error(f"unknown area {' '.join(unknown)}; the areas are: {' '.join(AREAS)}")
    if not MUTMUT.exists():
        parser.error(f"{MUTMUT} is missing: make install-test installs it")
    summary: list[tuple[str, str, int, int]] = []
    for name in args.areas or list(AREAS):
        pidfile = claim(name)
        try:
            where = prepare(name, AREAS[name], keep=args.keep)
            print(f"\n== mutmut run: {name} in {where.relative_to(ROOT)} ==", flush=True)
            started = time.monotonic()
            jobs = ["--max-children", str(args.jobs)]
            only = args.only
            if args.sample:
                only = sample(where, AREAS[name], args.sample, args.seed)
            run = _mutmut(where, "run", *jobs, *only, backends=AREAS[name].backends)
            elapsed = time.monotonic() - started
        finally:
            pidfile.unlink(missing_ok=True)
        if run.returncode != 0:
            print(f"mutmut run failed for {name} (exit {run.returncode})")
            summary.append((name, "(failed)", 0, 0))
            continue
        for module, killed, total in report(name, where, elapsed, diffs=not args.no_diffs):
            summary.append((name, module, killed, total))
    print("\n== summary ==")
    for name, module, killed, total in summary:
        score = f"{100 * killed / total:5.1f} %" if total else "   -"
        print(f"  {name:9} {module:32} {killed:4} / {total:4}  {score}")
    return 0 if all(total for *_, total in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
