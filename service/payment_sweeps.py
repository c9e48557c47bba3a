"""Sweep steps that keep pledges and Stripe's events moving when no message says so."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.pledges import expire_unconfirmed_pledges
from payments.tasks import requeue_unapplied_webhook_events
from service.settings import Settings
from service.sweep import sweep_step


@sweep_step("webhooks")
async def requeue_webhooks(session: AsyncSession, settings: Settings) -> int:
    return await requeue_unapplied_webhook_events(session)


@sweep_step("unconfirmed-pledges")
async def expire_unconfirmed(session: AsyncSession, settings: Settings) -> int:
    return await expire_unconfirmed_pledges(session, hold_seconds=settings.pledge_hold_seconds)
