"""What a job that moves money at Stripe needs: short transactions, the one hold on what it works on, the gateway and
the shared rate limit.

A charge or a refund is decided in one short transaction, sent to Stripe with no transaction open, and its outcome
recorded in another. What keeps two jobs from sending the same charge meanwhile is a PostgreSQL advisory lock held
on a connection of its own for the whole job (`held_exclusively`): it needs no transaction, and it is released the
moment the job ends, or its process dies and the connection closes, so a crashed job's work is taken up at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.gateway import PaymentGateway
from payments.rate_limit import StripeRateLimit
from payments.tasks import Transaction

log = logging.getLogger("kindling.payments")

# The first key of the two-key advisory locks, one per kind of object ("pc" and "pr" in ASCII); the single-key
# locks (the sweep's) are a separate key space.
CHARGING_PLEDGE = 0x7063
REFUNDING = 0x7072

# How long a charge may stay in doubt: after it, an attempt Stripe still has no PaymentIntent for is settled as failed
# (KINDLING_CHARGE_DOUBT_HOURS).
CHARGE_DOUBT_SECONDS = 24 * 3600

_TRY_LOCKS = text("SELECT key FROM unnest(CAST(:keys AS integer[])) AS key WHERE pg_try_advisory_lock(:kind, key)")


@dataclass(frozen=True)
class StripeWork:
    transaction: Transaction
    engine: AsyncEngine
    gateway: PaymentGateway
    rate_limit: StripeRateLimit | None = None
    charge_doubt_seconds: int = CHARGE_DOUBT_SECONDS

    async def wait_for_turn(self) -> None:
        """Before each call to Stripe: every worker process together stays under KINDLING_STRIPE_RATE."""
        if self.rate_limit is not None:
            await self.rate_limit.acquire()


@asynccontextmanager
async def held_exclusively(engine: AsyncEngine, kind: int, ident: uuid.UUID) -> AsyncIterator[bool]:
    """Hold the advisory lock (kind, ident) while the block runs; yields False, holding nothing, when another job
    holds it. Two ids that share their first four bytes share the lock: the later job then finds it busy and the
    sweep asks again, which is slower but never wrong."""
    async with held_exclusively_many(engine, kind, [ident]) as held:
        yield bool(held)


@asynccontextmanager
async def held_exclusively_many(
    engine: AsyncEngine, kind: int, idents: Sequence[uuid.UUID]
) -> AsyncIterator[set[uuid.UUID]]:
    """Hold the advisory locks (kind, ident) of as many of `idents` as no other job holds, all taken in one round
    trip on one connection, while the block runs; yields the ids held."""
    keys = {ident: _lock_key(ident) for ident in idents}
    if not keys:
        yield set()
        return
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        taken: set[int] = set(await connection.scalars(_TRY_LOCKS, {"kind": kind, "keys": sorted(set(keys.values()))}))
        try:
            yield {ident for ident, key in keys.items() if key in taken}
        finally:
            if taken:
                try:
                    # The connection is this block's alone: what it holds is exactly what was taken above.
                    await connection.scalar(select(func.pg_advisory_unlock_all()))
                except BaseException:
                    # A lock left on a pooled connection would keep the object busy for good: drop the connection,
                    # which releases it.
                    await connection.invalidate()
                    raise


def _lock_key(ident: uuid.UUID) -> int:
    return int.from_bytes(ident.bytes[:4], "big", signed=True)
