"""The brand each worker process shows: a plain value in memory, read by every visitor page
and PDF without a query, and kept current across processes.

A change saved in this process is taken at once, after its commit. Other worker processes —
and other machines — check the saved version every REFRESH_SECONDS (one indexed one-column
read) and load the brand when it moved on, so a change shows everywhere within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import async_sessionmaker

from app.brand import service
from app.brand.schemas import Brand

log = logging.getLogger("leadkit.brand")

REFRESH_SECONDS = 5.0


class BrandBook:
    """``current()`` is the brand. ``on_change`` hooks run (in the event loop, so keep them
    short) with the brand when it is first loaded (``first``) and whenever it changes after,
    e.g. to cache PDF reports under the brand's version and forget those of the old one."""

    def __init__(
        self, fallback: Brand, on_change: Sequence[Callable[[Brand, bool], None]] = ()
    ) -> None:
        self._brand = fallback
        self._fallback = fallback
        self._on_change = list(on_change)
        self._loaded = False
        self._task: asyncio.Task[None] | None = None

    def current(self) -> Brand:
        return self._brand

    def put(self, brand: Brand) -> None:
        """Take ``brand`` unless it is older than the one held (versions only go up; a check
        that read before a save committed must not undo the save)."""
        previous = self._brand
        if brand.version < previous.version:
            return
        self._brand = brand
        first = not self._loaded
        self._loaded = True
        if first or brand.version != previous.version:
            for hook in self._on_change:
                try:
                    hook(brand, first)
                except Exception:  # a failed hook must not keep the new brand from showing
                    log.exception("brand change hook %r failed", hook)

    async def check(self, sessionmaker: async_sessionmaker) -> None:
        """Load the saved brand if its version differs from the one held."""
        async with sessionmaker() as db, db.begin():
            version = await service.saved_version(db)
            if version is None:
                brand = self._fallback
            elif self._loaded and version == self._brand.version:
                return
            else:
                brand = await service.load(db) or self._fallback
        self.put(brand)

    async def start(self, sessionmaker: async_sessionmaker) -> None:
        """Load the brand before the first request, then keep checking in the background."""
        try:
            await self.check(sessionmaker)
        except Exception:
            # An unmigrated or unreachable database: pages show the defaults meanwhile.
            log.warning("could not load the brand; showing the defaults", exc_info=True)
        self._task = asyncio.create_task(self._watch(sessionmaker), name="brand-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, sessionmaker: async_sessionmaker) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.check(sessionmaker)
            except Exception:
                log.warning("brand check failed; trying again shortly", exc_info=True)
