"""The maker's forms for a product's options and variants and for add-ons, read into the API's request models
(campaigns/campaign_schemas.py); each problem comes back as a message beside its field, in the page's language."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from campaigns.add_ons import OfferedAddOn
from campaigns.campaign_schemas import (
    MAX_OPTION_VALUES,
    MAX_OPTIONS,
    MAX_VARIANTS,
    AddOnCreate,
    ProductOption,
    ProductOptions,
    VariantPatch,
)
from campaigns.models import Product, ProductVariant
from campaigns.variants import chosen_values
from service.i18n import gettext as _
from service.pages import FieldMessages, validate_form
from service.pages.campaign_forms import FormValues, read_price, read_shipping, whole_number
from service.pages.money_input import major_units

# Values are typed on one line, split at commas (Latin or Chinese) and the enumeration comma.
_VALUE_SEPARATOR = re.compile(r"[,，、]")
BLANK_SHIPPING_ROWS = 3


def option_values(product: Product) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, option in enumerate(product.options):
        values[f"options-{index}-name"] = str(option["name"])
        values[f"options-{index}-values"] = ", ".join(str(value) for value in option["values"])
    return values


def read_options(values: FormValues) -> ProductOptions | FieldMessages:
    """Rows options-N-name and options-N-values ("black, white"); empty rows are left out."""
    errors: dict[str, str] = {}
    options: list[ProductOption] = []
    for index in range(MAX_OPTIONS):
        name = values.get(f"options-{index}-name", "").strip()
        typed = [value.strip() for value in _VALUE_SEPARATOR.split(values.get(f"options-{index}-values", ""))]
        typed = [value for value in typed if value]
        if not name and not typed:
            continue
        typed_option: dict[str, Any] = {"name": name, "values": typed}
        option = validate_form(ProductOption, typed_option)
        if isinstance(option, dict):
            if "name" in option:
                errors[f"options-{index}-name"] = _("Name the option, such as colour or plug.")
            if "values" in option:
                errors[f"options-{index}-values"] = _(
                    "Give between 1 and %(max)d values, each once, separated by commas."
                ) % {"max": MAX_OPTION_VALUES}
        else:
            options.append(option)
    if errors:
        return errors
    names = [option.name.casefold() for option in options]
    if len(set(names)) != len(names):
        return {"options": _("Give each option once, with all its values.")}
    count = 1
    for option in options:
        count *= len(option.values)
    if options and count > MAX_VARIANTS:
        return {
            "options": _("These options make %(num)d combinations; a product may have at most %(max)d variants.")
            % {"num": count, "max": MAX_VARIANTS}
        }
    return ProductOptions(options=options)


def variant_values(variants: Sequence[ProductVariant]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, variant in enumerate(variants):
        values[f"variants-{index}-id"] = str(variant.id)
        values[f"variants-{index}-sku"] = variant.sku
        values[f"variants-{index}-limit"] = str(variant.quantity_limit) if variant.quantity_limit is not None else ""
    return values


def read_variants(values: FormValues, count: int) -> list[tuple[str, VariantPatch]] | FieldMessages:
    """Rows variants-N-id, -sku and -limit (empty: unlimited), one per variant; the SKUs must differ."""
    errors: dict[str, str] = {}
    rows: list[tuple[str, VariantPatch]] = []
    seen: dict[str, int] = {}
    for index in range(count):
        variant_id = values.get(f"variants-{index}-id", "")
        sku = values.get(f"variants-{index}-sku", "").strip()
        limit_text = values.get(f"variants-{index}-limit", "").strip()
        limit = whole_number(limit_text) if limit_text else None
        typed_row: dict[str, Any] = {"sku": sku, "limit": limit}
        patch = validate_form(
            VariantPatch,
            typed_row,
            invalid={
                "sku": _("Use letters, digits, dots and dashes, starting with a letter or digit."),
                "limit": _("Enter how many can be sold: a whole number from 1, or leave it empty for no limit."),
            },
        )
        if isinstance(patch, dict):
            errors.update({f"variants-{index}-{field}": message for field, message in patch.items()})
            continue
        if sku.upper() in seen:
            errors[f"variants-{index}-sku"] = _("Two variants have this SKU; give each its own.")
            continue
        seen[sku.upper()] = index
        rows.append((variant_id, patch))
    return errors or rows


def offer_choices(products: Sequence[Product], variants: Sequence[ProductVariant]) -> list[tuple[str, str]]:
    """What an add-on can be: a product (the backer picks its variant), or one variant of it."""
    choices = [("", _("Choose a product"))]
    for product in products:
        choices.append((str(product.id), f"{product.name} ({product.sku})"))
        for variant in variants:
            if variant.product_id == product.id:
                label = ", ".join(chosen_values(product.options, variant.choice))
                choices.append((f"{product.id}/{variant.id}", f"{product.name}: {label} ({variant.sku})"))
    return choices


def add_on_values(offered: OfferedAddOn, currency: str) -> tuple[dict[str, str], list[str]]:
    add_on = offered.add_on
    values = {
        "offer": f"{add_on.product_id}/{add_on.variant_id}" if add_on.variant_id else str(add_on.product_id),
        "price": major_units(add_on.price, currency),
        "quantity_limit": str(add_on.quantity_limit) if add_on.quantity_limit is not None else "",
        "ships_alone": "1" if add_on.ships_alone else "",
    }
    for index, rate in enumerate(add_on.shipping):
        values[f"shipping-{index}-country"] = str(rate["country"])
        values[f"shipping-{index}-fee"] = major_units(int(rate["fee"]), currency)
    return values, [str(tier_id) for tier_id in offered.tier_ids]


def read_add_on(values: FormValues, tier_ids: Sequence[str], currency: str) -> AddOnCreate | FieldMessages:
    errors: dict[str, str] = {}
    product_id, _slash, variant_id = values.get("offer", "").partition("/")
    shipping = read_shipping(values, currency, errors)
    price = read_price(values, "price", currency, errors)
    limit_text = values.get("quantity_limit", "").strip()
    data: dict[str, Any] = {
        "product_id": product_id,
        "variant_id": variant_id or None,
        "price": price,
        "limit": whole_number(limit_text) if limit_text else None,
        "tier_ids": list(tier_ids),
        "ships_alone": values.get("ships_alone") == "1",
        "shipping": shipping,
    }
    checked = validate_form(
        AddOnCreate,
        data,
        invalid={
            "product_id": _("Choose one of the campaign's products."),
            "variant_id": _("Choose one of the campaign's products."),
            "price": _("Enter a price above zero."),
            "limit": _("Enter how many can be sold: a whole number from 1, or leave it empty for no limit."),
            "tier_ids": _("Choose among this campaign's reward tiers."),
            "shipping": _("Give each country once."),
        },
    )
    if isinstance(checked, dict):
        for field, shown_as in (("product_id", "offer"), ("variant_id", "offer"), ("limit", "quantity_limit")):
            if field in checked:
                checked[shown_as] = checked.pop(field)
        return {**checked, **errors}
    return errors or checked
