"""Saving a backer's card: what a SetupIntent's outcome does to its pledge, whoever reports it (the backer's confirm
or Stripe's webhook, in either order, any number of times)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import Pledge, User
from campaigns.notifications import notify
from campaigns.pledges.lifecycle import PledgeStatus
from campaigns.pledges.service import activate_pledge, pledge_facts
from payments.charging import RetryWindowClosed, take_new_card
from payments.gateway import PaymentGateway, SetupIntentResult, StripeEvent
from payments.webhooks import webhook_handler

log = logging.getLogger("kindling.cards")


async def settled_setup_intent(gateway: PaymentGateway, setup_intent_id: str) -> SetupIntentResult:
    """Ask Stripe (never the client) how the card set-up went; a saved card is made sure to belong to the Customer,
    which off-session charges need (real Stripe attaches it itself, the stand-in does not)."""
    intent = await gateway.retrieve_setup_intent(setup_intent_id)
    if intent.succeeded and intent.payment_method and intent.customer:
        await gateway.attach_payment_method(payment_method_id=intent.payment_method, customer_id=intent.customer)
    return intent


async def activate_with_saved_card(session: AsyncSession, intent: SetupIntentResult) -> Pledge | None:
    """Activate the pledge this succeeded SetupIntent belongs to. Returns the pledge when this call activated it."""
    if not intent.succeeded or intent.payment_method is None:
        return None
    pledge = await session.scalar(select(Pledge).where(Pledge.setup_intent_id == intent.id))
    if pledge is None or intent.metadata.get("pledge_id") not in (None, str(pledge.id)):
        log.warning("setup intent %s matches no pledge", intent.id)
        return None
    if not await activate_pledge(session, pledge.id, intent.payment_method):
        return None
    await session.refresh(pledge)
    backer = await session.get_one(User, pledge.backer_id)
    await notify(session, backer, "pledge_confirmed", **await pledge_facts(session, pledge))
    return pledge


@webhook_handler("setup_intent.succeeded")
async def setup_intent_succeeded(session: AsyncSession, gateway: PaymentGateway, event: StripeEvent) -> None:
    """The backer's browser may never come back to confirm: Stripe's word, re-read from Stripe, activates the pledge,
    or, for a pledge whose charge failed, takes the new card and tries the charge again."""
    if event.object_id is None:
        return
    intent = await settled_setup_intent(gateway, event.object_id)
    if await activate_with_saved_card(session, intent) is not None:
        return
    errored = await session.scalar(
        select(Pledge).where(Pledge.setup_intent_id == intent.id, Pledge.status == PledgeStatus.ERRORED)
    )
    if errored is None:
        return
    try:
        await take_new_card(session, errored, intent)
    except RetryWindowClosed:
        log.info("new card for pledge %s came after its retry window", errored.id)
