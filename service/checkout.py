"""Pledging with a card: the steps that span several short transactions and calls to Stripe.

No transaction stays open while Stripe is called: the slot is reserved and committed first, the SetupIntent is made
with no connection held, and its id is stored in a second transaction. If Stripe fails, a third gives the slot back
before the error is answered.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns import pledges
from campaigns.errors import Conflict
from campaigns.models import Pledge, User
from payments.cards import activate_with_saved_card, settled_setup_intent
from payments.customers import ensure_customer
from payments.gateway import PaymentGateway
from service.database import JobSender, unit_of_work

log = logging.getLogger("kindling.checkout")


class CardNotSaved(Conflict):
    type = "card-not-saved"
    title = "The card has not been saved yet"


@dataclass(frozen=True)
class Checkout:
    sessions: async_sessionmaker[AsyncSession]
    sender: JobSender
    gateway: PaymentGateway

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return unit_of_work(self.sessions, self.sender)


async def start_pledge(
    checkout: Checkout,
    backer: User,
    *,
    campaign_id: str,
    tier_id: uuid.UUID | None,
    bonus: int,
    shipping_country: str | None,
) -> Pledge:
    async with checkout.transaction() as session:
        # Checked before the customer is made, so a pledge that cannot be taken costs no call to Stripe.
        await pledges.live_campaign_for_pledging(session, campaign_id)
    async with checkout.transaction() as session:
        customer_id = await ensure_customer(session, checkout.gateway, backer)
    async with checkout.transaction() as session:
        pledge = await pledges.create_pledge(
            session,
            campaign_id=campaign_id,
            backer=backer,
            tier_id=tier_id,
            bonus=bonus,
            shipping_country=shipping_country,
        )
    try:
        intent = await checkout.gateway.create_setup_intent(customer_id=customer_id, pledge_id=pledge.id, attempt=1)
    except BaseException:
        async with checkout.transaction() as session:
            await pledges.give_back_unconfirmed_pledge(session, pledge.id)
        raise
    async with checkout.transaction() as session:
        pledge = await session.get_one(Pledge, pledge.id)
        await pledges.record_setup_intent(
            session, pledge, setup_intent_id=intent.id, client_secret=intent.client_secret or ""
        )
    return pledge


async def confirm_pledge(checkout: Checkout, backer: User, pledge_id: str) -> Pledge:
    """Activate the pledge once Stripe says its card is saved; the client's word is never taken for it."""
    async with checkout.transaction() as session:
        pledge = await pledges.get_pledge(session, pledge_id)
        pledges.own_pledge(pledge, backer)
    if pledge.status != "requires_payment_method":
        return pledge
    if pledge.setup_intent_id is None:
        raise CardNotSaved("This pledge has no card set-up yet.")
    intent = await settled_setup_intent(checkout.gateway, pledge.setup_intent_id)
    if not intent.succeeded:
        raise CardNotSaved(f"The card has not been saved yet (Stripe says: {intent.status}).")
    async with checkout.transaction() as session:
        await activate_with_saved_card(session, intent)
        return await session.get_one(Pledge, pledge.id, populate_existing=True)
