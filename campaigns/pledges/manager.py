"""The pledge manager: what a backer may still change of their pledge's contents, and until when.

While the campaign is live an add-on joins the pledge (charged with it at the deadline) and leaves it again. After the
close, until the campaign's address lock, an add-on is bought and paid at once (payments/add_on_charges.py calls
these to take its units and, once paid, to add its line), a paid add-on is given back against a refund, and the
backer picks other variants. Tier lines are what the backer pledged for: they are changed by changing the pledge
(while live), never deleted here.

Every use case locks the pledge's row first (so two requests on one pledge take turns) and share-locks its campaign
(so it neither closes nor moves its address lock meanwhile); units of limited add-ons and variants are taken by the
conditional UPDATEs of campaigns/stock.py, in the same transaction as the line they are for.
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
from campaigns.pledges.contents import units_of
from campaigns.pledges.lifecycle import (
    OPEN_PLEDGE_STATUSES,
    PLEDGES_IN_PLAY,
    SHIPPABLE_PLEDGE_STATUSES,
    PledgeClosed,
)
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import shipping_fee_for
from campaigns.pledges.service import act_on_own_pledge, get_pledge
from campaigns.stock import give_back_units, take_units

# A campaign after its close whose backers may still shape their pledge (until the address lock).
CLOSED_AND_KEPT = ("successful", "funded", "fulfilling")


class ChoicesLocked(Conflict):
    type = "address-locked"
    title = "The pledge's contents are locked"


class NotYetPaid(Conflict):
    type = "pledge-not-charged"
    title = "The pledge has not been paid yet"


class ChargeUnderWay(Conflict):
    type = "charge-under-way"
    title = "The pledge is being charged"


@dataclass(frozen=True)
class ManagedPledge:
    """A pledge its backer is changing, row-locked, with its campaign (share-locked) and where the campaign is."""

    pledge: Pledge
    campaign: Campaign
    locked: bool  # the address lock has passed

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
    return ManagedPledge(pledge, campaign, bool(locked))


def check_open_for_changes(managed: ManagedPledge) -> None:
    """A live campaign's open pledge, or a kept pledge of a closed campaign before the address lock."""
    pledge, campaign = managed.pledge, managed.campaign
    if managed.live:
        if pledge.status not in OPEN_PLEDGE_STATUSES:
            raise PledgeClosed(f"A pledge that is {pledge.status.replace('_', ' ')} cannot be changed.")
        return
    if campaign.status not in CLOSED_AND_KEPT or pledge.status not in PLEDGES_IN_PLAY:
        raise PledgeClosed(f"A pledge that is {pledge.status.replace('_', ' ')} cannot be changed now.")
    if managed.locked:
        raise ChoicesLocked("The maker has locked the pledges' contents and addresses for shipping.")


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
) -> AddOnPurchase:
    """The add-on as the pledge would get it: its variant (fixed by the maker, or chosen here), its price and its
    shipping to the pledge's country. A 422 naming the field for an add-on of another campaign, one that does not go
    with the pledge's tier or country, or a variant the product does not have."""
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


async def remove_add_on_line(
    session: AsyncSession, managed: ManagedPledge, line: PledgeItem, *, add_on: AddOn | None
) -> None:
    """The line leaves the pledge (its amount and shipping shrink as much) and its units come back."""
    campaign, pledge = managed.campaign, managed.pledge
    fee = 0
    if add_on is not None:
        if add_on.shipping and pledge.shipping_country:
            fee = (shipping_fee_for(add_on.shipping, pledge.shipping_country) or 0) * line.quantity
        variant_id = await _variant_id_of(session, campaign, line)
        await give_back_add_on_units(session, add_on.id, variant_id, line.quantity)
    await session.execute(delete(PledgeItem).where(PledgeItem.id == line.id))
    await _move_shipping(session, pledge, -fee)
    await _add_to_amount(session, pledge, -line.quantity * line.unit_amount)


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
