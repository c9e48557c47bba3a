"""Suspension and refunds: an operator of the sponsoring space (or an admin) stops a campaign, and what is still held
in escrow goes back to the backers, pro rata to what each paid.

A refund is recorded first (its amount fixed, unique per pledge and reason), in the transaction that decides it;
a job per refund then asks Stripe (idempotency key `refund:<reference>`) and books it in the ledger. A job that died
after Stripe refunded and before the booking is found out by the next one, which looks at what Stripe has refunded
on the charge before asking again: a crash never refunds twice, even on a Stripe that ignores idempotency keys.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import campaign_for, move_campaign
from campaigns.audit import record_audit
from campaigns.jobs import enqueue_job
from campaigns.languages import VERSIONS_FACT, language_of, mail_versions
from campaigns.matching import not_a_match
from campaigns.models import Campaign, Pledge, User
from campaigns.notifications import notify
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES, WAITING_PLEDGE_STATUSES, PledgeAction, outcome, sources
from campaigns.pledges.service import pledge_facts
from campaigns.two_factor import require_two_factor
from fulfillment.backer_mail import mail_about_pledge, mail_backers
from payments.closing import (
    REQUEUE_AFTER_SECONDS,
    campaign_path,
    cancel_pledges,
    lock_campaign,
    parse_job_id,
)
from payments.gateway import GatewayError, GatewayUnavailable
from payments.ledger import escrow_refunds_due, record_refund
from payments.milestones import cancel_open_milestones
from payments.models import CLEARING_ACCOUNTS, ChargeAttempt, LedgerAccount, LedgerEntry, LedgerTransaction, Refund
from payments.risk_fund import top_up_from_fund
from payments.stripe_jobs import REFUNDING, StripeWork, held_exclusively

log = logging.getLogger("kindling.payments")

REFUND = "payments.refund"
FAILURE_LIMIT = 2000


class RefundDeferred(Exception):
    """Stripe could not be reached; the refund stays pending and is tried again (Dramatiq's retry, then the sweep)."""


# What a pledge has paid and had back


async def pledge_money(session: AsyncSession, pledge_id: uuid.UUID) -> tuple[int, int]:
    """(collected, refunded) of one pledge, from the ledger."""
    rows = await session.execute(
        select(LedgerAccount.kind, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerTransaction.pledge_id == pledge_id,
            LedgerAccount.kind.in_((*CLEARING_ACCOUNTS, "backer_refunds")),
        )
        .group_by(LedgerAccount.kind)
    )
    sums = {kind: int(total) for kind, total in rows}
    return -sum(sums.get(kind, 0) for kind in CLEARING_ACCOUNTS), sums.get("backer_refunds", 0)


async def settle_refunded_pledge(session: AsyncSession, pledge_id: uuid.UUID) -> str | None:
    """collected → partially_refunded → refunded, by what the ledger says the pledge has had back; never backward.
    Returns the new status when it changed."""
    collected, refunded = await pledge_money(session, pledge_id)
    if refunded <= 0:
        return None
    action = PledgeAction.REFUND_IN_FULL if refunded >= collected else PledgeAction.REFUND_IN_PART
    changed: str | None = await session.scalar(
        update(Pledge)
        .where(Pledge.id == pledge_id, Pledge.status.in_(sources(action)))
        .values(status=outcome(action))
        .returning(Pledge.status)
        .execution_options(synchronize_session=False)
    )
    return changed


async def create_refund(
    session: AsyncSession,
    campaign: Campaign,
    pledge_id: uuid.UUID,
    amount: int,
    *,
    reference: str,
    payment_intent_id: str,
) -> uuid.UUID | None:
    """Record a refund to make (once per `reference`) and ask for its job; None when it was already recorded."""
    refund_id: uuid.UUID | None = await session.scalar(
        insert(Refund)
        .values(
            campaign_id=campaign.id,
            pledge_id=pledge_id,
            reference=reference,
            amount=amount,
            currency=campaign.currency,
            payment_intent_id=payment_intent_id,
            requested_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=[Refund.reference])
        .returning(Refund.id)
    )
    if refund_id is not None:
        enqueue_job(session, REFUND, refund_id)
    return refund_id


# Suspension


async def suspend_campaign(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    user: User,
    *,
    reason: str,
    client_address: str | None,
    language: str | None = None,
) -> tuple[Campaign, dict[uuid.UUID, int]]:
    """An operator of the campaign's space or an admin suspends it: charging stops, the milestones not yet released
    are cancelled, the space's risk-compensation fund tops up escrow (payments.risk_fund), and everything still in
    escrow is refunded to the backers pro rata to what each paid (largest
    remainder: the refunds add up to the escrow exactly). Returns the campaign and the refund due per pledge.

    403 for anyone else, 409 `not-suspendable` unless the campaign is live, successful, funded or fulfilling.
    Locks: the campaign row, the pledges, the milestones, the space, the escrow account, in that order.
    """
    campaign, roles = await campaign_for(session, campaign_ref, user, "suspend")
    require_two_factor(user)
    backers = await _backers(session, campaign.id)
    await move_campaign(
        session,
        campaign,
        "suspend",
        roles,
        actor_id=user.id,
        note=reason,
        note_language=language or language_of(user.locale),
    )
    cancelled = set(await cancel_pledges(session, campaign, WAITING_PLEDGE_STATUSES))
    await cancel_open_milestones(session, campaign)
    await top_up_from_fund(session, campaign)
    due = await escrow_refunds_due(session, campaign)
    intents = await _collected_intents(session, due)
    for pledge_id, amount in due.items():
        payment_intent_id = intents.get(pledge_id)
        if payment_intent_id is None:
            log.error("campaign %s: pledge %s paid but has no succeeded charge to refund", campaign.id, pledge_id)
            continue
        await create_refund(
            session,
            campaign,
            pledge_id,
            amount,
            reference=f"suspension:{pledge_id}",
            payment_intent_id=payment_intent_id,
        )
    facts = {
        "campaign_id": str(campaign.id),
        "campaign_title": campaign.title,
        VERSIONS_FACT: mail_versions({"campaign_title": ("title", campaign.translations)}),
        "campaign_path": campaign_path(campaign),
        "currency": campaign.currency,
        "reason": reason,
    }
    maker = await session.get_one(User, campaign.maker_id)
    await notify(session, maker, "campaign_suspended", role="maker", refunded=sum(due.values()), **facts)
    await mail_backers(
        session,
        "campaign_suspended",
        (
            mail_about_pledge(
                row, {**facts, "role": "backer", "refund": due.get(row.id, 0), "cancelled": row.id in cancelled}
            )
            for row in backers
        ),
    )
    await record_audit(
        session,
        user.id,
        "campaign.suspend",
        "campaign",
        campaign.id,
        space_id=campaign.space_id,
        client_address=client_address,
        details={
            "title": campaign.title,
            "reason": reason,
            "refunded": sum(due.values()),
            "currency": campaign.currency,
        },
    )
    log.info("campaign %s suspended by %s: %d refund(s) of %d", campaign.id, user.id, len(due), sum(due.values()))
    return campaign, due


async def _backers(session: AsyncSession, campaign_id: uuid.UUID) -> list[Any]:
    rows = await session.execute(
        select(Pledge.id, User.id.label("user_id"), User.email, User.locale, User.name)
        .join(User, User.id == Pledge.backer_id)
        .where(Pledge.campaign_id == campaign_id, Pledge.status.in_(COUNTED_PLEDGE_STATUSES), not_a_match())
        .order_by(Pledge.number)
    )
    return list(rows)


async def _collected_intents(session: AsyncSession, pledges: Mapping[uuid.UUID, int]) -> dict[uuid.UUID, str]:
    """The PaymentIntent that collected each pledge."""
    if not pledges:
        return {}
    rows = await session.execute(
        select(ChargeAttempt.pledge_id, ChargeAttempt.payment_intent_id).where(
            ChargeAttempt.pledge_id.in_(list(pledges)),
            ChargeAttempt.status == "succeeded",
            ChargeAttempt.payment_intent_id.is_not(None),
        )
    )
    return {pledge_id: intent for pledge_id, intent in rows if intent is not None}


# The refund job


async def make_refund(work: StripeWork, refund_ref: str) -> str:
    """The "payments.refund" job: refund one recorded refund at Stripe and book it. Idempotent; returns what it did
    ("succeeded", "failed", "done" when there was nothing left to do, "busy" when another job holds it)."""
    refund_id = parse_job_id(refund_ref)
    if refund_id is None:
        return "done"
    async with held_exclusively(work.engine, REFUNDING, refund_id) as mine:
        if not mine:
            return "busy"
        async with work.transaction() as session:
            refund = await session.scalar(
                select(Refund).where(Refund.id == refund_id).with_for_update().execution_options(populate_existing=True)
            )
            if refund is None or refund.status != "pending":
                return "done"
            may_have_reached_stripe = refund.attempted_at is not None
            refund.attempted_at = await session.scalar(select(func.now()))
            # What the ledger already shows refunded on this pledge, this refund not included.
            _collected, booked = await pledge_money(session, refund.pledge_id)
        stripe_refund_id: str | None = None
        if may_have_reached_stripe:
            await work.wait_for_turn()
            charge = await work.gateway.retrieve_charge(refund.payment_intent_id)
            if charge.amount_refunded >= booked + refund.amount:
                log.warning("refund %s: found already made at Stripe; booking it", refund.reference)
                async with work.transaction() as session:
                    await record_refund_made(session, refund_id, stripe_refund_id=None)
                return "succeeded"
        await work.wait_for_turn()
        try:
            made = await work.gateway.refund(
                reference=refund.reference,
                payment_intent_id=refund.payment_intent_id,
                amount=refund.amount,
                metadata={"pledge_id": str(refund.pledge_id), "campaign_id": str(refund.campaign_id)},
            )
        except GatewayUnavailable as error:
            raise RefundDeferred(f"refund {refund.reference}: {error.detail}") from error
        except GatewayError as error:
            async with work.transaction() as session:
                await record_refund_failed(session, refund_id, f"{error.type}: {error.detail}")
            return "failed"
        stripe_refund_id = made.id
        async with work.transaction() as session:
            if made.status == "failed":
                await record_refund_failed(session, refund_id, f"Stripe refund {made.id} failed")
                return "failed"
            await record_refund_made(session, refund_id, stripe_refund_id=stripe_refund_id)
        return "succeeded"


async def record_refund_made(session: AsyncSession, refund_id: uuid.UUID, *, stripe_refund_id: str | None) -> bool:
    """Stripe has refunded: the refund succeeds, the ledger moves its amount from escrow to backer refunds, the
    pledge becomes refunded or partially refunded, and the backer is told. Once; returns whether this call did it."""
    refund = await session.get(Refund, refund_id)
    if refund is None:
        return False
    campaign = await lock_campaign(session, refund.campaign_id)
    assert campaign is not None
    await session.execute(select(Pledge.id).where(Pledge.id == refund.pledge_id).with_for_update())
    done = await session.scalar(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == "pending")
        .values(status="succeeded", stripe_refund_id=stripe_refund_id, finished_at=func.now())
        .returning(Refund.id)
    )
    if done is None:
        return False
    await record_refund(session, campaign, refund.reference, refund.amount, pledge_id=refund.pledge_id)
    await settle_refunded_pledge(session, refund.pledge_id)
    pledge = await session.get_one(Pledge, refund.pledge_id, populate_existing=True)
    collected, refunded = await pledge_money(session, pledge.id)
    backer = await session.get_one(User, pledge.backer_id)
    await notify(
        session,
        backer,
        "refund_issued",
        **await pledge_facts(session, pledge),
        refund=refund.amount,
        paid=collected,
        refunded=refunded,
        reason=refund.reference.partition(":")[0],
        note=refund.reason or "",
    )
    return True


async def record_refund_failed(session: AsyncSession, refund_id: uuid.UUID, failure: str) -> None:
    """Stripe refused the refund: it is kept, failed, for a person to look at; the money stays in escrow."""
    log.error("refund %s failed: %s", refund_id, failure)
    await session.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == "pending")
        .values(status="failed", failure=failure[:FAILURE_LIMIT], finished_at=func.now())
    )


async def request_pending_refunds(session: AsyncSession, *, limit: int = 500) -> int:
    """The sweep's step: ask again for every pending refund whose job seems lost."""
    asked = await session.scalars(
        update(Refund)
        .where(
            Refund.id.in_(
                select(Refund.id)
                .where(
                    Refund.status == "pending",
                    Refund.requested_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, REQUEUE_AFTER_SECONDS),
                )
                .order_by(Refund.created_at)
                .limit(limit)
            )
        )
        .values(requested_at=func.now())
        .returning(Refund.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(asked)
    for refund_id in ids:
        enqueue_job(session, REFUND, refund_id)
    return len(ids)
