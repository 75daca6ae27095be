"""The optional Redis connection. A blocking pool waits for a free connection under load
instead of raising MaxConnectionsError as the default async pool does."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from app.settings import Settings


def make_redis(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    return Redis(connection_pool=pool)
