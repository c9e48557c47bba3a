from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge, Space, User
from payments import ledger
from payments.ledger import EscrowShort
from payments.milestones import create_milestones
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction, Milestone
from payments.money import fee

PLATFORM_BPS = 500
SPONSOR_BPS = 300


async def new_user(session: AsyncSession, name: str) -> User:
    user = User(email=f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com", name=name, password_hash="x" * 40)
    session.add(user)
    await session.flush()
    return user


async def funded_campaign(session: AsyncSession, *, currency: str = "USD") -> Campaign:
    maker = await new_user(session, "Maker")
    space = Space(
        name="Chaihuo", slug=f"chaihuo-{uuid.uuid4().hex[:8]}", city="Shenzhen", country="CN", sponsor_fee_bps=300
    )
    session.add(space)
    await session.flush()
    campaign = Campaign(
        slug=f"lamp-{uuid.uuid4().hex[:8]}",
        title="A lamp",
        summary="It glows.",
        currency=currency,
        goal=10_000,
        status="funded",
        space_id=space.id,
        maker_id=maker.id,
        duration_days=30,
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def collected_pledge(session: AsyncSession, campaign: Campaign, amount: int) -> Pledge:
    backer = await new_user(session, "Backer")
    pledge = Pledge(
        campaign_id=campaign.id, backer_id=backer.id, amount=amount, currency=campaign.currency, status="collected"
    )
    session.add(pledge)
    await session.flush()
    return pledge


async def collect(session: AsyncSession, campaign: Campaign, amount: int, processor_fee: int = 0) -> Pledge:
    pledge = await collected_pledge(session, campaign, amount)
    await ledger.record_collection(
        session, campaign, pledge.id, amount, campaign.currency, PLATFORM_BPS, SPONSOR_BPS, processor_fee
    )
    return pledge


def assert_invariant(summary: ledger.LedgerSummary) -> None:
    assert (
        summary.collected
        - summary.refunded
        - summary.platform_fee
        - summary.sponsor_fee
        - summary.processor_fee
        - summary.released
        == summary.escrow_held
    )


async def test_an_unbalanced_transaction_is_refused_by_the_database_at_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
    with pytest.raises(DBAPIError, match="unbalanced"):
        async with sessions.begin() as session:
            escrow = LedgerAccount(campaign_id=campaign.id, kind="escrow", currency="USD")
            clearing = LedgerAccount(campaign_id=campaign.id, kind="stripe_clearing", currency="USD")
            movement = LedgerTransaction(campaign_id=campaign.id, kind="pledge_collected", reference="lopsided")
            session.add_all([escrow, clearing, movement])
            await session.flush()
            session.add_all(
                [
                    LedgerEntry(
                        transaction_id=movement.id,
                        campaign_id=campaign.id,
                        account_id=escrow.id,
                        amount=1000,
                        currency="USD",
                    ),
                    LedgerEntry(
                        transaction_id=movement.id,
                        campaign_id=campaign.id,
                        account_id=clearing.id,
                        amount=-999,
                        currency="USD",
                    ),
                ]
            )
            await session.flush()  # accepted for now: the check is deferred to the commit
    async with sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM ledger_transactions")) == 0
        assert await session.scalar(text("SELECT count(*) FROM ledger_entries")) == 0


async def test_a_transaction_without_entries_is_refused_at_commit(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
    with pytest.raises(DBAPIError, match="no entries"):
        async with sessions.begin() as session:
            session.add(LedgerTransaction(campaign_id=campaign.id, kind="refund", reference="empty"))


async def test_each_currency_must_balance_on_its_own(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
    with pytest.raises(DBAPIError, match="unbalanced"):
        async with sessions.begin() as session:
            usd = LedgerAccount(campaign_id=campaign.id, kind="escrow", currency="USD")
            eur = LedgerAccount(campaign_id=campaign.id, kind="stripe_clearing", currency="EUR")
            movement = LedgerTransaction(campaign_id=campaign.id, kind="pledge_collected", reference="two-currencies")
            session.add_all([usd, eur, movement])
            await session.flush()
            for account, amount in ((usd, 500), (eur, -500)):
                session.add(
                    LedgerEntry(
                        transaction_id=movement.id,
                        campaign_id=campaign.id,
                        account_id=account.id,
                        amount=amount,
                        currency=account.currency,
                    )
                )


async def test_an_entry_cannot_book_to_another_campaigns_account(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        mine = await funded_campaign(session)
        theirs = await funded_campaign(session)
        await collect(session, theirs, 1000)
        their_escrow = await session.scalar(
            text("SELECT id FROM ledger_accounts WHERE campaign_id = :c AND kind = 'escrow'"), {"c": theirs.id}
        )
    with pytest.raises(DBAPIError, match="foreign key"):
        async with sessions.begin() as session:
            movement = LedgerTransaction(campaign_id=mine.id, kind="refund", reference="cross-campaign")
            session.add(movement)
            await session.flush()
            session.add(
                LedgerEntry(
                    transaction_id=movement.id, campaign_id=mine.id, account_id=their_escrow, amount=-5, currency="USD"
                )
            )
            await session.flush()


async def test_the_ledger_is_append_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
        await collect(session, campaign, 2500)
    refusals = [
        update(LedgerEntry).values(amount=LedgerEntry.amount * 2),
        delete(LedgerEntry),
        update(LedgerTransaction).values(memo="rewritten"),
        delete(LedgerTransaction),
    ]
    for statement in refusals:
        with pytest.raises(DBAPIError, match="append-only"):
            async with sessions.begin() as session:
                await session.execute(statement)
    async with sessions() as session:
        summary = await ledger.campaign_ledger(session, campaign.id)
    assert summary.collected == 2500


async def test_a_collection_recorded_twice_counts_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
        pledge = await collect(session, campaign, 10_000, processor_fee=320)
    async with sessions.begin() as session:
        again = await ledger.record_collection(
            session, campaign, pledge.id, 10_000, "USD", PLATFORM_BPS, SPONSOR_BPS, processor_fee=320
        )
        assert again is None
        summary = await ledger.campaign_ledger(session, campaign.id)
    assert summary.collected == 10_000
    assert (summary.platform_fee, summary.sponsor_fee, summary.processor_fee) == (500, 300, 320)
    assert summary.escrow_held == 10_000 - 500 - 300 - 320
    assert summary.pledged == 10_000


async def test_a_collection_in_another_currency_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session, currency="CNY")
        pledge = await collected_pledge(session, campaign, 500)
        with pytest.raises(ValueError, match="CNY"):
            await ledger.record_collection(session, campaign, pledge.id, 500, "USD", 500, 300, 0)


async def test_the_invariant_holds_after_collections_releases_and_refunds(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    amounts = [2_500, 9_999, 1_001, 50_000, 333]
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
        pledges = [await collect(session, campaign, amount, processor_fee=30 + amount // 40) for amount in amounts]
        summary = await ledger.campaign_ledger(session, campaign.id)
        assert_invariant(summary)
        milestones = await create_milestones(session, campaign)

        first = milestones[0]
        first_amount = summary.escrow_held // 2
        await session.execute(
            update(Milestone)
            .where(Milestone.id == first.id)
            .values(status="released", amount=first_amount, released_at=text("now()"))
        )
        await session.refresh(first)
        await ledger.record_release(session, campaign, first)
        assert await ledger.record_release(session, campaign, first) is None
        assert_invariant(await ledger.campaign_ledger(session, campaign.id))

        await ledger.record_refund(session, campaign, "re_partial", 1_000, pledge_id=pledges[1].id)
        assert await ledger.record_refund(session, campaign, "re_partial", 1_000, pledge_id=pledges[1].id) is None
        summary = await ledger.campaign_ledger(session, campaign.id)
        assert_invariant(summary)

        with pytest.raises(EscrowShort):
            await ledger.record_refund(session, campaign, "re_too_much", summary.escrow_held + 1)

    async with sessions.begin() as session:
        summary = await ledger.campaign_ledger(session, campaign.id)
        fees = [fee(a, PLATFORM_BPS) for a in amounts], [fee(a, SPONSOR_BPS) for a in amounts]
        assert summary.collected == sum(amounts)
        assert summary.platform_fee == sum(fees[0])
        assert summary.sponsor_fee == sum(fees[1])
        assert summary.processor_fee == sum(30 + a // 40 for a in amounts)
        assert summary.released == first_amount
        assert summary.refunded == 1_000
        assert_invariant(summary)

        paid = await ledger.paid_by_pledge(session, campaign.id)
        assert list(paid) == [p.id for p in pledges]
        assert paid[pledges[1].id] == amounts[1] - 1_000

        due = await ledger.escrow_refunds_due(session, campaign)
        assert sum(due.values()) == summary.escrow_held
        assert all(0 < due[p] <= paid[p] for p in due)
        for pledge_id, amount in due.items():
            await ledger.record_refund(session, campaign, f"suspension:{pledge_id}", amount, pledge_id=pledge_id)

    async with sessions() as session:
        summary = await ledger.campaign_ledger(session, campaign.id)
    assert summary.escrow_held == 0
    assert summary.refunded == 1_000 + sum(due.values())
    assert_invariant(summary)


async def test_a_campaign_without_movements_has_empty_books(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        campaign = await funded_campaign(session)
        summary = await ledger.campaign_ledger(session, campaign.id)
    assert summary == ledger.LedgerSummary("USD", 0, 0, 0, 0, 0, 0, 0, 0)
