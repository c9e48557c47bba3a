"""Late pledges: the tiers and add-ons a campaign keeps selling after its deadline, at the same or a new price and
optionally limited. The maker chooses them while the campaign is a draft, so the sponsoring space's review covers
them; they open once the campaign is `funded`, and end when the maker ends them or when the campaign's last open batch
holding them is confirmed (fulfillment.service.confirm_batch), either way in the audit log.

A limited late reward's `remaining` is taken by one conditional UPDATE under `CHECK (remaining >= 0)`, like a tier's;
a late add-on's (`LateAddOn`) likewise, by the quantity bought. A late add-on is bought only with a late reward, in the
same pre-order; its own campaign limit, if it has one, still holds (that is the add-on's stock), the late limit caps
what of it sells after the deadline.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field
from sqlalchemy import CheckConstraint, ForeignKey, Integer, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from campaigns.access import campaign_for, visible_campaign
from campaigns.audit import record_audit
from campaigns.campaign_schemas import CampaignRequest, Count, PositiveAmount
from campaigns.currencies import check_price
from campaigns.errors import InvalidInput, NotAllowed, NotFound
from campaigns.ids import parse_id
from campaigns.models import AddOn, Base, Campaign, Product, Tier, User
from campaigns.schemas_base import ResponseModel

# Campaigns whose late rewards are on sale.
SELLING_STATUSES = ("funded", "fulfilling")


def _late_sale_checks() -> tuple[CheckConstraint, ...]:
    """The rules a late reward and a late add-on share (new objects for each table)."""
    return (
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name="limit_positive"),
        CheckConstraint(
            "(quantity_limit IS NULL) = (remaining IS NULL) AND remaining >= 0 AND remaining <= quantity_limit",
            name="remaining_within_limit",
        ),
    )


class _LateSale:
    """What a late reward and a late add-on both are: a late price, an optional limit and what is left of it, and
    when the maker (or the last open batch's confirmation) ended it."""

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    price: Mapped[int] = mapped_column(Integer)
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    remaining: Mapped[int | None] = mapped_column(Integer)
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class LateReward(_LateSale, Base):
    """A tier on sale after the deadline."""

    __tablename__ = "late_rewards"
    __table_args__ = _late_sale_checks()

    tier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"), primary_key=True)


class LateAddOn(_LateSale, Base):
    """An add-on on sale after the deadline, with the late rewards."""

    __tablename__ = "late_add_ons"
    __table_args__ = _late_sale_checks()

    add_on_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("add_ons.id", ondelete="CASCADE"), primary_key=True)


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


@dataclass(frozen=True)
class LateAddOnChoice:
    """The maker's choice for one add-on: None keeps the add-on's own price; no limit when `quantity_limit` is None."""

    add_on_id: uuid.UUID
    price: int | None = None
    quantity_limit: int | None = None


@dataclass(frozen=True)
class LateAddOnOffer:
    """A late add-on as buyers see it: the add-on, its product, its late price, what is left (None: unlimited),
    whether it sells."""

    add_on: AddOn
    product: Product
    price: int
    quantity_limit: int | None
    remaining: int | None
    open: bool


async def late_add_on_offers(session: AsyncSession, campaign: Campaign) -> list[LateAddOnOffer]:
    """The campaign's late add-ons in the add-ons' order; open as a late reward is (funded, not ended, not sold out)."""
    rows = await session.execute(
        select(AddOn, Product, LateAddOn)
        .join(LateAddOn, LateAddOn.add_on_id == AddOn.id)
        .join(Product, Product.id == AddOn.product_id)
        .where(LateAddOn.campaign_id == campaign.id)
        .order_by(AddOn.position, AddOn.created_at, AddOn.id)
        .execution_options(populate_existing=True)
    )
    selling = campaign.status in SELLING_STATUSES
    return [
        LateAddOnOffer(
            add_on=add_on,
            product=product,
            price=late.price,
            quantity_limit=late.quantity_limit,
            remaining=late.remaining,
            open=selling and late.ended_at is None and late.remaining != 0,
        )
        for add_on, product, late in rows
    ]


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


@dataclass(frozen=True)
class LateCatalogue:
    """Everything a campaign sells after its deadline: its late rewards and its late add-ons."""

    tiers: list[LateOffer]
    add_ons: list[LateAddOnOffer]


async def late_catalogue(session: AsyncSession, campaign: Campaign) -> LateCatalogue:
    return LateCatalogue(await late_offers(session, campaign), await late_add_on_offers(session, campaign))


async def late_pledges_of(
    session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User | None
) -> tuple[Campaign, LateCatalogue]:
    campaign, _roles = await visible_campaign(session, campaign_ref, viewer)
    return campaign, await late_catalogue(session, campaign)


async def set_late_pledges(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    maker: User,
    choices: Sequence[LateChoice],
    add_on_choices: Sequence[LateAddOnChoice] = (),
) -> tuple[Campaign, LateCatalogue]:
    """Which tiers and add-ons stay on sale after the deadline, replacing the choice before (the maker, while a
    draft: 409 `not-draft` after, so that what the space approved is what sells). 422 naming `tiers` for a tier of
    another campaign or one given twice, `tiers[n].price` for a price no card can be charged; likewise `add_ons[n]`
    for an add-on of another campaign or one given twice, `add_ons[n].price`."""
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
    add_ons = {one.id: one for one in await session.scalars(select(AddOn).where(AddOn.campaign_id == campaign.id))}
    seen_add_ons: set[uuid.UUID] = set()
    for n, add_on_choice in enumerate(add_on_choices):
        if add_on_choice.add_on_id not in add_ons:
            raise InvalidInput(
                f"add_ons[{n}].add_on_id", f"add-on {add_on_choice.add_on_id} is not one of this campaign's"
            )
        if add_on_choice.add_on_id in seen_add_ons:
            raise InvalidInput(f"add_ons[{n}].add_on_id", f"add-on {add_on_choice.add_on_id} is given twice")
        seen_add_ons.add(add_on_choice.add_on_id)
        if add_on_choice.price is not None:
            check_price(f"add_ons[{n}].price", add_on_choice.price, campaign.currency)
    await session.execute(delete(LateReward).where(LateReward.campaign_id == campaign.id))
    await session.execute(delete(LateAddOn).where(LateAddOn.campaign_id == campaign.id))
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
    if add_on_choices:
        await session.execute(
            insert(LateAddOn),
            [
                {
                    "add_on_id": one.add_on_id,
                    "campaign_id": campaign.id,
                    "price": add_ons[one.add_on_id].price if one.price is None else one.price,
                    "quantity_limit": one.quantity_limit,
                    "remaining": one.quantity_limit,
                }
                for one in add_on_choices
            ],
        )
    return campaign, await late_catalogue(session, campaign)


# Requests and responses


class LateChoiceIn(CampaignRequest):
    tier_id: uuid.UUID
    price: PositiveAmount | None = None
    quantity_limit: Count | None = None

    def choice(self) -> LateChoice:
        return LateChoice(tier_id=self.tier_id, price=self.price, quantity_limit=self.quantity_limit)


class LateAddOnChoiceIn(CampaignRequest):
    add_on_id: uuid.UUID
    price: PositiveAmount | None = None
    quantity_limit: Count | None = None

    def choice(self) -> LateAddOnChoice:
        return LateAddOnChoice(add_on_id=self.add_on_id, price=self.price, quantity_limit=self.quantity_limit)


class LatePledgesIn(CampaignRequest):
    """The tiers and add-ons on sale after the deadline (an empty list: none); `price` null keeps the tier's (the
    add-on's) own. `add_ons` left out: none."""

    tiers: list[LateChoiceIn] = Field(max_length=100)
    add_ons: list[LateAddOnChoiceIn] = Field(default_factory=list, max_length=100)


class LateRewardOut(ResponseModel):
    tier_id: uuid.UUID
    title: str
    price: int
    quantity_limit: int | None
    remaining: int | None
    open: bool


class LateAddOnOut(ResponseModel):
    add_on_id: uuid.UUID
    name: str
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
    add_ons: list[LateAddOnOut]

    @classmethod
    def of(
        cls, campaign: Campaign, catalogue: LateCatalogue, *, estimated_ship_month: str | None = None
    ) -> LatePledgesOut:
        offers = catalogue.tiers
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
            add_ons=[
                LateAddOnOut(
                    add_on_id=offer.add_on.id,
                    name=offer.product.name,
                    price=offer.price,
                    quantity_limit=offer.quantity_limit,
                    remaining=offer.remaining,
                    open=offer.open,
                )
                for offer in catalogue.add_ons
            ],
        )


async def end_late_reward(
    session: AsyncSession, campaign_ref: uuid.UUID | str, tier_ref: uuid.UUID | str, maker: User
) -> tuple[Campaign, LateCatalogue]:
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
    return campaign, await late_catalogue(session, campaign)


async def end_late_add_on(
    session: AsyncSession, campaign_ref: uuid.UUID | str, add_on_ref: uuid.UUID | str, maker: User
) -> tuple[Campaign, LateCatalogue]:
    """The maker stops selling one late add-on, for good (ending it again changes nothing). 404 for an add-on that is
    not a late add-on of the campaign."""
    campaign, roles = await visible_campaign(session, campaign_ref, maker)
    if "maker" not in roles:
        raise NotAllowed("Only the campaign's maker ends its late pledges.")
    add_on_id = parse_id(add_on_ref)
    found = await session.scalar(
        select(LateAddOn.add_on_id).where(LateAddOn.campaign_id == campaign.id, LateAddOn.add_on_id == add_on_id)
    )
    if add_on_id is None or found is None:
        raise NotFound("No such late add-on.")
    await end_late_add_ons(session, campaign, [add_on_id], maker.id)
    return campaign, await late_catalogue(session, campaign)


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
    return await _end_late(
        session, LateReward, LateReward.tier_id, tier_ids, campaign, actor_id, ("late_reward.end", "tier"), last_batch
    )


async def end_late_add_ons(
    session: AsyncSession,
    campaign: Campaign,
    add_on_ids: Sequence[uuid.UUID],
    actor_id: uuid.UUID,
    *,
    last_batch: int | None = None,
) -> list[uuid.UUID]:
    """End the campaign's late add-ons among these that are still on sale, each with its `late_add_on.end` row in
    the audit log; the add-ons ended now. `last_batch` as for `end_late_rewards`."""
    return await _end_late(
        session,
        LateAddOn,
        LateAddOn.add_on_id,
        add_on_ids,
        campaign,
        actor_id,
        ("late_add_on.end", "add_on"),
        last_batch,
    )


async def _end_late(
    session: AsyncSession,
    table: type[LateReward] | type[LateAddOn],
    key: InstrumentedAttribute[uuid.UUID],
    ids: Sequence[uuid.UUID],
    campaign: Campaign,
    actor_id: uuid.UUID,
    audited_as: tuple[str, str],
    last_batch: int | None,
) -> list[uuid.UUID]:
    """One conditional UPDATE ends those of `ids` still on sale (so each once), and each gets its audit row."""
    ended = list(
        await session.scalars(
            update(table)
            .where(table.campaign_id == campaign.id, key.in_(ids), table.ended_at.is_(None))
            .values(ended_at=func.now())
            .returning(key)
        )
    )
    details: dict[str, object] = {"campaign_id": str(campaign.id)}
    if last_batch is not None:
        details["last_batch_confirmed"] = last_batch
    action, target = audited_as
    for ident in sorted(ended):
        await record_audit(
            session,
            actor_id,
            action,
            target,
            ident,
            space_id=campaign.space_id,
            client_address=None,
            details=details,
        )
    return ended
