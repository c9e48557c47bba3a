"""Pledging with a card: the steps that span several short transactions and calls to Stripe.

No transaction stays open while Stripe is called: the slot is reserved and committed first, the backer's Customer (the
first time) and the SetupIntent are made with no connection held, and their ids are stored in short transactions of
their own. If Stripe fails, another gives the slot back before the error is answered.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import matching
from campaigns.errors import Conflict
from campaigns.models import Pledge, User
from campaigns.pledges import service as pledges
from campaigns.pledges.lifecycle import PledgeStatus
from campaigns.pledges.pricing import PledgeChoice
from payments.cards import activate_with_saved_card, settled_setup_intent
from payments.charging import NotErrored, record_new_card_setup, take_new_card
from payments.customers import keep_customer, stored_customer
from payments.gateway import GatewayError, PaymentGateway, SetupIntentResult

log = logging.getLogger("kindling.checkout")


class CardNotSaved(Conflict):
    type = "card-not-saved"
    title = "The card has not been saved yet"


@dataclass(frozen=True)
class Checkout:
    """What pledging with a card needs from its caller: a way to open a short transaction (which commits, then sends
    the jobs it asked for, as it ends: the edge's unit of work), and the payment gateway."""

    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]]
    gateway: PaymentGateway


async def start_pledge(
    checkout: Checkout,
    backer: User,
    *,
    campaign_id: str,
    choice: PledgeChoice,
    hold_limit: pledges.HoldLimit | None,
) -> Pledge:
    pledge, customer_id = await reserve_pledge(
        checkout,
        backer,
        campaign_id=campaign_id,
        choice=choice,
        hold_limit=hold_limit,
    )
    try:
        if customer_id is None:
            customer_id = await new_customer(checkout, backer)
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


async def reserve_pledge(
    checkout: Checkout,
    backer: User,
    *,
    campaign_id: str | uuid.UUID,
    choice: PledgeChoice,
    hold_limit: pledges.HoldLimit | None = None,
) -> tuple[Pledge, str | None]:
    """The first step of pledging: the pledge and its slot, committed, and the backer's Stripe Customer if they have
    one. It comes before any call to Stripe, so a pledge that cannot be taken (sold out, not live, already pledged)
    costs none."""
    async with checkout.transaction() as session:
        # Autocommit: the reservation's one write is atomic by itself (the units of limited variants and add-ons
        # included), and the rows that a launch rush fights over are then locked only inside PostgreSQL, never across
        # a round trip to us (see pledges.create_pledge).
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        customer_id = await stored_customer(session, backer)
        pledge = await pledges.create_pledge(
            session,
            campaign_id=campaign_id,
            backer=backer,
            choice=choice,
            hold_limit=hold_limit,
        )
    return pledge, customer_id


async def new_customer(checkout: Checkout, backer: User) -> str:
    """Make the backer's Stripe Customer with no connection held, then keep it, unless a request racing this one
    kept one first: then ours goes and theirs is used."""
    created = await checkout.gateway.create_customer(user_id=backer.id, email=backer.email, name=backer.name)
    async with checkout.transaction() as session:
        kept = await keep_customer(session, backer, created)
    if kept != created:
        try:
            await checkout.gateway.delete_customer(created)
        except GatewayError as failed:  # a spare Customer at Stripe harms nobody; the pledge goes on
            log.warning("could not delete the spare Stripe Customer %s: %s", created, failed.type)
    return kept


async def confirm_pledge(checkout: Checkout, backer: User, pledge_id: str) -> Pledge:
    """Activate the pledge once Stripe says its card is saved; the client's word is never taken for it.

    On an errored pledge (its charge failed) the card saved by its newest SetupIntent (`ask_for_new_card`) replaces
    the failed one and the charge is retried at once, by a job: the answer still says `errored`, and the client
    polls GET /pledges/{id} until it is `collected` (or `errored` again, with a mail saying so)."""
    async with checkout.transaction() as session:
        pledge = await pledges.get_pledge(session, pledge_id)
        await pledges.act_on_own_pledge(session, pledge, backer)
    if pledge.status == PledgeStatus.ERRORED:
        return await _retry_with_new_card(checkout, pledge)
    if pledge.status != PledgeStatus.REQUIRES_PAYMENT_METHOD:
        return pledge
    intent = await _saved_card(checkout, pledge, "The card")
    async with checkout.transaction() as session:
        await activate_with_saved_card(session, intent)
        return await session.get_one(Pledge, pledge.id, populate_existing=True)


async def ask_for_new_card(checkout: Checkout, backer: User, pledge_id: str) -> Pledge:
    """A new SetupIntent for an errored pledge, so its backer can save another card (then confirm the pledge).
    Its attempt number (which makes its idempotency key) is the number of SetupIntents the pledge has had, plus one.

    A pledge still waiting for its first card gets the card set-up it was meant to get when it was made, if the
    process making it died before Stripe answered (its slot is held, and the backer could otherwise neither confirm
    it nor pledge again); one that has its set-up is answered as it is."""
    async with checkout.transaction() as session:
        pledge = await pledges.get_pledge(session, pledge_id)
        await pledges.act_on_own_pledge(session, pledge, backer)
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD:
        return await _resume_card_setup(checkout, backer, pledge)
    if pledge.status != PledgeStatus.ERRORED:
        raise NotErrored(f"A pledge that is {pledge.status.replace('_', ' ')} takes no new card.")
    attempt = 1
    if pledge.setup_intent_id is not None:
        current = await checkout.gateway.retrieve_setup_intent(pledge.setup_intent_id)
        attempt = int(current.metadata.get("attempt", "1")) + 1
    intent = await _card_setup(checkout, backer, pledge.id, attempt)
    async with checkout.transaction() as session:
        pledge = await session.get_one(Pledge, pledge.id)
        await record_new_card_setup(
            session, pledge, setup_intent_id=intent.id, client_secret=intent.client_secret or ""
        )
    return pledge


async def _resume_card_setup(checkout: Checkout, backer: User, pledge: Pledge) -> Pledge:
    if pledge.setup_intent_id is not None:
        return pledge
    intent = await _card_setup(checkout, backer, pledge.id, 1)
    async with checkout.transaction() as session:
        # Two of these at once: the first to record its set-up wins, the other's SetupIntent is never used.
        await pledges.record_first_setup_intent(
            session, pledge.id, setup_intent_id=intent.id, client_secret=intent.client_secret or ""
        )
        return await session.get_one(Pledge, pledge.id, populate_existing=True)


async def _card_setup(checkout: Checkout, backer: User, pledge_id: uuid.UUID, attempt: int) -> SetupIntentResult:
    """A SetupIntent for the backer's card on the pledge, made with no connection held; the backer's Customer is made
    first if they have none."""
    async with checkout.transaction() as session:
        customer_id = await stored_customer(session, backer)
    if customer_id is None:
        customer_id = await new_customer(checkout, backer)
    return await checkout.gateway.create_setup_intent(customer_id=customer_id, pledge_id=pledge_id, attempt=attempt)


async def _saved_card(checkout: Checkout, pledge: Pledge, which: str) -> SetupIntentResult:
    """The pledge's newest card set-up, once Stripe says it has saved the card; CardNotSaved (409) until then."""
    if pledge.setup_intent_id is None:
        raise CardNotSaved("This pledge has no card set-up yet.")
    intent = await settled_setup_intent(checkout.gateway, pledge.setup_intent_id)
    if not intent.succeeded:
        raise CardNotSaved(f"{which} has not been saved yet (Stripe says: {intent.status}).")
    return intent


async def _retry_with_new_card(checkout: Checkout, pledge: Pledge) -> Pledge:
    intent = await _saved_card(checkout, pledge, "The new card")
    async with checkout.transaction() as session:
        pledge = await session.get_one(Pledge, pledge.id, populate_existing=True)
        await take_new_card(session, pledge, intent)
        return pledge


async def start_match(
    checkout: Checkout,
    user: User,
    campaign_ref: uuid.UUID | str,
    *,
    cap: int,
    sponsor_name: str,
    client_address: str | None,
) -> Pledge:
    """Reserve the match (committed), then its card set-up at Stripe with no transaction open; should Stripe fail,
    the match is given back before the error is answered. The operator then saves the card and confirms the pledge
    as any backer does (POST /pledges/{id}/confirm, or Stripe's webhook)."""
    async with checkout.transaction() as session:
        pledge = await matching.reserve_match(
            session, campaign_ref, user, cap=cap, sponsor_name=sponsor_name, client_address=client_address
        )
    try:
        return await ask_for_new_card(checkout, user, str(pledge.id))
    except BaseException:
        async with checkout.transaction() as session:
            await pledges.give_back_unconfirmed_pledge(session, pledge.id)
        raise
