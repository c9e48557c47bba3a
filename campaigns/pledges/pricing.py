"""The one place a pledge is priced: the backer's choice becomes line items, and the amount is their sum.

Pure: no session, no request, no Stripe. The reservation, a change of pledge and the demo data all price here, and the
pledge's stored `amount`, `bonus` and `shipping_fee` are read off the terms made here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from campaigns.currencies import check_pledge_total, check_whole_units
from campaigns.errors import InvalidInput
from campaigns.models import Tier
from campaigns.pledges.contents import choice_contents
from campaigns.pledges.shipping import WeightTable


@dataclass(frozen=True)
class AddOnChoice:
    """One add-on the backer wants: which, how many, and the options of its product when the add-on leaves them open
    ({} when its product has none or the add-on fixes one variant)."""

    add_on_id: uuid.UUID | str
    quantity: int = 1
    variant: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PledgeChoice:
    """What the backer chose: a tier (None: a pledge without reward), a bonus, where the reward ships, the options of
    the tier's products that have some (`variants`: product id as a string -> {option: value}) and add-ons. It
    travels whole from the form or the request body to `campaigns.pledges.choices.resolve_choice`, then
    `price_pledge`."""

    tier_id: uuid.UUID | str | None
    bonus: int = 0
    shipping_country: str | None = None
    variants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    add_ons: Sequence[AddOnChoice] = ()


@dataclass(frozen=True)
class ChosenVariant:
    """A product of the tier's bundle as the backer chose it: `units` of the variant `sku` in place of `product_sku`
    in each tier line."""

    product_id: uuid.UUID
    product_sku: str
    variant_id: uuid.UUID
    choice: Mapping[str, str]
    sku: str
    units: int
    limited: bool


@dataclass(frozen=True)
class ChosenAddOn:
    """An add-on checked against the campaign, the tier and its product's options: the line it becomes and the rows
    whose units it takes (the add-on's, and its variant's when that is limited)."""

    add_on_id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    choice: Mapping[str, str]
    sku: str
    quantity: int
    unit_amount: int
    shipping: Sequence[Mapping[str, Any]]
    limited: bool
    variant_limited: bool


@dataclass(frozen=True)
class ResolvedChoice:
    """The database's answer to a choice's variants and add-ons (`choices.resolve_choice`): what pricing and the
    reservation need, with no session."""

    tier_variants: tuple[ChosenVariant, ...] = ()
    add_ons: tuple[ChosenAddOn, ...] = ()

    @property
    def takes_units(self) -> bool:
        return any(v.limited for v in self.tier_variants) or any(a.limited or a.variant_limited for a in self.add_ons)


NOTHING_CHOSEN = ResolvedChoice()


@dataclass(frozen=True)
class LineItem:
    kind: str
    quantity: int
    unit_amount: int
    ref_id: uuid.UUID | None = None
    # A tier line: {product id: {option: value}} for its products that have options; an add-on line: {option: value}.
    variant: Mapping[str, Any] = field(default_factory=dict)
    sku: str | None = None
    # An add-on line's add-on, whose units it holds.
    add_on_id: uuid.UUID | None = None

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_amount


@dataclass(frozen=True)
class PledgeTerms:
    tier_id: uuid.UUID | None
    bonus: int
    shipping_fee: int
    shipping_country: str | None
    currency: str
    items: tuple[LineItem, ...]

    @property
    def amount(self) -> int:
        """What the backer pays: the sum of the lines, so the two cannot disagree."""
        return sum(item.amount for item in self.items)


def ships(tier: Tier) -> bool:
    """A tier ships when it contains products."""
    return bool(tier.items)


def shipping_fee_for(shipping: Sequence[Mapping[str, Any]], country: str) -> int | None:
    """The tier's fee for `country`: its own row, else the rest-of-the-world row "*", else None (not shipped there)."""
    by_country = {row["country"]: int(row["fee"]) for row in shipping}
    if country in by_country:
        return by_country[country]
    return by_country.get("*")


def add_on_fee_for(shipping: Sequence[Mapping[str, Any]], country: str) -> int | None:
    """An add-on's own fee for `country`: none when the maker gave it no rows (it rides with the rest), else as a
    tier's (its row, "*", or None: not shipped there)."""
    if not shipping:
        return 0
    return shipping_fee_for(shipping, country)


class ShippedAddOn(Protocol):
    """What an add-on line's shipping is priced from: the add-on's own fees per country, and how many."""

    @property
    def shipping(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def quantity(self) -> int: ...


def shipping_fee_of(
    country: str,
    tier: Tier | None,
    add_ons: Sequence[ShippedAddOn],
    contents: Mapping[str, int],
    weights: WeightTable | None = None,
) -> int:
    """The shipping of contents to `country`, the one rule for a choice and for a pledge (pledge time, a change, an
    address changed after funding): with `weights`, the table's bracket of the contents' weight; per item, the tier's
    fee (when it ships) plus each add-on's own fee × its quantity. A 422 naming `shipping_country` when it does not
    ship there."""
    if weights is not None:
        return weights.fee_of(country, contents)
    fee = 0
    if tier is not None and ships(tier):
        found = shipping_fee_for(tier.shipping, country)
        if found is None:
            raise InvalidInput("shipping_country", f"this reward does not ship to {country}")
        fee = found
    for add_on in add_ons:
        extra = add_on_fee_for(add_on.shipping, country)
        if extra is None:
            raise InvalidInput("shipping_country", f"an add-on you chose does not ship to {country}")
        fee += extra * add_on.quantity
    return fee


def price_pledge(
    currency: str,
    tier: Tier | None,
    choice: PledgeChoice,
    resolved: ResolvedChoice = NOTHING_CHOSEN,
    weights: WeightTable | None = None,
) -> PledgeTerms:
    """The lines of the backer's choice, `tier` being the one it names (or None, no reward) and `resolved` its
    variants and add-ons as `choices.resolve_choice` found them: the tier at its price (with the chosen variants),
    each add-on at its price × quantity, the bonus, and shipping computed from the contents (the tier's fee to the
    chosen country plus each add-on's; with `weights`, the campaign's table's bracket of the contents' total weight
    instead), each a line when it is more than zero (the tier's line always). Their sum
    lies between the least Stripe can charge in `currency` and the most one pledge may come to
    (campaigns/currencies.py)."""
    bonus, shipping_country = choice.bonus, choice.shipping_country
    if bonus < 0:
        raise InvalidInput("bonus", "must be zero or more")
    check_whole_units("bonus", bonus, currency)
    items: list[LineItem] = []
    shipped = bool(resolved.add_ons) or (tier is not None and ships(tier))
    if shipped and not shipping_country:
        raise InvalidInput("shipping_country", "is required: this reward ships")
    if tier is None:
        if bonus <= 0 and not resolved.add_ons:
            raise InvalidInput("bonus", "a pledge without a reward must be a bonus of more than zero")
    else:
        chosen = {str(v.product_id): dict(v.choice) for v in resolved.tier_variants}
        items.append(LineItem("tier", 1, tier.price, ref_id=tier.id, variant=chosen))
    for add_on in resolved.add_ons:
        items.append(
            LineItem(
                "addon",
                add_on.quantity,
                add_on.unit_amount,
                ref_id=add_on.product_id,
                variant=dict(add_on.choice),
                sku=add_on.sku,
                add_on_id=add_on.add_on_id,
            )
        )
    fee = 0
    if shipped:
        assert shipping_country  # asked for above
        fee = shipping_fee_of(shipping_country, tier, resolved.add_ons, choice_contents(tier, resolved), weights)
    if bonus > 0:
        items.append(LineItem("bonus", 1, bonus))
    if fee > 0:
        items.append(LineItem("shipping", 1, fee))
    terms = PledgeTerms(tier.id if tier else None, bonus, fee, shipping_country, currency, tuple(items))
    check_pledge_total(terms.amount, currency)
    return terms
