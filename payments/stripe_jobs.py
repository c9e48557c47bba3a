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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.gateway import PaymentGateway
from payments.rate_limit import StripeRateLimit
from payments.tasks import Transaction

log = logging.getLogger("kindling.payments")

# The first key of the two-key advisory locks, one per kind of object ("pc" and "pr" in ASCII); the single-key
# locks (the sweep's) are a separate key space.
CHARGING_PLEDGE = 0x7063
REFUNDING = 0x7072


@dataclass(frozen=True)
class StripeWork:
    transaction: Transaction
    engine: AsyncEngine
    gateway: PaymentGateway
    rate_limit: StripeRateLimit | None = None

    async def wait_for_turn(self) -> None:
        """Before each call to Stripe: every worker process together stays under KINDLING_STRIPE_RATE."""
        if self.rate_limit is not None:
            await self.rate_limit.acquire()


@asynccontextmanager
async def held_exclusively(engine: AsyncEngine, kind: int, ident: uuid.UUID) -> AsyncIterator[bool]:
    """Hold the advisory lock (kind, ident) while the block runs; yields False, holding nothing, when another job
    holds it. Two ids that share their first four bytes share the lock: the later job then finds it busy and the
    sweep asks again, which is slower but never wrong."""
    key = int.from_bytes(ident.bytes[:4], "big", signed=True)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        held = bool(await connection.scalar(select(func.pg_try_advisory_lock(kind, key))))
        try:
            yield held
        finally:
            if held:
                try:
                    await connection.scalar(select(func.pg_advisory_unlock(kind, key)))
                except BaseException:
                    # A lock left on a pooled connection would keep the object busy for good: drop the connection,
                    # which releases it.
                    await connection.invalidate()
                    raise
