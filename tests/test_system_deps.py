""".ci/system-deps (run by `make run` and `make test`) when another apt or dpkg holds the
package lock — unattended-upgrades on a fresh machine, an install in another terminal: it waits
for the lock, bounded, saying so, instead of failing with apt's raw "E: Could not get lock"; and
when the wait runs out it says what to do.

The script runs for real with fakes of the system commands in front of PATH: ``id`` says root,
``fc-list`` finds no CJK font, ``ldconfig`` finds the libraries, and ``apt-get`` answers as a
locked apt does for its first N calls.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "system-deps"
LOCKED = (
    "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 "
    "(unattended-upgr)\n"
    "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another "
    "process using it?"
)


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _run(
    tmp_path: Path, *, locked_calls: int, wait: str = "3", broken: bool = False
) -> subprocess.CompletedProcess:
    fakes = tmp_path / "bin"
    fakes.mkdir()
    calls = tmp_path / "apt-calls"
    _fake(fakes, "id", "echo 0\n")
    _fake(fakes, "fc-list", "exit 0\n")  # no font for :lang=zh
    _fake(
        fakes,
        "ldconfig",
        "echo 'libharfbuzz-subset.so.0 libpango-1.0.so.0 libpangoft2-1.0.so.0'\n",
    )
    # Each call is logged; the first `locked_calls` answer as apt does while dpkg is locked.
    _fake(
        fakes,
        "apt-get",
        f'echo "$*" >> {calls}\n'
        f"n=$(wc -l < {calls})\n"
        f'if [ "$n" -le {locked_calls} ]; then printf "%s\\n" "{LOCKED}" >&2; exit 100; fi\n'
        + ('echo "E: Unable to locate package fonts-noto-cjk" >&2; exit 100\n' if broken else "")
        + 'echo "Setting up fonts-noto-cjk"\n',
    )
    env = {
        **os.environ,
        "PATH": f"{fakes}:{os.environ['PATH']}",
        "APT_LOCK_WAIT_SECONDS": wait,
        "APT_LOCK_POLL_SECONDS": "1",
    }
    result = subprocess.run(
        [str(SCRIPT), "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    result.calls = calls.read_text().splitlines() if calls.exists() else []  # type: ignore[attr-defined]
    return result


def test_waits_for_the_lock_then_installs(tmp_path: Path) -> None:
    result = _run(tmp_path, locked_calls=2)
    assert result.returncode == 0, result.stderr
    assert "Setting up fonts-noto-cjk" in result.stdout
    assert "waiting" in result.stderr and "4242" in result.stderr
    installs = [c for c in result.calls if c.split()[-1] == "fonts-noto-cjk"]  # type: ignore[attr-defined]
    assert len(installs) == 3  # two refused while locked, the third went through


def test_a_lock_that_stays_ends_with_what_to_do(tmp_path: Path) -> None:
    result = _run(tmp_path, locked_calls=1000, wait="2")
    assert result.returncode == 1
    # Bounded: a couple of tries a second, not forever.
    assert 2 <= len(result.calls) <= 6  # type: ignore[attr-defined]
    message = result.stderr
    assert "another apt or dpkg" in message
    assert "4242" in message  # who holds it
    assert "make run" in message or "run make again" in message
    assert "apt-get install -y --no-install-recommends fonts-noto-cjk" in message


def test_no_lock_installs_at_once(tmp_path: Path) -> None:
    result = _run(tmp_path, locked_calls=0)
    assert result.returncode == 0, result.stderr
    assert "waiting" not in result.stderr
    assert len(result.calls) == 1  # type: ignore[attr-defined]


def test_any_other_failure_fails_the_make(tmp_path: Path) -> None:
    """It used to print nothing and exit 0 when the retry after `apt-get update` failed too."""
    result = _run(tmp_path, locked_calls=0, broken=True)
    assert result.returncode == 1
    assert "Unable to locate package" in result.stdout  # apt's own reason, shown
    assert "could not install fonts-noto-cjk" in result.stderr
    assert [c.split()[0] for c in result.calls] == ["install", "update"]  # type: ignore[attr-defined]
