"""``leadkit serve``: granian's process manager, set up to keep serving through worker crashes.

granian runs the workers; this module changes three things about how it looks after them
(docs/deploying.md explains how to operate it):

- **Crashes restart, they do not stop the server.** granian exits ("Worker crash loop
  detected") when one worker slot dies twice within 5.5 s, which turns two unlucky kills
  (out-of-memory, a segfault in a C extension) into an outage. Here a crashed slot is started
  again at once, then after a growing pause while it keeps crashing; only a slot that crashes
  ``CrashPolicy.limit`` times within ``CrashPolicy.window`` seconds stops the server, with exit
  code 1, for the outer supervisor (systemd) to restart it.
- **One listening socket, opened here and shared by every worker.** On Linux granian gives each
  worker its own ``SO_REUSEPORT`` socket, so the connections queued on a worker's socket are
  reset when it dies, and with every worker down new connections are refused. A socket held by
  this process keeps its queue: connections wait (up to ``LEADKIT_BACKLOG``) for the next
  worker that accepts instead of failing.
- **Workers start in well under a second.** The app's modules are imported once, here, before
  the workers are forked, so a replacement worker only builds the app; an app that cannot even
  be imported stops ``leadkit serve`` at once with its traceback instead of crash-looping.

granian's private hooks used here (``_init_shared_socket``, ``_respawn_workers``,
``respawned_wrks``) are checked by tests/test_faults.py against the installed version.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import resource
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from granian.constants import Interfaces
from granian.log import logger
from granian.net import SocketSpec
from granian.server.mp import MPServer

from app.settings import Settings

APP_MODULE = "app.asgi"
TARGET = f"{APP_MODULE}:create_served_app"
# A worker asked to stop gets this long to finish its requests and flush its buffers before it
# is killed; below systemd's TimeoutStopSec (30 s in docs/deploying.md).
WORKER_STOP_SECONDS = 20
# Descriptors a worker needs besides its client connections: database and Redis pools, the PDF
# renderers' pipes, log files, templates being read.
SPARE_FILES = 512
SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


class CrashPolicy:
    """When to start a crashed worker slot again, and when to give up on it.

    The first crash of a slot within ``window`` seconds restarts it at once; each further one
    waits twice as long as the one before (``first_delay``, then doubling up to ``max_delay``),
    so a worker that dies on start-up does not burn the CPU the surviving workers serve with.
    The ``limit``-th crash within ``window`` gives up: the server stops for its supervisor.
    """

    def __init__(
        self,
        *,
        window: float = 120.0,
        limit: int = 10,
        first_delay: float = 0.5,
        max_delay: float = 10.0,
    ) -> None:
        self.window = window
        self.limit = limit
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._crashes: dict[int, deque[float]] = {}

    def crashed(self, slot: int, now: float) -> float | None:
        """Records a crash of ``slot`` at ``now`` (monotonic seconds); returns the seconds to
        wait before starting it again, or None to give up."""
        times = self._crashes.setdefault(slot, deque())
        times.append(now)
        while now - times[0] > self.window:
            times.popleft()
        recent = len(times)
        if recent >= self.limit:
            return None
        if recent == 1:
            return 0.0
        return float(min(self.max_delay, self.first_delay * 2 ** (recent - 2)))


class Server(MPServer):
    """granian's multi-process server with leadkit's crash policy and one shared socket."""

    def __init__(self, *args: Any, crash_policy: CrashPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_policy = crash_policy or CrashPolicy()
        self.exit_code = 0

    def _shares_listener(self) -> bool:
        # Workers inherit the socket by fork; a spawned worker could not use its descriptor.
        return (
            sys.platform.startswith("linux")
            and self.bind_uds is None
            and multiprocessing.get_start_method() == "fork"
        )

    def _init_shared_socket(self) -> None:
        if not self._shares_listener():
            super()._init_shared_socket()
            return
        holder = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
        self._shd = holder  # type: ignore[assignment]  # granian types it None
        self._sfd = holder.get_fd()
        self._ssp = None
        listener = socket.socket(fileno=self._sfd)
        listener.set_inheritable(True)
        # Listening from now on: connections queue while the first workers start, too.
        listener.listen(self.backlog)
        self._sso = listener

    def _respawn_workers(
        self, workers: Any, spawn_target: Any, target_loader: Any, delay: float = 0
    ) -> None:
        for idx in list(workers):
            old = self.wrks[idx]
            if old.interrupt_by_parent or old.is_alive():
                # A planned restart (SIGHUP reload, lifetime, memory cap): granian's own way.
                super()._respawn_workers([idx], spawn_target, target_loader, delay)
                continue
            pause = self.crash_policy.crashed(idx, time.monotonic())
            if pause is None:
                logger.error(
                    f"worker-{idx + 1} crashed {self.crash_policy.limit} times within "
                    f"{self.crash_policy.window:.0f} s: stopping, for the supervisor to "
                    "restart leadkit"
                )
                self.exit_code = 1
                self.interrupt_signal = True
                self.main_loop_interrupt.set()
                return
            if pause:
                logger.warning(f"worker-{idx + 1} crashed again: restarting it in {pause:.1f} s")
                if not self._pause(pause):
                    return
            super()._respawn_workers([idx], spawn_target, target_loader, 0)
        # granian exits when a slot listed here dies again within 5.5 s; the policy above
        # decides that instead.
        self.respawned_wrks.clear()

    def _pause(self, seconds: float) -> bool:
        """Sleeps ``seconds`` unless the server is asked to stop meanwhile (then False)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.interrupt_signal:
                return False
            time.sleep(0.05)
        return not self.interrupt_signal

    def shutdown(self, exit_code: int = 0) -> None:
        super().shutdown(exit_code or self.exit_code)


def raise_open_files_limit(need: int) -> None:
    """Lifts this process's soft limit on open files towards ``need`` (workers inherit it);
    warns when the hard limit is lower, which only the service manager can raise."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    target = need if hard == unlimited else min(need, hard)
    if soft != unlimited and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if hard != unlimited and hard < need:
        logger.warning(
            f"LEADKIT_MAX_CONNECTIONS needs about {need} open files per worker but the hard "
            f"limit is {hard}: raise it (systemd: LimitNOFILE=65536; a shell: ulimit -n)"
        )


def check_backlog(backlog: int) -> None:
    try:
        somaxconn = int(SOMAXCONN.read_text())
    except (OSError, ValueError):
        return
    if backlog > somaxconn:
        logger.warning(
            f"LEADKIT_BACKLOG={backlog} is above net.core.somaxconn={somaxconn}, which caps it: "
            f"sysctl -w net.core.somaxconn={backlog}"
        )


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Runs the server until SIGTERM or SIGINT; exits 1 when a worker slot keeps crashing."""
    raise_open_files_limit(settings.max_connections + SPARE_FILES)
    check_backlog(settings.backlog)
    importlib.import_module(APP_MODULE)
    # What the import built lives as long as the server: keep the forked workers' collectors
    # off it, so its memory stays shared between them instead of being copied into each.
    gc.collect()
    gc.freeze()
    Server(
        TARGET,
        factory=True,
        interface=Interfaces.ASGI,
        address=host,
        port=port,
        workers=workers,
        backlog=settings.backlog,
        backpressure=settings.max_connections,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=WORKER_STOP_SECONDS,
    ).serve()
