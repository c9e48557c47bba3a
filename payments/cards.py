"""Saving a backer's card: what a SetupIntent's outcome does to its pledge, whoever reports it (the backer's confirm
or Stripe's webhook, in either order, any number of times); the card a pledge is charged to, and changing it while
the campaign is live."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict
from campaigns.models import Pledge, User
from campaigns.notifications import notify
from campaigns.pledges.lifecycle import PledgeStatus
from campaigns.pledges.service import (
    act_on_own_pledge,
    activate_pledge,
    get_pledge,
    live_campaign_for_pledging,
    pledge_facts,
)
from payments.charging import RetryWindowClosed, take_new_card
from payments.customers import stored_customer
from payments.gateway import CardDetails, GatewayError, PaymentGateway, SetupIntentResult, StripeEvent
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
    if await take_changed_card(session, intent) is not None:
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


# Changing the card of a live pledge: a SetupIntent of its own (pledges.card_change_setup_intent_id) while the card
# on file (payment_method_id) stays the one charged, until Stripe says the new one is saved.

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class CardNotChangeable(Conflict):
    type = "card-not-changeable"
    title = "The card of this pledge cannot be changed now"


class NewCardNotSaved(Conflict):
    type = "card-not-saved"
    title = "The card has not been saved yet"


async def card_of(gateway: PaymentGateway, pledge: Pledge) -> CardDetails | None:
    """The card the pledge will be (or was) charged to, as Stripe has it; None without one, or when Stripe cannot
    be asked (the page then shows no card rather than fail)."""
    if pledge.payment_method_id is None:
        return None
    try:
        return await gateway.retrieve_card(pledge.payment_method_id)
    except GatewayError:
        log.warning("could not read the card of pledge %s from Stripe", pledge.id)
        return None


async def begin_card_change(
    transaction: Transaction, gateway: PaymentGateway, backer: User, pledge_ref: uuid.UUID | str
) -> SetupIntentResult:
    """A new SetupIntent for the backer's active pledge on a live campaign; the old card stays on the pledge until
    `finish_card_change` (or Stripe's webhook) finds the new one saved. Stripe is called with no transaction open."""
    async with transaction() as session:
        pledge = await _changeable_pledge(session, backer, pledge_ref)
        customer_id = await stored_customer(session, backer)
        latest = pledge.card_change_setup_intent_id or pledge.setup_intent_id
    if customer_id is None:
        raise CardNotChangeable("This pledge has no card on file to change.")
    attempt = 1
    if latest is not None:
        attempt = int((await gateway.retrieve_setup_intent(latest)).metadata.get("attempt", "1")) + 1
    intent = await gateway.create_setup_intent(customer_id=customer_id, pledge_id=pledge.id, attempt=attempt)
    async with transaction() as session:
        kept = await session.scalar(
            update(Pledge)
            .where(Pledge.id == pledge.id, Pledge.status == "active")
            .values(card_change_setup_intent_id=intent.id)
            .returning(Pledge.id)
        )
    if kept is None:
        raise CardNotChangeable("The pledge is no longer active: its card cannot be changed.")
    return intent


async def finish_card_change(
    transaction: Transaction, gateway: PaymentGateway, backer: User, pledge_ref: uuid.UUID | str
) -> Pledge:
    """Take the new card once Stripe says it is saved (the client's word is never taken for it). With no change
    waiting (Stripe's webhook took it first, or none was begun) the pledge is answered as it is."""
    async with transaction() as session:
        pledge = await get_pledge(session, pledge_ref)
        await act_on_own_pledge(session, pledge, backer)
    if pledge.card_change_setup_intent_id is None:
        return pledge
    intent = await settled_setup_intent(gateway, pledge.card_change_setup_intent_id)
    if not intent.succeeded:
        raise NewCardNotSaved(f"The new card has not been saved yet (Stripe says: {intent.status}).")
    async with transaction() as session:
        if await take_changed_card(session, intent) is None:
            raise CardNotChangeable("The pledge is no longer active: its card cannot be changed.")
        return await session.get_one(Pledge, pledge.id, populate_existing=True)


async def take_changed_card(session: AsyncSession, intent: SetupIntentResult) -> uuid.UUID | None:
    """The active pledge whose card change this succeeded SetupIntent is now charges the new card; the pledge's id,
    or None when there was none to change (already taken, or the pledge moved on). Any number of times, any order."""
    if not intent.succeeded or intent.payment_method is None:
        return None
    changed: uuid.UUID | None = await session.scalar(
        update(Pledge)
        .where(Pledge.card_change_setup_intent_id == intent.id, Pledge.status == "active")
        .values(payment_method_id=intent.payment_method, setup_intent_id=intent.id, card_change_setup_intent_id=None)
        .returning(Pledge.id)
    )
    return changed


async def _changeable_pledge(session: AsyncSession, backer: User, pledge_ref: uuid.UUID | str) -> Pledge:
    pledge = await get_pledge(session, pledge_ref)
    await act_on_own_pledge(session, pledge, backer)
    await live_campaign_for_pledging(session, pledge.campaign_id)
    if pledge.status != "active":
        raise CardNotChangeable(f"A pledge that is {pledge.status.replace('_', ' ')} has no card to change.")
    return pledge
