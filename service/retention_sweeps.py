"""Sweep steps that forget what no longer counts: throttle rows past their window and delay, idempotency keys past
their 24 hours, and backers' addresses KINDLING_ADDRESS_RETENTION_DAYS after their package shipped. However many
random buckets and keys arrive, the tables hold only what is still live."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fulfillment.addresses import erase_delivered_addresses
from service.idempotency import prune_idempotency_records
from service.settings import Settings
from service.sweep import sweep_step
from service.throttle import prune_throttles

# Rows deleted per table per sweep: the sweep's transaction stays short, and at the default 15 s between sweeps
# this forgets over 3,000 rows a second.
PRUNED_PER_SWEEP = 50_000


@sweep_step("throttles")
async def prune_throttle_rows(session: AsyncSession, settings: Settings) -> int:
    return await prune_throttles(session, limit=PRUNED_PER_SWEEP)


@sweep_step("idempotency-keys")
async def prune_idempotency_keys(session: AsyncSession, settings: Settings) -> int:
    return await prune_idempotency_records(session, limit=PRUNED_PER_SWEEP)


@sweep_step("delivered-addresses")
async def erase_addresses_after_delivery(session: AsyncSession, settings: Settings) -> int:
    return await erase_delivered_addresses(
        session, retention_days=settings.address_retention_days, limit=PRUNED_PER_SWEEP
    )
