"""A charge that slipped through while its campaign was being suspended goes back to the backer whole: Stripe's fee
on it is the platform's to bear, and the books still add up."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.charging import CHARGE_PLEDGE, charge_pledges
from payments.gateway import ChargeResult, StripeGateway
from payments.ledger import campaign_ledger
from payments.models import LedgerEntry, Refund
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import CARD_OK, launched_campaign
from tests.money_helpers import (
    GatewayAfterCharge,
    amount_refunded_at_stripe,
    back_campaign,
    pass_deadline,
    pledge_row,
    run_jobs,
    stripe_work,
    sweep,
)

PAIR = 34_900 + 1_000  # the "Pair" tier shipped to CN
STRIPE_FEE = 1_071  # what Stripe keeps of it (localstripe keeps nothing: the gateway reports it here)


async def test_a_charge_that_slipped_through_a_suspension_is_refunded_whole_and_the_platform_bears_the_fee(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    [backing] = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK])
    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, stripe_settings, jobs)
    [batch] = [job.args for job in jobs.jobs if job.actor_name == CHARGE_PLEDGE]
    jobs.jobs.clear()

    async def suspended_while_charging(call: dict[str, Any], charge: ChargeResult) -> ChargeResult:
        # The charge is at Stripe, its outcome not yet recorded: the space suspends the campaign.
        suspended = await stripe_client.post(
            f"/api/v1/campaigns/{campaign['id']}/suspend", json={"reason": "Recall."}, headers=operator.headers
        )
        assert suspended.status_code == 200, suspended.text
        return replace(charge, fee=STRIPE_FEE, fee_currency=charge.currency)

    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        answers = await charge_pledges(
            replace(work, gateway=GatewayAfterCharge(gateway, suspended_while_charging)), *batch
        )
        assert answers == ["succeeded"]
        await run_jobs(work, jobs)

    async with sessions() as session:
        [refund] = list(await session.scalars(select(Refund).where(Refund.pledge_id == uuid.UUID(backing.id))))
        books = await campaign_ledger(session, uuid.UUID(campaign["id"]))
        entries_sum = await session.scalar(
            select(func.sum(LedgerEntry.amount)).where(LedgerEntry.campaign_id == uuid.UUID(campaign["id"]))
        )
    assert (refund.amount, refund.status) == (PAIR, "succeeded")
    assert await amount_refunded_at_stripe(stripe_server, backing.id) == PAIR
    assert (await pledge_row(sessions, backing.id)).status == "refunded"
    assert (books.collected, books.refunded, books.escrow_held) == (PAIR, PAIR, 0)
    assert (books.processor_fee, books.platform_fee, books.sponsor_fee) == (STRIPE_FEE, -STRIPE_FEE, 0)
    assert entries_sum == 0
    shown = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}/ledger", headers=maker.headers)).json()
    assert (
        shown["collected"]
        - shown["refunded"]
        - shown["platform_fee"]
        - shown["sponsor_fee"]
        - shown["processor_fee"]
        - shown["released"]
        == shown["escrow_held"]
        == 0
    )
