"""A pledge's line items. The pledge itself stays in campaigns/models.py beside the tables it points at (its columns,
constraints and triggers are older than this package, and some fifty modules import it from there)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.models import Base, new_id

ITEM_KINDS = ("tier", "addon", "bonus", "shipping")
# The kinds that are things in a box, named by `ref_id` (the tier, the add-on's product).
GOODS_KINDS = ("tier", "addon")


class PledgeItem(Base):
    """One line of a pledge: `quantity` × `unit_amount` in the pledge's currency. The pledge's `amount` is the sum of
    its lines (campaigns/pledges/pricing.py makes them both; tests/test_pledge_items.py holds every path to it)."""

    __tablename__ = "pledge_items"
    __table_args__ = (
        UniqueConstraint("pledge_id", "position", name="uq_pledge_items_pledge_position"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in ITEM_KINDS)})", name="kind_known"),
        CheckConstraint(
            f"(kind IN ({', '.join(repr(k) for k in GOODS_KINDS)})) = (ref_id IS NOT NULL)", name="ref_for_goods"
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_amount >= 0", name="unit_amount_nonnegative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Found by the unique (pledge_id, position) index.
    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(10))
    # The tier (kind tier) or the add-on's product (kind addon); null for the bonus and shipping.
    ref_id: Mapped[uuid.UUID | None]
    # The backer's choice of the product's options, {option: value}; {} when it has none.
    variant: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    # The one SKU this line is (an add-on, a variant); null for a tier, which is a bundle of SKUs.
    sku: Mapped[str | None] = mapped_column(String(64))
    # An `addon` line's add-on, whose units it holds (`ref_id` is its product, which add-ons may share).
    add_on_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("add_ons.id", ondelete="SET NULL"))


class Match(Base):
    """A space's promise to match a campaign's backers 1:1 up to `cap` (campaigns/matching.py): the terms beside its
    pledge, which is owned by the operator who gave the card and is charged like any pledge. Kept when withdrawn (the
    pledge is then cancelled), as pledges are."""

    __tablename__ = "matches"
    __table_args__ = (
        CheckConstraint("cap > 0", name="cap_positive"),
        CheckConstraint("length(sponsor_name) > 0", name="sponsor_name_given"),
    )

    pledge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pledges.id"), primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), index=True)
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"))
    # Shown on the campaign page: the space itself, or a sponsor it names.
    sponsor_name: Mapped[str] = mapped_column(String(120))
    cap: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
