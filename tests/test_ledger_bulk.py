"""payments.ledger.record_collections: many collected pledges booked at once, exactly as one by one."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments import ledger
from payments.models import LedgerTransaction
from tests.test_ledger import PLATFORM_BPS, SPONSOR_BPS, assert_invariant, collected_pledge, funded_campaign

# (amount, processor fee): an ordinary pledge, one without a processor fee, one whose fees exceed it.
COLLECTIONS = [(10_000, 320), (2_500, 0), (1_001, 95), (50, 60)]


async def kinds_booked(session: AsyncSession, campaign_id: object) -> dict[str, int]:
    rows = await session.execute(
        select(LedgerTransaction.kind, func.count())
        .where(LedgerTransaction.campaign_id == campaign_id)
        .group_by(LedgerTransaction.kind)
    )
    return {kind: count for kind, count in rows}


async def test_many_collections_booked_at_once_come_to_what_one_by_one_books(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        one_by_one = await funded_campaign(session)
        at_once = await funded_campaign(session)
        bulk = []
        for amount, processor_fee in COLLECTIONS:
            pledge = await collected_pledge(session, one_by_one, amount)
            await ledger.record_collection(
                session, one_by_one, pledge.id, amount, "USD", PLATFORM_BPS, SPONSOR_BPS, processor_fee
            )
            bulk.append(
                ledger.CollectedPledge((await collected_pledge(session, at_once, amount)).id, amount, processor_fee)
            )
        assert await ledger.record_collections(session, at_once, bulk, PLATFORM_BPS, SPONSOR_BPS) == len(bulk)
    async with sessions() as session:
        expected = await ledger.campaign_ledger(session, one_by_one.id)
        booked = await ledger.campaign_ledger(session, at_once.id)
        assert await kinds_booked(session, at_once.id) == await kinds_booked(session, one_by_one.id)
        paid = await ledger.paid_by_pledge(session, at_once.id)
    assert booked == expected and booked.collected == sum(amount for amount, _ in COLLECTIONS)
    assert_invariant(booked)
    assert list(paid.values()) == [amount for amount, _ in COLLECTIONS]


async def test_collections_booked_at_once_again_count_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
        first = await collected_pledge(session, campaign, 10_000)
        await ledger.record_collection(session, campaign, first.id, 10_000, "USD", PLATFORM_BPS, SPONSOR_BPS, 320)
        second = await collected_pledge(session, campaign, 4_000)
    both = [ledger.CollectedPledge(first.id, 10_000, 320), ledger.CollectedPledge(second.id, 4_000, 150)]
    async with sessions.begin() as session:
        assert await ledger.record_collections(session, campaign, both, PLATFORM_BPS, SPONSOR_BPS) == 1
    async with sessions.begin() as session:
        assert await ledger.record_collections(session, campaign, both, PLATFORM_BPS, SPONSOR_BPS) == 0
        summary = await ledger.campaign_ledger(session, campaign.id)
    assert summary.collected == 14_000 and summary.processor_fee == 320 + 150
    assert summary.platform_fee == 500 + 200 and summary.sponsor_fee == 300 + 120
