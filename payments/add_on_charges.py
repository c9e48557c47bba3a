"""Add-ons bought after the close, paid at once with the pledge's saved card, each exactly once.

The discipline is the close's (payments/charging.py): the charge is recorded (`add_on_charges`, its units taken) and
committed before Stripe is called, with the idempotency key `pledge-item:<item_id>:charge` made of the line it will
become; Stripe is called with no transaction open, after the shared rate limit gives a turn, while the charge's
advisory lock is held; the outcome is recorded in another transaction. Only a charge that succeeded adds the line
(and books the collection, with the campaign's fees, in the ledger under `addon:<item_id>`); a refused card gives the
units back and adds nothing. A charge whose outcome was never recorded (the process died between the call and the
commit, or Stripe could not be reached) stays in doubt: the sweep asks for a job that looks for its PaymentIntent at
Stripe by metadata first, and sends the same call again (same key) only when Stripe has none, so nothing is charged
twice; one in doubt for over KINDLING_CHARGE_DOUBT_HOURS that Stripe never saw is settled as failed.

A paid add-on given back before the address lock is refunded its price and the drop its leaving makes in the
pledge's shipping now, never more than the pledge pays for shipping in all, by the refund job. An address changed
after the close to a dearer country is charged its shipping difference by this same machinery (a row with the
address and no add-on: payments/address_changes.py); the address is saved only when that charge succeeded.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict
from campaigns.jobs import enqueue_job
from campaigns.models import AddOn, Campaign, Pledge, User
from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES, PledgeStatus
from campaigns.pledges.manager import (
    CLOSED_AND_KEPT,
    BoughtLine,
    ChargeUnderWay,
    ManagedPledge,
    UnderWay,
    add_add_on_while_live,
    add_line,
    add_on_of_line,
    check_open_for_changes,
    check_paid,
    check_removable,
    give_back_add_on_units,
    line_of,
    line_shipping,
    managed_pledge,
    price_add_on,
    remove_add_on_line,
    take_add_on_units,
)
from campaigns.pledges.models import PledgeItem
from fulfillment.addresses import AddressChange, save_address
from payments.charging import ChargeOutcome, outcome_of, outcome_of_refusal
from payments.closing import REQUEUE_AFTER_SECONDS, parse_job_id
from payments.gateway import GatewayError, GatewayUnavailable, PaymentRefused, RequestRefused
from payments.ledger import EscrowShort, hold_escrow, record_collection, record_fee_borne_by_platform
from payments.models import IN_DOUBT_ATTEMPT_STATUSES, AddOnCharge, ChargeAttempt, ChargeTerms, StripeCustomer
from payments.refunds import create_refund
from payments.stripe_jobs import StripeWork, held_exclusively

log = logging.getLogger("kindling.payments")

SETTLE_ADD_ON_CHARGE = "payments.add_on_charge"
# The second key space of the advisory locks ("pa" in ASCII), beside the pledges' charges and the refunds.
CHARGING_LINE = 0x7061
IN_DOUBT_AFTER_SECONDS = 60


class AddOnCardRefused(Conflict):
    type = "card-declined"
    title = "The card was declined"


class NoSavedCard(Conflict):
    type = "no-saved-card"
    title = "The pledge has no saved card"


class EscrowShortForLine(EscrowShort):
    """A refund of the pledge manager's (a line given back, a cheaper address's shipping) that escrow cannot pay any
    more: `held` is what it may still refund, `needed` the refund, `doing` the step that needs it."""

    def __init__(self, held: int, needed: int, currency: str, doing: str) -> None:
        self.held, self.needed, self.currency = held, needed, currency
        super().__init__(
            f"Escrow holds {held} {currency} that may still be refunded; {doing} needs {needed}. "
            "The rest was released to the maker: ask them."
        )


class AddOnChargeInDoubt(GatewayUnavailable):
    type = "charge-in-doubt"
    title = "The payment provider did not answer; the add-on is added once it confirms the charge"


@dataclass(frozen=True)
class AddedAddOn:
    """What adding an add-on did: the new line's id, and whether it was paid at once (after the close)."""

    item_id: uuid.UUID
    paid: bool


def line_reference(item_id: uuid.UUID) -> str:
    """The name of a line's money: its collection in the ledger, its refund."""
    return f"addon:{item_id}"


def shipping_reference(charge_item_id: uuid.UUID) -> str:
    """The name of a shipping difference's money (payments/address_changes.py): its collection or its refund."""
    return f"shipping:{charge_item_id}"


async def add_add_on(
    work: StripeWork,
    backer: User,
    pledge_ref: uuid.UUID | str,
    add_on_ref: uuid.UUID | str,
    *,
    quantity: int = 1,
    variant: Mapping[str, Any] | None = None,
) -> AddedAddOn:
    """`POST /pledges/{id}/items`. While the campaign is live the add-on joins the pledge, charged with it at the
    deadline. After the close, until the address lock, it is charged at once with the pledge's saved card and joins
    the pledge only if that succeeded; a refused card is a 409 `card-declined`, with nothing added."""
    async with work.transaction() as session:
        managed = await managed_pledge(session, pledge_ref, backer)
        check_open_for_changes(managed)
        if managed.live:
            line = await add_add_on_while_live(session, managed, add_on_ref, quantity=quantity, variant=variant)
            return AddedAddOn(line.id, paid=False)
        check_paid(managed)
        await check_no_shipping_charge(session, managed.pledge)
        purchase = await price_add_on(
            session,
            managed,
            add_on_ref,
            quantity=quantity,
            variant=variant,
            under_way=await _under_way(session, managed),
        )
        pledge = managed.pledge
        customer_id = await session.scalar(
            select(StripeCustomer.customer_id).where(StripeCustomer.user_id == pledge.backer_id)
        )
        if customer_id is None or pledge.payment_method_id is None:
            raise NoSavedCard("Your pledge has no saved card to pay the add-on with.")
        await take_add_on_units(session, purchase)
        item_id = uuid.uuid4()
        charge = AddOnCharge(
            pledge_id=pledge.id,
            item_id=item_id,
            add_on_id=purchase.add_on.id,
            variant_id=purchase.variant.id if purchase.variant else None,
            variant=purchase.choice,
            sku=purchase.sku,
            quantity=purchase.quantity,
            unit_amount=purchase.add_on.price,
            shipping_fee=purchase.shipping_fee,
            idempotency_key=f"pledge-item:{item_id}:charge",
            amount=purchase.amount,
            currency=pledge.currency,
            customer_id=customer_id,
            payment_method_id=pledge.payment_method_id,
        )
        session.add(charge)
        await session.flush()
        charge_id = charge.id
    outcome = await settle_add_on_charge(work, charge_id, fresh=True)
    if outcome.status == "succeeded":
        return AddedAddOn(item_id, paid=True)
    if outcome.status == "failed":
        raise AddOnCardRefused(
            "Your card was declined, so the add-on was not added and nothing was charged. Give your pledge a new "
            "card, or try again later."
        )
    raise AddOnChargeInDoubt(
        "We could not hear back from the payment provider. The add-on is added as soon as it confirms the charge."
    )


async def charges_under_way(session: AsyncSession, pledge: Pledge, *, shipping_only: bool = False) -> bool:
    """The pledge has a charge made after the close not settled yet (`shipping_only`: an address change's)."""
    found = await session.scalar(
        select(AddOnCharge.id)
        .where(
            AddOnCharge.pledge_id == pledge.id,
            AddOnCharge.status.in_(IN_DOUBT_ATTEMPT_STATUSES),
            AddOnCharge.address.is_not(None) if shipping_only else true(),
        )
        .limit(1)
    )
    return found is not None


async def check_no_shipping_charge(session: AsyncSession, pledge: Pledge) -> None:
    """Contents are not changed after the close while a new address's shipping is being charged: that charge was
    priced for the contents as they were (a 409 `charge-under-way`, to try again once it is settled)."""
    if await charges_under_way(session, pledge, shipping_only=True):
        raise ChargeUnderWay("The shipping to your new address is being charged right now: try again in a minute.")


async def _under_way(session: AsyncSession, managed: ManagedPledge) -> UnderWay:
    """The pledge's add-on charges not settled yet (read under the pledge's row lock, so two purchases take turns)."""
    rows = await session.execute(
        select(AddOnCharge.sku, AddOnCharge.quantity, AddOnCharge.shipping_fee).where(
            AddOnCharge.pledge_id == managed.pledge.id,
            AddOnCharge.status.in_(IN_DOUBT_ATTEMPT_STATUSES),
            AddOnCharge.add_on_id.is_not(None),
        )
    )
    units: dict[str, int] = {}
    shipping = 0
    for sku, count, fee in rows:
        assert sku is not None  # an add-on's charge names its SKU (ck_add_on_charges_add_on_or_address)
        units[sku] = units.get(sku, 0) + count
        shipping += fee
    return UnderWay(units, shipping)


async def settle_add_on_charge(work: StripeWork, charge_id: uuid.UUID, *, fresh: bool = False) -> ChargeOutcome:
    """Send the charge (`fresh`: recorded a moment ago, never sent) or, for one in doubt, look for it at Stripe
    first and send it again only when Stripe has none; record the outcome. Idempotent: a charge already settled, or
    held by another job, is left as it is (its outcome is then "pending" here)."""
    async with held_exclusively(work.engine, CHARGING_LINE, charge_id) as mine:
        if not mine:
            return ChargeOutcome("pending")
        async with work.transaction() as session:
            charge = await session.scalar(
                select(AddOnCharge).where(AddOnCharge.id == charge_id).execution_options(populate_existing=True)
            )
            expired = await session.scalar(
                select(AddOnCharge.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, _doubt(work))).where(
                    AddOnCharge.id == charge_id
                )
            )
        if charge is None:
            return ChargeOutcome("failed", failure_code="unknown_charge")
        if charge.status not in IN_DOUBT_ATTEMPT_STATUSES:
            return ChargeOutcome("succeeded" if charge.status == "succeeded" else "failed")
        outcome = None if fresh else await _look_at_stripe(work, charge)
        if outcome is None and not fresh and expired:
            log.error("add-on charge %s: in doubt too long and never seen at Stripe: settled as failed", charge.id)
            outcome = ChargeOutcome("failed", failure_code="doubt_expired")
        if outcome is None:
            outcome = await _send(work, charge)
        async with work.transaction() as session:
            await record_add_on_outcome(session, charge_id, outcome)
        return outcome


def _doubt(work: StripeWork) -> int:
    return work.charge_doubt_seconds


async def _look_at_stripe(work: StripeWork, charge: AddOnCharge) -> ChargeOutcome | None:
    await work.wait_for_turn()
    try:
        found = await work.gateway.find_line_charges([charge.item_id])
    except GatewayError as error:
        raise GatewayUnavailable(f"cannot look for add-on charge {charge.id}: {error.detail}") from error
    result = found.get(str(charge.item_id))
    return outcome_of(result) if result is not None else None


async def _send(work: StripeWork, charge: AddOnCharge) -> ChargeOutcome:
    await work.wait_for_turn()
    try:
        result = await work.gateway.charge_line_off_session(
            item_id=charge.item_id,
            amount=charge.amount,
            currency=charge.currency,
            customer_id=charge.customer_id,
            payment_method_id=charge.payment_method_id,
        )
    except PaymentRefused as refused:
        return outcome_of_refusal(refused)
    except RequestRefused as refused:
        return ChargeOutcome("failed", failure_code=f"refused:{refused.code or 'invalid_request'}")
    except GatewayError as error:
        # It may or may not have reached Stripe: in doubt, for the sweep.
        log.warning("add-on charge %s: %s; left in doubt", charge.id, error.type)
        return ChargeOutcome("pending", failure_code=error.type)
    return outcome_of(result)


async def record_add_on_outcome(session: AsyncSession, charge_id: uuid.UUID, outcome: ChargeOutcome) -> None:
    """Forward only, once: succeeded adds the line and books the money; failed gives the units back; pending leaves
    the charge in doubt (`unknown`)."""
    charge = await session.scalar(
        select(AddOnCharge)
        .where(AddOnCharge.id == charge_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if charge is None or charge.status not in IN_DOUBT_ATTEMPT_STATUSES:
        return
    if outcome.status == "pending":
        charge.status, charge.failure_code = "unknown", outcome.failure_code
        return
    charge.status = "succeeded" if outcome.status == "succeeded" else "failed"
    charge.payment_intent_id = outcome.payment_intent_id
    charge.failure_code = outcome.failure_code
    charge.finished_at = await session.scalar(select(func.now()))
    if outcome.status != "succeeded":
        await _give_back_units(session, charge)
        return
    # The campaign share-locked, as the close records its outcomes: it is neither suspended nor funded meanwhile.
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == select(Pledge.campaign_id).where(Pledge.id == charge.pledge_id).scalar_subquery())
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    assert campaign is not None
    pledge = await session.get_one(Pledge, charge.pledge_id, with_for_update=True, populate_existing=True)
    amount = outcome.amount if outcome.amount is not None else charge.amount
    reference = line_reference(charge.item_id) if charge.address is None else shipping_reference(charge.item_id)
    if pledge.status not in SHIPPABLE_PLEDGE_STATUSES or campaign.status not in CLOSED_AND_KEPT:
        # The pledge was refunded or the campaign suspended while the charge was on its way: as the close does, the
        # money is booked without fees and given back whole, Stripe's fee borne by the platform; no line is added.
        log.warning("add-on charge %s succeeded on a pledge now %s: giving it back", charge.id, pledge.status)
        await record_collection(
            session, campaign, pledge.id, amount, campaign.currency, 0, 0, outcome.processor_fee, reference=reference
        )
        if outcome.processor_fee > 0:
            await record_fee_borne_by_platform(session, campaign, pledge.id, reference, outcome.processor_fee)
        if outcome.payment_intent_id is not None:
            await create_refund(
                session,
                campaign,
                pledge.id,
                amount,
                reference=f"late:{reference}",
                payment_intent_id=outcome.payment_intent_id,
            )
        await _give_back_units(session, charge)
        return
    if charge.address is not None:
        # The new address, paid for: the pledge ships there from now on, its shipping line grown by the charge.
        await save_address(
            session,
            AddressChange(
                pledge,
                campaign,
                dict(charge.address),
                pledge.shipping_fee + charge.shipping_fee,
                repriced=True,
                ordered=False,
            ),
        )
    else:
        await _add_paid_line(session, pledge, charge)
    await _book_collection(session, campaign, pledge, amount, outcome, reference)


async def _give_back_units(session: AsyncSession, charge: AddOnCharge) -> None:
    if charge.add_on_id is not None:
        await give_back_add_on_units(session, charge.add_on_id, charge.variant_id, charge.quantity)


async def _add_paid_line(session: AsyncSession, pledge: Pledge, charge: AddOnCharge) -> None:
    assert charge.add_on_id is not None and charge.sku is not None  # an add-on's charge
    product_id = await session.scalar(select(AddOn.product_id).where(AddOn.id == charge.add_on_id))
    assert product_id is not None  # add-ons are deleted only from drafts, which have no pledges
    await add_line(
        session,
        pledge,
        BoughtLine(
            add_on_id=charge.add_on_id,
            product_id=product_id,
            choice=dict(charge.variant),
            sku=charge.sku,
            quantity=charge.quantity,
            unit_amount=charge.unit_amount,
            shipping_fee=charge.shipping_fee,
        ),
        item_id=charge.item_id,
    )


async def _book_collection(
    session: AsyncSession, campaign: Campaign, pledge: Pledge, amount: int, outcome: ChargeOutcome, reference: str
) -> None:
    """A charge made after the close booked as the close books a pledge's, with the campaign's fees."""
    terms = await session.get(ChargeTerms, campaign.id)
    platform_bps, sponsor_bps, fund_bps = (
        (terms.platform_fee_bps, terms.sponsor_fee_bps, terms.fund_share_bps) if terms else (0, 0, 0)
    )
    await record_collection(
        session,
        campaign,
        pledge.id,
        amount,
        campaign.currency,
        platform_bps,
        sponsor_bps,
        outcome.processor_fee,
        fund_share_bps=fund_bps,
        reference=reference,
    )


async def remove_add_on(work: StripeWork, backer: User, pledge_ref: uuid.UUID | str, item_ref: uuid.UUID | str) -> None:
    """`DELETE /pledges/{id}/items/{item}`: an add-on line leaves the pledge and its units come back.

    While live: it is simply gone (the pledge is charged the less at the deadline). After the close, until the
    address lock: an add-on bought in the pledge manager is refunded in full (price and shipping, from its own
    charge); one that came with the pledge is refunded from the pledge's charge, its price and its share of the
    shipping; on a pledge whose charge failed and waits for a new card it is simply gone (the retry charges the
    less). A pledge whose charge is being made (active after the close, or an attempt in doubt) is a 409: try again
    once it is settled. A tier line is a 422 naming `item`.

    A refund is paid from escrow, which milestone releases may have handed to the maker already: when escrow no
    longer holds what the line's refund needs (less the refunds promised and not yet made), it is a 409
    `escrow-short` saying what escrow still holds, and nothing changes (the line, its units and the money stay as
    they were). Never a part refund for a whole line: the backer keeps what they paid for, and the maker, who holds
    the money now, is the one to ask."""
    async with work.transaction() as session:
        managed = await managed_pledge(session, pledge_ref, backer)
        check_open_for_changes(managed)
        line = await line_of(session, managed.pledge, item_ref)
        check_removable(line)
        add_on = await add_on_of_line(session, line)
        shipping = await line_shipping(session, managed, line, add_on)
        if not managed.live:
            await check_no_shipping_charge(session, managed.pledge)
            shipping = await _refund_line(session, managed, line, shipping)
        await remove_add_on_line(session, managed, line, add_on=add_on, shipping=shipping)


async def _refund_line(session: AsyncSession, managed: ManagedPledge, line: PledgeItem, shipping: int) -> int:
    """Refunds the line's price and `shipping`, the drop its leaving makes in the pledge's shipping now (its
    contents priced with and without it), never more than the pledge pays for shipping in all (its `shipping_fee`:
    what it was charged for shipping, less what was refunded of it); returns the shipping given back.

    A line bought with its own charge is refunded from that charge up to what it took; the rest of the shipping (by
    weight, a later add-on or a dearer address may have paid for the heavier bracket this line now leaves) comes
    from the pledge's own charge, which paid the pledge's first shipping. A line that came with the pledge is
    refunded from the pledge's charge."""
    pledge, campaign = managed.pledge, managed.campaign
    shipping = min(shipping, pledge.shipping_fee)
    amount = line.quantity * line.unit_amount + shipping
    own = await session.scalar(select(AddOnCharge).where(AddOnCharge.item_id == line.id))
    if own is None:
        if pledge.status == PledgeStatus.ERRORED and not await attempt_in_doubt(session, pledge.id):
            return shipping  # not paid yet: the next charge is the smaller
        if pledge.status not in SHIPPABLE_PLEDGE_STATUSES:
            raise ChargeUnderWay("Your pledge is being charged right now: try again in a few minutes.")
    await check_escrow_holds(session, campaign, amount, "giving this add-on back")
    from_own = 0
    if own is not None:
        assert own.payment_intent_id is not None  # a line exists only once its charge succeeded
        from_own = min(amount, own.amount)
        await create_refund(
            session,
            campaign,
            pledge.id,
            from_own,
            reference=line_reference(line.id),
            payment_intent_id=own.payment_intent_id,
        )
    if amount > from_own:
        await create_refund(
            session,
            campaign,
            pledge.id,
            amount - from_own,
            reference=line_reference(line.id) if own is None else f"{line_reference(line.id)}:shipping",
            payment_intent_id=await pledge_charge(session, pledge),
        )
    return shipping


async def pledge_charge(session: AsyncSession, pledge: Pledge) -> str:
    """The PaymentIntent of a collected pledge's own charge."""
    intent = await session.scalar(
        select(ChargeAttempt.payment_intent_id).where(
            ChargeAttempt.pledge_id == pledge.id, ChargeAttempt.status == "succeeded"
        )
    )
    assert intent is not None  # collected: its charge succeeded
    return intent


async def check_escrow_holds(session: AsyncSession, campaign: Campaign, amount: int, doing: str) -> None:
    """Escrow's account stays locked until the transaction ends (as for a release or an operator's refund), so the
    refund recorded next is counted by whatever spends escrow after it. `doing` names the step in the 409."""
    held = await hold_escrow(session, campaign)
    if amount > held:
        raise EscrowShortForLine(held, amount, campaign.currency, doing)


async def attempt_in_doubt(session: AsyncSession, pledge_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(ChargeAttempt.id).where(
            ChargeAttempt.pledge_id == pledge_id, ChargeAttempt.status.in_(IN_DOUBT_ATTEMPT_STATUSES)
        )
    )
    return found is not None


# The sweep's step and the job


async def request_add_on_charges_in_doubt(session: AsyncSession, *, limit: int = 100) -> int:
    """Ask for a job for each add-on charge left in doubt for over a minute (its request died, or Stripe did not
    answer) whose job was never asked for or seems lost; the job looks for it at Stripe before anything else (and
    does nothing while a request or another job holds the charge's advisory lock)."""
    due = (
        select(AddOnCharge.id)
        .where(
            AddOnCharge.status.in_(IN_DOUBT_ATTEMPT_STATUSES),
            AddOnCharge.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, IN_DOUBT_AFTER_SECONDS),
            or_(
                AddOnCharge.requested_at.is_(None),
                AddOnCharge.requested_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, REQUEUE_AFTER_SECONDS),
            ),
        )
        .order_by(AddOnCharge.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(
        await session.scalars(
            update(AddOnCharge)
            .where(AddOnCharge.id.in_(due))
            .values(requested_at=func.now())
            .returning(AddOnCharge.id)
            .execution_options(synchronize_session=False)
        )
    )
    for charge_id in ids:
        enqueue_job(session, SETTLE_ADD_ON_CHARGE, charge_id)
    return len(ids)


async def settle_add_on_charge_job(work: StripeWork, charge_ref: str) -> str:
    """The "payments.add_on_charge" job: settles one charge in doubt; returns its outcome's status."""
    charge_id = parse_job_id(charge_ref)
    if charge_id is None:
        return "nothing"
    return (await settle_add_on_charge(work, charge_id)).status
