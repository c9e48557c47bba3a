"""An address changed after funding: the shipping is priced again for the new country, and the difference moves.

`PUT /pledges/{id}/address` and the pledge page's address form come here. Before the close (or for a pre-order) the
address is simply saved, as ever. After it, until the address lock, the pledge's contents as they are now are priced
for the new country by the pricing's one rule (`campaigns.pledges.pricing.shipping_fee_of`, through
`manager.shipping_to`), and against what the pledge pays for shipping now:

- equal: the address is saved (its country becomes the pledge's), nothing moves;
- dearer: the difference is charged at once with the pledge's saved card, by the add-on charges' machinery
  (payments/add_on_charges.py: an `add_on_charges` row with the address and no add-on, committed before Stripe is
  called, the shared rate limit, the idempotency key `pledge-item:<id>:charge`, the sweep and job for a charge in
  doubt). Only a charge that succeeded saves the address and grows the shipping line; a refused card is a 409
  `card-declined` and the old address stays;
- cheaper: the difference is refunded from the pledge's own charge, out of escrow: when escrow holds less, a 409
  `escrow-short` and nothing changes (as for an add-on given back).

On a pledge whose charge failed and waits for a new card, the address and the shipping are simply changed (the retry
charges the new amount); while the pledge is being charged, or another charge of it is under way, a 409
`charge-under-way`. Once the batch that makes the pledge is confirmed, a change that moves the shipping is a 409
`batch-confirmed`. The planner does not read countries (it counts units), so nothing is planned again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict
from campaigns.models import Pledge, User
from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES, PledgeStatus
from campaigns.pledges.manager import ChargeUnderWay
from fulfillment.addresses import AddressChange, address_change, save_address
from payments.add_on_charges import (
    AddOnChargeInDoubt,
    NoSavedCard,
    attempt_in_doubt,
    charges_under_way,
    check_escrow_holds,
    pledge_charge,
    settle_add_on_charge,
    shipping_reference,
)
from payments.models import AddOnCharge, StripeCustomer
from payments.refunds import create_refund
from payments.stripe_jobs import StripeWork


class ShippingCardRefused(Conflict):
    type = "card-declined"
    title = "The card was declined"


@dataclass(frozen=True)
class AddressChanged:
    """What a saved address did to the money: `charged` (more than zero) or refunded (less), 0 when nothing moved."""

    pledge_id: uuid.UUID
    moved: int


@dataclass(frozen=True)
class ShippingQuote:
    """What an address would do before it is saved: the shipping there and what the pledge pays for shipping now;
    their difference is charged at once (more than zero) or refunded (less)."""

    currency: str
    shipping_fee: int
    current_shipping_fee: int

    @property
    def difference(self) -> int:
        return self.shipping_fee - self.current_shipping_fee


async def quote_address(
    session: AsyncSession, pledge_ref: uuid.UUID | str, backer: User, address: Mapping[str, str]
) -> ShippingQuote:
    """The address checked as `change_address` checks it (the same refusals), and what saving it would move. Saves
    nothing."""
    change = await address_change(session, pledge_ref, backer, address)
    pledge = change.pledge
    fee = change.fee if change.repriced else pledge.shipping_fee
    return ShippingQuote(pledge.currency, fee, pledge.shipping_fee)


async def change_address(
    work: StripeWork, backer: User, pledge_ref: uuid.UUID | str, address: Mapping[str, str]
) -> AddressChanged:
    """Save the pledge's new address, charging or refunding the shipping difference it makes after the close (see
    the module's note)."""
    async with work.transaction() as session:
        change = await address_change(session, pledge_ref, backer, address)
        pledge = change.pledge
        if change.difference == 0:
            await save_address(session, change)
            return AddressChanged(pledge.id, 0)
        if await charges_under_way(session, pledge):
            raise ChargeUnderWay("A charge of your pledge is under way: try again in a minute.")
        if pledge.status == PledgeStatus.ERRORED and not await attempt_in_doubt(session, pledge.id):
            await save_address(session, change)  # not paid yet: the retry charges the new amount
            return AddressChanged(pledge.id, 0)
        if pledge.status not in SHIPPABLE_PLEDGE_STATUSES:  # paid, and not all of it refunded
            raise ChargeUnderWay("Your pledge is being charged right now: try again in a few minutes.")
        if change.difference < 0:
            await _refund_difference(session, change)
            await save_address(session, change)
            return AddressChanged(pledge.id, change.difference)
        charge_id = await _record_charge(session, change)
    outcome = await settle_add_on_charge(work, charge_id, fresh=True)
    if outcome.status == "succeeded":
        return AddressChanged(pledge.id, change.difference)
    if outcome.status == "failed":
        raise ShippingCardRefused(
            "Your card was declined, so nothing was charged and your address stays the old one. Give your pledge a "
            "new card, or try again later."
        )
    raise AddOnChargeInDoubt(
        "We could not hear back from the payment provider. Your new address is saved as soon as it confirms the "
        "charge for its shipping."
    )


async def _refund_difference(session: AsyncSession, change: AddressChange) -> None:
    pledge, campaign = change.pledge, change.campaign
    await check_escrow_holds(session, campaign, -change.difference, "changing the address")
    await create_refund(
        session,
        campaign,
        pledge.id,
        -change.difference,
        reference=shipping_reference(uuid.uuid4()),
        payment_intent_id=await pledge_charge(session, pledge),
    )


async def _record_charge(session: AsyncSession, change: AddressChange) -> uuid.UUID:
    """The difference's charge, recorded to be sent once committed."""
    pledge: Pledge = change.pledge
    customer_id = await session.scalar(
        select(StripeCustomer.customer_id).where(StripeCustomer.user_id == pledge.backer_id)
    )
    if customer_id is None or pledge.payment_method_id is None:
        raise NoSavedCard("Your pledge has no saved card to pay the new address's shipping with.")
    item_id = uuid.uuid4()
    charge = AddOnCharge(
        pledge_id=pledge.id,
        item_id=item_id,
        address=change.address,
        quantity=1,
        unit_amount=0,
        shipping_fee=change.difference,
        idempotency_key=f"pledge-item:{item_id}:charge",
        amount=change.difference,
        currency=pledge.currency,
        customer_id=customer_id,
        payment_method_id=pledge.payment_method_id,
    )
    session.add(charge)
    await session.flush()
    return charge.id
