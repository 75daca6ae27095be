"""PDF reports off the event loop: a process pool renders, a directory caches.

The cache is a directory of files (``<data_dir>/reports/<sha256>.pdf``) so every app process on
a machine shares it and it survives restarts. A file name hashes the caller's key together with
a fingerprint of the template, the stylesheet and the WeasyPrint version, so a deploy that
changes the look never serves an old layout. Files are written whole (temporary file, then
``os.replace``) and the directory is kept under a size cap by deleting the least recently used
files first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import importlib.metadata
import logging
import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Iterable, Mapping
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import ClassVar

import msgspec

from app.core.errors import DomainError
from app.core.i18n import N_
from app.core.lifeline import die_with_parent
from app.reports.layout import STYLESHEET, TEMPLATE_PATH
from app.reports.schemas import Report

log = logging.getLogger(__name__)

DEFAULT_MAX_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 30.0


class ReportUnavailable(
    DomainError,
    status=503,
    code="report_unavailable",
    message=N_("The report could not be generated just now. Please try again shortly."),
):
    """The PDF renderer is not running, crashed or took too long."""


def report_cache_key(
    *, tool: str, version: int | str, inputs: Mapping[str, object], watermark: str, locale: str
) -> str:
    """The cache key of one tool version's report for these inputs and this masked phone.

    The watermark is part of the key: two visitors with the same inputs get different files.
    """
    parts = {
        "tool": tool,
        "version": str(version),
        "inputs": inputs,
        "watermark": watermark,
        "locale": locale,
    }
    return msgspec.json.encode(parts, order="sorted").decode()


def layout_fingerprint() -> str:
    """A hash of the template, the stylesheet and the WeasyPrint version: part of every cache
    file name."""
    # The installed version, read without importing WeasyPrint into the web process.
    digest = hashlib.sha256(importlib.metadata.version("weasyprint").encode())
    for path in (TEMPLATE_PATH, STYLESHEET):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _is_pdf(data: bytes) -> bool:
    # A file cut short by a crash or a full disk lacks the trailer; render it again.
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]


def _worker_init(owner_pid: int) -> None:
    # Die with the app process that owns the pool: one killed with SIGKILL runs no clean-up,
    # and its renderers would otherwise live on, each holding WeasyPrint's memory.
    die_with_parent(owner_pid, signal.SIGKILL)
    from app.reports import render  # WeasyPrint: only renderer processes import it

    try:
        render.warm_up()
    except Exception:
        # Leave the worker running: each render then reports its own error to the caller.
        log.exception("report worker warm-up failed")
    # WeasyPrint, fonts and caches live as long as the worker: keep them out of the collector's
    # full passes, which otherwise land in the next render (measured: +90 ms on the first).
    gc.collect()
    gc.freeze()


def _render_in_worker(payload: bytes) -> bytes:
    # The pool's task, named here so the web process never imports the renderer to send it.
    from app.reports import render

    return render.render_payload(payload)


class ReportRenderer:
    """Renders reports in ``workers`` processes and caches them under ``data_dir``/reports.

    ``start()`` at application start-up, ``stop()`` at shutdown. ``renders`` counts the reports
    this instance sent to the pool (cache misses), for metrics and tests.
    """

    cache_suffix: ClassVar[str] = ".pdf"

    def __init__(
        self,
        data_dir: str,
        workers: int = 1,
        *,
        max_cache_bytes: int = DEFAULT_MAX_CACHE_BYTES,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.directory = Path(data_dir) / "reports"
        self.workers = max(1, workers)
        self.max_cache_bytes = max_cache_bytes
        self.timeout_seconds = timeout_seconds
        self.renders = 0
        self._fingerprint = layout_fingerprint()
        # The brand's version (app/brand): reports carry its name, logo and colour, so a
        # report cached under another brand is never served (see rebrand).
        self.brand_stamp = ""
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._warming: list[concurrent.futures.Future[int]] = []
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self._cache_bytes = 0

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Creates the cache directory and the pool, and warms every worker in the background."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sweep_temporaries()
        self._cache_bytes = self._scan()[1]
        self._executor = self._new_executor()
        # Workers start on demand; as many concurrent no-op tasks as workers start them all now,
        # each running the warm-up initializer before its first task.
        self._warming = [self._executor.submit(int) for _ in range(self.workers)]

    def stop(self) -> None:
        """Stops the pool; queued renders are cancelled, a running one is awaited."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    async def ready(self) -> None:
        """Waits until every worker has warmed up (for benchmarks and tests)."""
        await asyncio.gather(*(asyncio.wrap_future(f) for f in self._warming))

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        # Spawn, not fork: the parent runs an event loop and threads whose locks a forked child
        # would copy. Not a fork server either: its renderers would be the fork server's
        # children, not this process's, and could not be told to die with it.
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )

    # --- the one entry point ------------------------------------------------------------------

    def path_for(self, cache_key: str) -> Path:
        """The cache file of ``cache_key`` under the current layout."""
        stamp = f"{self._fingerprint}\0{self.brand_stamp}\0{cache_key}"
        name = hashlib.sha256(stamp.encode()).hexdigest()
        return self.directory / f"{name}{self.cache_suffix}"

    def rebrand(self, stamp: str, *, clear: bool) -> None:
        """Reports are cached under the brand's ``stamp`` from now on. ``clear`` (the brand
        changed while running): every cached report is deleted, in a thread — each shows the
        old brand, and under the old stamp no deletion of a person's data could find it."""
        if stamp == self.brand_stamp:
            return
        self.brand_stamp = stamp
        if not clear:
            return
        try:
            asyncio.get_running_loop().run_in_executor(None, self._clear)
        except RuntimeError:  # no event loop: a command or a test
            self._clear()

    def _clear(self) -> None:
        if not self.directory.is_dir():
            return
        for entry in self._scan()[0]:
            with contextlib.suppress(FileNotFoundError):
                entry[2].unlink()
        self._cache_bytes = 0

    def forget(self, cache_keys: Iterable[str]) -> int:
        """Delete the cached files of ``cache_keys`` (a person's reports, when they delete
        their data); returns how many there were. Blocking: run it in a thread."""
        removed = 0
        for key in cache_keys:
            path = self.path_for(key)
            with contextlib.suppress(FileNotFoundError):
                size = path.stat().st_size
                path.unlink()
                self._cache_bytes -= size
                removed += 1
        return removed

    async def pdf(self, report: Report, cache_key: str) -> bytes:
        """The report's PDF: from the cache when there, else rendered once in the pool and kept.

        Concurrent calls with one key share one render; the pool starts on first use if it was
        not started at boot. Raises ReportUnavailable when the pool fails or times out.
        """
        path = self.path_for(cache_key)
        task = self._inflight.get(path.name)
        if task is None:
            task = asyncio.ensure_future(self._load_or_render(report, path))
            self._inflight[path.name] = task
            task.add_done_callback(lambda done: self._finished(path.name, done))
        # Shielded: a caller that goes away does not cancel the render the others wait for.
        return await asyncio.shield(task)

    def _finished(self, name: str, task: asyncio.Task[bytes]) -> None:
        if self._inflight.get(name) is task:
            del self._inflight[name]
        if not task.cancelled():
            task.exception()  # retrieved, so an unawaited failure is not logged twice

    async def _load_or_render(self, report: Report, path: Path) -> bytes:
        cached = await asyncio.to_thread(self._read, path)
        if cached is not None:
            return cached
        data = await self._render(report)
        try:
            await asyncio.to_thread(self._store, path, data)
        except OSError:
            # A full or read-only disk costs the next caller a render, not this one its report.
            log.exception("could not cache report %s", path.name)
        return data

    async def _render(self, report: Report) -> bytes:
        if self._executor is None:
            # Started on first use where start() was not called at boot (tests, one-off apps).
            self.start()
        executor = self._executor
        if executor is None:
            raise ReportUnavailable()
        self.renders += 1
        payload = msgspec.msgpack.encode(report)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await loop.run_in_executor(executor, _render_in_worker, payload)
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory): replace the pool so the next call works.
            log.error("report pool broken; starting a new one")
            if self._executor is executor:
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            raise ReportUnavailable() from exc
        except TimeoutError as exc:
            log.error("report render exceeded %.0f s", self.timeout_seconds)
            raise ReportUnavailable() from exc
        except Exception as exc:
            log.exception("report render failed")
            raise ReportUnavailable() from exc

    # --- the directory cache (blocking; run in a thread) --------------------------------------

    def _read(self, path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if not _is_pdf(data):
            log.warning("discarding a corrupt cached report %s", path.name)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        # Touch, so eviction removes the least recently used files first.
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
        return data

    def _store(self, path: Path, data: bytes) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        self._cache_bytes += len(data)
        if self._cache_bytes > self.max_cache_bytes:
            self._evict()

    def _scan(self) -> tuple[list[tuple[float, int, Path]], int]:
        entries: list[tuple[float, int, Path]] = []
        for entry in os.scandir(self.directory):
            if not entry.name.endswith(self.cache_suffix) or not entry.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat()
                entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        return entries, sum(size for _, size, _ in entries)

    def _sweep_temporaries(self) -> None:
        # Left by a process killed mid-write; an hour old, so no live writer still owns them.
        cutoff = time.time() - 3600
        for path in self.directory.glob(".tmp-*.part"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def _evict(self) -> None:
        # The running total is this process's estimate; other processes write here too, so the
        # directory itself is the truth once the estimate crosses the cap.
        entries, total = self._scan()
        entries.sort()
        target = self.max_cache_bytes * 9 // 10  # some headroom, so eviction is not per write
        for _, size, path in entries:
            if total <= target:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
        self._cache_bytes = total
