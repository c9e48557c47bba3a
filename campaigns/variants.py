"""A product's options (colour, plug, size) and its variants: one per combination of values, each its own SKU.

Like the rest of the catalogue they change only while the campaign is a draft and only by its maker, under the
campaign's row lock (`access.campaign_for`); that lock is also what keeps a variant's SKU apart from the products'.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import campaign_for
from campaigns.campaign_schemas import ProductOption, VariantPatch
from campaigns.catalog import SkuTaken, product_of
from campaigns.errors import NotFound
from campaigns.ids import parse_id
from campaigns.models import Campaign, Product, ProductVariant, User

SKU_LENGTH = 64

# Rules on plain values


def combinations(options: Sequence[ProductOption]) -> list[dict[str, str]]:
    """Every choice the options allow, the first option varying slowest: colour × plug gives black-EU, black-US, ..."""
    if not options:
        return []
    names = [option.name for option in options]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(o.values for o in options))]


def value_code(value: str, position: int) -> str:
    """A value's part of a derived SKU: as it is when it has at most 3 letters or digits (EU, XL, 128), else its first
    letter and the consonants after it, 3 at most (black -> BLC, white -> WHT); a value with no Latin letters or
    digits (黑色) is numbered by its place among the option's values (1, 2, ...)."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().upper()
    plain = re.sub(r"[^A-Z0-9]", "", folded)
    if not plain:
        return str(position + 1)
    if len(plain) <= 3:
        return plain
    consonants = [ch for ch in plain[1:] if ch not in "AEIOU"]
    return (plain[0] + "".join(consonants))[:3] if consonants else plain[:3]


def derived_sku(
    product_sku: str, options: Sequence[ProductOption], choice: dict[str, str], taken: Collection[str]
) -> str:
    """The product's SKU with each chosen value's code after it (LAMP-BLC-EU), numbered -2, -3, ... when that is
    already taken in the campaign."""
    codes = [value_code(choice[option.name], option.values.index(choice[option.name])) for option in options]
    suffix = "-" + "-".join(codes)
    base = product_sku[: SKU_LENGTH - len(suffix)] + suffix
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        tail = f"-{number}"
        candidate = base[: SKU_LENGTH - len(tail)] + tail
    return candidate


def chosen_values(options: Sequence[Mapping[str, Any]], choice: Mapping[str, Any]) -> list[str]:
    """A variant's values in the order of the product's options (a stored choice keeps no order of its own)."""
    return [str(choice[option["name"]]) for option in options if option["name"] in choice]


def variant_name(product: Product, variant: ProductVariant) -> str:
    """How people call a variant: the product's name with its values, "Desk lamp (black, EU)"."""
    return f"{product.name} ({', '.join(chosen_values(product.options, variant.choice))})"


def choice_key(choice: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(name), str(value)) for name, value in choice.items()))


# Use cases


async def set_options(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    product_ref: uuid.UUID | str,
    maker: User,
    options: Sequence[ProductOption],
) -> tuple[Product, list[ProductVariant]]:
    """Gives the product these options. Variants whose choice is still possible keep their id, SKU and limit; new
    combinations get a derived SKU and no limit; the others go (with any add-on fixed to them)."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    product = await product_of(session, campaign, product_ref)
    product.options = [option.model_dump() for option in options]
    wanted = combinations(options)
    wanted_keys = {choice_key(choice) for choice in wanted}
    existing = {choice_key(variant.choice): variant for variant in await variants_of(session, [product.id])}
    gone = [variant.id for key, variant in existing.items() if key not in wanted_keys]
    if gone:
        await session.execute(delete(ProductVariant).where(ProductVariant.id.in_(gone)))
    taken = await skus_in_use(session, campaign)
    for position, choice in enumerate(wanted):
        variant = existing.get(choice_key(choice))
        if variant is not None:
            variant.choice = choice
            variant.position = position
            continue
        sku = derived_sku(product.sku, options, choice, taken)
        taken.add(sku)
        session.add(
            ProductVariant(campaign_id=campaign.id, product_id=product.id, choice=choice, sku=sku, position=position)
        )
    await session.flush()
    return product, await variants_of(session, [product.id])


async def update_variant(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    product_ref: uuid.UUID | str,
    variant_ref: uuid.UUID | str,
    maker: User,
    patch: VariantPatch,
) -> ProductVariant:
    """A new SKU (unique in the campaign, among products and variants) or limit; a draft has no pledges, so a new
    limit frees all its units."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    product = await product_of(session, campaign, product_ref)
    ident = parse_id(variant_ref)
    variant = await session.get(ProductVariant, ident) if ident else None
    if variant is None or variant.product_id != product.id:
        raise NotFound("This product has no such variant.")
    changes = patch.changes()
    new_sku = changes.get("sku")
    if new_sku is not None and new_sku != variant.sku and new_sku in await skus_in_use(session, campaign):
        raise SkuTaken(f"This campaign already has a product or variant with the SKU {new_sku!r}.")
    if new_sku is not None:
        variant.sku = new_sku
    if "limit" in changes:
        variant.quantity_limit = changes["limit"]
        variant.remaining = changes["limit"]
    await session.flush()
    return variant


async def variants_of(session: AsyncSession, product_ids: Sequence[uuid.UUID]) -> list[ProductVariant]:
    if not product_ids:
        return []
    found = await session.scalars(
        select(ProductVariant)
        .where(ProductVariant.product_id.in_(product_ids))
        .order_by(ProductVariant.product_id, ProductVariant.position, ProductVariant.id)
    )
    return list(found)


async def skus_in_use(session: AsyncSession, campaign: Campaign) -> set[str]:
    """Every SKU the campaign's products and variants have."""
    products = await session.scalars(select(Product.sku).where(Product.campaign_id == campaign.id))
    variants = await session.scalars(select(ProductVariant.sku).where(ProductVariant.campaign_id == campaign.id))
    return set(products) | set(variants)


# What the factory makes


@dataclass(frozen=True)
class CatalogSku:
    """One SKU the factory makes: a product without options, or one variant of a product with options."""

    sku: str
    product: Product
    variant: ProductVariant | None

    @property
    def choice(self) -> dict[str, Any]:
        return dict(self.variant.choice) if self.variant else {}


async def campaign_skus(session: AsyncSession, campaign_id: uuid.UUID) -> list[CatalogSku]:
    """The campaign's SKUs as the batch planner counts them: a product with variants stands for its variants' SKUs
    (the backer chooses one), a product without them for its own."""
    products = list(
        await session.scalars(
            select(Product).where(Product.campaign_id == campaign_id).order_by(Product.created_at, Product.id)
        )
    )
    variants = await variants_of(session, [product.id for product in products])
    by_product: dict[uuid.UUID, list[ProductVariant]] = {}
    for variant in variants:
        by_product.setdefault(variant.product_id, []).append(variant)
    skus: list[CatalogSku] = []
    for product in products:
        own = by_product.get(product.id)
        if own:
            skus.extend(CatalogSku(variant.sku, product, variant) for variant in own)
        else:
            skus.append(CatalogSku(product.sku, product, None))
    return skus
