"""Throttles kept in PostgreSQL, so every web process sees the same counts.

Every attempt is counted before it is judged, in one statement that also decides whether it may go on: however many
arrive at once, no more than the free ones get through. Log-in attempts are counted per client address and per
(email, address): whoever guesses a password slows down only themselves, and the account's owner still logs in from
anywhere else. Past its free attempts, a log-in bucket lets one attempt through per delay, and the delay doubles with
each. The client address is the peer's, or, from a proxy named in KINDLING_TRUSTED_PROXIES, the address that proxy
says it serves (X-Forwarded-For, read from the right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request

from campaigns.accounts import normalise_email
from campaigns.errors import TooManyRequests
from service.web import client_address


@dataclass(frozen=True)
class Backoff:
    """`free` attempts at once; then one attempt per delay, `first_delay` seconds doubling up to `max_delay`. A bucket
    left alone for `idle` seconds after its last delay forgets its count."""

    free: int
    first_delay: int
    max_delay: int
    idle: int


LOGINS_PER_EMAIL_AND_ADDRESS = Backoff(free=10, first_delay=60, max_delay=3600, idle=15 * 60)
LOGINS_PER_ADDRESS = Backoff(free=30, first_delay=60, max_delay=3600, idle=15 * 60)
SIGNUPS_PER_ADDRESS_PER_HOUR = 20

# The row's values after this attempt, from its values before (`t`): a row past `expires_at` starts again.
_HITS = "CASE WHEN t.expires_at <= now() THEN 1 ELSE t.hits + 1 END"


def _block(hits: str) -> str:
    return (
        f"CASE WHEN {hits} >= :free THEN now() + "
        f"make_interval(secs => least(:first_delay * power(2, {hits} - :free), :max_delay)) END"
    )


_ATTEMPT = text(
    f"""
    INSERT INTO throttles AS t (bucket, window_started_at, hits, blocked_until, expires_at)
    VALUES (:bucket, now(), 1, {_block("1")}, coalesce({_block("1")}, now()) + make_interval(secs => :idle))
    ON CONFLICT (bucket) DO UPDATE SET
        hits = {_HITS},
        window_started_at = CASE WHEN t.expires_at <= now() THEN now() ELSE t.window_started_at END,
        blocked_until = {_block(_HITS)},
        expires_at = coalesce({_block(_HITS)}, now()) + make_interval(secs => :idle)
    WHERE t.blocked_until IS NULL OR t.blocked_until <= now()
    RETURNING hits
    """
)
_BLOCKED_FOR = text(
    "SELECT extract(epoch FROM blocked_until - clock_timestamp()) FROM throttles "
    "WHERE bucket = :bucket AND blocked_until > clock_timestamp()"
)
_FORGIVE = text("UPDATE throttles SET hits = greatest(hits - 1, 0) WHERE bucket = :bucket")
_FORGET = text("DELETE FROM throttles WHERE bucket = :bucket")

_WINDOW_HIT = text(
    """
    INSERT INTO throttles AS t (bucket, window_started_at, hits, expires_at)
    VALUES (:bucket, now(), 1, now() + make_interval(secs => :window))
    ON CONFLICT (bucket) DO UPDATE SET
        hits = CASE WHEN t.expires_at <= now() THEN 1 ELSE t.hits + 1 END,
        window_started_at = CASE WHEN t.expires_at <= now() THEN now() ELSE t.window_started_at END,
        expires_at = CASE WHEN t.expires_at <= now() THEN now() + make_interval(secs => :window) ELSE t.expires_at END
    RETURNING hits, extract(epoch FROM expires_at - clock_timestamp()) AS seconds_left
    """
)
_PRUNE = text(
    "DELETE FROM throttles WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM throttles WHERE expires_at <= now() ORDER BY expires_at LIMIT :limit))"
)


def _seconds(left: Decimal | float | None) -> int:
    return max(1, math.ceil(left or 0))


async def attempt(session: AsyncSession, bucket: str, backoff: Backoff) -> None:
    """Count one attempt, or refuse it (uncounted) while the bucket's delay runs."""
    admitted = await session.scalar(
        _ATTEMPT,
        {
            "bucket": bucket,
            "free": backoff.free,
            "first_delay": backoff.first_delay,
            "max_delay": backoff.max_delay,
            "idle": backoff.idle,
        },
    )
    if admitted is None:
        raise TooManyRequests(_seconds(await session.scalar(_BLOCKED_FOR, {"bucket": bucket})))


@dataclass(frozen=True)
class LoginAttempt:
    """A counted log-in attempt; `succeeded` gives its count back once the password was right."""

    sessions: async_sessionmaker[AsyncSession]
    per_address: str
    per_email_and_address: str

    async def succeeded(self) -> None:
        async with self.sessions.begin() as session:
            await session.execute(_FORGET, {"bucket": self.per_email_and_address})
            await session.execute(_FORGIVE, {"bucket": self.per_address})


async def count_login_attempt(request: Request, sessions: async_sessionmaker[AsyncSession], email: str) -> LoginAttempt:
    """Counts this attempt before its password is checked; TooManyRequests while its address or its (email,
    address) waits. Its own transaction, so the count sticks whatever the request does next."""
    address = client_address(request)
    counted = LoginAttempt(sessions, f"login:ip:{address}", f"login:email-ip:{normalise_email(email)}:{address}")
    async with sessions.begin() as session:
        await attempt(session, counted.per_email_and_address, LOGINS_PER_EMAIL_AND_ADDRESS)
        await attempt(session, counted.per_address, LOGINS_PER_ADDRESS)
    return counted


async def hit_and_check(sessions: async_sessionmaker[AsyncSession], bucket: str, *, limit: int, window: int) -> None:
    """Count this event in a fixed window and refuse it once the window holds more than `limit`."""
    async with sessions.begin() as session:
        row = (await session.execute(_WINDOW_HIT, {"bucket": bucket, "window": window})).one()
    if row.hits > limit:
        raise TooManyRequests(_seconds(row.seconds_left))


async def count_sign_up(request: Request, sessions: async_sessionmaker[AsyncSession]) -> None:
    await hit_and_check(
        sessions, f"signup:ip:{client_address(request)}", limit=SIGNUPS_PER_ADDRESS_PER_HOUR, window=3600
    )


async def prune_throttles(session: AsyncSession, *, limit: int) -> int:
    """Delete up to `limit` rows whose window and delay have both passed: they count nothing any more."""
    result = await session.execute(_PRUNE, {"limit": limit})
    return int(result.rowcount)  # type: ignore[attr-defined]
