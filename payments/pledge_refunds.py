"""A refund of one pledge, whole or in part, asked for with a reason by an operator of the sponsoring space or an admin.

It is recorded like every refund (payments.refunds): a `Refund` row with its amount fixed, then the refund job asks
Stripe (idempotency key `refund:pledge:<pledge id>:refund:<n>`), books it in the ledger (escrow -> backer refunds; the
fees taken at collection stay taken, as for a suspension's refunds) and mails the backer.

Never more than what is left of the pledge: what was collected, less what has been refunded or is being refunded,
less what the backer's bank holds in a dispute or took in a lost one. The pledge's row is locked while that is
decided, so concurrent requests for the same pledge are served one after the other, and each sees the refunds the
earlier ones recorded: two "refund all that is left" at once refund once, and the second finds nothing to refund.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import visible_campaign
from campaigns.audit import record_audit
from campaigns.errors import Conflict, InvalidInput, NotAllowed, NotFound
from campaigns.jobs import enqueue_job
from campaigns.lifecycle import INSIDERS, Role
from campaigns.models import Campaign, Pledge, User, new_id
from campaigns.pledges.lifecycle import CHARGED_PLEDGE_STATUSES
from campaigns.pledges.service import get_pledge
from campaigns.two_factor import require_two_factor
from payments.ledger import EscrowShort, hold_escrow, pending_refunds
from payments.models import CLEARING_ACCOUNTS, ChargeAttempt, LedgerAccount, LedgerEntry, LedgerTransaction, Refund
from payments.refunds import REFUND

log = logging.getLogger("kindling.payments")

# Who may refund one pledge of a campaign.
REFUNDERS: frozenset[Role] = frozenset({"operator", "admin"})
REASON_LIMIT = 2000
# Pledges that were collected: what a refund can give back.


class NothingToRefund(Conflict):
    type = "nothing-to-refund"
    title = "Nothing is left to refund on this pledge"


@dataclass(frozen=True)
class PledgeBalance:
    """One pledge's money, in the campaign's currency: what was collected, refunded (booked), being refunded
    (recorded, Stripe not done yet), held in an open dispute, lost to a dispute, and what is left to refund."""

    collected: int
    refunded: int
    refunding: int
    disputed: int
    dispute_lost: int

    @property
    def left(self) -> int:
        return max(0, self.collected - self.refunded - self.refunding - self.disputed - self.dispute_lost)


async def pledge_balance(session: AsyncSession, pledge_id: uuid.UUID) -> PledgeBalance:
    """The pledge's money from its ledger entries and its pending refunds."""
    rows = await session.execute(
        select(LedgerAccount.kind, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerTransaction.pledge_id == pledge_id,
            LedgerAccount.kind.in_((*CLEARING_ACCOUNTS, "backer_refunds", "disputed", "dispute_losses")),
        )
        .group_by(LedgerAccount.kind)
    )
    sums = {kind: int(total) for kind, total in rows}
    refunding = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.pledge_id == pledge_id, Refund.status == "pending"
        )
    )
    return PledgeBalance(
        collected=-sum(sums.get(kind, 0) for kind in CLEARING_ACCOUNTS),
        refunded=sums.get("backer_refunds", 0),
        refunding=int(refunding or 0),
        disputed=sums.get("disputed", 0),
        dispute_lost=sums.get("dispute_losses", 0),
    )


async def pledge_to_refund(session: AsyncSession, pledge_ref: uuid.UUID | str, user: User) -> tuple[Pledge, Campaign]:
    """The pledge `user` may refund, with its campaign: an operator of the sponsoring space or an admin. Those who
    may see the pledge (its backer, the maker) are refused (NotAllowed); to anyone else it does not exist."""
    pledge = await get_pledge(session, pledge_ref)
    try:
        campaign, roles = await visible_campaign(session, pledge.campaign_id, user)
    except NotFound:
        raise NotFound("No such pledge.") from None
    if roles & REFUNDERS:
        return pledge, campaign
    if pledge.backer_id == user.id or roles & INSIDERS:
        raise NotAllowed("Only an operator of the sponsoring space or an admin refunds a pledge.")
    raise NotFound("No such pledge.")


async def refund_pledge(
    session: AsyncSession,
    pledge_ref: uuid.UUID | str,
    user: User,
    *,
    amount: int | None,
    reason: str,
    client_address: str | None,
) -> Refund:
    """Record a refund of `amount` (None: all that is left) of one pledge and ask for its job; audited, like every
    operator action (and, like them, only with two-factor on).

    409 `nothing-to-refund` when nothing is left (never collected, refunded already, disputed); 422 naming `amount`
    above what is left; 409 `escrow-short` when escrow cannot pay it (released to the maker already).
    Locks, in the order every money path takes them: the campaign (shared), the pledge, the escrow account.
    """
    pledge, campaign = await pledge_to_refund(session, pledge_ref, user)
    require_two_factor(user)
    await session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update(read=True))
    await session.execute(select(Pledge.id).where(Pledge.id == pledge.id).with_for_update())
    money = await pledge_balance(session, pledge.id)
    payment_intent_id = await session.scalar(
        select(ChargeAttempt.payment_intent_id).where(
            ChargeAttempt.pledge_id == pledge.id,
            ChargeAttempt.status == "succeeded",
            ChargeAttempt.payment_intent_id.is_not(None),
        )
    )
    if money.left <= 0 or payment_intent_id is None:
        raise NothingToRefund("Nothing is left to refund on this pledge: it was not collected, or has had it all back.")
    if amount is None:
        amount = money.left
    if not 0 < amount <= money.left:
        raise InvalidInput("amount", f"must be more than 0 and at most {money.left}, what is left of this pledge")
    held = await hold_escrow(session, campaign)
    if amount > held:
        raise EscrowShort(f"Escrow holds {held} {campaign.currency} that may be spent; it cannot refund {amount}.")
    earlier = await session.scalar(select(func.count()).select_from(Refund).where(Refund.pledge_id == pledge.id))
    refund: Refund | None = await session.scalar(
        insert(Refund)
        .values(
            id=new_id(),
            campaign_id=campaign.id,
            pledge_id=pledge.id,
            reference=f"pledge:{pledge.id}:refund:{int(earlier or 0) + 1}",
            amount=amount,
            currency=campaign.currency,
            payment_intent_id=payment_intent_id,
            requested_at=func.now(),
            requested_by=user.id,
            reason=reason,
        )
        .returning(Refund)
    )
    assert refund is not None
    enqueue_job(session, REFUND, refund.id)
    await record_audit(
        session,
        user.id,
        "pledge.refund",
        "pledge",
        pledge.id,
        space_id=campaign.space_id,
        client_address=client_address,
        details={
            "campaign_id": str(campaign.id),
            "refund_id": str(refund.id),
            "amount": amount,
            "currency": campaign.currency,
            "reason": reason,
        },
    )
    log.info("pledge %s: refund of %d %s asked for by %s", pledge.id, amount, campaign.currency, user.id)
    return refund


@dataclass(frozen=True)
class ChargedPledge:
    """A collected pledge as the operator's refunds page lists it."""

    pledge: Pledge
    backer_name: str
    backer_email: str
    money: PledgeBalance


async def charged_pledges(session: AsyncSession, campaign_id: uuid.UUID, *, limit: int) -> list[ChargedPledge]:
    """The campaign's pledges that were collected (refunded since or not), in arrival order, each with its money:
    three queries whatever their number."""
    rows = (
        await session.execute(
            select(Pledge, User.name, User.email)
            .join(User, User.id == Pledge.backer_id)
            .where(Pledge.campaign_id == campaign_id, Pledge.status.in_(CHARGED_PLEDGE_STATUSES))
            .order_by(Pledge.number)
            .limit(limit)
        )
    ).all()
    ids = [pledge.id for pledge, _name, _email in rows]
    sums: dict[tuple[uuid.UUID, str], int] = {}
    if ids:
        booked = await session.execute(
            select(LedgerTransaction.pledge_id, LedgerAccount.kind, func.sum(LedgerEntry.amount))
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerTransaction.pledge_id.in_(ids),
                LedgerAccount.kind.in_((*CLEARING_ACCOUNTS, "backer_refunds", "disputed", "dispute_losses")),
            )
            .group_by(LedgerTransaction.pledge_id, LedgerAccount.kind)
        )
        sums = {(pledge_id, kind): int(total) for pledge_id, kind, total in booked if pledge_id is not None}
    pending = await pending_refunds(session, campaign_id)
    return [
        ChargedPledge(
            pledge,
            name,
            email,
            PledgeBalance(
                collected=-sum(sums.get((pledge.id, kind), 0) for kind in CLEARING_ACCOUNTS),
                refunded=sums.get((pledge.id, "backer_refunds"), 0),
                refunding=pending.get(pledge.id, 0),
                disputed=sums.get((pledge.id, "disputed"), 0),
                dispute_lost=sums.get((pledge.id, "dispute_losses"), 0),
            ),
        )
        for pledge, name, email in rows
    ]


async def campaign_refunds(session: AsyncSession, campaign_id: uuid.UUID, *, limit: int) -> list[Refund]:
    """The campaign's refunds, newest first."""
    return list(
        await session.scalars(
            select(Refund).where(Refund.campaign_id == campaign_id).order_by(Refund.created_at.desc()).limit(limit)
        )
    )
