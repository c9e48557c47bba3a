"""Sweep steps that keep fulfillment moving when no message says so: stale plans, missing addresses, finished
campaigns."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fulfillment.addresses import remind_missing_addresses
from fulfillment.shipments import finish_fulfilled_campaigns
from fulfillment.tasks import replan_stale_campaigns
from service.settings import Settings
from service.sweep import sweep_step


@sweep_step("fulfillment-plans")
async def replan_stale(session: AsyncSession, settings: Settings) -> int:
    return await replan_stale_campaigns(session)


@sweep_step("address-reminders")
async def remind_addresses(session: AsyncSession, settings: Settings) -> int:
    return await remind_missing_addresses(session, day_seconds=settings.day_seconds)


@sweep_step("fulfilled-campaigns")
async def finish_fulfilled(session: AsyncSession, settings: Settings) -> int:
    return await finish_fulfilled_campaigns(session)
