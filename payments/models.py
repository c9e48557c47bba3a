"""Stripe customers and webhook events. The ledger and charges join them as the money work lands."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.models import Base, new_id


class StripeCustomer(Base):
    __tablename__ = "stripe_customers"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookEvent(Base):
    """Stored once per Stripe event id; only a new row enqueues work."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # What the sweep looks for: events whose job was lost or failed.
        Index("ix_webhook_events_unprocessed", "received_at", postgresql_where=text("processed_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


def _known(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# The books of a campaign (payments/ledger.py explains the sign convention).
LEDGER_ACCOUNT_KINDS = (
    "stripe_clearing",
    "escrow",
    "platform_fees",
    "sponsor_fees",
    "processor_fees",
    "maker_payable",
    "backer_refunds",
    "disputed",
    "dispute_losses",
    "risk_fund",
    "match_clearing",
)
# The outside world's side of a collection: a backer's card (stripe_clearing), or a sponsor's match (match_clearing,
# campaigns.matching), which is charged to the sponsor's card the same way and kept apart in the books.
CLEARING_ACCOUNTS = ("stripe_clearing", "match_clearing")
LEDGER_TRANSACTION_KINDS = (
    "pledge_collected",
    "platform_fee",
    "sponsor_fee",
    "processor_fee",
    "release",
    "refund",
    "dispute_opened",
    "dispute_won",
    "dispute_lost",
    "fund_contribution",
    "fund_payout",
)


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "kind", "currency", name="uq_ledger_accounts_campaign_kind_currency"),
        # The target of the entries' composite foreign key: an entry books to an account of its campaign and currency.
        UniqueConstraint("id", "campaign_id", "currency", name="uq_ledger_accounts_id_campaign_currency"),
        CheckConstraint(_known("kind", LEDGER_ACCOUNT_KINDS), name="kind_known"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    kind: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerTransaction(Base):
    """One movement of money. Its entries sum to zero per currency (checked by the database at commit), it is
    recorded once per (kind, reference), and neither it nor its entries can be changed or deleted."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        UniqueConstraint("kind", "reference", name="uq_ledger_transactions_kind_reference"),
        UniqueConstraint("id", "campaign_id", name="uq_ledger_transactions_id_campaign"),
        CheckConstraint(_known("kind", LEDGER_TRANSACTION_KINDS), name="kind_known"),
        Index("ix_ledger_transactions_campaign_id", "campaign_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    kind: Mapped[str] = mapped_column(String(30))
    reference: Mapped[str] = mapped_column(String(255))
    # The pledge whose money this is, for collections and refunds: what each backer paid comes from here.
    pledge_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pledges.id"), index=True)
    memo: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["transaction_id", "campaign_id"], ["ledger_transactions.id", "ledger_transactions.campaign_id"]
        ),
        ForeignKeyConstraint(
            ["account_id", "campaign_id", "currency"],
            ["ledger_accounts.id", "ledger_accounts.campaign_id", "ledger_accounts.currency"],
        ),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_ledger_entries_transaction_id", "transaction_id"),
        Index("ix_ledger_entries_account_id", "account_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    transaction_id: Mapped[uuid.UUID]
    campaign_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID]
    # Signed: positive flows into the account, negative out of it.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


MILESTONE_STATUSES = ("pending", "requested", "released", "cancelled")
# What must have happened before the maker may ask for a milestone's release.
MILESTONE_CONDITIONS = ("funded", "first_batch_confirmed", "shipping_done")


class Milestone(Base):
    """A share of the escrow the sponsoring space releases to the maker; its amount is fixed at release."""

    __tablename__ = "milestones"
    __table_args__ = (
        UniqueConstraint("campaign_id", "position", name="uq_milestones_campaign_position"),
        CheckConstraint(_known("status", MILESTONE_STATUSES), name="status_known"),
        CheckConstraint(_known("unlocks_on", MILESTONE_CONDITIONS), name="unlocks_on_known"),
        CheckConstraint("share_bps BETWEEN 1 AND 10000", name="share_range"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_nonnegative"),
        CheckConstraint(
            "(status = 'released') = (amount IS NOT NULL AND released_at IS NOT NULL)", name="amount_iff_released"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    share_bps: Mapped[int] = mapped_column(Integer)
    unlocks_on: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    amount: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    released_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


PAYOUT_STATUSES = ("pending", "paid")


class Payout(Base):
    """Money released to the maker and owed to them until it is paid (by bank transfer for now, outside Stripe)."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint(_known("status", PAYOUT_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "(status = 'paid') = (paid_at IS NOT NULL AND bank_reference IS NOT NULL)", name="paid_iff_dated"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    milestone_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("milestones.id"), unique=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    bank_reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    paid_at: Mapped[datetime | None]
    paid_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class ChargeTerms(Base):
    """What a successful campaign's charges are held to, fixed when it closes: the fees taken at collection, and how
    long a backer whose card failed has to give a new one. Later changes of the settings or the space's fee do not
    reach campaigns that already succeeded."""

    __tablename__ = "charge_terms"
    __table_args__ = (
        CheckConstraint("platform_fee_bps BETWEEN 0 AND 10000", name="platform_fee_range"),
        CheckConstraint("sponsor_fee_bps BETWEEN 0 AND 10000", name="sponsor_fee_range"),
        CheckConstraint("fund_share_bps BETWEEN 0 AND 10000", name="fund_share_range"),
        CheckConstraint("retry_window_seconds > 0", name="retry_window_positive"),
    )

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    platform_fee_bps: Mapped[int] = mapped_column(Integer)
    sponsor_fee_bps: Mapped[int] = mapped_column(Integer)
    # The share of the sponsor fee booked into the space's risk-compensation fund (payments.risk_fund).
    fund_share_bps: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_window_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


# started: recorded, and Stripe is being (or was about to be) called; unknown: the call failed in a way that may or
# may not have reached Stripe. Both are "in doubt": Stripe is asked (by metadata) before anything else happens.
CHARGE_ATTEMPT_STATUSES = ("started", "succeeded", "failed", "unknown")
IN_DOUBT_ATTEMPT_STATUSES = ("started", "unknown")


class ChargeAttempt(Base):
    """One off-session charge of a pledge, recorded before Stripe is called and finished with what Stripe said."""

    __tablename__ = "charge_attempts"
    __table_args__ = (
        UniqueConstraint("pledge_id", "attempt", name="uq_charge_attempts_pledge_attempt"),
        CheckConstraint(_known("status", CHARGE_ATTEMPT_STATUSES), name="status_known"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index(
            "ix_charge_attempts_in_doubt",
            "pledge_id",
            postgresql_where=text(_known("status", IN_DOUBT_ATTEMPT_STATUSES)),
        ),
        # The few settled as failed after too long in doubt, listed on the operators' escrow desk.
        Index(
            "ix_charge_attempts_doubt_expired", "finished_at", postgresql_where=text("failure_code = 'doubt_expired'")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The card this attempt charged: a pledge whose card failed is charged again only once it has another one.
    payment_method_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), server_default="started")
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]


REFUND_STATUSES = ("pending", "succeeded", "failed")


class Refund(Base):
    """Money to give back to a backer, recorded (with its amount fixed) before Stripe is asked, so that a crash can
    neither lose it nor pay it twice; `reference` names it in the ledger and in Stripe's idempotency key."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint(_known("status", REFUND_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), index=True)
    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"), index=True)
    reference: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_intent_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255))
    failure: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # When a job last asked Stripe for it: from then on it may have reached Stripe, so it is checked there first.
    attempted_at: Mapped[datetime | None]
    # When a job was last asked for; the sweep asks again for one whose message seems lost.
    requested_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # A refund of one pledge asked for by a person (an operator of the space, an admin): who, and why.
    requested_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class AddOnCharge(Base):
    """An add-on bought after the close and paid at once with the pledge's saved card: recorded (its units taken)
    before Stripe is called, with the idempotency key `pledge-item:<item_id>:charge` made of the line it will become;
    the line joins the pledge only when the charge succeeded (payments/add_on_charges.py). Or an address change's
    shipping difference, charged the same way (no add-on, no SKU, quantity 1, `shipping_fee` = `amount`): the
    address is saved and the shipping line grows only when it succeeded (payments/address_changes.py)."""

    __tablename__ = "add_on_charges"
    __table_args__ = (
        CheckConstraint(_known("status", CHARGE_ATTEMPT_STATUSES), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "(add_on_id IS NULL) = (address IS NOT NULL) AND (add_on_id IS NULL) = (sku IS NULL)",
            name="add_on_or_address",
        ),
        Index(
            "ix_add_on_charges_in_doubt",
            "created_at",
            postgresql_where=text(_known("status", IN_DOUBT_ATTEMPT_STATUSES)),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"), index=True)
    # The id the pledge's line takes once paid (no foreign key: a refused charge never makes the line).
    item_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    # The add-on bought; None for an address change's shipping difference (then `address` is the one it pays for).
    add_on_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("add_ons.id"))
    variant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("product_variants.id"))
    variant: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    sku: Mapped[str | None] = mapped_column(String(64))
    # An address change after funding that makes the shipping dearer: the address, saved once the charge succeeded.
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    shipping_fee: Mapped[int] = mapped_column(BigInteger, server_default="0")
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    # quantity × unit_amount + shipping_fee, what the card is charged.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    customer_id: Mapped[str] = mapped_column(String(255))
    payment_method_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), server_default="started")
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    # When the sweep last asked for a job to settle it (in doubt): it asks again only when that seems lost.
    requested_at: Mapped[datetime | None]
