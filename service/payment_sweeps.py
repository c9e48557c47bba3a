"""Sweep steps that keep pledges, charges, refunds and Stripe's events moving when no message says so.

They run in this order in one sweep: campaigns are closed first, so their charges are asked for in the same sweep.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.pledges.service import expire_unconfirmed_pledges
from payments import preorders
from payments.add_on_charges import request_add_on_charges_in_doubt
from payments.charging import drop_expired_pledges, remind_errored_pledges, request_due_charges
from payments.closing import close_due_campaigns, fund_settled_campaigns, request_card_removals
from payments.refunds import request_pending_refunds
from payments.tasks import requeue_unapplied_webhook_events
from service.settings import Settings
from service.sweep import sweep_step

# At least this many charges are asked for per sweep, however slow the rate.
MIN_CHARGES_PER_SWEEP = 100


@sweep_step("webhooks")
async def requeue_webhooks(session: AsyncSession, settings: Settings) -> int:
    return await requeue_unapplied_webhook_events(session)


@sweep_step("unconfirmed-pledges")
async def expire_unconfirmed(session: AsyncSession, settings: Settings) -> int:
    return await expire_unconfirmed_pledges(session, hold_seconds=settings.pledge_hold_seconds)


@sweep_step("unpaid-preorders")
async def expire_unpaid_preorders(session: AsyncSession, settings: Settings) -> int:
    return await preorders.expire_unpaid_preorders(session, hold_seconds=settings.pledge_hold_seconds)


@sweep_step("close-campaigns")
async def close_campaigns(session: AsyncSession, settings: Settings) -> int:
    return await close_due_campaigns(
        session, platform_fee_bps=settings.platform_fee_bps, day_seconds=settings.day_seconds
    )


@sweep_step("charges")
async def request_charges(session: AsyncSession, settings: Settings) -> int:
    # About two sweeps' worth of what the rate limit lets through: the queue stays short, and the next sweep tops
    # it up.
    per_sweep = max(MIN_CHARGES_PER_SWEEP, int(settings.stripe_rate * settings.sweep_seconds * 2))
    return await request_due_charges(session, limit=per_sweep)


@sweep_step("add-on-charges")
async def request_add_on_charges(session: AsyncSession, settings: Settings) -> int:
    return await request_add_on_charges_in_doubt(session)


@sweep_step("charge-reminders")
async def remind_errored(session: AsyncSession, settings: Settings) -> int:
    return await remind_errored_pledges(session, day_seconds=settings.day_seconds)


@sweep_step("dropped-pledges")
async def drop_expired(session: AsyncSession, settings: Settings) -> int:
    return await drop_expired_pledges(session)


@sweep_step("funded-campaigns")
async def fund_settled(session: AsyncSession, settings: Settings) -> int:
    return await fund_settled_campaigns(session)


@sweep_step("refunds")
async def request_refunds(session: AsyncSession, settings: Settings) -> int:
    return await request_pending_refunds(session)


@sweep_step("card-removals")
async def request_removals(session: AsyncSession, settings: Settings) -> int:
    return await request_card_removals(session)
