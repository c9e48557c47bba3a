"""What the pages show of a campaign's product options, variants and add-ons: the public page, the maker's
workspace and the space's review read the same views."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from campaigns.add_ons import OfferedAddOn
from campaigns.languages import Written, version_for
from campaigns.models import Product, ProductVariant, Tier
from campaigns.service import CampaignDetail
from campaigns.variants import chosen_values
from service.i18n import current_locale
from service.i18n import gettext as _
from service.pages import country_name

# A limited tier or add-on with this many left or fewer is shown as nearly gone.
FEW_LEFT = 10


def product_name(product: Product) -> Written:
    """A product's name in the reader's language when the maker gave one, else as written."""
    return version_for(current_locale.get(), "name", product.name, product.language, product.translations)


def tier_title(tier: Tier) -> Written:
    """A tier's title in the reader's language when the maker gave one, else as written."""
    return version_for(current_locale.get(), "title", tier.title, tier.language, tier.translations)


def shipping_view(rates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Shipping rows as 'China: 10.00', the rest of the world last."""
    rows = [
        {"country": str(rate["country"]), "name": _destination(str(rate["country"])), "fee": int(rate["fee"])}
        for rate in rates
    ]
    return sorted(rows, key=lambda row: (row["country"] == "*", row["name"]))


def _destination(code: str) -> str:
    return _("Everywhere else") if code == "*" else country_name(code)


def variant_view(product: Product, variant: ProductVariant) -> dict[str, Any]:
    return {
        "id": str(variant.id),
        "sku": variant.sku,
        "choice": ", ".join(chosen_values(product.options, variant.choice)),
        "limit": variant.quantity_limit,
        "remaining": variant.remaining,
        "sold_out": variant.remaining == 0,
    }


def product_choices(product: Product, variants: list[ProductVariant]) -> dict[str, Any]:
    own = [variant_view(product, variant) for variant in variants if variant.product_id == product.id]
    return {
        "id": str(product.id),
        "sku": product.sku,
        "name": product_name(product),
        "options": [{"name": str(o["name"]), "values": [str(v) for v in o["values"]]} for o in product.options],
        "variants": own,
    }


def products_with_options(detail: CampaignDetail) -> list[dict[str, Any]]:
    """The products a backer chooses among, with their options and variants; products without options left out."""
    return [product_choices(product, detail.variants) for product in detail.products if product.options]


def add_on_view(offered: OfferedAddOn, *, currency: str, tier_titles: Mapping[str, str]) -> dict[str, Any]:
    add_on = offered.add_on
    limited = add_on.quantity_limit is not None
    return {
        "id": str(add_on.id),
        "name": product_name(offered.product),
        "variant": ", ".join(chosen_values(offered.product.options, offered.variant.choice)) if offered.variant else "",
        "options": [str(o["name"]) for o in offered.product.options] if offered.variant is None else [],
        "sku": offered.sku,
        "price": add_on.price,
        "currency": currency,
        "limited": limited,
        "quantity_limit": add_on.quantity_limit,
        "remaining": add_on.remaining,
        "sold_out": limited and add_on.remaining == 0,
        "few_left": limited and add_on.remaining is not None and 0 < add_on.remaining <= FEW_LEFT,
        "tiers": [tier_titles.get(str(tier_id), "") for tier_id in offered.tier_ids],
        "ships_alone": add_on.ships_alone,
        "shipping": shipping_view(add_on.shipping),
    }


def add_on_views(detail: CampaignDetail) -> list[dict[str, Any]]:
    titles = {str(tier.id): tier_title(tier) for tier in detail.tiers}
    return [add_on_view(offered, currency=detail.campaign.currency, tier_titles=titles) for offered in detail.add_ons]
