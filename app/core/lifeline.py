"""Child processes that die with their parent.

A process pool's children (the PDF renderers) and granian's workers must not outlive the process
that owns them: a worker killed with SIGKILL, or by the kernel's out-of-memory killer, runs no
clean-up, and its children would otherwise be re-parented to init and keep their memory forever.

Two guards, both armed by :func:`die_with_parent` in the child itself:

- Linux: ``prctl(PR_SET_PDEATHSIG)``, so the kernel signals the child the moment its parent
  exits. The kernel ties it to the *thread* that forked the child, so call it only in children
  forked from their parent's main (or another long-lived) thread.
- Everywhere: a daemon thread that checks once a ``poll_seconds`` whether the parent is still
  the one the child started with, for systems without prctl or where arming it failed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _prctl_death_signal(signum: int) -> bool:
    """Asks the kernel for ``signum`` when the parent exits; False where that is impossible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on
        if libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
            return False
    except (OSError, AttributeError):
        return False
    return True


def _orphaned(parent_pid: int) -> bool:
    # Once the parent is gone the child is re-parented (to init or a subreaper): its parent id
    # changes, and never back, so this cannot mistake a recycled pid for the parent.
    return os.getppid() != parent_pid


def _watch(parent_pid: int, signum: int, poll_seconds: float) -> None:
    while not _orphaned(parent_pid):
        time.sleep(poll_seconds)
    os.kill(os.getpid(), signum)


def die_with_parent(
    parent_pid: int,
    signum: int = signal.SIGKILL,
    *,
    poll_seconds: float = 1.0,
    use_prctl: bool = True,
) -> bool:
    """Make this process receive ``signum`` when ``parent_pid``, its parent, exits.

    ``parent_pid`` is the parent as the caller knows it (passed down by the parent, or read with
    ``os.getppid()`` early): if the parent died before the guards were armed, the signal is sent
    at once. Returns whether the kernel guard (prctl) is armed; the polling thread runs always.
    """
    armed = use_prctl and _prctl_death_signal(signum)
    if _orphaned(parent_pid):
        os.kill(os.getpid(), signum)
    threading.Thread(
        target=_watch, args=(parent_pid, signum, poll_seconds), name="lifeline", daemon=True
    ).start()
    return armed
