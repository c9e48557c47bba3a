"""The campaign's ledger as a CSV download: one row per entry, with its transaction's kind, reference and time.

Who may download it, and the audit row, come from campaigns.backers.start_export (the same people see the ledger).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.spreadsheet import escape_cell
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction

TRANSACTION_COLUMNS = (
    "transaction_id",
    "created_at",
    "kind",
    "reference",
    "pledge_id",
    "memo",
    "account",
    "amount",
    "currency",
)
ROWS_PER_FETCH = 1000


async def transactions_csv(session: AsyncSession, campaign_id: uuid.UUID) -> AsyncIterator[Sequence[str]]:
    """Every entry of the campaign's ledger as a row of TRANSACTION_COLUMNS, oldest transaction first; a transaction's
    rows sum to zero per currency. The amount is signed minor units: positive flows into the account."""
    result = await session.stream(
        select(
            LedgerTransaction.id,
            LedgerTransaction.created_at,
            LedgerTransaction.kind,
            LedgerTransaction.reference,
            LedgerTransaction.pledge_id,
            LedgerTransaction.memo,
            LedgerAccount.kind,
            LedgerEntry.amount,
            LedgerEntry.currency,
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.campaign_id == campaign_id)
        .order_by(LedgerTransaction.created_at, LedgerTransaction.id, LedgerAccount.kind, LedgerEntry.id)
        .execution_options(yield_per=ROWS_PER_FETCH)
    )
    async for row in result:
        ident, created_at, kind, reference, pledge_id, memo, account, amount, currency = row
        yield (
            str(ident),
            created_at.isoformat().replace("+00:00", "Z"),
            kind,
            escape_cell(reference),
            str(pledge_id) if pledge_id else "",
            escape_cell(memo),
            account,
            str(amount),
            currency,
        )
