"""The SQL claim store (SQLite and PostgreSQL): in one transaction, insert the claim first
under the unique (grab, phone, n) key, trying n = 1..limit, then ``UPDATE grab SET stock =
stock - 1 WHERE id = ? AND stock > 0 AND <open>``; when that changes no row the claim goes and
the refusal stays. Decrementing first would let a phone that is over its limit burn a unit;
inserting first cannot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.clock import now
from app.core.errors import Conflict
from app.core.i18n import N_
from app.core.models import rate_counter
from app.core.sql import upsert_insert
from app.events.models import FunnelEvent
from app.events.schemas import GrabWon
from app.events.service import event_row
from app.grabs.models import Grab, GrabClaim, issued_claim
from app.grabs.schemas import ClaimAnswer, Result
from app.grabs.store.claims import (
    IDEMPOTENCY_TTL,
    Claimant,
    GrabInfo,
    open_clause,
    tap_context,
    terms,
    voucher,
)

# Refusals kept for replays, as small integers in the SQL key/expiry table.
_REFUSAL_CODES: dict[str, int] = {"sold_out": 1, "already_claimed": 2, "not_open": 3}
_REFUSALS_BY_CODE = {v: k for k, v in _REFUSAL_CODES.items()}
# Tries at a claim whose new voucher code turns out to be taken already.
CODE_ATTEMPTS = 3


class SQLClaimStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = upsert_insert(engine)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _idem_key(self, grab: GrabInfo, who: Claimant, key: str) -> str:
        return f"grabidem:{grab.id}:{who.phone_hash}:{key}"

    limits_inline = False  # the service applies the rate limits first

    async def claim(
        self,
        grab: GrabInfo,
        who: Claimant,
        key: str | None,
        limits: Sequence[tuple[str, int, int]] = (),
    ) -> tuple[ClaimAnswer, bool]:
        for attempt in range(CODE_ATTEMPTS):
            at, code, expires = terms(grab)
            async with self._engine.connect() as conn:
                trans = await conn.begin()
                # Writes come first: on SQLite the transaction takes the write lock at once and
                # never has to upgrade a read lock under contention.
                if key is not None and not await self._take_key(conn, grab, who, key):
                    await trans.rollback()
                    replay = True
                    break
                replay = False
                try:
                    answer = await self._decide(conn, grab, who, key, at, code, expires)
                except IntegrityError:
                    await trans.rollback()
                    # A voucher code is unique: one drawn again (1 in 2^60) is drawn anew.
                    # Any other broken constraint (a lead or visitor gone) is the caller's.
                    if attempt + 1 == CODE_ATTEMPTS or not await self._code_taken(conn, code):
                        raise
                    continue
                await trans.commit()
                break
        if replay:
            # The same key is (or was) being answered: its transaction has finished now.
            earlier = await self.replay(grab, who, key)  # type: ignore[arg-type]
            return earlier or ClaimAnswer(result="not_open"), True
        return answer, False

    async def _code_taken(self, conn: AsyncConnection, code: str) -> bool:
        return await conn.scalar(select(GrabClaim.id).where(GrabClaim.code == code)) is not None

    async def _decide(
        self,
        conn: Any,
        grab: GrabInfo,
        who: Claimant,
        key: str | None,
        at: dt.datetime,
        code: str,
        expires: dt.datetime,
    ) -> ClaimAnswer:
        """Insert the claim under the first free n, then take a unit; inside the caller's
        transaction, which commits whatever this decides."""
        claim_id, won_n = None, 0
        for n in range(1, grab.per_phone_limit + 1):
            inserted = await conn.execute(
                self._insert(GrabClaim)
                .values(**issued_claim(grab.id, n, who, at, code, expires), idempotency_key=key)
                .on_conflict_do_nothing(index_elements=["grab_id", "phone_hash", "n"])
                .returning(GrabClaim.id)
            )
            claim_id = inserted.scalar()
            if claim_id is not None:
                won_n = n
                break
        result: Result = "already_claimed"
        if claim_id is not None:
            taken = await conn.execute(
                update(Grab)
                .where(Grab.id == grab.id, Grab.stock > 0, open_clause(at))
                .values(stock=Grab.stock - 1)
            )
            if taken.rowcount == 1:
                # The win's funnel event commits (or not) with the claim itself.
                await conn.execute(
                    insert(FunnelEvent), [event_row(tap_context(grab, who), GrabWon(n=won_n), at)]
                )
                return ClaimAnswer(result="won", voucher=voucher(grab, code, won_n, expires))
            # No unit left (or no longer open): the claim goes, the refusal stays.
            await conn.execute(delete(GrabClaim).where(GrabClaim.id == claim_id))
            stock = await conn.scalar(select(Grab.stock).where(Grab.id == grab.id))
            result = "sold_out" if not stock else "not_open"
        if key is not None:
            await conn.execute(
                update(rate_counter)
                .where(
                    rate_counter.c.key == self._idem_key(grab, who, key),
                    rate_counter.c.window_start == -1,
                )
                .values(count=_REFUSAL_CODES[result])
            )
        return ClaimAnswer(result=result)

    async def _take_key(self, conn: Any, grab: GrabInfo, who: Claimant, key: str) -> bool:
        """Reserve the idempotency key (0 = won: the claim row carries the answer)."""
        taken = await conn.execute(
            self._insert(rate_counter)
            .values(
                key=self._idem_key(grab, who, key),
                window_start=-1,
                count=0,
                expires_at=int(now().timestamp()) + IDEMPOTENCY_TTL,
            )
            .on_conflict_do_nothing(index_elements=["key", "window_start"])
            .returning(rate_counter.c.key)
        )
        return taken.scalar() is not None

    async def replay(self, grab: GrabInfo, who: Claimant, key: str) -> ClaimAnswer | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(GrabClaim.code, GrabClaim.n, GrabClaim.expires_at).where(
                        GrabClaim.grab_id == grab.id,
                        GrabClaim.idempotency_key == key,
                        GrabClaim.phone_hash == who.phone_hash,
                    )
                )
            ).first()
            if row is not None:  # expires_at is DateTimeUTC: aware on every backend
                return ClaimAnswer(
                    result="won", voucher=voucher(grab, row.code, row.n, row.expires_at)
                )
            stored = await conn.scalar(
                select(rate_counter.c.count).where(
                    rate_counter.c.key == self._idem_key(grab, who, key),
                    rate_counter.c.window_start == -1,
                )
            )
        if stored in _REFUSALS_BY_CODE:
            return ClaimAnswer(result=_REFUSALS_BY_CODE[stored])  # type: ignore[arg-type]
        return None

    async def remember(self, grab: GrabInfo, who: Claimant, key: str, result: Result) -> None:
        # The rate-limit table is the installation's keyed, expiring small-integer store;
        # window_start -1 keeps these rows apart from counters and cooldowns.
        expires = int(now().timestamp()) + IDEMPOTENCY_TTL
        async with self._engine.begin() as conn:
            await conn.execute(
                self._insert(rate_counter)
                .values(
                    key=self._idem_key(grab, who, key),
                    window_start=-1,
                    count=_REFUSAL_CODES[result],
                    expires_at=expires,
                )
                .on_conflict_do_nothing(index_elements=["key", "window_start"])
            )

    async def stock_left(self, grab: GrabInfo, conn: AsyncConnection | None = None) -> int:
        query = select(Grab.stock).where(Grab.id == grab.id)
        if conn is not None:
            return int(await conn.scalar(query) or 0)
        async with self._engine.connect() as own:
            return int(await own.scalar(query) or 0)

    async def restock(self, grab_id: int, total: int, conn: AsyncConnection) -> None:
        changed = await conn.execute(
            update(Grab)
            .where(Grab.id == grab_id, Grab.initial_stock - Grab.stock <= total)
            .values(initial_stock=total, stock=total - (Grab.initial_stock - Grab.stock))
        )
        if changed.rowcount != 1:
            raise Conflict(N_("More units than that were already won."))

    async def winners(self, grab: GrabInfo) -> dict[str, int] | None:
        return None

    async def forget(self, phone_hash: str) -> None:
        # The idempotency rows (see _idem_key) name the phone; the claims are SQL's already.
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(rate_counter).where(
                    rate_counter.c.key.startswith("grabidem:", autoescape=True),
                    rate_counter.c.key.contains(f":{phone_hash}:", autoescape=True),
                )
            )
