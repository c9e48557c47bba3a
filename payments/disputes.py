"""Disputes (chargebacks): a backer's bank takes a collected charge back, and later decides for us or for the backer.

`charge.dispute.created` moves the disputed amount out of escrow into the campaign's `disputed` account;
`charge.dispute.closed` moves it back to escrow when the dispute is won, or on to `dispute_losses` when it is lost
(who bears a loss: payments/ledger.py). Each step is a ledger transaction referenced by the dispute's id, recorded at
most once (the ledger's unique (kind, reference)), so an event delivered twice moves nothing the second time, and a
`closed` that arrives before its `created` records the opening itself: whatever the order, the books end the same.

Unlike charges, a dispute is not read again from Stripe (the stand-in has none): the event's copy, whose signature
the webhook endpoint checked, is the word. An inquiry (`warning_*` statuses) takes no money and moves nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import Campaign, Pledge
from payments.gateway import PaymentGateway, StripeEvent
from payments.ledger import hold_escrow, record
from payments.models import ChargeAttempt, LedgerAccount, LedgerEntry, LedgerTransaction
from payments.webhooks import webhook_handler

log = logging.getLogger("kindling.payments")

# How a closed dispute ended, as far as the books care.
DISPUTE_WON = "won"
DISPUTE_LOST = "lost"


@dataclass(frozen=True)
class Dispute:
    """The facts of a Stripe Dispute object that the books need."""

    id: str
    payment_intent_id: str
    amount: int
    currency: str
    status: str

    @property
    def is_inquiry(self) -> bool:
        """An inquiry (Stripe's `warning_*` statuses) asks questions without taking the money."""
        return self.status.startswith("warning_")


def dispute_of(event: StripeEvent) -> Dispute | None:
    """The dispute an event carries, or None (logged) when its object does not look like one of Stripe's."""
    obj: dict[str, Any] = event.payload["data"]["object"]
    dispute_id, amount, currency, status = obj.get("id"), obj.get("amount"), obj.get("currency"), obj.get("status")
    payment_intent = obj.get("payment_intent")
    if isinstance(payment_intent, dict):
        payment_intent = payment_intent.get("id")
    if (
        not isinstance(dispute_id, str)
        or not dispute_id.startswith("dp_")
        or not isinstance(payment_intent, str)
        or not payment_intent
        or not isinstance(amount, int)
        or isinstance(amount, bool)
        or amount <= 0
        or not isinstance(currency, str)
        or not isinstance(status, str)
    ):
        log.error("event %s (%s) does not carry a dispute we can book; ignored", event.id, event.type)
        return None
    return Dispute(dispute_id, payment_intent, amount, currency.upper(), status)


async def _disputed_pledge(session: AsyncSession, dispute: Dispute) -> tuple[Campaign, uuid.UUID] | None:
    """The campaign (share-locked, as charge outcomes lock it) and pledge whose collected charge is disputed."""
    pledge_id = await session.scalar(
        select(ChargeAttempt.pledge_id).where(
            ChargeAttempt.payment_intent_id == dispute.payment_intent_id, ChargeAttempt.status == "succeeded"
        )
    )
    if pledge_id is None:
        return None
    campaign = await session.scalar(
        select(Campaign)
        .join(Pledge, Pledge.campaign_id == Campaign.id)
        .where(Pledge.id == pledge_id)
        .with_for_update(read=True, of=Campaign)
    )
    if campaign is None:
        return None
    return campaign, pledge_id


async def _opened_amount(session: AsyncSession, dispute_id: str) -> int:
    """What the dispute's opening moved into `disputed` (0 when it has not been booked)."""
    amount = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.kind == "dispute_opened",
            LedgerTransaction.reference == dispute_id,
            LedgerAccount.kind == "disputed",
        )
    )
    return int(amount or 0)


async def _is_closed(session: AsyncSession, dispute_id: str) -> bool:
    found = await session.scalar(
        select(LedgerTransaction.id).where(
            LedgerTransaction.kind.in_(("dispute_won", "dispute_lost")), LedgerTransaction.reference == dispute_id
        )
    )
    return found is not None


async def book_dispute(session: AsyncSession, dispute: Dispute, *, closed: bool) -> bool:
    """Bring the books up to what the dispute says: opened (escrow -> disputed) and, once `closed`, won (back to
    escrow) or lost (-> dispute_losses). Each step once, in any order of events. Returns whether anything moved.

    Locks: the campaign (shared), the pledge, the escrow account: the order refunds take them in.
    """
    if dispute.is_inquiry:
        log.info("dispute %s is an inquiry (%s): no money moves", dispute.id, dispute.status)
        return False
    found = await _disputed_pledge(session, dispute)
    if found is None:
        log.error("dispute %s: payment intent %s is no collected pledge of ours", dispute.id, dispute.payment_intent_id)
        return False
    campaign, pledge_id = found
    if dispute.currency != campaign.currency:
        log.error(
            "dispute %s in %s; campaign %s counts in %s", dispute.id, dispute.currency, campaign.id, campaign.currency
        )
        return False
    await session.execute(select(Pledge.id).where(Pledge.id == pledge_id).with_for_update())
    await hold_escrow(session, campaign)
    opened = await record(
        session,
        campaign.id,
        "dispute_opened",
        dispute.id,
        [("escrow", -dispute.amount), ("disputed", dispute.amount)],
        campaign.currency,
        f"dispute {dispute.id} opened on pledge {pledge_id}",
        pledge_id=pledge_id,
    )
    if opened is not None:
        log.warning(
            "dispute %s: %d %s of pledge %s out of escrow", dispute.id, dispute.amount, campaign.currency, pledge_id
        )
    if not closed or dispute.status not in (DISPUTE_WON, DISPUTE_LOST) or await _is_closed(session, dispute.id):
        return opened is not None
    amount = await _opened_amount(session, dispute.id)
    to_account = "escrow" if dispute.status == DISPUTE_WON else "dispute_losses"
    await record(
        session,
        campaign.id,
        f"dispute_{dispute.status}",
        dispute.id,
        [("disputed", -amount), (to_account, amount)],
        campaign.currency,
        f"dispute {dispute.id} {dispute.status} on pledge {pledge_id}",
        pledge_id=pledge_id,
    )
    log.warning(
        "dispute %s %s: %d %s of pledge %s to %s",
        dispute.id,
        dispute.status,
        amount,
        campaign.currency,
        pledge_id,
        to_account,
    )
    return True


@webhook_handler("charge.dispute.created")
async def dispute_created(session: AsyncSession, gateway: PaymentGateway, event: StripeEvent) -> None:
    dispute = dispute_of(event)
    if dispute is not None:
        await book_dispute(session, dispute, closed=False)


@webhook_handler("charge.dispute.closed")
async def dispute_closed(session: AsyncSession, gateway: PaymentGateway, event: StripeEvent) -> None:
    dispute = dispute_of(event)
    if dispute is not None:
        await book_dispute(session, dispute, closed=True)
