"""The escrow ledger: double-entry books per campaign, from which every balance is derived.

Sign convention. An entry's amount is what flowed into its account (positive) or out of it (negative); moving X from
account A to account B is one transaction with the entries A: -X and B: +X. An account's balance is the sum of its
entries. So escrow, the three fee accounts, the maker's payable and backer refunds hold positive balances (what they
have received), and the Stripe clearing account is the outside world's side: it goes negative by exactly what was
collected. Every transaction sums to zero per currency (the database refuses any other at commit), so the balances of
a campaign's accounts always sum to zero, which is the invariant of API.md:

    collected - refunded - platform_fee - sponsor_fee - processor_fee - released == escrow_held

extended by disputes (payments.disputes) to

    collected - refunded - platform_fee - sponsor_fee - processor_fee - released - disputed - dispute_lost
        == escrow_held

which is the first one whenever the campaign has never been disputed.

The movements:
    pledge_collected   stripe_clearing -> escrow          the gross amount of a collected pledge
    pledge_collected   match_clearing -> escrow           the same, of a sponsor's match (campaigns.matching): the
                                                          match's own account, counted in `collected` beside the
                                                          backers' (`matched` says how much of it), so the identity
                                                          below holds as written
    platform_fee       escrow -> platform_fees            } taken from each collected pledge
    sponsor_fee        escrow -> sponsor_fees             } (payments.money.split_collection)
    processor_fee      escrow -> processor_fees           } what Stripe kept
    release            escrow -> maker_payable            a released milestone
    refund             escrow -> backer_refunds           money given back to a backer
    platform_fee       platform_fees -> escrow            Stripe's fee on a charge given back whole, borne by the
                                                          platform (record_fee_borne_by_platform)
    dispute_opened     escrow -> disputed                 a backer's bank took a charge back (a chargeback)
    dispute_won        disputed -> escrow                 the dispute was decided for us: the money is back
    dispute_lost       disputed -> dispute_losses         the dispute was lost: the money is gone for good
    fund_contribution  escrow -> risk_fund                the share of the sponsor fee paid into the space's
                                                          risk-compensation fund (payments.risk_fund)
    fund_payout        risk_fund -> escrow                the space's fund tops up a suspended campaign's refunds

A campaign's `risk_fund` account is its position with its space's fund: what its collections paid in less what its
backers drew. The fund's balance is the sum of these accounts over the space's campaigns in the fund's currency. The
part paid in is part of the sponsor's fee, so `sponsor_fee` counts it and API.md's identity holds as written; what the
fund paid out to a campaign (`fund_topped_up`) extends the identity once more:

    collected + fund_topped_up - refunded - platform_fee - sponsor_fee - processor_fee - released - disputed
        - dispute_lost == escrow_held

which is the one above whenever the fund has not topped up the campaign's refunds.

A dispute is borne by the campaign: its money comes out of escrow, so out of what is still to be released to the
maker, never out of the platform's or the sponsor's fees (those stay taken, as they do for a refund). Should escrow
hold less than the disputed amount (everything released already), escrow goes below zero: nothing more is released or
refunded from it until a won dispute brings money back.

The maker's payable account holds everything released to the maker; whether a release has reached their bank is
the payout's business (payments.models.Payout), not the ledger's.

The ledger is append-only (the database refuses UPDATE and DELETE): a mistake is corrected by a new transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from campaigns.access import visible_campaign
from campaigns.errors import Conflict, NotAllowed, NotFound
from campaigns.lifecycle import INSIDERS, Role
from campaigns.matching import pledged_and_backers
from campaigns.models import Campaign, Pledge, User
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES
from payments.models import (
    CLEARING_ACCOUNTS,
    LEDGER_ACCOUNT_KINDS,
    LEDGER_TRANSACTION_KINDS,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Milestone,
    Refund,
)
from payments.money import fund_contribution, pro_rata_refunds, refunds_with_match, split_collection

# Campaigns whose public ledger is open: successful or later.
PUBLIC_LEDGER_STATUSES = ("successful", "funded", "fulfilling", "fulfilled", "suspended")

Entry = tuple[str, int]


class EscrowShort(Conflict):
    type = "escrow-short"
    title = "Escrow does not hold that much"


class LedgerNotPublic(Conflict):
    type = "ledger-not-public"
    title = "The public ledger opens once the campaign has succeeded"


@dataclass(frozen=True)
class LedgerSummary:
    currency: str
    pledged: int
    collected: int
    refunded: int
    platform_fee: int
    sponsor_fee: int
    processor_fee: int
    released: int
    escrow_held: int
    disputed: int = 0
    dispute_lost: int = 0
    # Of the sponsor fee, what went into the space's risk-compensation fund; and what the fund added to refunds.
    fund_contributed: int = 0
    fund_topped_up: int = 0
    # Of `collected`, what sponsors' matches paid (the `match_clearing` account; campaigns.matching).
    matched: int = 0

    @property
    def fees(self) -> int:
        return self.platform_fee + self.sponsor_fee + self.processor_fee


@dataclass(frozen=True)
class Movement:
    """One ledger transaction to record: its kind, its entries of (account kind, signed amount) and its memo."""

    kind: str
    entries: Sequence[Entry]
    memo: str = ""


async def record(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    kind: str,
    reference: str,
    entries: Sequence[Entry],
    currency: str,
    memo: str = "",
    *,
    pledge_id: uuid.UUID | None = None,
    accounts: Mapping[str, uuid.UUID] | None = None,
) -> LedgerTransaction | None:
    """Record one movement once: a transaction of `kind` for `reference` with `entries` of (account kind, signed
    amount). Returns None, and changes nothing, when (kind, reference) is already recorded.

    Entries of zero are left out. The entries must sum to zero; the database checks it again at commit. `accounts`:
    the campaign's account ids by kind in this currency (`_accounts`), when the caller has them already.
    """
    recorded = await record_together(
        session,
        campaign_id,
        reference,
        [Movement(kind, entries, memo)],
        currency,
        pledge_id=pledge_id,
        accounts=accounts,
    )
    return recorded[0] if recorded else None


async def record_together(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    reference: str,
    movements: Sequence[Movement],
    currency: str,
    *,
    pledge_id: uuid.UUID | None = None,
    accounts: Mapping[str, uuid.UUID] | None = None,
) -> list[LedgerTransaction]:
    """`record` for several movements of one reference, in two statements whatever their number: one for their
    transactions, one for all their entries. Each kind is recorded once for the reference: one recorded already
    is left out. Returns the transactions recorded now."""
    lines = {movement.kind: _checked_lines(movement) for movement in movements}
    if len(lines) != len(movements):
        raise ValueError(f"two movements of one kind for {reference}: {[m.kind for m in movements]}")
    recorded = list(
        await session.scalars(
            insert(LedgerTransaction)
            .values(
                [
                    {
                        "campaign_id": campaign_id,
                        "kind": movement.kind,
                        "reference": reference,
                        "pledge_id": pledge_id,
                        "memo": movement.memo,
                    }
                    for movement in movements
                ]
            )
            .on_conflict_do_nothing(index_elements=[LedgerTransaction.kind, LedgerTransaction.reference])
            .returning(LedgerTransaction)
        )
    )
    if not recorded:
        return []
    needed = {account for transaction in recorded for account, _ in lines[transaction.kind]}
    if accounts is None or any(account not in accounts for account in needed):
        accounts = await _accounts(session, campaign_id, currency, needed)
    await session.execute(
        insert(LedgerEntry),
        [
            {
                "transaction_id": transaction.id,
                "campaign_id": campaign_id,
                "account_id": accounts[account],
                "amount": amount,
                "currency": currency,
            }
            for transaction in recorded
            for account, amount in lines[transaction.kind]
        ],
    )
    order = [movement.kind for movement in movements]
    return sorted(recorded, key=lambda transaction: order.index(transaction.kind))


def _checked_lines(movement: Movement) -> list[Entry]:
    """The movement's entries that are not zero, checked: known kinds and accounts, at least one, summing to zero."""
    kind = movement.kind
    if kind not in LEDGER_TRANSACTION_KINDS:
        raise ValueError(f"unknown ledger transaction kind {kind!r}")
    lines = [(account, amount) for account, amount in movement.entries if amount != 0]
    unknown = {account for account, _ in lines} - set(LEDGER_ACCOUNT_KINDS)
    if unknown:
        raise ValueError(f"unknown ledger accounts {sorted(unknown)}")
    if not lines:
        raise ValueError(f"a {kind} transaction needs at least one entry that is not zero")
    if sum(amount for _, amount in lines) != 0:
        raise ValueError(f"a {kind} transaction must sum to zero: {lines}")
    return lines


# The account ids each transaction (or savepoint) has looked up, by (campaign, currency): an account opened in a
# transaction that is rolled back must not be remembered past it.
_known_accounts: WeakKeyDictionary[SessionTransaction, dict[tuple[uuid.UUID, str], dict[str, uuid.UUID]]] = (
    WeakKeyDictionary()
)


async def _accounts(
    session: AsyncSession, campaign_id: uuid.UUID, currency: str, kinds: set[str]
) -> dict[str, uuid.UUID]:
    """The ids of the campaign's accounts of `kinds` in `currency`, opening those it does not have yet. Accounts
    are never closed, so what this transaction has looked up already is not asked again."""
    transaction = session.sync_session.get_nested_transaction() or session.sync_session.get_transaction()
    known = _known_accounts.setdefault(transaction, {}) if transaction is not None else {}
    found = known.setdefault((campaign_id, currency), {})
    if not kinds <= found.keys():
        await session.execute(
            insert(LedgerAccount)
            .values([{"campaign_id": campaign_id, "kind": kind, "currency": currency} for kind in sorted(kinds)])
            .on_conflict_do_nothing(
                index_elements=[LedgerAccount.campaign_id, LedgerAccount.kind, LedgerAccount.currency]
            )
        )
        rows = await session.execute(
            select(LedgerAccount.kind, LedgerAccount.id).where(
                LedgerAccount.campaign_id == campaign_id,
                LedgerAccount.currency == currency,
                LedgerAccount.kind.in_(kinds),
            )
        )
        found.update({kind: account_id for kind, account_id in rows})
    return {kind: found[kind] for kind in kinds}


async def hold_escrow(session: AsyncSession, campaign: Campaign) -> int:
    """Lock the campaign's escrow account until this transaction ends and return what it holds that may still be
    spent: its balance less the refunds promised and not yet booked (pending), never below zero.

    Whatever takes money out of escrow (a release, a refund, a dispute) holds this lock while it decides how much, so
    two of them never spend the same money.
    """
    accounts = await _accounts(session, campaign.id, campaign.currency, {"escrow"})
    await session.execute(select(LedgerAccount.id).where(LedgerAccount.id == accounts["escrow"]).with_for_update())
    held = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == accounts["escrow"])
    )
    promised = sum((await pending_refunds(session, campaign.id)).values())
    return max(0, int(held or 0) - promised)


async def pending_refunds(session: AsyncSession, campaign_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """The refunds recorded and not yet booked (Stripe not asked, or not answered yet), summed per pledge."""
    rows = await session.execute(
        select(Refund.pledge_id, func.sum(Refund.amount))
        .where(Refund.campaign_id == campaign_id, Refund.status == "pending")
        .group_by(Refund.pledge_id)
    )
    return {pledge_id: int(amount) for pledge_id, amount in rows}


async def _is_recorded(session: AsyncSession, kind: str, reference: str) -> bool:
    found = await session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.kind == kind, LedgerTransaction.reference == reference)
    )
    return found is not None


async def _take_from_escrow(
    session: AsyncSession,
    campaign: Campaign,
    kind: str,
    reference: str,
    to_account: str,
    amount: int,
    memo: str,
    *,
    pledge_id: uuid.UUID | None = None,
) -> LedgerTransaction | None:
    if amount <= 0:
        raise ValueError(f"a {kind} must move a positive amount, got {amount}")
    held = await hold_escrow(session, campaign)
    if await _is_recorded(session, kind, reference):
        return None
    if amount > held:
        raise EscrowShort(f"Escrow holds {held} {campaign.currency}; it cannot pay out {amount}.")
    return await record(
        session,
        campaign.id,
        kind,
        reference,
        [("escrow", -amount), (to_account, amount)],
        campaign.currency,
        memo,
        pledge_id=pledge_id,
    )


async def record_collection(
    session: AsyncSession,
    campaign: Campaign,
    pledge_id: uuid.UUID,
    amount: int,
    currency: str,
    platform_bps: int,
    sponsor_bps: int,
    processor_fee: int,
    *,
    fund_share_bps: int = 0,
    reference: str | None = None,
    clearing: str = "stripe_clearing",
) -> LedgerTransaction | None:
    """Book a collected pledge: its gross amount from Stripe into escrow, then the platform, sponsor and processor
    fees out of escrow (payments.money.split_collection), each its own transaction referenced by the pledge id (or
    by `reference`: a line charged on its own after the close, payments/add_on_charges.py); the fund's share of the
    sponsor fee (`fund_share_bps`) goes to the space's risk-compensation fund instead.

    `processor_fee` is the fee on Stripe's balance transaction, in the charge's currency (0 when there is none).
    Recording the same pledge again changes nothing and returns None. `clearing` is where the money came from:
    `match_clearing` for a sponsor's match (campaigns.matching), else the backer's card.
    """
    if clearing not in CLEARING_ACCOUNTS:
        raise ValueError(f"{clearing} is not a clearing account")
    if currency != campaign.currency:
        raise ValueError(f"pledge {pledge_id} was collected in {currency}, the campaign counts in {campaign.currency}")
    reference = reference or str(pledge_id)
    fees = _fee_lines(amount, platform_bps, sponsor_bps, processor_fee, fund_share_bps)
    # Every account this collection moves money through, opened and looked up at once.
    kinds = {clearing, "escrow"} | {account for _, account, charged in fees if charged}
    accounts = await _accounts(session, campaign.id, currency, kinds)
    collected = await record(
        session,
        campaign.id,
        "pledge_collected",
        reference,
        [(clearing, -amount), ("escrow", amount)],
        currency,
        f"{'match' if clearing == 'match_clearing' else 'pledge'} {pledge_id} collected",
        pledge_id=pledge_id,
        accounts=accounts,
    )
    if collected is None:
        return None
    charged_fees = [
        Movement(kind, [("escrow", -charged), (account, charged)], f"{kind.replace('_', ' ')} on pledge {pledge_id}")
        for kind, account, charged in fees
        if charged
    ]
    if charged_fees:
        await record_together(
            session, campaign.id, reference, charged_fees, currency, pledge_id=pledge_id, accounts=accounts
        )
    return collected


def _fee_lines(
    amount: int, platform_bps: int, sponsor_bps: int, processor_fee: int, fund_share_bps: int
) -> tuple[tuple[str, str, int], ...]:
    """(transaction kind, account, amount) of what a collection takes out of escrow."""
    split = split_collection(amount, platform_bps, sponsor_bps, processor_fee)
    to_fund = fund_contribution(split.sponsor_fee, fund_share_bps)
    return (
        ("platform_fee", "platform_fees", split.platform_fee),
        ("sponsor_fee", "sponsor_fees", split.sponsor_fee - to_fund),
        ("fund_contribution", "risk_fund", to_fund),
        ("processor_fee", "processor_fees", split.processor_fee),
    )


@dataclass(frozen=True)
class CollectedPledge:
    """One collected pledge for `record_collections`: its gross amount and what Stripe kept of it."""

    pledge_id: uuid.UUID
    amount: int
    processor_fee: int


async def record_collections(
    session: AsyncSession,
    campaign: Campaign,
    collections: Sequence[CollectedPledge],
    platform_bps: int,
    sponsor_bps: int,
    *,
    fund_share_bps: int = 0,
) -> int:
    """`record_collection` for many pledges of one campaign at once, booked exactly as it books each one, in four
    statements whatever their number (for loading many collected pledges, as the demo does). A pledge whose
    collection is recorded already is left out, fees and all. Returns how many collections were recorded now."""
    if not collections:
        return 0
    currency = campaign.currency
    kinds = {"stripe_clearing", "escrow", "platform_fees", "sponsor_fees", "processor_fees"}
    accounts = await _accounts(session, campaign.id, currency, kinds | ({"risk_fund"} if fund_share_bps else set()))
    by_reference = {str(collection.pledge_id): collection for collection in collections}
    collected = await _record_many(
        session,
        campaign.id,
        currency,
        accounts,
        [
            (
                str(c.pledge_id),
                c.pledge_id,
                Movement(
                    "pledge_collected",
                    [("stripe_clearing", -c.amount), ("escrow", c.amount)],
                    f"pledge {c.pledge_id} collected",
                ),
            )
            for c in collections
        ],
    )
    fees: list[tuple[str, uuid.UUID, Movement]] = []
    for reference in collected:
        c = by_reference[reference]
        for kind, account, charged in _fee_lines(c.amount, platform_bps, sponsor_bps, c.processor_fee, fund_share_bps):
            if charged:
                memo = f"{kind.replace('_', ' ')} on pledge {c.pledge_id}"
                fees.append((reference, c.pledge_id, Movement(kind, [("escrow", -charged), (account, charged)], memo)))
    await _record_many(session, campaign.id, currency, accounts, fees)
    return len(collected)


async def _record_many(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    currency: str,
    accounts: Mapping[str, uuid.UUID],
    movements: Sequence[tuple[str, uuid.UUID | None, Movement]],
) -> list[str]:
    """Record movements of (reference, pledge id, movement) in two statements, each (kind, reference) once; returns
    the references of the transactions recorded now, in the order given."""
    if not movements:
        return []
    lines = {(movement.kind, reference): _checked_lines(movement) for reference, _, movement in movements}
    recorded = list(
        await session.execute(
            insert(LedgerTransaction)
            .values(
                [
                    {
                        "campaign_id": campaign_id,
                        "kind": movement.kind,
                        "reference": reference,
                        "pledge_id": pledge_id,
                        "memo": movement.memo,
                    }
                    for reference, pledge_id, movement in movements
                ]
            )
            .on_conflict_do_nothing(index_elements=[LedgerTransaction.kind, LedgerTransaction.reference])
            .returning(LedgerTransaction.id, LedgerTransaction.kind, LedgerTransaction.reference)
        )
    )
    if not recorded:
        return []
    await session.execute(
        insert(LedgerEntry),
        [
            {
                "transaction_id": transaction_id,
                "campaign_id": campaign_id,
                "account_id": accounts[account],
                "amount": amount,
                "currency": currency,
            }
            for transaction_id, kind, reference in recorded
            for account, amount in lines[(kind, reference)]
        ],
    )
    new = {reference for _, _, reference in recorded}
    return [reference for reference, _, _ in movements if reference in new]


async def record_fee_borne_by_platform(
    session: AsyncSession, campaign: Campaign, pledge_id: uuid.UUID, reference: str, fee: int
) -> LedgerTransaction | None:
    """The platform pays Stripe's fee on a charge it gives back whole (one that slipped through while its campaign
    was being suspended): the fee moves from the platform's fees back into escrow, which then holds the whole amount
    to refund. A `platform_fee` transaction the other way round, so the platform's fees go down by what it bore and
    API.md's identity holds as it is. Once per `reference`."""
    if fee <= 0:
        raise ValueError(f"the platform bears a positive fee, not {fee}")
    return await record(
        session,
        campaign.id,
        "platform_fee",
        f"fee-borne:{reference}",
        [("platform_fees", -fee), ("escrow", fee)],
        campaign.currency,
        f"processor fee on pledge {pledge_id} borne by the platform",
        pledge_id=pledge_id,
    )


async def record_release(session: AsyncSession, campaign: Campaign, milestone: Milestone) -> LedgerTransaction | None:
    """Move a released milestone's amount from escrow to the maker's payable account, once per milestone."""
    if milestone.amount is None:
        raise ValueError(f"milestone {milestone.id} has no amount fixed yet")
    return await _take_from_escrow(
        session,
        campaign,
        "release",
        str(milestone.id),
        "maker_payable",
        milestone.amount,
        f"milestone {milestone.position + 1} released: {milestone.name}",
    )


async def record_refund(
    session: AsyncSession,
    campaign: Campaign,
    refund_reference: str,
    amount: int,
    *,
    pledge_id: uuid.UUID | None = None,
) -> LedgerTransaction | None:
    """Move `amount` from escrow to backer refunds, once per `refund_reference` (the Stripe refund id, say).

    Pass the refunded pledge's id so that what each backer paid stays known (paid_by_pledge). Raises EscrowShort
    when escrow holds less than `amount`; returns None when the reference is already recorded.
    """
    return await _take_from_escrow(
        session,
        campaign,
        "refund",
        refund_reference,
        "backer_refunds",
        amount,
        f"refund {refund_reference}",
        pledge_id=pledge_id,
    )


async def campaign_ledger(session: AsyncSession, campaign_id: uuid.UUID) -> LedgerSummary:
    """The campaign's figures, summed from its entries in the campaign's currency in one query."""

    def balance(kind: str) -> ColumnElement[int]:
        return func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerAccount.kind == kind), 0)

    # The fund's account takes contributions in (positive entries) and pays top-ups out (negative ones).
    fund = LedgerAccount.kind == "risk_fund"
    fund_in = func.coalesce(func.sum(LedgerEntry.amount).filter(fund & (LedgerEntry.amount > 0)), 0)
    fund_out = func.coalesce(func.sum(-LedgerEntry.amount).filter(fund & (LedgerEntry.amount < 0)), 0)

    pledged = (
        select(pledged_and_backers()[0])
        .where(Pledge.campaign_id == Campaign.id, Pledge.status.in_(COUNTED_PLEDGE_STATUSES))
        .scalar_subquery()
    )
    query = (
        select(
            Campaign.currency,
            pledged,
            balance("stripe_clearing"),
            balance("backer_refunds"),
            balance("platform_fees"),
            balance("sponsor_fees"),
            balance("processor_fees"),
            balance("maker_payable"),
            balance("escrow"),
            balance("disputed"),
            balance("dispute_losses"),
            fund_in,
            fund_out,
            balance("match_clearing"),
        )
        .select_from(Campaign)
        .outerjoin(
            LedgerAccount, (LedgerAccount.campaign_id == Campaign.id) & (LedgerAccount.currency == Campaign.currency)
        )
        .outerjoin(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(Campaign.id == campaign_id)
        .group_by(Campaign.id)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound("No such campaign.")
    currency, pledged_sum, clearing, refunded, platform, sponsor, processor, released, escrow, disputed, lost = row[:11]
    contributed, topped_up, matched = int(row[11]), int(row[12]), -int(row[13])
    return LedgerSummary(
        currency=currency,
        pledged=int(pledged_sum),
        collected=-int(clearing) + matched,
        refunded=int(refunded),
        platform_fee=int(platform),
        sponsor_fee=int(sponsor) + contributed,
        processor_fee=int(processor),
        released=int(released),
        escrow_held=int(escrow),
        disputed=int(disputed),
        dispute_lost=int(lost),
        fund_contributed=contributed,
        fund_topped_up=topped_up,
        matched=matched,
    )


async def paid_by_pledge(session: AsyncSession, campaign_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """What each backer has paid and not had back, per pledge in arrival order: collected minus refunded, minus
    what their bank holds in an open dispute or took in a lost one."""
    paid = -func.sum(LedgerEntry.amount)
    rows = await session.execute(
        select(LedgerTransaction.pledge_id, paid)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(Pledge, Pledge.id == LedgerTransaction.pledge_id)
        .where(
            LedgerTransaction.campaign_id == campaign_id,
            LedgerAccount.kind.in_((*CLEARING_ACCOUNTS, "backer_refunds", "disputed", "dispute_losses")),
        )
        .group_by(LedgerTransaction.pledge_id, Pledge.number)
        .order_by(Pledge.number)
    )
    return {pledge_id: int(amount) for pledge_id, amount in rows if pledge_id is not None}


async def escrow_refunds_due(session: AsyncSession, campaign: Campaign) -> dict[uuid.UUID, int]:
    """What each pledge gets back when the campaign is suspended: all the escrow still held, pro rata to what each
    backer paid (payments.money.pro_rata_refunds; pledges without a refund due are left out).

    It locks the escrow account (hold_escrow) for the rest of the transaction, so no release slips in between;
    record each refund with record_refund(..., pledge_id=...) in the same transaction.
    """
    held = await hold_escrow(session, campaign)
    paid = await unrefunded_by_pledge(session, campaign.id)
    matches = await matches_among(session, paid)
    if matches:
        # The space's fund tops up its backers' refunds, never its own match (payments.money.refunds_with_match).
        topped_up = await fund_topped_up(session, campaign.id)
        due = refunds_with_match(max(0, held - topped_up), topped_up, paid, matches)
    else:
        due = pro_rata_refunds(min(held, sum(paid.values())), paid)
    return {pledge_id: amount for pledge_id, amount in due.items() if amount > 0}


async def unrefunded_by_pledge(session: AsyncSession, campaign_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """What each pledge paid and has not had back nor been promised back (pending refunds), in arrival order."""
    promised = await pending_refunds(session, campaign_id)
    return {
        pledge_id: max(0, amount - promised.get(pledge_id, 0))
        for pledge_id, amount in (await paid_by_pledge(session, campaign_id)).items()
    }


async def matches_among(session: AsyncSession, pledge_ids: Collection[uuid.UUID]) -> frozenset[uuid.UUID]:
    """Those of `pledge_ids` that are a sponsor's match (campaigns.matching)."""
    if not pledge_ids:
        return frozenset()
    return frozenset(await session.scalars(select(Pledge.id).where(Pledge.id.in_(list(pledge_ids)), Pledge.is_match)))


async def fund_topped_up(session: AsyncSession, campaign_id: uuid.UUID) -> int:
    """What the space's fund has added to the campaign's escrow (its `fund_payout`s)."""
    added = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.campaign_id == campaign_id,
            LedgerTransaction.kind == "fund_payout",
            LedgerAccount.kind == "escrow",
        )
    )
    return int(added or 0)


# Who may read the books.


async def books_for(
    session: AsyncSession, campaign_id: uuid.UUID | str, user: User
) -> tuple[Campaign, frozenset[Role]]:
    """The campaign whose books `user` may read (its maker, the operators of its space, admins), with their roles.
    Anyone else learns that a public campaign exists (NotAllowed) but not that a draft does (NotFound)."""
    campaign, roles = await visible_campaign(session, campaign_id, user)
    if not roles & INSIDERS:
        raise NotAllowed("Only the maker, the sponsoring space's operators and admins see these books.")
    return campaign, roles


async def public_books_for(session: AsyncSession, campaign_id: uuid.UUID | str) -> Campaign:
    """The campaign whose public ledger anyone may read: successful or later."""
    campaign, _ = await visible_campaign(session, campaign_id, None)
    if campaign.status not in PUBLIC_LEDGER_STATUSES:
        raise LedgerNotPublic(f"The campaign is {campaign.status}; its ledger opens once it has succeeded.")
    return campaign
