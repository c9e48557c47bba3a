"""Shipping by weight: the maker's alternative to per-item fees, chosen per campaign while it is a draft.

A campaign's `shipping_mode` is "per_item" (each tier's fee to the country plus each shipped add-on's,
`pricing.shipping_fee_for`) or "weight": its `shipping_table` gives, per country (or "*" for the rest of the world),
brackets `up_to_grams -> fee` in rising order, and a pledge's shipping is the fee of the first bracket its contents'
total weight fits in (a product's `weight_grams` per unit, its variants weighing the same). A country without a row
(and no "*") or a weight above the last bracket is a 422 naming `shipping_country`. Contents with nothing to ship cost
nothing and ask for no address, in either mode.

`WeightTable` is pure (pricing uses it with no session); `weight_table` loads it for a campaign, `set_shipping` is
the maker's use case behind `PUT /campaigns/{id}/shipping`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import campaign_for, visible_campaign
from campaigns.campaign_schemas import CampaignRequest, Count, Fee, ShippingCountry
from campaigns.currencies import check_whole_units
from campaigns.errors import InvalidInput
from campaigns.models import Campaign, Product, ProductVariant, User
from campaigns.schemas_base import ResponseModel

# A campaign ships to a few dozen countries at most, each priced in a handful of weight steps.
MOST_TABLE_ROWS = 250
MOST_BRACKETS = 20


@dataclass(frozen=True)
class Bracket:
    up_to_grams: int
    fee: int


@dataclass(frozen=True)
class WeightTable:
    """A weight-priced campaign's table (country or "*" -> brackets, lightest first) and what one unit of each of
    its SKUs (products and their variants) weighs."""

    rows: Mapping[str, tuple[Bracket, ...]]
    grams: Mapping[str, int]

    def weight_of(self, contents: Mapping[str, int]) -> int:
        """The total weight of `contents` (SKU -> units); a SKU the campaign no longer has weighs nothing."""
        return sum(self.grams.get(sku, 0) * units for sku, units in contents.items())

    def fee(self, country: str, grams: int) -> int:
        """The fee of the lightest bracket `grams` fits in, for `country` (its row, else "*"): a 422 naming
        `shipping_country` when there is no row, or the weight is above the last bracket."""
        brackets = self.rows.get(country) or self.rows.get("*")
        if not brackets:
            raise InvalidInput("shipping_country", f"this campaign does not ship to {country}")
        for bracket in brackets:
            if grams <= bracket.up_to_grams:
                return bracket.fee
        raise InvalidInput(
            "shipping_country",
            f"a package of {grams} g is more than this campaign ships to {country} "
            f"(at most {brackets[-1].up_to_grams} g)",
        )

    def fee_of(self, country: str, contents: Mapping[str, int]) -> int:
        return self.fee(country, self.weight_of(contents)) if contents else 0


def rates_alone(weights: WeightTable, contents: Mapping[str, int]) -> list[dict[str, Any]]:
    """What `contents` alone cost to ship to each country of the table, as a tier's per-item rows read
    ([{"country", "fee"}]): the pages show a weight-priced tier's countries and fees with these. Countries whose
    brackets stop below its weight are left out."""
    rates = []
    for country in weights.rows:
        try:
            rates.append({"country": country, "fee": weights.fee_of(country, contents)})
        except InvalidInput:
            continue
    return rates


def table_of(stored: Sequence[Mapping[str, Any]], grams: Mapping[str, int]) -> WeightTable:
    rows = {
        str(row["country"]): tuple(Bracket(int(b["up_to_grams"]), int(b["fee"])) for b in row["brackets"])
        for row in stored
    }
    return WeightTable(rows, dict(grams))


async def sku_weights(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, int]:
    """Grams per unit of each of the campaign's SKUs: its products', and their variants' (as their product's)."""
    products = await session.execute(
        select(Product.sku, Product.weight_grams).where(Product.campaign_id == campaign_id)
    )
    grams = {sku: weight for sku, weight in products}
    variants = await session.execute(
        select(ProductVariant.sku, Product.weight_grams)
        .join(Product, Product.id == ProductVariant.product_id)
        .where(ProductVariant.campaign_id == campaign_id)
    )
    grams.update({sku: weight for sku, weight in variants})
    return grams


async def weight_table(session: AsyncSession, campaign: Campaign) -> WeightTable | None:
    """The campaign's weight table, or None when it prices shipping per item."""
    if campaign.shipping_mode != "weight":
        return None
    return table_of(campaign.shipping_table, await sku_weights(session, campaign.id))


# The maker's choice


class WeightBracketIn(CampaignRequest):
    up_to_grams: Count
    fee: Fee


class WeightRowIn(CampaignRequest):
    country: ShippingCountry
    brackets: list[WeightBracketIn] = Field(min_length=1, max_length=MOST_BRACKETS)


class ShippingIn(CampaignRequest):
    """`mode` "per_item": each tier's and add-on's own fees; "weight": the table's bracket of the contents' weight.
    `table` rows: a country (or "*", the rest of the world) and its brackets, lightest first, fees never falling."""

    mode: Literal["per_item", "weight"]
    table: list[WeightRowIn] = Field(default_factory=list, max_length=MOST_TABLE_ROWS)


class WeightBracketOut(ResponseModel):
    up_to_grams: int
    fee: int


class WeightRowOut(ResponseModel):
    country: str
    brackets: list[WeightBracketOut]


class ShippingOut(ResponseModel):
    campaign_id: uuid.UUID
    currency: str
    mode: str
    table: list[WeightRowOut]

    @classmethod
    def of(cls, campaign: Campaign) -> ShippingOut:
        return cls(
            campaign_id=campaign.id,
            currency=campaign.currency,
            mode=campaign.shipping_mode,
            table=[WeightRowOut.model_validate(row) for row in campaign.shipping_table],
        )


def check_table(table: Sequence[WeightRowIn], mode: str, currency: str) -> list[dict[str, Any]]:
    """The table as stored, or a 422 naming the field: a country given twice (`table.<n>.country`), brackets not in
    rising order of weight or given twice (`table.<n>.brackets.<m>.up_to_grams`), a fee lower than a lighter
    bracket's or not a whole number of the currency's units (`table.<n>.brackets.<m>.fee`); in weight mode, at least
    one row (`table`)."""
    if mode == "weight" and not table:
        raise InvalidInput("table", "give at least one country (or * for the rest of the world) and its brackets")
    seen: set[str] = set()
    stored: list[dict[str, Any]] = []
    for n, row in enumerate(table):
        if row.country in seen:
            raise InvalidInput(f"table.{n}.country", f"{row.country} is given twice")
        seen.add(row.country)
        for m, bracket in enumerate(row.brackets):
            field = f"table.{n}.brackets.{m}"
            check_whole_units(f"{field}.fee", bracket.fee, currency)
            if m == 0:
                continue
            lighter = row.brackets[m - 1]
            if bracket.up_to_grams == lighter.up_to_grams:
                raise InvalidInput(f"{field}.up_to_grams", f"{bracket.up_to_grams} g is given twice")
            if bracket.up_to_grams < lighter.up_to_grams:
                raise InvalidInput(f"{field}.up_to_grams", "brackets go from the lightest to the heaviest")
            if bracket.fee < lighter.fee:
                raise InvalidInput(f"{field}.fee", "a heavier package cannot cost less to ship than a lighter one")
        stored.append({"country": row.country, "brackets": [b.model_dump() for b in row.brackets]})
    return stored


async def shipping_of(session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User | None) -> Campaign:
    campaign, _roles = await visible_campaign(session, campaign_ref, viewer)
    return campaign


async def set_shipping(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, choice: ShippingIn
) -> Campaign:
    """The maker chooses how the campaign prices shipping, replacing the choice before: while a draft only (409
    `not-draft` after), so that what the space approves is what sells."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    stored = check_table(choice.table, choice.mode, campaign.currency)
    await session.execute(
        update(Campaign).where(Campaign.id == campaign.id).values(shipping_mode=choice.mode, shipping_table=stored)
    )
    await session.refresh(campaign)
    return campaign
