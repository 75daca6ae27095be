"""The process tree, read from /proc (Linux): what the fault tests and bench/faults.py watch
while they kill workers — who is alive, whose child it is, which processes a server left."""

from __future__ import annotations

import os
from pathlib import Path


def stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def alive(pid: int) -> bool:
    found = stat(pid)
    return found is not None and found[1] != "Z"  # a zombie has exited; only its entry is left


def pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(pid: int) -> list[int]:
    return sorted(p for p in pids() if (found := stat(p)) and found[0] == pid and found[1] != "Z")


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            found.add(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def marked(data_dir: Path | str) -> set[int]:
    """Live processes that carry this server's LEADKIT_DATA_DIR in their environment
    (a process that retitles itself with setproctitle may have overwritten it)."""
    marker = f"LEADKIT_DATA_DIR={data_dir}".encode()
    found = set()
    for pid in pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ and alive(pid):
            found.add(pid)
    return found
