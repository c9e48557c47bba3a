"""Backing a campaign in the browser: choose a reward, a bonus and where it ships (a plain form that works without
JavaScript), then save a card with Stripe.js on the card page.

The rules are the pledging API's own: the choice is checked with `price_pledge`, the pledge is made by
`start_pledge` and activated by the API's confirm, which the card page's script calls once Stripe has saved the card.
The form is shared with the backer's pledge page, where the same choice changes an existing pledge.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import service
from campaigns.add_ons import OfferedAddOn
from campaigns.countries import country_codes
from campaigns.currencies import (
    AboveCap,
    BelowMinimum,
    NotWholeUnits,
    accepted_currency,
    display_exponent,
    minor_exponent,
)
from campaigns.errors import InvalidInput, NotAllowed
from campaigns.languages import Written
from campaigns.models import Campaign, Pledge, Product, ProductVariant, Space, Tier, User
from campaigns.pledges.checkout import start_pledge
from campaigns.pledges.choices import MOST_OF_ONE_ADD_ON, resolve_choice
from campaigns.pledges.contents import Contents, choice_contents, contents_of
from campaigns.pledges.lifecycle import CARD_SETUP_STATUSES, HOLDING_PLEDGE_STATUSES, PledgeStatus
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import (
    NOTHING_CHOSEN,
    AddOnChoice,
    PledgeChoice,
    PledgeTerms,
    price_pledge,
    shipping_fee_for,
    ships,
)
from campaigns.pledges.schemas import PledgeCreate
from campaigns.pledges.service import (
    AlreadyPledged,
    NotLive,
    SoldOut,
    TooManyOpenHolds,
    get_pledge,
    lines_of,
    own_pledge,
)
from campaigns.pledges.shipping import WeightTable, rates_alone, weight_table
from campaigns.stock import UnitsSoldOut
from campaigns.variants import variant_name
from payments.gateway import GatewayError
from service.endpoints.pledges import checkout_of, hold_limit_of
from service.i18n import gettext as _
from service.i18n import money
from service.pages import FieldMessages, country_name, validate_form, viewer
from service.pages.campaigns import delivery_month
from service.pages.catalog_views import product_name, tier_title
from service.pages.money_input import NumberInputError, example, major_units, minor_units
from service.web import gateway_of, read_form, redirect, render, settings_of, uow

# The tier radio's value for "no reward, just support".
NO_REWARD = "none"
# Pledges that hold the backer's place in a campaign (one per backer).
FEW_LEFT = 10


# The choice: tier, bonus, country


@dataclass(frozen=True)
class Choice:
    """The form's choice, checked, with the tier it names (for the page to show)."""

    tier: Tier | None
    bonus: int
    shipping_country: str | None
    variants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    add_ons: tuple[AddOnChoice, ...] = ()

    def choice(self) -> PledgeChoice:
        return PledgeChoice(
            self.tier.id if self.tier else None,
            self.bonus,
            self.shipping_country,
            variants=self.variants,
            add_ons=self.add_ons,
        )


# Form fields of the options and add-ons: "variant.<product id>.<option>", "addon.<add-on id>" (the quantity) and
# "addon.<add-on id>.<option>".
VARIANT_FIELD = "variant."
ADD_ON_FIELD = "addon."
# The most such fields read from one form (a campaign has a handful of products and add-ons).
MOST_EXTRA_FIELDS = 200


def choice_values(form: Mapping[str, Any]) -> dict[str, str]:
    """What was typed or picked, as text, to check and to show again."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    values = {"tier": text("tier"), "bonus": text("bonus"), "shipping_country": text("shipping_country").upper()}
    extra = [name for name in form if name.startswith((VARIANT_FIELD, ADD_ON_FIELD))][:MOST_EXTRA_FIELDS]
    values |= {name: text(name)[:100] for name in extra}
    return values


def _chosen_tier(values: Mapping[str, str], tiers: Sequence[Tier]) -> Tier | None:
    return next((tier for tier in tiers if str(tier.id) == values.get("tier")), None)


def read_choice(
    values: Mapping[str, str],
    campaign: Campaign,
    tiers: Sequence[Tier],
    *,
    own_tier_id: uuid.UUID | None = None,
    catalogue: Catalogue | None = None,
) -> Choice | FieldMessages:
    """The backer's choice, or one message per field in their language. `own_tier_id`: the tier the pledge being
    changed already holds a slot of (it is never sold out to its holder). With `catalogue`, the options of the
    chosen tier's products and the add-ons are read too (the database checks them again when the pledge is made)."""
    errors: FieldMessages = {}
    tier = _chosen_tier(values, tiers)
    variants: dict[str, dict[str, str]] = {}
    add_ons: list[AddOnChoice] = []
    if catalogue is not None:
        variants = _read_variants(values, tier, catalogue, errors)
        add_ons = read_add_ons(values, catalogue, errors)
    if tier is None and values.get("tier") != NO_REWARD:
        errors["tier"] = _("Choose a reward, or pledge without one.")
    elif tier is not None and tier.remaining == 0 and tier.id != own_tier_id:
        # Only a courtesy: the slot itself is taken atomically when the pledge is made.
        errors["tier"] = _("This reward is sold out. Choose another one.")
    bonus = 0
    if values.get("bonus"):
        try:
            bonus = minor_units(values["bonus"], campaign.currency)
        except NumberInputError as exc:
            errors["bonus"] = exc.message
    country = values.get("shipping_country") or None
    if (tier is None or not ships(tier)) and not add_ons:
        country = None
    # The API's own model: the bonus's limit, a real country.
    fields = {"tier_id": str(tier.id) if tier else None, "bonus": bonus, "shipping_country": country}
    checked = validate_form(
        PledgeCreate,
        cast(dict[str, str], fields),
        invalid={"bonus": _too_large(campaign.currency), "shipping_country": _("Choose a country from the list.")},
    )
    if isinstance(checked, dict):
        for field, message in checked.items():
            errors.setdefault("tier" if field == "tier_id" else field, message)
    if tier is not None and "shipping_country" not in errors and not add_ons:
        # Where it ships is checked even while the bonus is wrong, so every field's message comes at once.
        try:
            price_pledge(campaign.currency, tier, PledgeChoice(tier.id, 0, country))
        except InvalidInput as exc:
            if exc.errors[0].field == "shipping_country":
                errors["shipping_country"] = term_message(exc, country)
    if errors:
        return errors
    chosen = Choice(tier, bonus, country, variants, tuple(add_ons))
    if add_ons or variants:
        return chosen  # priced with the catalogue's answer: `price_choice`
    try:
        price_pledge(campaign.currency, tier, chosen.choice())
    except InvalidInput as exc:
        field = exc.errors[0].field
        return {field if field != "tier_id" else "tier": term_message(exc, country)}
    return chosen


@dataclass(frozen=True)
class Catalogue:
    """What the form offers beside the tiers: the products with options (and their variants) and the add-ons."""

    products: Sequence[Product]
    variants: Sequence[ProductVariant]
    add_ons: Sequence[OfferedAddOn]

    def optioned_in(self, tier: Tier | None) -> list[Product]:
        """The tier's products that have options, in the catalogue's order."""
        skus = {str(item["sku"]) for item in tier.items} if tier is not None else set()
        return [product for product in self.products if product.options and product.sku in skus]

    def add_on(self, ident: str) -> OfferedAddOn | None:
        return next((offered for offered in self.add_ons if str(offered.add_on.id) == ident), None)


def _read_variants(
    values: Mapping[str, str], tier: Tier | None, catalogue: Catalogue, errors: FieldMessages
) -> dict[str, dict[str, str]]:
    """The chosen tier's products' options as the form gives them; a message for a product left unchosen."""
    variants: dict[str, dict[str, str]] = {}
    for product in catalogue.optioned_in(tier):
        chosen = {
            str(option["name"]): values.get(f"{VARIANT_FIELD}{product.id}.{option['name']}", "")
            for option in product.options
        }
        missing = [name for name, value in chosen.items() if not value]
        if missing:
            errors[f"{VARIANT_FIELD}{product.id}"] = _("Choose the %(option)s of %(product)s.") % {
                "option": missing[0],
                "product": product.name,
            }
            continue
        variants[str(product.id)] = chosen
    return variants


def read_add_ons(values: Mapping[str, str], catalogue: Catalogue, errors: FieldMessages) -> list[AddOnChoice]:
    """Each add-on given a quantity of more than zero, with its options when the add-on leaves them open."""
    chosen: list[AddOnChoice] = []
    for offered in catalogue.add_ons:
        name = f"{ADD_ON_FIELD}{offered.add_on.id}"
        typed = values.get(name, "")
        if not typed:
            continue
        if not (typed.isascii() and typed.isdigit() and len(typed) <= 3 and int(typed) <= MOST_OF_ONE_ADD_ON):
            errors[name] = _("Enter a number from 0 to %(most)d.") % {"most": MOST_OF_ONE_ADD_ON}
            continue
        quantity = int(typed)
        if quantity == 0:
            continue
        options: dict[str, str] = {}
        if offered.variant is None and offered.product.options:
            options = {
                str(option["name"]): values.get(f"{name}.{option['name']}", "") for option in offered.product.options
            }
            missing = [option for option, value in options.items() if not value]
            if missing:
                errors[name] = _("Choose the %(option)s of %(product)s.") % {
                    "option": missing[0],
                    "product": offered.product.name,
                }
                continue
        chosen.append(AddOnChoice(offered.add_on.id, quantity, options))
    return chosen


def extras_error_field(field: str, choice: Choice) -> str:
    """The form field a refusal of `resolve_choice` or `price_pledge` names: variants.<id> -> variant.<id>,
    add_ons.<n>.* -> addon.<the n-th chosen add-on's id>."""
    if field.startswith("variants."):
        return VARIANT_FIELD + field.removeprefix("variants.")
    if field.startswith("add_ons."):
        position = field.split(".")[1]
        if position.isascii() and position.isdigit() and int(position) < len(choice.add_ons):
            return f"{ADD_ON_FIELD}{choice.add_ons[int(position)].add_on_id}"
    return "tier" if field == "tier_id" else field


def extras_message(refusal: InvalidInput, choice: Choice) -> str:
    """A refusal of the options or add-ons, in the reader's language."""
    field = refusal.errors[0].field
    if field.startswith("variants."):
        return _("Choose one of the options shown.")
    if field.endswith(".quantity"):
        return _("Enter a number from 0 to %(most)d.") % {"most": MOST_OF_ONE_ADD_ON}
    if field.endswith(".variant"):
        return _("Choose one of the options shown.")
    if field.startswith("add_ons."):
        return _("This add-on is not offered with the reward you chose.")
    if field == "shipping_country" and choice.shipping_country and choice.add_ons:
        return _("Something you chose does not ship to %(country)s. Choose another country or leave it out.") % {
            "country": country_name(choice.shipping_country)
        }
    return term_message(refusal, choice.shipping_country)


async def price_choice(session: AsyncSession, campaign: Campaign, choice: Choice) -> PledgeTerms | FieldMessages:
    """The choice priced as the reservation will price it (the catalogue read now), or the messages of its
    refusal: the figures the review shows before the card."""
    try:
        resolved = await resolve_choice(session, campaign, choice.tier, choice.choice())
        weights = await weight_table(session, campaign)
        return price_pledge(campaign.currency, choice.tier, choice.choice(), resolved, weights)
    except InvalidInput as exc:
        return {extras_error_field(exc.errors[0].field, choice): extras_message(exc, choice)}


def _too_large(currency: str) -> str:
    """A bonus past what the API takes at all: the limit that matters is what one pledge may come to."""
    accepted = accepted_currency(currency)
    if accepted is None:
        return _("This amount is too large.")
    return _("One pledge may come to at most %(amount)s. Lower the bonus.") % {
        "amount": money(accepted.pledge_cap, currency)
    }


def term_message(refusal: InvalidInput, country: str | None) -> str:
    """`price_pledge`'s refusals, in the reader's language."""
    field = refusal.errors[0].field
    if isinstance(refusal, BelowMinimum):
        return _("A pledge must come to at least %(amount)s, the least a card can be charged in %(currency)s.") % {
            "amount": money(refusal.limit, refusal.currency),
            "currency": refusal.currency,
        }
    if isinstance(refusal, AboveCap):
        return _("One pledge may come to at most %(amount)s. Lower the bonus.") % {
            "amount": money(refusal.limit, refusal.currency)
        }
    if isinstance(refusal, NotWholeUnits):
        return _("%(currency)s amounts are whole numbers: leave out the decimals.") % {"currency": refusal.currency}
    if field == "shipping_country" and country:
        return _("This reward does not ship to %(country)s. Choose another country or another reward.") % {
            "country": country_name(country)
        }
    if field == "shipping_country":
        return _("Choose the country your reward ships to.")
    if field == "bonus":
        return _("Without a reward, enter an amount of more than zero.")
    return _("Choose a reward, or pledge without one.")


# What the form shows


def tier_choices(
    tiers: Sequence[Tier], products: Sequence[Product], currency: str, *, own_tier_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    names = {product.sku: product_name(product) for product in products}
    choices = []
    for tier in tiers:
        limited = tier.quantity_limit is not None
        own = tier.id == own_tier_id
        sold_out = limited and tier.remaining == 0 and not own
        choices.append(
            {
                "id": str(tier.id),
                "title": tier_title(tier),
                "price": tier.price,
                "currency": currency,
                "limited": limited,
                "quantity_limit": tier.quantity_limit,
                "remaining": tier.remaining,
                "sold_out": sold_out,
                "own": own,
                "few_left": limited and not own and tier.remaining is not None and 0 < tier.remaining <= FEW_LEFT,
                "contents": [
                    {"quantity": int(item["quantity"]), "name": names.get(item["sku"], item["sku"])}
                    for item in tier.items
                ],
                "ships": ships(tier),
                "estimated_delivery": delivery_month(tier.estimated_delivery),
            }
        )
    return choices


def _fee_text(fee: int, currency: str) -> str:
    return _("free shipping") if fee == 0 else "+" + money(fee, currency)


def country_menu(tier: Tier | None, tiers: Sequence[Tier], currency: str, *, with_fees: bool = True) -> dict[str, Any]:
    """The shipping country select for `tier` (or, before one is chosen, every country some tier ships to): its own
    countries with their fees, then, when it ships to "*", every other country under one "everywhere else" group."""
    rows = list(tier.shipping) if tier is not None else [row for t in tiers for row in t.shipping]
    explicit = sorted({str(row["country"]) for row in rows if row["country"] != "*"}, key=country_name)
    anywhere = any(row["country"] == "*" for row in rows)
    with_fees = with_fees and tier is not None
    listed = []
    for code in explicit:
        label = country_name(code)
        if with_fees:
            label = f"{label} · {_fee_text(shipping_fee_for(rows, code) or 0, currency)}"
        listed.append((code, label))
    others: list[tuple[str, str]] = []
    elsewhere_label = None
    if anywhere:
        others = [(code, name) for code, name in all_countries() if code not in explicit]
        if with_fees:
            fee = shipping_fee_for(rows, "*") or 0
            elsewhere_label = _("Everywhere else · %(fee)s") % {"fee": _fee_text(fee, currency)}
        else:
            elsewhere_label = _("Everywhere else")
    return {"listed": listed, "others": others, "elsewhere_label": elsewhere_label}


def all_countries() -> list[tuple[str, str]]:
    return sorted(((code, country_name(code)) for code in country_codes()), key=lambda pair: pair[1].casefold())


def script_data(
    tiers: Sequence[Tier],
    currency: str,
    weights: WeightTable | None = None,
    add_ons: Sequence[OfferedAddOn] = (),
) -> dict[str, str]:
    """What checkout.js needs to keep the countries and the total right as the backer chooses, without a reload.
    Shipped by weight, each tier also carries its contents' grams, the table ([[up_to_grams, fee], ...] by country)
    and the grams of each add-on, so the script adds the add-ons' weight and finds the bracket."""
    anywhere = any(row["country"] == "*" for tier in tiers for row in tier.shipping)
    explicit = {str(row["country"]) for tier in tiers for row in tier.shipping if row["country"] != "*"}
    countries = all_countries() if anywhere else sorted(((c, country_name(c)) for c in explicit), key=lambda p: p[1])
    tier_data = {
        str(tier.id): {
            "price": tier.price,
            "ships": ships(tier),
            "fees": {str(row["country"]): int(row["fee"]) for row in tier.shipping},
        }
        for tier in tiers
    }
    tier_data[NO_REWARD] = {"price": 0, "ships": False, "fees": {}}
    if weights is not None:
        table = {country: [[b.up_to_grams, b.fee] for b in brackets] for country, brackets in weights.rows.items()}
        add_on_grams = {str(offered.add_on.id): weights.grams.get(offered.sku, 0) for offered in add_ons}
        for tier in tiers:
            grams = weights.weight_of(choice_contents(tier, NOTHING_CHOSEN))
            tier_data[str(tier.id)] |= {"grams": grams, "weights": table, "addOnGrams": add_on_grams}
        tier_data[NO_REWARD] |= {"grams": 0, "weights": table, "addOnGrams": add_on_grams}
    return {
        "tiers": json.dumps(tier_data, separators=(",", ":")),
        "countries": json.dumps(countries, ensure_ascii=False, separators=(",", ":")),
        "digits": str(display_exponent(currency)),
        "scale": str(minor_exponent(currency)),
    }


def order_summary(
    values: Mapping[str, str], campaign: Campaign, tiers: Sequence[Tier], terms: PledgeTerms | None = None
) -> dict[str, Any]:
    """The figures beside the form: each known part, and the total once every part is known; with `terms` (a
    choice of options or add-ons, priced by the server), theirs."""
    tier = _chosen_tier(values, tiers)
    if terms is not None:
        return {
            "currency": campaign.currency,
            "price": sum(item.amount for item in terms.items if item.kind == "tier") if tier else 0,
            "add_ons": sum(item.amount for item in terms.items if item.kind == "addon"),
            "shipping": terms.shipping_fee,
            "bonus": terms.bonus,
            "total": terms.amount,
            "ships": terms.shipping_country is not None,
        }
    no_reward = values.get("tier") == NO_REWARD
    price: int | None = tier.price if tier else (0 if no_reward else None)
    fee: int | None = None
    if no_reward or (tier is not None and not ships(tier)):
        fee = 0
    elif tier is not None and values.get("shipping_country"):
        fee = shipping_fee_for(tier.shipping, values["shipping_country"])
    bonus: int | None = 0
    if values.get("bonus"):
        try:
            bonus = minor_units(values["bonus"], campaign.currency)
        except NumberInputError:
            bonus = None
    parts = (price, fee, bonus)
    total = sum(part for part in parts if part is not None) if all(part is not None for part in parts) else None
    return {
        "currency": campaign.currency,
        "price": price,
        "add_ons": None,
        "shipping": fee,
        "bonus": bonus,
        "total": total,
        "ships": tier is None or ships(tier),
    }


def choice_form(
    values: Mapping[str, str],
    campaign: Campaign,
    tiers: Sequence[Tier],
    products: Sequence[Product],
    *,
    own_tier_id: uuid.UUID | None = None,
    catalogue: Catalogue | None = None,
    terms: PledgeTerms | None = None,
    weights: WeightTable | None = None,
    held: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Everything templates/checkout/_choice.html draws. `weights`: the campaign's weight table, when it ships by
    weight (the add-ons then have no fees of their own: the script weighs them). `held`: the add-on units the pledge
    being changed holds already, by add-on id (like its own tier, never sold out to it)."""
    tier = _chosen_tier(values, tiers)
    by_weight = weights is not None
    return {
        "tiers": tier_choices(tiers, products, campaign.currency, own_tier_id=own_tier_id),
        "no_reward": NO_REWARD,
        "countries": country_menu(tier, tiers, campaign.currency),
        "any_ships": any(ships(t) for t in tiers),
        "summary": order_summary(values, campaign, tiers, terms),
        "extras": extras_view(catalogue, tiers, campaign.currency, by_weight=by_weight, held=held or {})
        if catalogue
        else None,
        "script": script_data(tiers, campaign.currency, weights, catalogue.add_ons if catalogue else ()),
        "currency": campaign.currency,
        "bonus_example": example(display_exponent(campaign.currency)),
    }


def extras_view(
    catalogue: Catalogue,
    tiers: Sequence[Tier],
    currency: str,
    *,
    held: Mapping[str, int],
    by_weight: bool = False,
) -> dict[str, Any]:
    """The options of the tiers' products (one radio group an option) and the add-ons (a quantity each), as
    templates/checkout/_choice.html's `extras` draws them; an add-on's units in `held` (by add-on id) count as left,
    since a change gives them back before it takes the new ones; `by_weight`, the add-ons' own fees are not used."""
    in_tiers = {str(item["sku"]) for tier in tiers for item in tier.items}
    titles = {tier.id: tier.title for tier in tiers}
    products = [
        {
            "id": str(product.id),
            "name": product.name,
            "options": [{"name": str(o["name"]), "choices": [str(v) for v in o["values"]]} for o in product.options],
            "tiers": [tier.title for tier in tiers if product.sku in {str(item["sku"]) for item in tier.items}],
        }
        for product in catalogue.products
        if product.options and product.sku in in_tiers
    ]
    add_ons = []
    for offered in catalogue.add_ons:
        add_on, product, variant = offered.add_on, offered.product, offered.variant
        name = variant_name(product, variant) if variant else product.name
        open_options = variant is None and bool(product.options)
        fees = {} if by_weight else {str(row["country"]): int(row["fee"]) for row in add_on.shipping}
        remaining = None if add_on.remaining is None else add_on.remaining + held.get(str(add_on.id), 0)
        add_ons.append(
            {
                "id": str(add_on.id),
                "name": name,
                "price": add_on.price,
                "currency": currency,
                "options": [{"name": str(o["name"]), "choices": [str(v) for v in o["values"]]} for o in product.options]
                if open_options
                else [],
                "tiers": [titles[tier_id] for tier_id in offered.tier_ids if tier_id in titles],
                "ships_alone": add_on.ships_alone,
                "sold_out": remaining == 0,
                "remaining": remaining,
                "most": MOST_OF_ONE_ADD_ON if remaining is None else min(MOST_OF_ONE_ADD_ON, remaining),
                "fees": fees,
                "fees_json": json.dumps(fees, separators=(",", ":")),
            }
        )
    return {"products": products, "add_ons": add_ons}


# Loading


@dataclass(frozen=True)
class Backing:
    """A campaign as the checkout sees it."""

    campaign: Campaign
    tiers: list[Tier]
    products: list[Product]
    space: Space
    is_maker: bool
    variants: list[ProductVariant] = field(default_factory=list)
    add_ons: list[OfferedAddOn] = field(default_factory=list)
    weights: WeightTable | None = None

    @property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.products, self.variants, self.add_ons)


async def load_backing(session: AsyncSession, ref: str, user: User | None) -> Backing:
    """The campaign, its tiers, products and add-ons. A campaign that ships by weight has its tiers as the backer
    sees them: each with the fee of its own contents' weight per country of the table, in place of per-item rows."""
    detail = await service.campaign_detail(session, ref, user)
    space = await session.get_one(Space, detail.campaign.space_id)
    weights = await weight_table(session, detail.campaign)
    tiers = detail.tiers if weights is None else [_priced_by_weight(tier, weights) for tier in detail.tiers]
    return Backing(
        detail.campaign,
        tiers,
        detail.products,
        space,
        "maker" in detail.roles,
        variants=detail.variants,
        add_ons=detail.add_ons,
        weights=weights,
    )


def _priced_by_weight(tier: Tier, weights: WeightTable) -> Tier:
    """A copy of `tier`, never added to a session (so never written), whose `shipping` rows are the table's fees for
    the tier's contents alone: what the forms' countries, fees and totals read."""
    copy = Tier(**{column.key: getattr(tier, column.key) for column in Tier.__table__.columns})
    copy.shipping = rates_alone(weights, choice_contents(tier, NOTHING_CHOSEN)) if ships(tier) else []
    return copy


async def holding_pledge(session: AsyncSession, campaign_id: uuid.UUID, user: User) -> Pledge | None:
    """The backer's pledge that holds their one place in the campaign, if they have one."""
    found: Pledge | None = await session.scalar(
        select(Pledge).where(
            Pledge.campaign_id == campaign_id, Pledge.backer_id == user.id, Pledge.status.in_(HOLDING_PLEDGE_STATUSES)
        )
    )
    return found


def campaign_facts(backing: Backing) -> dict[str, Any]:
    campaign = backing.campaign
    return {
        "title": campaign.title,
        "url": f"/campaigns/{campaign.slug}",
        "back_url": f"/campaigns/{campaign.slug}/back",
        "currency": campaign.currency,
        "ends_at": campaign.ends_at,
        "status": campaign.status,
        "space_name": backing.space.name,
        "space_url": f"/spaces/{backing.space.slug}",
    }


def taking_pledges(campaign: Campaign) -> bool:
    """What the page shows (the rule itself is `live_campaign_for_pledging`'s, in the database's clock)."""
    return campaign.status == "live" and (campaign.ends_at is None or campaign.ends_at > datetime.now(UTC))


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/login?next=" + quote(target, safe=""))


def signup_redirect(request: Request) -> Response:
    """Someone not signed in who wants to back is most likely new here: sign-up first, log-in one link away."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/signup?next=" + quote(target, safe=""))


# Step 1: the choice


def _initial_values(request: Request, tiers: Sequence[Tier]) -> dict[str, str]:
    wanted = request.query_params.get("tier", "")
    available = [tier for tier in tiers if tier.remaining != 0]
    chosen = next((tier for tier in available if str(tier.id) == wanted), None)
    if chosen is None and wanted != NO_REWARD and len(available) == 1:
        chosen = available[0]
    tier_value = str(chosen.id) if chosen else (NO_REWARD if wanted == NO_REWARD else "")
    country = ""
    if chosen is not None and ships(chosen):
        explicit = [str(row["country"]) for row in chosen.shipping if row["country"] != "*"]
        anywhere = any(row["country"] == "*" for row in chosen.shipping)
        if len(explicit) == 1 and not anywhere:
            country = explicit[0]
        elif request.state.locale == "zh_CN" and shipping_fee_for(chosen.shipping, "CN") is not None:
            country = "CN"
    return {"tier": tier_value, "bonus": "", "shipping_country": country}


def _back_page(
    request: Request,
    backing: Backing,
    *,
    values: Mapping[str, str],
    errors: FieldMessages | None = None,
    form_error: str | None = None,
    existing: Pledge | None = None,
    closed: bool = False,
    status: int = 200,
    terms: PledgeTerms | None = None,
) -> Response:
    campaign = backing.campaign
    closed = closed or not taking_pledges(campaign)
    context = {
        "campaign": campaign_facts(backing),
        "values": values,
        "errors": errors or {},
        "form_error": form_error,
        "choice": choice_form(
            values,
            campaign,
            backing.tiers,
            backing.products,
            catalogue=backing.catalogue,
            terms=terms,
            weights=backing.weights,
        ),
        "existing": _existing_view(existing) if existing else None,
        "is_maker": backing.is_maker,
        "closed": closed,
        "hold_minutes": max(1, settings_of(request).pledge_hold_seconds // 60),
        "welcome": request.query_params.get("welcome") == "1",
    }
    return render(request, "checkout/back.html", context, status=status)


def _existing_view(pledge: Pledge) -> dict[str, Any]:
    return {
        "url": f"/me/pledges/{pledge.id}",
        "card_url": f"/me/pledges/{pledge.id}/card",
        "needs_card": pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD,
    }


async def back_form(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return signup_redirect(request)
        backing = await load_backing(session, request.path_params["slug"], user)
        existing = await holding_pledge(session, backing.campaign.id, user)
    values = _initial_values(request, backing.tiers)
    status = 200
    if not taking_pledges(backing.campaign):
        status = 409
    elif backing.is_maker:
        status = 403
    return _back_page(request, backing, values=values, existing=existing, status=status)


async def back(request: Request) -> Response:
    form = await read_form(request)
    values = choice_values(form)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return signup_redirect(request)
        backing = await load_backing(session, request.path_params["slug"], user)
        existing = await holding_pledge(session, backing.campaign.id, user)
    if not taking_pledges(backing.campaign):
        return _back_page(request, backing, values=values, status=409)
    if backing.is_maker:
        return _back_page(request, backing, values=values, status=403)
    checked = read_choice(values, backing.campaign, backing.tiers, catalogue=backing.catalogue)
    if isinstance(checked, dict):
        return _back_page(request, backing, values=values, errors=checked, status=422)
    terms = None
    if checked.variants or checked.add_ons:
        async with uow(request) as session:
            priced = await price_choice(session, backing.campaign, checked)
        if isinstance(priced, dict):
            return _back_page(request, backing, values=values, errors=priced, status=422)
        terms = priced
    if form.get("action") == "update":
        return _back_page(request, backing, values=values, terms=terms)
    if existing is not None:
        return _already_pledged(request, backing, values, existing)
    try:
        pledge = await start_pledge(
            checkout_of(request),
            user,
            campaign_id=str(backing.campaign.id),
            choice=checked.choice(),
            hold_limit=hold_limit_of(request),
        )
    except TooManyOpenHolds:
        message = _(
            "Too many pledges from your connection are waiting for a card. Add the card to one of them, or cancel "
            "one, then try again."
        )
        return _back_page(request, backing, values=values, form_error=message, status=409)
    except SoldOut:
        errors = {"tier": _("This reward has just sold out. Choose another one.")}
        async with uow(request) as session:
            backing = await load_backing(session, request.path_params["slug"], user)
        return _back_page(request, backing, values=values, errors=errors, status=409)
    except UnitsSoldOut:
        message = _("Something you chose has just sold out: nothing was taken. Check the options and add-ons.")
        async with uow(request) as session:
            backing = await load_backing(session, request.path_params["slug"], user)
        return _back_page(request, backing, values=values, form_error=message, status=409)
    except AlreadyPledged:
        async with uow(request) as session:
            existing = await holding_pledge(session, backing.campaign.id, user)
        return _already_pledged(request, backing, values, existing)
    except NotLive:
        return _back_page(request, backing, values=values, closed=True, status=409)
    except NotAllowed:
        return _back_page(request, backing, values=values, status=403)
    except InvalidInput as exc:
        errors = {extras_error_field(exc.errors[0].field, checked): extras_message(exc, checked)}
        return _back_page(request, backing, values=values, errors=errors, status=422)
    except GatewayError:
        message = _("The card service did not answer. Nothing was saved; please try again in a moment.")
        return _back_page(request, backing, values=values, form_error=message, status=503)
    return redirect(f"/me/pledges/{pledge.id}/card")


def _already_pledged(
    request: Request, backing: Backing, values: Mapping[str, str], existing: Pledge | None
) -> Response:
    message = _("You already back this project. You can change that pledge instead of making a new one.")
    return _back_page(request, backing, values=values, form_error=message, existing=existing, status=409)


# Step 2: the card


async def card_page(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, request.path_params["pledge_id"], user)
        if pledge.status not in CARD_SETUP_STATUSES:
            return redirect(f"/me/pledges/{pledge.id}")
        backing = await load_backing(session, str(pledge.campaign_id), user)
        contents = await contents_of(session, pledge.id)
        add_ons_amount = await add_ons_amount_of(session, pledge.id)
    tier = next((t for t in backing.tiers if t.id == pledge.tier_id), None)
    settings = settings_of(request)
    hold_until: datetime | None = None
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD:
        hold_until = pledge.created_at + timedelta(seconds=settings.pledge_hold_seconds)
    context = {
        "campaign": campaign_facts(backing),
        "pledge": pledge_summary(
            pledge, tier, contents, backing.products, variants=backing.variants, add_ons_amount=add_ons_amount
        ),
        "updating": pledge.status == PledgeStatus.ERRORED,
        "retry_until": pledge.retry_until if pledge.status == PledgeStatus.ERRORED else None,
        "hold_until": hold_until,
        "stripe": {
            "publishable_key": gateway_of(request).publishable_key,
            # Empty when the card set-up was lost (card.js then asks for one) or the pledge needs a new card.
            "client_secret": (pledge.setup_intent_client_secret or "")
            if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD
            else "",
            "confirm_url": f"/api/v1/pledges/{pledge.id}/confirm",
            "payment_method_url": f"/api/v1/pledges/{pledge.id}/payment-method",
            "done_url": f"/me/pledges/{pledge.id}",
            "pledge_url": f"/api/v1/pledges/{pledge.id}",
        },
        # A pledge still without a card when the campaign stopped taking pledges cannot be completed any more.
        "too_late": pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD and not taking_pledges(backing.campaign),
    }
    return render(request, "checkout/card.html", context)


async def add_ons_amount_of(session: AsyncSession, pledge_id: uuid.UUID) -> int:
    return add_ons_amount((await lines_of(session, [pledge_id]))[pledge_id])


def add_ons_amount(lines: Sequence[PledgeItem]) -> int:
    """What the pledge's add-on lines come to."""
    return sum(line.quantity * line.unit_amount for line in lines if line.kind == "addon")


def held_add_ons(lines: Sequence[PledgeItem]) -> dict[str, int]:
    """The add-on units a pledge's lines hold, by add-on id."""
    held: dict[str, int] = {}
    for line in lines:
        if line.kind == "addon" and line.add_on_id is not None:
            held[str(line.add_on_id)] = held.get(str(line.add_on_id), 0) + line.quantity
    return held


async def own_pledge_of(session: AsyncSession, ref: str, user: User) -> Pledge:
    """The signed-in backer's pledge; anyone else's is not found."""
    pledge = await get_pledge(session, ref)
    own_pledge(pledge, user)
    return pledge


def pledge_summary(
    pledge: Pledge,
    tier: Tier | None,
    contents: Contents,
    products: Sequence[Product],
    *,
    variants: Sequence[ProductVariant] = (),
    add_ons_amount: int = 0,
) -> dict[str, Any]:
    """A pledge's figures and what it contains (`pledge_contents`), as the card page and the pledge page show them:
    a variant by its product's name and its values ("Desk lamp (black)"), the add-ons (`add_ons_amount`, the sum of
    the pledge's add-on lines) apart from the reward's price; names in the reader's language where the maker gave
    one."""
    names: dict[str, Written | str] = {product.sku: product_name(product) for product in products}
    by_id = {product.id: product for product in products}
    names |= {v.sku: variant_name(by_id[v.product_id], v) for v in variants if v.product_id in by_id}
    price = pledge.amount - pledge.bonus - pledge.shipping_fee - add_ons_amount
    return {
        "id": str(pledge.id),
        "url": f"/me/pledges/{pledge.id}",
        "card_url": f"/me/pledges/{pledge.id}/card",
        "status": pledge.status,
        "tier_title": tier_title(tier) if tier else None,
        "contents": [{"quantity": quantity, "name": names.get(sku, sku)} for sku, quantity in contents.items()],
        "ships": bool(contents),
        "estimated_delivery": delivery_month(tier.estimated_delivery) if tier else None,
        "price": price,
        "add_ons": add_ons_amount,
        "bonus": pledge.bonus,
        "shipping_fee": pledge.shipping_fee,
        "amount": pledge.amount,
        "currency": pledge.currency,
        "shipping_country": country_name(pledge.shipping_country) if pledge.shipping_country else None,
        "shipping_country_code": pledge.shipping_country,
        "created_at": pledge.created_at,
        "confirmed_at": pledge.confirmed_at,
        "charged_at": pledge.charged_at,
        "cancelled_at": pledge.cancelled_at,
    }


def kept_split_add_ons(
    choice: PledgeChoice, values: Mapping[str, str], pledge: Pledge, lines: Sequence[PledgeItem]
) -> PledgeChoice:
    """The form shows one quantity and one set of options an add-on; a pledge may hold an add-on in two variants
    (added in the pledge manager). Such an add-on whose fields the backer left as shown keeps its lines as they are,
    rather than becoming one variant."""
    counts = Counter(line.add_on_id for line in lines if line.kind == "addon" and line.add_on_id is not None)
    split = {add_on_id for add_on_id, count in counts.items() if count > 1}
    if not split:
        return choice
    shown = values_of(pledge, lines)

    def left_as_shown(add_on_id: uuid.UUID | None) -> bool:
        prefix = f"{ADD_ON_FIELD}{add_on_id}"
        names = {name for name in {*shown, *values} if name == prefix or name.startswith(prefix + ".")}
        return all(values.get(name, "") == shown.get(name, "") for name in names)

    kept = {add_on_id for add_on_id in split if left_as_shown(add_on_id)}
    add_ons = [each for each in choice.add_ons if each.add_on_id not in kept]
    add_ons += [
        AddOnChoice(line.add_on_id, line.quantity, dict(line.variant))
        for line in lines
        if line.add_on_id is not None and line.add_on_id in kept
    ]
    return replace(choice, add_ons=tuple(add_ons))


def values_of(pledge: Pledge, lines: Sequence[PledgeItem] = ()) -> dict[str, str]:
    """A pledge's choice as the form shows it: with its `lines`, the options of its tier's products and its add-ons'
    quantities and options, as the form's fields name them."""
    values = {
        "tier": str(pledge.tier_id) if pledge.tier_id else NO_REWARD,
        "bonus": major_units(pledge.bonus, pledge.currency) if pledge.bonus else "",
        "shipping_country": pledge.shipping_country or "",
    }
    for line in lines:
        if line.kind == "tier":
            for product_id, choice in line.variant.items():
                values |= {f"{VARIANT_FIELD}{product_id}.{option}": str(value) for option, value in choice.items()}
        elif line.kind == "addon" and line.add_on_id is not None:
            field = f"{ADD_ON_FIELD}{line.add_on_id}"
            values[field] = str(int(values.get(field) or 0) + line.quantity)
            values |= {f"{field}.{option}": str(value) for option, value in line.variant.items()}
    return values


routes = [
    Route("/campaigns/{slug}/back", back_form, methods=["GET"]),
    Route("/campaigns/{slug}/back", back, methods=["POST"]),
    Route("/me/pledges/{pledge_id}/card", card_page, methods=["GET"]),
]
