"""Fixed-window throttles kept in PostgreSQL, so every web process sees the same counts."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.errors import TooManyRequests

_HIT = text(
    """
    INSERT INTO throttles (bucket, window_started_at, hits) VALUES (:bucket, now(), 1)
    ON CONFLICT (bucket) DO UPDATE SET
        hits = CASE WHEN throttles.window_started_at < now() - make_interval(secs => :window)
                    THEN 1 ELSE throttles.hits + 1 END,
        window_started_at = CASE WHEN throttles.window_started_at < now() - make_interval(secs => :window)
                    THEN now() ELSE throttles.window_started_at END
    RETURNING hits, window_started_at
    """
)
_READ = text(
    "SELECT hits, window_started_at FROM throttles "
    "WHERE bucket = :bucket AND window_started_at >= now() - make_interval(secs => :window)"
)


def _retry_after(window_started_at: datetime, window: int) -> int:
    left = window - (datetime.now(UTC) - window_started_at).total_seconds()
    return max(1, int(left) + 1)


async def record_hit(sessions: async_sessionmaker[AsyncSession], bucket: str, *, window: int) -> None:
    """Count one event in its own transaction, so it sticks even when the request then fails."""
    async with sessions.begin() as session:
        await session.execute(_HIT, {"bucket": bucket, "window": window})


async def ensure_allowed(sessions: async_sessionmaker[AsyncSession], bucket: str, *, limit: int, window: int) -> None:
    async with sessions() as session:
        row = (await session.execute(_READ, {"bucket": bucket, "window": window})).first()
    if row is not None and row.hits >= limit:
        raise TooManyRequests(_retry_after(row.window_started_at, window))


async def hit_and_check(sessions: async_sessionmaker[AsyncSession], bucket: str, *, limit: int, window: int) -> None:
    """Count this attempt and refuse it once the window holds more than `limit`."""
    async with sessions.begin() as session:
        row = (await session.execute(_HIT, {"bucket": bucket, "window": window})).one()
    if row.hits > limit:
        raise TooManyRequests(_retry_after(row.window_started_at, window))
