"""Where claims are decided: one interface (claims.py), a SQL store and a Redis store.

SQL (SQLite and PostgreSQL, sql_store.py): in one transaction, insert the claim first under the
unique (grab, phone, n) key, then take a unit when one is left and the grab is open.

Redis (redis_store.py): one Lua script (redis_scripts.py) does the duplicate check, the stock
check, the decrement, records the winner and appends the claim to a stream; a writer task
(redis_writer.py) drains the stream into SQL and brings ``grab.stock`` level.
"""

from app.grabs.store.claims import (
    DELETED_UNITS,
    IDEMPOTENCY_TTL,
    TOMBSTONE,
    Claimant,
    ClaimRateLimited,
    ClaimStore,
    GrabInfo,
    is_tombstone,
    open_clause,
    tap_context,
    tap_limit_key,
    voucher,
)
from app.grabs.store.redis_store import RedisClaimStore
from app.grabs.store.sql_store import SQLClaimStore

__all__ = [
    "DELETED_UNITS",
    "IDEMPOTENCY_TTL",
    "TOMBSTONE",
    "ClaimRateLimited",
    "ClaimStore",
    "Claimant",
    "GrabInfo",
    "RedisClaimStore",
    "SQLClaimStore",
    "is_tombstone",
    "open_clause",
    "tap_context",
    "tap_limit_key",
    "voucher",
]
