"""A space's risk-compensation fund (风险补偿): a share of its sponsor fee, set aside at each collection, that tops up
the refunds of a campaign it sponsored when the campaign is suspended after funding.

The fund is kept in the campaigns' own books (payments.ledger): each collection pays the fund's share of the sponsor
fee into the campaign's `risk_fund` account, and a top-up takes money out of the suspended campaign's `risk_fund`
account into its escrow, from which the suspension refunds it pro rata like the rest. The fund's balance is the sum of
those accounts over the space's campaigns in the fund's currency, so every figure here is read from the ledger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.lifecycle import PUBLIC_STATUSES
from campaigns.models import Campaign, Space
from payments.ledger import hold_escrow, matches_among, record, unrefunded_by_pledge
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction
from payments.money import backers_shortfall, fund_top_up

MAX_FUND_SHARE_BPS = 10_000
# The largest cap a space may set: the most Stripe charges at once, in any currency's minor units, a hundred times.
MAX_FUND_CAP = 9_999_999_900


@dataclass(frozen=True)
class FundCampaign:
    """One campaign's part in the fund: what its collections paid in and what the fund gave its backers."""

    campaign_id: uuid.UUID
    slug: str
    title: str
    contributed: int
    paid_out: int
    paid_out_at: datetime | None


@dataclass(frozen=True)
class FundStatement:
    currency: str
    share_bps: int
    cap: int
    contributed: int
    paid_out: int
    campaigns: list[FundCampaign]

    @property
    def balance(self) -> int:
        return self.contributed - self.paid_out


def _fund_entries(space: Space) -> tuple[ColumnElement[bool], ...]:
    """The conditions that pick the fund's entries: `risk_fund` accounts of the space's campaigns in its currency."""
    return (
        LedgerAccount.kind == "risk_fund",
        LedgerAccount.currency == space.fund_currency,
        Campaign.space_id == space.id,
    )


async def fund_balance(session: AsyncSession, space: Space) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .select_from(LedgerEntry)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(Campaign, Campaign.id == LedgerAccount.campaign_id)
        .where(*_fund_entries(space))
    )
    return int(total or 0)


async def fund_statement(session: AsyncSession, space: Space) -> FundStatement:
    """The fund's figures for anyone to read, in one query: per campaign of the space that paid in or drew on it,
    what it paid in and what its backers drew (with when), and the totals."""
    amount = LedgerEntry.amount
    paid_out_at = (
        select(func.max(LedgerTransaction.created_at))
        .where(LedgerTransaction.campaign_id == Campaign.id, LedgerTransaction.kind == "fund_payout")
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            Campaign.id,
            Campaign.slug,
            Campaign.title,
            func.coalesce(func.sum(amount).filter(amount > 0), 0),
            func.coalesce(func.sum(-amount).filter(amount < 0), 0),
            paid_out_at,
        )
        .select_from(LedgerEntry)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(Campaign, Campaign.id == LedgerAccount.campaign_id)
        .where(*_fund_entries(space), Campaign.status.in_(PUBLIC_STATUSES))
        .group_by(Campaign.id)
        .order_by(Campaign.launched_at.desc().nulls_last(), Campaign.id)
    )
    campaigns = [
        FundCampaign(campaign_id, slug, title, int(paid_in), int(paid_out), paid_out_at if paid_out else None)
        for campaign_id, slug, title, paid_in, paid_out, paid_out_at in rows
    ]
    return FundStatement(
        currency=space.fund_currency,
        share_bps=space.fund_share_bps,
        cap=space.fund_cap,
        contributed=sum(c.contributed for c in campaigns),
        paid_out=sum(c.paid_out for c in campaigns),
        campaigns=campaigns,
    )


async def fund_top_up_due(session: AsyncSession, campaign: Campaign) -> int:
    """What the space's fund would add to the campaign's refunds now (payments.money.fund_top_up), with the space's
    row and the campaign's escrow locked until the transaction ends; 0 once it has topped them up."""
    space = await session.scalar(
        select(Space).where(Space.id == campaign.space_id).with_for_update().execution_options(populate_existing=True)
    )
    if space is None or space.fund_cap <= 0 or space.fund_currency != campaign.currency:
        return 0
    held = await hold_escrow(session, campaign)
    paid = await unrefunded_by_pledge(session, campaign.id)
    matches = await matches_among(session, paid)
    # A sponsor's match is refunded its share of escrow, never from its own space's fund.
    shortfall = backers_shortfall(held, paid, matches) if matches else sum(paid.values()) - held
    topped_up = await session.scalar(
        select(LedgerTransaction.id).where(
            LedgerTransaction.kind == "fund_payout", LedgerTransaction.reference == f"fund:{campaign.id}"
        )
    )
    if topped_up is not None:
        return 0
    return fund_top_up(shortfall, await fund_balance(session, space), space.fund_cap)


async def top_up_from_fund(session: AsyncSession, campaign: Campaign) -> int:
    """Before a suspended campaign's refunds are worked out, its space's fund adds to its escrow what the backers
    would otherwise lose (what they paid less what escrow holds), up to the space's cap and what the fund holds
    (payments.money.fund_top_up). Returns the amount moved; once per campaign.

    Locks the space's row until the transaction ends, so two suspensions never spend the same fund, then the escrow
    account (hold_escrow), as every spending of escrow does.
    """
    amount = await fund_top_up_due(session, campaign)
    if amount <= 0:
        return 0
    recorded = await record(
        session,
        campaign.id,
        "fund_payout",
        f"fund:{campaign.id}",
        [("risk_fund", -amount), ("escrow", amount)],
        campaign.currency,
        f"the space's risk-compensation fund tops up the refunds of {campaign.title}",
    )
    return amount if recorded is not None else 0
