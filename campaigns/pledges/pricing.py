"""The one place a pledge is priced: the backer's choice becomes line items, and the amount is their sum.

Pure: no session, no request, no Stripe. The reservation, a change of pledge and the demo data all price here, and the
pledge's stored `amount`, `bonus` and `shipping_fee` are read off the terms made here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaigns.currencies import check_pledge_total, check_whole_units
from campaigns.errors import InvalidInput
from campaigns.models import Tier


@dataclass(frozen=True)
class PledgeChoice:
    """What the backer chose: a tier (None: a pledge without reward), a bonus, and where the reward ships. It travels
    whole from the form or the request body to `price_pledge`."""

    tier_id: uuid.UUID | str | None
    bonus: int = 0
    shipping_country: str | None = None


@dataclass(frozen=True)
class LineItem:
    kind: str
    quantity: int
    unit_amount: int
    ref_id: uuid.UUID | None = None
    variant: Mapping[str, str] = field(default_factory=dict)
    sku: str | None = None

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


def price_pledge(currency: str, tier: Tier | None, choice: PledgeChoice) -> PledgeTerms:
    """The lines of the backer's choice, `tier` being the one it names (or None, no reward): the tier at its price,
    the bonus and the tier's shipping fee to the chosen country, each a line when it is more than zero (the tier's
    line always). Their sum lies between the least Stripe can charge in `currency` and the most one pledge may come
    to (campaigns/currencies.py)."""
    bonus, shipping_country = choice.bonus, choice.shipping_country
    if bonus < 0:
        raise InvalidInput("bonus", "must be zero or more")
    check_whole_units("bonus", bonus, currency)
    items: list[LineItem] = []
    fee = 0
    if tier is None:
        if bonus <= 0:
            raise InvalidInput("bonus", "a pledge without a reward must be a bonus of more than zero")
    else:
        items.append(LineItem("tier", 1, tier.price, ref_id=tier.id))
        if ships(tier):
            if not shipping_country:
                raise InvalidInput("shipping_country", "is required: this reward ships")
            found = shipping_fee_for(tier.shipping, shipping_country)
            if found is None:
                raise InvalidInput("shipping_country", f"this reward does not ship to {shipping_country}")
            fee = found
    if bonus > 0:
        items.append(LineItem("bonus", 1, bonus))
    if fee > 0:
        items.append(LineItem("shipping", 1, fee))
    terms = PledgeTerms(tier.id if tier else None, bonus, fee, shipping_country, currency, tuple(items))
    check_pledge_total(terms.amount, currency)
    return terms
