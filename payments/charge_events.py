"""Stripe's word on our charges: PaymentIntents that succeeded or failed, and charges refunded.

Each handler re-reads the PaymentIntent from Stripe (the event's copy may be stale or out of order) and hands it to
`payments.charging.record_charge_outcome`, the same code that records the charge job's outcome; so an event that
arrives before the job, after it, twice, or instead of it (the job died) ends in the same state. A pre-order's
PaymentIntent goes to `payments.preorders.record_preorder_payment`, which the buyer's confirm call shares.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.ids import parse_id
from payments.charging import outcome_of, record_charge_outcome
from payments.gateway import PaymentGateway, StripeEvent
from payments.preorders import is_preorder_payment, record_preorder_payment
from payments.webhooks import webhook_handler

log = logging.getLogger("kindling.payments")


async def apply_payment_intent(session: AsyncSession, gateway: PaymentGateway, payment_intent_id: str) -> bool:
    """Bring the charge attempt a PaymentIntent belongs to (by its metadata) up to what Stripe says about it now.
    Returns False for a PaymentIntent that is not one of our charges."""
    charge = await gateway.retrieve_charge(payment_intent_id)
    if is_preorder_payment(charge):
        await record_preorder_payment(session, charge)
        return True
    pledge_id = parse_id(charge.metadata.get("pledge_id", ""))
    attempt = charge.metadata.get("attempt", "")
    if pledge_id is None or not attempt.isdigit():
        log.info("payment intent %s is not a pledge's charge; ignored", payment_intent_id)
        return False
    return await record_charge_outcome(session, pledge_id, int(attempt), outcome_of(charge))


@webhook_handler("payment_intent.succeeded")
@webhook_handler("payment_intent.payment_failed")
async def payment_intent_changed(session: AsyncSession, gateway: PaymentGateway, event: StripeEvent) -> None:
    if event.object_id is not None:
        await apply_payment_intent(session, gateway, event.object_id)


@webhook_handler("charge.refunded")
async def charge_refunded(session: AsyncSession, gateway: PaymentGateway, event: StripeEvent) -> None:
    payment_intent = _id_of(event.payload["data"]["object"].get("payment_intent"))
    if payment_intent is not None:
        await apply_payment_intent(session, gateway, payment_intent)


def _id_of(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None
