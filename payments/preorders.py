"""Pre-orders: a late reward bought after the campaign was funded, paid at once and on-session, exactly once.

Buying takes one of the late reward's units (one conditional UPDATE, under its CHECK (remaining >= 0)), then those of
each late add-on chosen with it (one conditional UPDATE each, by add-on id, of the quantity bought), then those of the
limited variants and add-ons as a pledge takes them, and inserts the pledge, marked `late`, with every line at its late
price, in one short transaction (giving a pre-order up gives them back in that same order); then, with no transaction
open, the server makes the PaymentIntent (idempotency key `pledge:<id>:preorder`, metadata `late_pledge_id`) whose
client secret the buyer's browser confirms with Stripe.js `confirmCardPayment` (3-D Secure included).

Whoever hears first that the PaymentIntent succeeded (the buyer's confirm call or Stripe's `payment_intent.succeeded`
webhook, each having asked Stripe itself) records the payment in `record_preorder_payment`: the charge-attempt row,
unique per pledge and attempt, is inserted ON CONFLICT DO NOTHING under the pledge's row lock, so exactly one of them
books the collection (with the campaign's fees and the space's fund share, into its escrow) and moves the pledge to
`collected`; the other finds it done. A paid pre-order joins the first batch not yet confirmed, through the planner.

The buyer may cancel: unpaid, the unit simply goes back; paid, it is refunded in full (the refund job, as for every
refund) until its batch is confirmed for production, and after that only the operator's single-pledge refund applies.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict, InvalidInput, NotAllowed, NotFound
from campaigns.ids import parse_id
from campaigns.late_pledges import SELLING_STATUSES, LateAddOn, LateReward
from campaigns.models import Campaign, Pledge, Tier, User, new_id
from campaigns.notifications import notify
from campaigns.pledges.checkout import Checkout, new_customer
from campaigns.pledges.choices import resolve_choice
from campaigns.pledges.lifecycle import (
    ENDED_PLEDGE_STATUSES,
    PledgeAction,
    PledgeClosed,
    PledgeStatus,
    in_sql,
    next_status,
    outcome,
    sources,
)
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import PledgeChoice, PledgeTerms, ResolvedChoice, price_pledge
from campaigns.pledges.service import (
    AlreadyPledged,
    SoldOut,
    act_on_own_pledge,
    get_pledge,
    pledge_facts,
    replace_items,
)
from campaigns.pledges.shipping import weight_table
from campaigns.pledges.units import give_back_pledge_units, take_chosen_units
from fulfillment.models import Allocation, Batch
from fulfillment.service import request_plan
from payments.charging import outcome_of
from payments.customers import stored_customer
from payments.gateway import ChargeResult
from payments.ledger import EscrowShort, hold_escrow, record_collection, record_fee_borne_by_platform
from payments.models import ChargeAttempt, ChargeTerms
from payments.pledge_refunds import pledge_balance
from payments.refunds import create_refund

log = logging.getLogger("kindling.payments")

# A pre-order is paid once, by the one PaymentIntent made for it: its charge attempt is always the first.
PREORDER_ATTEMPT = 1


class NotOpen(Conflict):
    type = "not-open"
    title = "This reward is not on sale now"


class PreorderNotPaid(Conflict):
    type = "not-paid"
    title = "The pre-order has not been paid yet"


class BatchConfirmed(Conflict):
    type = "batch-confirmed"
    title = "The pre-order's batch is confirmed for production"


def preorder_key(pledge_id: uuid.UUID) -> str:
    return f"pledge:{pledge_id}:preorder"


# Buying


async def take_late_unit(session: AsyncSession, campaign_id: uuid.UUID, tier_id: uuid.UUID) -> int:
    """Take one unit of an open late reward (one conditional UPDATE: two buyers of the last unit cannot both get it)
    and return its late price. 409 `sold-out` when a limited one has none left; 409 `not-open` when the tier is no
    late reward, or was ended."""
    price = await session.scalar(
        update(LateReward)
        .where(
            LateReward.tier_id == tier_id,
            LateReward.campaign_id == campaign_id,
            LateReward.ended_at.is_(None),
            LateReward.remaining.is_(None) | (LateReward.remaining > 0),
        )
        .values(remaining=LateReward.remaining - 1)
        .returning(LateReward.price)
    )
    if price is not None:
        return int(price)
    late = await session.scalar(
        select(LateReward).where(LateReward.tier_id == tier_id).execution_options(populate_existing=True)
    )
    if late is not None and late.ended_at is None and late.remaining == 0:
        raise SoldOut("This reward is sold out.")
    raise NotOpen("This reward is not on sale after the deadline, or its pre-orders have ended.")


async def give_back_late_unit(session: AsyncSession, tier_id: uuid.UUID | None) -> None:
    if tier_id is None:
        return
    await session.execute(
        update(LateReward)
        .where(LateReward.tier_id == tier_id, LateReward.remaining.is_not(None))
        .values(remaining=LateReward.remaining + 1)
    )


async def take_late_add_on_units(
    session: AsyncSession, campaign_id: uuid.UUID, resolved: ResolvedChoice
) -> ResolvedChoice:
    """Take the units of each late add-on chosen (one conditional UPDATE each, in add-on id order, so two buyers
    never wait on each other in a circle) and return the choice with each add-on at its late price. 409 `sold-out`
    when a limited one has fewer left than wanted (naming nothing oversold: the transaction is undone); 409
    `not-open` when an add-on is not sold late, or was ended."""
    wanted: dict[uuid.UUID, int] = {}
    for add_on in resolved.add_ons:
        wanted[add_on.add_on_id] = wanted.get(add_on.add_on_id, 0) + add_on.quantity
    prices: dict[uuid.UUID, int] = {}
    for add_on_id in sorted(wanted):
        quantity = wanted[add_on_id]
        price = await session.scalar(
            update(LateAddOn)
            .where(
                LateAddOn.add_on_id == add_on_id,
                LateAddOn.campaign_id == campaign_id,
                LateAddOn.ended_at.is_(None),
                LateAddOn.remaining.is_(None) | (LateAddOn.remaining >= quantity),
            )
            .values(remaining=LateAddOn.remaining - quantity)
            .returning(LateAddOn.price)
        )
        if price is None:
            late = await session.scalar(
                select(LateAddOn).where(LateAddOn.add_on_id == add_on_id).execution_options(populate_existing=True)
            )
            if late is not None and late.ended_at is None and late.remaining is not None:
                raise SoldOut("This add-on has fewer left than you chose.")
            raise NotOpen("This add-on is not on sale after the deadline, or its pre-orders have ended.")
        prices[add_on_id] = int(price)
    add_ons = tuple(dataclasses.replace(add_on, unit_amount=prices[add_on.add_on_id]) for add_on in resolved.add_ons)
    return dataclasses.replace(resolved, add_ons=add_ons)


async def give_back_late_add_on_units(session: AsyncSession, pledge_ids: Sequence[uuid.UUID]) -> None:
    """The late add-on units the pre-orders' add-on lines hold go back (never above the limit), in add-on id order
    as they were taken. The caller has just moved the pre-orders out of their open statuses, once."""
    if not pledge_ids:
        return
    held = (
        select(PledgeItem.add_on_id, func.sum(PledgeItem.quantity).label("quantity"))
        .where(PledgeItem.pledge_id.in_(pledge_ids), PledgeItem.kind == "addon", PledgeItem.add_on_id.is_not(None))
        .group_by(PledgeItem.add_on_id)
        .order_by(PledgeItem.add_on_id)
    )
    for add_on_id, quantity in (await session.execute(held)).all():
        await session.execute(
            update(LateAddOn)
            .where(LateAddOn.add_on_id == add_on_id, LateAddOn.remaining.is_not(None))
            .values(remaining=func.least(LateAddOn.remaining + quantity, LateAddOn.quantity_limit))
        )


def at_late_price(terms: PledgeTerms, price: int) -> PledgeTerms:
    """The terms with the tier's line at the late reward's price instead of the tier's own."""
    items = tuple(dataclasses.replace(item, unit_amount=price) if item.kind == "tier" else item for item in terms.items)
    return dataclasses.replace(terms, items=items)


async def reserve_preorder(
    session: AsyncSession, campaign_ref: uuid.UUID | str, buyer: User, choice: PledgeChoice
) -> Pledge:
    """The pre-order's pledge, unpaid, holding a unit of its late reward, the units of the late add-ons chosen with it
    (at their late price), and those of any limited variant or add-on chosen.

    The campaign is share-locked while it is checked to be selling (funded or fulfilling: 409 `not-open` otherwise),
    so it cannot move on meanwhile. A buyer with a pledge on the campaign already is refused (409 `already-pledged`)."""
    ident = parse_id(campaign_ref)
    campaign = (
        await session.scalar(
            select(Campaign)
            .where(Campaign.id == ident)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
        if ident
        else None
    )
    if campaign is None or campaign.status in ("draft", "in_review", "approved", "rejected"):
        raise NotFound("No such campaign.")
    if campaign.status not in SELLING_STATUSES:
        raise NotOpen("This campaign takes pre-orders only once it is funded.")
    if campaign.maker_id == buyer.id:
        raise NotAllowed("Makers cannot pre-order from their own campaign.")
    tier_id = parse_id(choice.tier_id) if choice.tier_id is not None else None
    tier = await session.get(Tier, tier_id) if tier_id else None
    if tier is None or tier.campaign_id != campaign.id:
        raise InvalidInput("tier_id", "is not a reward tier of this campaign")
    resolved = await resolve_choice(session, campaign, tier, choice)
    price = await take_late_unit(session, campaign.id, tier.id)
    resolved = await take_late_add_on_units(session, campaign.id, resolved)
    weights = await weight_table(session, campaign)
    terms = at_late_price(
        price_pledge(campaign.currency, tier, dataclasses.replace(choice, bonus=0), resolved, weights), price
    )
    await take_chosen_units(session, resolved)
    pledge_id = new_id()
    added = await session.scalar(
        insert(Pledge)
        .values(
            id=pledge_id,
            campaign_id=campaign.id,
            backer_id=buyer.id,
            tier_id=tier.id,
            amount=terms.amount,
            bonus=0,
            shipping_fee=terms.shipping_fee,
            shipping_country=terms.shipping_country,
            currency=terms.currency,
            late=True,
        )
        .on_conflict_do_nothing(
            index_elements=[Pledge.campaign_id, Pledge.backer_id],
            # As text: a bound parameter here stops PostgreSQL inferring the partial index once the statement is
            # prepared with a generic plan.
            index_where=text(f"status NOT IN ({in_sql(ENDED_PLEDGE_STATUSES)})"),
        )
        .returning(Pledge.id)
    )
    if added is None:
        raise AlreadyPledged("You already have a pledge on this campaign.")
    await replace_items(session, pledge_id, terms)
    return await session.get_one(Pledge, pledge_id)


async def start_preorder(checkout: Checkout, buyer: User, *, campaign_id: str, choice: PledgeChoice) -> Pledge:
    """`POST /campaigns/{id}/preorders`: the pledge and its unit, committed; then the PaymentIntent, made with no
    transaction open (should Stripe fail, the unit goes back before the error is answered); then its id and client
    secret kept on the pledge for the buyer's browser."""
    async with checkout.transaction() as session:
        pledge = await reserve_preorder(session, campaign_id, buyer, choice)
        customer_id = await stored_customer(session, buyer)
    try:
        if customer_id is None:
            customer_id = await new_customer(checkout, buyer)
        intent = await checkout.gateway.create_preorder_payment(
            pledge_id=pledge.id, amount=pledge.amount, currency=pledge.currency, customer_id=customer_id
        )
    except BaseException:
        async with checkout.transaction() as session:
            await _give_up_unpaid(session, pledge.id)
        raise
    async with checkout.transaction() as session:
        await session.execute(
            update(Pledge)
            .where(Pledge.id == pledge.id)
            .values(payment_intent_id=intent.id, payment_intent_client_secret=intent.client_secret)
        )
        return await session.get_one(Pledge, pledge.id, populate_existing=True)


async def _give_up_unpaid(session: AsyncSession, pledge_id: uuid.UUID) -> bool:
    """An unpaid pre-order is cancelled and its units go back; False when it was no longer unpaid."""
    given_up = (
        await session.execute(
            update(Pledge)
            .where(Pledge.id == pledge_id, Pledge.late, Pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD)
            .values(status=outcome(PledgeAction.CANCEL), cancelled_at=func.now())
            .returning(Pledge.tier_id)
        )
    ).one_or_none()
    if given_up is None:
        return False
    await give_back_late_unit(session, given_up.tier_id)
    await give_back_late_add_on_units(session, [pledge_id])
    await give_back_pledge_units(session, [pledge_id])
    return True


async def expire_unpaid_preorders(session: AsyncSession, *, hold_seconds: int, limit: int = 500) -> int:
    """The sweep's step: pre-orders left unpaid longer than the pledge hold are cancelled and their units go back to
    the late reward, so abandoned payments cannot hold a limited reward for ever. Rows a payment being recorded holds
    are passed by; a payment that still arrives later is given back whole (`record_preorder_payment`)."""
    due = (
        select(Pledge.id)
        .where(
            Pledge.late,
            Pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD,
            Pledge.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, hold_seconds),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    expired = (
        await session.execute(
            update(Pledge)
            .where(Pledge.id.in_(due), Pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD)
            .values(status=outcome(PledgeAction.EXPIRE), cancelled_at=func.now())
            .returning(Pledge.id, Pledge.tier_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for row in expired:
        await give_back_late_unit(session, row.tier_id)
    await give_back_late_add_on_units(session, [row.id for row in expired])
    await give_back_pledge_units(session, [row.id for row in expired])
    return len(expired)


# Paying: the confirm call and the webhook meet here


async def confirm_preorder(checkout: Checkout, buyer: User, pledge_ref: uuid.UUID | str) -> Pledge:
    """`POST /pledges/{id}/confirm` of a pre-order: Kindling asks Stripe itself whether the PaymentIntent succeeded
    (the browser's word is never taken) and records it, unless the webhook did first. 409 `not-paid` while it has
    not succeeded."""
    async with checkout.transaction() as session:
        pledge = await get_pledge(session, pledge_ref)
        await act_on_own_pledge(session, pledge, buyer)
    if pledge.status != PledgeStatus.REQUIRES_PAYMENT_METHOD or pledge.payment_intent_id is None:
        return pledge
    charge = await checkout.gateway.retrieve_charge(pledge.payment_intent_id)
    async with checkout.transaction() as session:
        await record_preorder_payment(session, charge)
        pledge = await session.get_one(Pledge, pledge.id, populate_existing=True)
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD:
        raise PreorderNotPaid("The payment has not gone through yet: confirm it with your card first.")
    return pledge


def is_preorder_payment(charge: ChargeResult) -> bool:
    return "late_pledge_id" in charge.metadata


async def record_preorder_payment(session: AsyncSession, charge: ChargeResult) -> bool:
    """Record a pre-order's PaymentIntent that succeeded, once, whoever calls first (the confirm call, the webhook):
    the charge-attempt row is inserted unless it exists, under the pledge's row lock; only the call that inserts it
    books the collection and moves the pledge. A payment that arrives after its buyer gave the pre-order up is booked
    without fees and given back whole, Stripe's fee borne by the platform. Returns whether this call recorded it."""
    pledge_id = parse_id(charge.metadata.get("late_pledge_id", ""))
    if pledge_id is None or not charge.succeeded:
        return False
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == select(Pledge.campaign_id).where(Pledge.id == pledge_id).scalar_subquery())
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    pledge = await session.get(Pledge, pledge_id, with_for_update=True, populate_existing=True)
    if campaign is None or pledge is None or not pledge.late or pledge.payment_intent_id != charge.payment_intent_id:
        log.warning("payment intent %s names pre-order %s, which it does not pay", charge.payment_intent_id, pledge_id)
        return False
    recorded = await session.scalar(
        insert(ChargeAttempt)
        .values(
            id=new_id(),
            pledge_id=pledge.id,
            attempt=PREORDER_ATTEMPT,
            idempotency_key=preorder_key(pledge.id),
            amount=charge.amount,
            currency=charge.currency,
            payment_method_id=charge.payment_method or "",
            status="succeeded",
            payment_intent_id=charge.payment_intent_id,
            finished_at=func.now(),
        )
        .on_conflict_do_nothing()
        .returning(ChargeAttempt.id)
    )
    if recorded is None:
        return False
    paid = await session.scalar(
        update(Pledge)
        .where(Pledge.id == pledge.id, Pledge.status.in_(sources(PledgeAction.PAY)))
        .values(
            status=outcome(PledgeAction.PAY),
            charged_at=func.now(),
            confirmed_at=func.now(),
            payment_method_id=charge.payment_method,
        )
        .returning(Pledge.id)
        .execution_options(synchronize_session=False)
    )
    fee = outcome_of(charge).processor_fee
    if paid is None:
        log.warning("pre-order %s was paid after it was given up (%s): giving it back", pledge.id, pledge.status)
        reference = f"late:{pledge.id}:preorder"
        await record_collection(session, campaign, pledge.id, charge.amount, charge.currency, 0, 0, fee)
        if fee > 0:
            await record_fee_borne_by_platform(session, campaign, pledge.id, reference, fee)
        await create_refund(
            session, campaign, pledge.id, charge.amount, reference=reference, payment_intent_id=charge.payment_intent_id
        )
        return True
    terms = await session.get(ChargeTerms, campaign.id)
    platform_bps, sponsor_bps, fund_bps = (
        (terms.platform_fee_bps, terms.sponsor_fee_bps, terms.fund_share_bps) if terms else (0, 0, 0)
    )
    await record_collection(
        session,
        campaign,
        pledge.id,
        charge.amount,
        charge.currency,
        platform_bps,
        sponsor_bps,
        fee,
        fund_share_bps=fund_bps,
    )
    await session.refresh(pledge)
    buyer = await session.get_one(User, pledge.backer_id)
    await notify(session, buyer, "pledge_charged", **await pledge_facts(session, pledge))
    # It joins the first batch not yet confirmed, after the campaign's own backers (fulfillment.planner).
    request_plan(session, campaign.id)
    return True


# Cancelling


async def batch_status_of(session: AsyncSession, pledge_id: uuid.UUID) -> str | None:
    """The status of the batch that makes the pledge's goods; None while it is in none."""
    status: str | None = await session.scalar(
        select(Batch.status).join(Allocation, Allocation.batch_id == Batch.id).where(Allocation.pledge_id == pledge_id)
    )
    return status


async def cancel_preorder(session: AsyncSession, pledge_ref: uuid.UUID | str, buyer: User) -> Pledge:
    """The buyer gives a pre-order up. Unpaid: cancelled, its unit back. Paid: refunded in full (by the refund job;
    the pledge becomes `refunded` once Stripe has done it), its unit back and its place in its batch freed, until
    that batch is confirmed for production: then 409 `batch-confirmed` (the space's single-pledge refund remains).

    The campaign is share-locked first, as every money path takes it, so a batch cannot be confirmed meanwhile."""
    pledge = await get_pledge(session, pledge_ref)
    await act_on_own_pledge(session, pledge, buyer)
    if not pledge.late:
        raise NotFound("No such pre-order.")
    campaign = await session.scalar(
        select(Campaign).where(Campaign.id == pledge.campaign_id).with_for_update(read=True)
    )
    assert campaign is not None
    await session.refresh(pledge, with_for_update=True)
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD:
        await _give_up_unpaid(session, pledge.id)
        await session.refresh(pledge)
        return pledge
    if pledge.cancelled_at is not None:
        raise PledgeClosed("This pre-order is cancelled already; its refund is on its way.")
    if pledge.status != PledgeStatus.COLLECTED:
        next_status(pledge.status, PledgeAction.CANCEL)
    if await batch_status_of(session, pledge.id) not in (None, "planned"):
        raise BatchConfirmed(
            "Its batch is confirmed for production, so this pre-order can no longer be cancelled. The sponsoring "
            "space can still refund it."
        )
    money = await pledge_balance(session, pledge.id)
    assert pledge.payment_intent_id is not None  # collected pre-orders were paid through it
    held = await hold_escrow(session, campaign)
    if money.left > held:
        raise EscrowShort(f"Escrow holds {held} {campaign.currency} that may be spent; it cannot refund {money.left}.")
    await session.execute(update(Pledge).where(Pledge.id == pledge.id).values(cancelled_at=func.now()))
    if money.left > 0:
        await create_refund(
            session,
            campaign,
            pledge.id,
            money.left,
            reference=f"pledge:{pledge.id}:cancel",
            payment_intent_id=pledge.payment_intent_id,
        )
    await give_back_late_unit(session, pledge.tier_id)
    await give_back_late_add_on_units(session, [pledge.id])
    await give_back_pledge_units(session, [pledge.id])
    request_plan(session, campaign.id)
    await session.refresh(pledge)
    return pledge
