"""The pledge manager: what a backer may still change of their pledge's contents, and until when.

While the campaign is live an add-on joins the pledge (charged with it at the deadline) and leaves it again. After the
close, until the campaign's address lock, an add-on is bought and paid at once (payments/add_on_charges.py calls
these to take its units and, once paid, to add its line), a paid add-on is given back against a refund, and the
backer picks other variants. Tier lines are what the backer pledged for: they are changed by changing the pledge
(while live), never deleted here.

Contents changed after funding are planned again: each change asks for the campaign's plan
(fulfillment.service.replan_after_change), which rebuilds the batches not yet confirmed. A confirmed batch is never
changed: once the batch making a pledge is ordered from the factory, its contents are refused changes (409
`batch-confirmed`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict, InvalidInput, NotFound
from campaigns.ids import parse_id
from campaigns.models import AddOn, AddOnTier, Campaign, Pledge, Product, ProductVariant, Tier, User
from campaigns.pledges.choices import MOST_OF_ONE_ADD_ON
from campaigns.pledges.contents import contents_of, units_of
from campaigns.pledges.lifecycle import (
    OPEN_PLEDGE_STATUSES,
    PLEDGES_IN_PLAY,
    SHIPPABLE_PLEDGE_STATUSES,
    PledgeClosed,
)
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import shipping_fee_for, shipping_fee_of
from campaigns.pledges.service import act_on_own_pledge, get_pledge
from campaigns.pledges.shipping import WeightTable, weight_table
from campaigns.stock import give_back_units, take_units
from fulfillment.models import Allocation, Batch
from fulfillment.service import replan_after_change

# A campaign after its close whose backers may still shape their pledge (until the address lock).
CLOSED_AND_KEPT = ("successful", "funded", "fulfilling")


class ChoicesLocked(Conflict):
    type = "address-locked"
    title = "The pledge's contents are locked"


class NotYetPaid(Conflict):
    type = "pledge-not-charged"
    title = "The pledge has not been paid yet"


class BatchOrdered(Conflict):
    type = "batch-confirmed"
    title = "The pledge's batch is ordered from the factory"


class ChargeUnderWay(Conflict):
    type = "charge-under-way"
    title = "The pledge is being charged"


@dataclass(frozen=True)
class ManagedPledge:
    """A pledge its backer is changing, row-locked, with its campaign (share-locked) and where the campaign is."""

    pledge: Pledge
    campaign: Campaign
    locked: bool  # the address lock has passed
    ordered: bool = False  # the batch that makes the pledge is confirmed with the factory

    @property
    def live(self) -> bool:
        return self.campaign.status == "live"


@dataclass(frozen=True)
class AddOnPurchase:
    """An add-on the backer asks for, priced for their pledge: `amount` is what it adds to what they pay."""

    add_on: AddOn
    product: Product
    variant: ProductVariant | None
    quantity: int
    shipping_fee: int

    @property
    def sku(self) -> str:
        return self.variant.sku if self.variant else self.product.sku

    @property
    def choice(self) -> dict[str, Any]:
        return dict(self.variant.choice) if self.variant else {}

    @property
    def amount(self) -> int:
        return self.quantity * self.add_on.price + self.shipping_fee


@dataclass(frozen=True)
class VariantChoice:
    """One line's new variant: a tier line's {product id: {option: value}}, an add-on line's {option: value}."""

    item_id: uuid.UUID | str
    variant: Mapping[str, Any] = field(default_factory=dict)


# Finding and locking


async def managed_pledge(session: AsyncSession, pledge_ref: uuid.UUID | str, backer: User) -> ManagedPledge:
    """The backer's own pledge, row-locked, with its campaign share-locked (others: 403 or 404 as elsewhere)."""
    pledge = await get_pledge(session, pledge_ref)
    await act_on_own_pledge(session, pledge, backer)
    if pledge.is_match:
        raise PledgeClosed("A match holds no items: it gives money only.")
    campaign, locked = (
        await session.execute(
            select(Campaign, func.coalesce(Campaign.address_lock_at <= func.now(), False))
            .where(Campaign.id == pledge.campaign_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
    ).one()
    pledge = await session.get_one(
        Pledge, pledge.id, with_for_update=True, populate_existing=True
    )  # read afresh under the lock
    # Batches are confirmed under the campaign's row lock, which this share lock holds off until the change commits.
    batch_status = await session.scalar(
        select(Batch.status).join(Allocation, Allocation.batch_id == Batch.id).where(Allocation.pledge_id == pledge.id)
    )
    return ManagedPledge(pledge, campaign, bool(locked), ordered=batch_status not in (None, "planned"))


def check_open_for_changes(managed: ManagedPledge) -> None:
    """A live campaign's open pledge, or a kept pledge of a closed campaign before the address lock; never a
    pre-order."""
    pledge, campaign = managed.pledge, managed.campaign
    if pledge.late:
        # Paid on-session with a card that was not saved for later: nothing can be charged to it afterwards.
        raise PledgeClosed("A pre-order is bought as it is: cancel it and pre-order again to change it.")
    if managed.live:
        if pledge.status not in OPEN_PLEDGE_STATUSES:
            raise PledgeClosed(f"A pledge that is {pledge.status.replace('_', ' ')} cannot be changed.")
        return
    if campaign.status not in CLOSED_AND_KEPT or pledge.status not in PLEDGES_IN_PLAY:
        raise PledgeClosed(f"A pledge that is {pledge.status.replace('_', ' ')} cannot be changed now.")
    if managed.locked:
        raise ChoicesLocked("The maker has locked the pledges' contents and addresses for shipping.")
    if managed.ordered:
        raise BatchOrdered("The batch that makes your pledge is already ordered from the factory: its contents stay.")


def check_paid(managed: ManagedPledge) -> None:
    """After the close, an add-on is paid at once: only on a pledge whose own charge went through."""
    if not managed.live and managed.pledge.status not in SHIPPABLE_PLEDGE_STATUSES:
        raise NotYetPaid("Your pledge has not been charged yet: add-ons can be bought once it has.")


# Add-ons


async def price_add_on(
    session: AsyncSession,
    managed: ManagedPledge,
    add_on_ref: uuid.UUID | str,
    *,
    quantity: int = 1,
    variant: Mapping[str, Any] | None = None,
    under_way: UnderWay | None = None,
) -> AddOnPurchase:
    """The add-on as the pledge would get it: its variant (fixed by the maker, or chosen here), its price and its
    shipping to the pledge's country (by weight, what it adds to the shipping of the contents and of the add-ons
    `under_way`: charged and not yet settled). A 422 naming the field for an add-on of another campaign, one that
    does not go with the pledge's tier or country, or a variant the product does not have."""
    pledge, campaign = managed.pledge, managed.campaign
    ident = parse_id(add_on_ref)
    add_on = await session.get(AddOn, ident) if ident else None
    if add_on is None or add_on.campaign_id != campaign.id:
        raise InvalidInput("add_on_id", "must be one of this campaign's add-ons")
    if not 1 <= quantity <= MOST_OF_ONE_ADD_ON:
        raise InvalidInput("quantity", f"must be between 1 and {MOST_OF_ONE_ADD_ON}")
    tiers = set(await session.scalars(select(AddOnTier.tier_id).where(AddOnTier.add_on_id == add_on.id)))
    if tiers and pledge.tier_id not in tiers:
        raise InvalidInput("add_on_id", "does not go with your reward")
    product = await session.get_one(Product, add_on.product_id)
    chosen = await _add_on_variant(session, add_on, product, variant or {})
    weights = await weight_table(session, campaign)
    if weights is not None:
        # By weight every add-on is in the package: a pledge that ships nothing has no country to weigh it for.
        if pledge.shipping_country is None:
            raise InvalidInput("add_on_id", "ships only with a reward that ships")
        added = {chosen.sku if chosen else product.sku: quantity}
        fee = await _weight_fee_change(session, pledge, weights, added, under_way or UnderWay())
        return AddOnPurchase(add_on, product, chosen, quantity, max(0, fee))
    fee = 0
    if add_on.shipping or not add_on.ships_alone:
        if pledge.shipping_country is None:
            raise InvalidInput("add_on_id", "ships only with a reward that ships")
        if add_on.shipping:
            found = shipping_fee_for(add_on.shipping, pledge.shipping_country)
            if found is None:
                raise InvalidInput("add_on_id", f"does not ship to {pledge.shipping_country}")
            fee = found * quantity
    return AddOnPurchase(add_on, product, chosen, quantity, fee)


async def add_on_shipping(
    session: AsyncSession, campaign: Campaign, pledge: Pledge, add_on: AddOn, quantity: int = 1
) -> int | None:
    """What `quantity` of the add-on adds to the pledge's shipping, as `price_add_on` prices it (the pages show it
    before the backer asks): None when it cannot ship to the pledge's country (or, by weight, the package would be
    heavier than the table ships there)."""
    weights = await weight_table(session, campaign)
    if pledge.shipping_country is None and (weights is not None or add_on.shipping or not add_on.ships_alone):
        return None
    if weights is not None:
        assert pledge.shipping_country is not None
        sku = await session.scalar(select(Product.sku).where(Product.id == add_on.product_id))
        try:
            return max(0, await _weight_fee_change(session, pledge, weights, {str(sku): quantity}))
        except InvalidInput:
            return None
    if not add_on.shipping:
        return 0
    assert pledge.shipping_country is not None
    found = shipping_fee_for(add_on.shipping, pledge.shipping_country)
    return None if found is None else found * quantity


async def _add_on_variant(
    session: AsyncSession, add_on: AddOn, product: Product, choice: Mapping[str, Any]
) -> ProductVariant | None:
    if add_on.variant_id is not None:
        fixed = await session.get_one(ProductVariant, add_on.variant_id)
        if choice and dict(choice) != fixed.choice:
            raise InvalidInput("variant", "this add-on comes in one variant only")
        return fixed
    if not product.options:
        if choice:
            raise InvalidInput("variant", "this add-on has no options")
        return None
    return await variant_of(session, product, choice, "variant")


async def variant_of(session: AsyncSession, product: Product, choice: Mapping[str, Any], name: str) -> ProductVariant:
    """The product's variant for `choice` ({option: value}, one per option); a 422 naming `name` otherwise."""
    if not isinstance(choice, Mapping) or not all(isinstance(value, str) for value in choice.values()):
        raise InvalidInput(name, "must give a value for each of the product's options")
    found = await session.scalar(
        select(ProductVariant).where(ProductVariant.product_id == product.id, ProductVariant.choice == dict(choice))
    )
    if found is None:
        options = ", ".join(f"{option['name']} ({' / '.join(option['values'])})" for option in product.options)
        raise InvalidInput(name, f"choose one of each of {product.name}'s options: {options}")
    return found


async def take_add_on_units(session: AsyncSession, purchase: AddOnPurchase) -> None:
    """UnitsSoldOut (409 `sold-out`) when the add-on or its variant has too few left; the caller's transaction then
    undoes whatever was taken."""
    if purchase.variant is not None:
        await take_units(session, ProductVariant, purchase.variant.id, purchase.quantity)
    await take_units(session, AddOn, purchase.add_on.id, purchase.quantity)


async def give_back_add_on_units(
    session: AsyncSession, add_on_id: uuid.UUID, variant_id: uuid.UUID | None, quantity: int
) -> None:
    if variant_id is not None:
        await give_back_units(session, ProductVariant, variant_id, quantity)
    await give_back_units(session, AddOn, add_on_id, quantity)


async def add_add_on_line(
    session: AsyncSession, pledge: Pledge, purchase: AddOnPurchase, *, item_id: uuid.UUID | None = None
) -> PledgeItem:
    """The add-on's line (and its shipping) joins the pledge, whose amount grows by as much. The units are the
    caller's to have taken."""
    return await add_line(
        session,
        pledge,
        BoughtLine(
            add_on_id=purchase.add_on.id,
            product_id=purchase.product.id,
            choice=purchase.choice,
            sku=purchase.sku,
            quantity=purchase.quantity,
            unit_amount=purchase.add_on.price,
            shipping_fee=purchase.shipping_fee,
        ),
        item_id=item_id,
    )


@dataclass(frozen=True)
class BoughtLine:
    """An add-on line as it was priced (and, after the close, paid): what `add_line` adds."""

    add_on_id: uuid.UUID
    product_id: uuid.UUID
    choice: dict[str, Any]
    sku: str
    quantity: int
    unit_amount: int
    shipping_fee: int


async def add_line(
    session: AsyncSession, pledge: Pledge, bought: BoughtLine, *, item_id: uuid.UUID | None = None
) -> PledgeItem:
    position = await session.scalar(
        select(func.coalesce(func.max(PledgeItem.position) + 1, 0)).where(PledgeItem.pledge_id == pledge.id)
    )
    line = PledgeItem(
        pledge_id=pledge.id,
        position=position or 0,
        kind="addon",
        ref_id=bought.product_id,
        add_on_id=bought.add_on_id,
        variant=bought.choice,
        quantity=bought.quantity,
        unit_amount=bought.unit_amount,
        sku=bought.sku,
    )
    if item_id is not None:
        line.id = item_id
    session.add(line)
    await session.flush()
    await _move_shipping(session, pledge, bought.shipping_fee)
    await _add_to_amount(session, pledge, bought.quantity * bought.unit_amount)
    await replan_after_change(session, pledge.campaign_id)
    return line


async def add_add_on_while_live(
    session: AsyncSession,
    managed: ManagedPledge,
    add_on_ref: uuid.UUID | str,
    *,
    quantity: int = 1,
    variant: Mapping[str, Any] | None = None,
) -> PledgeItem:
    """Before the deadline the add-on joins the pledge and is charged with it. A pledge has one line per add-on and
    variant, as at pledge time: the same add-on again makes that line's quantity grow."""
    purchase = await price_add_on(session, managed, add_on_ref, quantity=quantity, variant=variant)
    same = await session.scalar(
        select(PledgeItem).where(
            PledgeItem.pledge_id == managed.pledge.id,
            PledgeItem.kind == "addon",
            PledgeItem.add_on_id == purchase.add_on.id,
            PledgeItem.sku == purchase.sku,
        )
    )
    if same is not None and same.quantity + quantity > MOST_OF_ONE_ADD_ON:
        raise InvalidInput("quantity", f"at most {MOST_OF_ONE_ADD_ON} of one add-on in a pledge")
    await take_add_on_units(session, purchase)
    if same is None:
        return await add_add_on_line(session, managed.pledge, purchase)
    same.quantity += quantity
    await session.flush()
    await _move_shipping(session, managed.pledge, purchase.shipping_fee)
    await _add_to_amount(session, managed.pledge, quantity * same.unit_amount)
    return same


async def line_of(session: AsyncSession, pledge: Pledge, item_ref: uuid.UUID | str) -> PledgeItem:
    ident = parse_id(item_ref)
    line = await session.get(PledgeItem, ident, populate_existing=True) if ident else None
    if line is None or line.pledge_id != pledge.id:
        raise NotFound("This pledge has no such line.")
    return line


def check_removable(line: PledgeItem) -> None:
    if line.kind != "addon":
        raise InvalidInput("item", "only an add-on can be removed: change the pledge to change its reward")


async def add_on_of_line(session: AsyncSession, line: PledgeItem) -> AddOn | None:
    """The add-on a line was bought as (None once the maker deleted it, which only a draft allows)."""
    return await session.get(AddOn, line.add_on_id) if line.add_on_id else None


@dataclass(frozen=True)
class UnderWay:
    """Add-ons charged after the close whose charge is not settled yet: their units (SKU -> units) and the shipping
    they were charged. By weight, the next add-on is priced on top of them, so two bought at once pay the bracket
    their sum reaches."""

    units: Mapping[str, int] = field(default_factory=dict)
    shipping_fee: int = 0


async def _weight_fee_change(
    session: AsyncSession,
    pledge: Pledge,
    weights: WeightTable,
    change: Mapping[str, int],
    under_way: UnderWay = UnderWay(),
) -> int:
    """What the pledge's shipping grows by (less than zero: shrinks by) when its contents change by `change` (SKU ->
    units, negative for units leaving): the table's fee for the new contents' weight less what it pays now. A 422
    naming `shipping_country` when the new contents are heavier than the table ships to the pledge's country."""
    units = dict(await contents_of(session, pledge.id))
    for sku, count in [*under_way.units.items(), *change.items()]:
        units[sku] = units.get(sku, 0) + count
    left = {sku: count for sku, count in units.items() if count > 0}
    paid = pledge.shipping_fee + under_way.shipping_fee
    if not left or pledge.shipping_country is None:
        return -paid
    return weights.fee_of(pledge.shipping_country, left) - paid


async def line_shipping(session: AsyncSession, managed: ManagedPledge, line: PledgeItem, add_on: AddOn | None) -> int:
    """The shipping an add-on line's leaving takes off the pledge: per item, the add-on's fee × its quantity; by
    weight, what the lighter contents' bracket costs less (never below zero: fees do not fall with weight)."""
    pledge = managed.pledge
    weights = await weight_table(session, managed.campaign)
    if weights is not None:
        if not line.sku:
            return 0
        return max(0, -await _weight_fee_change(session, pledge, weights, {line.sku: -line.quantity}))
    if add_on is not None and add_on.shipping and pledge.shipping_country:
        return (shipping_fee_for(add_on.shipping, pledge.shipping_country) or 0) * line.quantity
    return 0


async def remove_add_on_line(
    session: AsyncSession, managed: ManagedPledge, line: PledgeItem, *, add_on: AddOn | None, shipping: int
) -> None:
    """The line leaves the pledge (its amount shrinks by its price and `shipping`, its shipping by `shipping`: see
    `line_shipping`) and its units come back."""
    campaign, pledge = managed.campaign, managed.pledge
    fee = shipping
    if add_on is not None:
        variant_id = await _variant_id_of(session, campaign, line)
        await give_back_add_on_units(session, add_on.id, variant_id, line.quantity)
    await session.execute(delete(PledgeItem).where(PledgeItem.id == line.id))
    await _move_shipping(session, pledge, -fee)
    await _add_to_amount(session, pledge, -line.quantity * line.unit_amount)
    await replan_after_change(session, campaign.id)


async def _variant_id_of(session: AsyncSession, campaign: Campaign, line: PledgeItem) -> uuid.UUID | None:
    if not line.sku:
        return None
    found: uuid.UUID | None = await session.scalar(
        select(ProductVariant.id).where(
            ProductVariant.campaign_id == campaign.id,
            ProductVariant.product_id == line.ref_id,
            ProductVariant.sku == line.sku,
        )
    )
    return found


async def _move_shipping(session: AsyncSession, pledge: Pledge, fee: int) -> None:
    """The pledge's shipping line (made when there is none) and its `shipping_fee` change by `fee`; a line that
    comes to nothing goes."""
    if fee == 0:
        return
    line = await session.scalar(
        select(PledgeItem).where(PledgeItem.pledge_id == pledge.id, PledgeItem.kind == "shipping")
    )
    if line is None:
        position = await session.scalar(
            select(func.coalesce(func.max(PledgeItem.position) + 1, 0)).where(PledgeItem.pledge_id == pledge.id)
        )
        session.add(
            PledgeItem(pledge_id=pledge.id, position=position or 0, kind="shipping", quantity=1, unit_amount=fee)
        )
    elif line.unit_amount + fee <= 0:
        await session.delete(line)
    else:
        line.unit_amount += fee
    await session.flush()
    await session.execute(update(Pledge).where(Pledge.id == pledge.id).values(shipping_fee=Pledge.shipping_fee + fee))
    await _add_to_amount(session, pledge, fee)


async def _add_to_amount(session: AsyncSession, pledge: Pledge, change: int) -> None:
    await session.execute(update(Pledge).where(Pledge.id == pledge.id).values(amount=Pledge.amount + change))
    await session.refresh(pledge)


# Shipping to another country


@dataclass(frozen=True)
class _AddOnLineShipping:
    shipping: Sequence[Mapping[str, Any]]
    quantity: int


async def shipping_to(session: AsyncSession, campaign: Campaign, pledge: Pledge, country: str) -> int:
    """What the pledge's contents as they are now cost to ship to `country`, by the pricing's one rule
    (`pricing.shipping_fee_of`: the weight table's bracket, or the tier's fee plus each add-on line's). A 422 naming
    `country` when they do not ship there."""
    contents = await contents_of(session, pledge.id)
    if not contents:
        return 0
    tier = await session.get(Tier, pledge.tier_id) if pledge.tier_id is not None else None
    add_ons = [
        _AddOnLineShipping(shipping, quantity)
        for shipping, quantity in await session.execute(
            select(AddOn.shipping, PledgeItem.quantity)
            .join(AddOn, AddOn.id == PledgeItem.add_on_id)
            .where(PledgeItem.pledge_id == pledge.id, PledgeItem.kind == "addon")
        )
    ]
    try:
        return shipping_fee_of(country, tier, add_ons, contents, await weight_table(session, campaign))
    except InvalidInput as refused:
        raise InvalidInput("country", refused.errors[0].message) from None


async def reship(session: AsyncSession, pledge: Pledge, address: Mapping[str, Any], fee: int) -> None:
    """The pledge ships to `address` from now on, for `fee`: its country becomes the pledge's, and its shipping line
    (and amount) move to the new fee."""
    await session.execute(
        update(Pledge)
        .where(Pledge.id == pledge.id)
        .values(address=dict(address), shipping_country=address["country"])
        .execution_options(synchronize_session=False)
    )
    await _move_shipping(session, pledge, fee - pledge.shipping_fee)
    await session.refresh(pledge)


# Variants


async def change_variants(session: AsyncSession, managed: ManagedPledge, choices: Sequence[VariantChoice]) -> None:
    """Each named line takes its new variants: the units of the old ones come back and those of the new are taken,
    in this one transaction, so a sold-out variant (409 `sold-out`) leaves the pledge as it was."""
    pledge, campaign = managed.pledge, managed.campaign
    for index, choice in enumerate(choices):
        name = f"choices.{index}"
        ident = parse_id(choice.item_id)
        line = await session.get(PledgeItem, ident, populate_existing=True) if ident else None
        if line is None or line.pledge_id != pledge.id or line.kind not in ("tier", "addon"):
            raise InvalidInput(f"{name}.item", "must be one of this pledge's tier or add-on lines")
        if line.kind == "tier":
            new_variant, moves = await _tier_line_variants(session, line, choice.variant, f"{name}.variant")
            line.variant = new_variant
        else:
            add_on = await add_on_of_line(session, line)
            if add_on is None:
                raise InvalidInput(f"{name}.item", "is not an add-on of this campaign any more")
            product = await session.get_one(Product, add_on.product_id)
            if add_on.variant_id is not None or not product.options:
                raise InvalidInput(f"{name}.variant", "this add-on has no variants to choose from")
            new = await variant_of(session, product, choice.variant, f"{name}.variant")
            old_id = await _variant_id_of(session, campaign, line)
            moves = [(old_id, new.id, line.quantity)]
            line.variant, line.sku = dict(new.choice), new.sku
        for old_id, new_id, units in moves:
            if old_id == new_id:
                continue
            if new_id is not None:
                await take_units(session, ProductVariant, new_id, units)
            if old_id is not None:
                await give_back_units(session, ProductVariant, old_id, units)
    await session.flush()
    await replan_after_change(session, campaign.id)


async def _tier_line_variants(
    session: AsyncSession, line: PledgeItem, wanted: Mapping[str, Any], name: str
) -> tuple[dict[str, Any], list[tuple[uuid.UUID | None, uuid.UUID | None, int]]]:
    """A tier line's new {product id: {option: value}} and the stock moves it makes: (old variant, new variant,
    units) for each product of the tier's bundle that has options and is named in `wanted`."""
    tier = await session.get_one(Tier, line.ref_id)
    bundle = units_of(tier.items)
    products = {
        str(product.id): product
        for product in await session.scalars(
            select(Product).where(Product.campaign_id == tier.campaign_id, Product.sku.in_(list(bundle)))
        )
    }
    if not isinstance(wanted, Mapping) or any(key not in products for key in wanted):
        raise InvalidInput(name, "must name products of this reward, by id")
    current: dict[str, Any] = dict(line.variant)
    moves: list[tuple[uuid.UUID | None, uuid.UUID | None, int]] = []
    for product_id, choice in wanted.items():
        product = products[product_id]
        if not product.options:
            raise InvalidInput(name, f"{product.name} has no options")
        new = await variant_of(session, product, choice, name)
        old = None
        if product_id in current:
            old = await session.scalar(
                select(ProductVariant).where(
                    ProductVariant.product_id == product.id, ProductVariant.choice == current[product_id]
                )
            )
        moves.append((old.id if old else None, new.id, bundle[product.sku] * line.quantity))
        current[product_id] = dict(new.choice)
    return current, moves
