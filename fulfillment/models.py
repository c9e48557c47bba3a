"""The tables of fulfillment: manufacturing batches, which batch makes each pledge's items and on which batch's shipping
list its package goes, shipments with their tracking numbers, and the address surveys sent to backers.

A confirmed batch never changes: the database refuses to edit or delete it and the allocations it makes (triggers in
alembic/versions/0005_fulfillment.py).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, ForeignKeyConstraint, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.models import Base, new_id

BATCH_STATUSES = ("planned", "confirmed", "in_production", "shipped")


class Batch(Base):
    """One manufacturing order: `units` per SKU for the pledges it holds, plus `spares` per SKU for defects."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number", name="uq_batches_campaign_number"),
        # What an allocation's one foreign key to its batch refers to: the batch and its campaign together.
        UniqueConstraint("id", "campaign_id", name="uq_batches_id_campaign"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in BATCH_STATUSES)})", name="status_known"),
        CheckConstraint("(status = 'planned') = (confirmed_at IS NULL)", name="confirmed_iff_not_planned"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), server_default="planned")
    units: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    spares: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    confirmed_at: Mapped[datetime | None]
    production_started_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]


class Allocation(Base):
    """A pledge's place in fulfillment: the batch that makes its items (exactly one: the primary key), and the batch
    whose shipping list carries its package, null while it is held back for want of an address.

    The two differ for a late address: the pledge's batch was confirmed without it, so its package joins the list of
    the next batch still open.
    """

    __tablename__ = "allocations"
    __table_args__ = (
        # One key for the batch and its campaign: an allocation is always of its batch's campaign, and each row
        # written costs one check of the two, not two (a campaign's first plan writes 100,000 rows).
        ForeignKeyConstraint(
            ["batch_id", "campaign_id"],
            ["batches.id", "batches.campaign_id"],
            name="fk_allocations_batch_id_batches",
            ondelete="CASCADE",
        ),
    )

    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"), primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(index=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(index=True)
    list_batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"), index=True)


class Shipment(Base):
    """A package that left: one per pledge, with the carrier's tracking number (corrected by a later upload)."""

    __tablename__ = "shipments"

    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"), primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str] = mapped_column(String(64))
    shipped_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AddressRequest(Base):
    """The address survey sent for a pledge (once), and the one reminder when the address is still missing."""

    __tablename__ = "address_requests"

    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"), primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    surveyed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    reminded_at: Mapped[datetime | None]


class PlanRequest(Base):
    """A campaign whose pledges' contents changed since its plan was made (an add-on, a variant, after funding):
    the sweep asks for its plan until planning removes the row, so a lost job still gets the batches re-planned."""

    __tablename__ = "plan_requests"

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(server_default=func.now())


class BatchSchedule(Base):
    """The maker's planned production and ship dates for batch `number` of a campaign.

    Keyed by the batch's number, not its row: planning replaces an unconfirmed batch's row, never its place in line.
    `announced_ship_on` is the ship date backers were last told of; a slip is measured against it.
    """

    __tablename__ = "batch_schedules"
    __table_args__ = (
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("ship_on >= production_on", name="ships_after_production"),
    )

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    production_on: Mapped[date]
    ship_on: Mapped[date]
    announced_ship_on: Mapped[date]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class BatchScheduleChange(Base):
    """One change of a batch's dates, with the maker's reason: the history backers and the space see. Never updated
    (a trigger refuses it); `backers_told` is how many backers were mailed about it as a slip."""

    __tablename__ = "batch_schedule_changes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    production_on: Mapped[date]
    ship_on: Mapped[date]
    previous_production_on: Mapped[date | None]
    previous_ship_on: Mapped[date | None]
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    backers_told: Mapped[int] = mapped_column(Integer, server_default="0")
