"""Late pledges: the tiers a campaign keeps selling after its deadline, at the same or a new price and optionally
limited. The maker chooses them while the campaign is a draft, so the sponsoring space's review covers them; they
open once the campaign is `funded`, and end when the maker ends them or when the campaign's last open batch holding
them is confirmed (fulfillment.service.confirm_batch), either way in the audit log.

A limited late reward's `remaining` is taken by one conditional UPDATE under `CHECK (remaining >= 0)`, like a tier's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field
from sqlalchemy import CheckConstraint, ForeignKey, Integer, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.access import campaign_for, visible_campaign
from campaigns.audit import record_audit
from campaigns.campaign_schemas import CampaignRequest, Count, PositiveAmount
from campaigns.currencies import check_price
from campaigns.errors import InvalidInput, NotAllowed, NotFound
from campaigns.ids import parse_id
from campaigns.models import Base, Campaign, Tier, User
from campaigns.schemas_base import ResponseModel

# Campaigns whose late rewards are on sale.
SELLING_STATUSES = ("funded", "fulfilling")


class LateReward(Base):
    """A tier on sale after the deadline: its late price, its optional limit and what is left of it, and when the
    maker (or the last open batch's confirmation) ended it."""

    __tablename__ = "late_rewards"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name="limit_positive"),
        CheckConstraint(
            "(quantity_limit IS NULL) = (remaining IS NULL) AND remaining >= 0 AND remaining <= quantity_limit",
            name="remaining_within_limit",
        ),
    )

    tier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"), primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    price: Mapped[int] = mapped_column(Integer)
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    remaining: Mapped[int | None] = mapped_column(Integer)
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


@dataclass(frozen=True)
class LateChoice:
    """The maker's choice for one tier: None keeps the tier's own price; no limit when `quantity_limit` is None."""

    tier_id: uuid.UUID
    price: int | None = None
    quantity_limit: int | None = None


@dataclass(frozen=True)
class LateOffer:
    """A late reward as buyers see it: the tier, its late price, what is left (None: unlimited), whether it sells."""

    tier: Tier
    price: int
    quantity_limit: int | None
    remaining: int | None
    open: bool


async def late_offers(session: AsyncSession, campaign: Campaign) -> list[LateOffer]:
    """The campaign's late rewards in the tiers' order; `open` once the campaign is funded, until ended or sold out."""
    rows = await session.execute(
        select(Tier, LateReward)
        .join(LateReward, LateReward.tier_id == Tier.id)
        .where(LateReward.campaign_id == campaign.id)
        .order_by(Tier.position, Tier.price, Tier.id)
        .execution_options(populate_existing=True)
    )
    selling = campaign.status in SELLING_STATUSES
    return [
        LateOffer(
            tier=tier,
            price=late.price,
            quantity_limit=late.quantity_limit,
            remaining=late.remaining,
            open=selling and late.ended_at is None and late.remaining != 0,
        )
        for tier, late in rows
    ]


async def late_pledges_of(
    session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User | None
) -> tuple[Campaign, list[LateOffer]]:
    campaign, _roles = await visible_campaign(session, campaign_ref, viewer)
    return campaign, await late_offers(session, campaign)


async def set_late_pledges(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, choices: Sequence[LateChoice]
) -> tuple[Campaign, list[LateOffer]]:
    """Which tiers stay on sale after the deadline, replacing the choice before (the maker, while a draft: 409
    `not-draft` after, so that what the space approved is what sells). 422 naming `tiers` for a tier of another
    campaign or one given twice, `tiers[n].price` for a price no card can be charged."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    tiers = {tier.id: tier for tier in await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id))}
    seen: set[uuid.UUID] = set()
    for n, choice in enumerate(choices):
        if choice.tier_id not in tiers:
            raise InvalidInput("tiers", f"tier {choice.tier_id} is not one of this campaign's")
        if choice.tier_id in seen:
            raise InvalidInput("tiers", f"tier {choice.tier_id} is given twice")
        seen.add(choice.tier_id)
        if choice.price is not None:
            check_price(f"tiers[{n}].price", choice.price, campaign.currency)
    await session.execute(delete(LateReward).where(LateReward.campaign_id == campaign.id))
    if choices:
        await session.execute(
            insert(LateReward),
            [
                {
                    "tier_id": choice.tier_id,
                    "campaign_id": campaign.id,
                    "price": tiers[choice.tier_id].price if choice.price is None else choice.price,
                    "quantity_limit": choice.quantity_limit,
                    "remaining": choice.quantity_limit,
                }
                for choice in choices
            ],
        )
    return campaign, await late_offers(session, campaign)


# Requests and responses


class LateChoiceIn(CampaignRequest):
    tier_id: uuid.UUID
    price: PositiveAmount | None = None
    quantity_limit: Count | None = None

    def choice(self) -> LateChoice:
        return LateChoice(tier_id=self.tier_id, price=self.price, quantity_limit=self.quantity_limit)


class LatePledgesIn(CampaignRequest):
    """The tiers on sale after the deadline (an empty list: none); `price` null keeps the tier's own."""

    tiers: list[LateChoiceIn] = Field(max_length=100)


class LateRewardOut(ResponseModel):
    tier_id: uuid.UUID
    title: str
    price: int
    quantity_limit: int | None
    remaining: int | None
    open: bool


class LatePledgesOut(ResponseModel):
    """`estimated_ship_month`: when a late pledge made now would ship, from the batch plan (the first batch not yet
    confirmed; null while that batch has no dates, or none is open)."""

    campaign_id: uuid.UUID
    currency: str
    open: bool
    estimated_ship_month: str | None = None
    tiers: list[LateRewardOut]

    @classmethod
    def of(
        cls, campaign: Campaign, offers: Sequence[LateOffer], *, estimated_ship_month: str | None = None
    ) -> LatePledgesOut:
        return cls(
            campaign_id=campaign.id,
            currency=campaign.currency,
            open=any(offer.open for offer in offers),
            estimated_ship_month=estimated_ship_month,
            tiers=[
                LateRewardOut(
                    tier_id=offer.tier.id,
                    title=offer.tier.title,
                    price=offer.price,
                    quantity_limit=offer.quantity_limit,
                    remaining=offer.remaining,
                    open=offer.open,
                )
                for offer in offers
            ],
        )


async def end_late_reward(
    session: AsyncSession, campaign_ref: uuid.UUID | str, tier_ref: uuid.UUID | str, maker: User
) -> tuple[Campaign, list[LateOffer]]:
    """The maker stops selling one late reward, for good (ending it again changes nothing). 404 for a tier that is
    not a late reward of the campaign."""
    campaign, roles = await visible_campaign(session, campaign_ref, maker)
    if "maker" not in roles:
        raise NotAllowed("Only the campaign's maker ends its late pledges.")
    tier_id = parse_id(tier_ref)
    found = await session.scalar(
        select(LateReward.tier_id).where(LateReward.campaign_id == campaign.id, LateReward.tier_id == tier_id)
    )
    if tier_id is None or found is None:
        raise NotFound("No such late reward.")
    await end_late_rewards(session, campaign, [tier_id], maker.id)
    return campaign, await late_offers(session, campaign)


async def end_late_rewards(
    session: AsyncSession,
    campaign: Campaign,
    tier_ids: Sequence[uuid.UUID],
    actor_id: uuid.UUID,
    *,
    last_batch: int | None = None,
) -> list[uuid.UUID]:
    """End the campaign's late rewards for these tiers that are still on sale, each with its row in the audit log;
    the tiers ended now. `last_batch`: the number of the campaign's last open batch, whose confirmation by `actor_id`
    ends them (otherwise the maker ended them by hand)."""
    ended = list(
        await session.scalars(
            update(LateReward)
            .where(
                LateReward.campaign_id == campaign.id,
                LateReward.tier_id.in_(tier_ids),
                LateReward.ended_at.is_(None),
            )
            .values(ended_at=func.now())
            .returning(LateReward.tier_id)
        )
    )
    details: dict[str, object] = {"campaign_id": str(campaign.id)}
    if last_batch is not None:
        details["last_batch_confirmed"] = last_batch
    for tier_id in sorted(ended):
        await record_audit(
            session,
            actor_id,
            "late_reward.end",
            "tier",
            tier_id,
            space_id=campaign.space_id,
            client_address=None,
            details=details,
        )
    return ended
