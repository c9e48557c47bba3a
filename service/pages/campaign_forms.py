"""The campaign forms (the maker's and the operator's), read into the API's own request models.

Typed text goes in; a validated model, or one message per field, comes out.

Money is typed in major units and converted exactly (service/pages/money_input.py); everything else is checked by
the same pydantic model the JSON API validates with, so a rule is written once. Field names of the messages are the
form's input names (`goal`, `items-0-sku`, `shipping-2-fee`), so each message sits beside its input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from babel import Locale
from babel.dates import format_skeleton
from pydantic import BaseModel

from campaigns.campaign_schemas import (
    CHECKLIST_ITEMS,
    MAX_AMOUNT,
    CampaignCreate,
    ProductCreate,
    ReviewCreate,
    ShippingRate,
    TierCreate,
    TierItem,
    UpdateCreate,
)
from campaigns.catalog import DeliveryTooEarly, first_batch_cost
from campaigns.countries import country_codes, is_country
from campaigns.currencies import CURRENCIES, AboveCap, AmountRefused, BelowMinimum, check_price, display_exponent
from campaigns.models import TEXT_LANGUAGES, Campaign, Product, Tier
from service.i18n import LOCALE_NAMES, babel_locale, current_locale, money
from service.i18n import date as readable_date
from service.i18n import gettext as _
from service.pages import FieldMessages, validate_form
from service.pages.money_input import NumberInputError, major_units, minor_units, scaled_integer, scaled_text

M = TypeVar("M", bound=BaseModel)
FormValues = Mapping[str, str]
# Currencies offered first in the currency list; every other one Kindling accepts follows.
COMMON_CURRENCIES = ("CNY", "USD", "EUR", "HKD", "TWD", "JPY", "GBP", "SGD")
BLANK_ITEM_ROWS = 2
BLANK_SHIPPING_ROWS = 3
MORE_ROWS = 3
_ROW_KEY = re.compile(r"^(items|shipping)-(\d{1,3})-(sku|quantity|country|fee)$")
_WHOLE = re.compile(r"^\d{1,12}$")
# A month as typed where the browser has no month picker: 2027-03, 2027-3, 2027/03, 2027.3, 2027年3月.
_TYPED_MONTH = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?$")
EVERYWHERE_ELSE = "*"


def _merge(checked: M | FieldMessages, extra: FieldMessages) -> M | FieldMessages:
    """The model when neither it nor the conversions before it found a problem; else every message, one per field."""
    if isinstance(checked, dict):
        return {**checked, **extra}
    return extra or checked


def whole_number(text: str) -> int | str:
    """The integer typed, or the text as it was (the model then refuses it with the field's message)."""
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(",", "")
    return int(cleaned) if _WHOLE.match(cleaned) else text


def _money(values: FormValues, name: str, currency: str, errors: dict[str, str], *, required: bool = True) -> Any:
    text = values.get(name, "").strip()
    if not text:
        if required:
            errors[name] = _("This field is required.")
            return text
        return None
    try:
        amount = minor_units(text, currency)
    except NumberInputError as exc:
        errors[name] = exc.message
        return text
    if amount > MAX_AMOUNT:
        errors[name] = at_most(MAX_AMOUNT, currency)
        return text
    return amount


def at_most(limit: int, currency: str) -> str:
    return _("Enter at most %(amount)s.") % {"amount": money(limit, currency)}


def price_message(refused: AmountRefused) -> str:
    """A tier's price the currency table refuses (campaigns/currencies.py), with the bound it broke."""
    if isinstance(refused, BelowMinimum):
        return _("Enter at least %(amount)s, the least a card can be charged in %(currency)s.") % {
            "amount": money(refused.limit, refused.currency),
            "currency": refused.currency,
        }
    if isinstance(refused, AboveCap):
        return _("Enter at most %(amount)s, the most one pledge may come to.") % {
            "amount": money(refused.limit, refused.currency)
        }
    return _("%(currency)s amounts are whole numbers: leave out the decimals.") % {"currency": refused.currency}


# Campaigns

CAMPAIGN_FIELDS = ("title", "summary", "description", "currency", "goal", "space_id", "duration_days")


def currency_options() -> list[tuple[str, str]]:
    names = babel_locale().currencies
    rest = sorted(code for code in CURRENCIES if code not in COMMON_CURRENCIES)
    return [(code, f"{code} · {names.get(code, code)}") for code in (*COMMON_CURRENCIES, *rest)]


# The maker's version in the other language: the form's fields, by the text each gives.
OTHER_LANGUAGE_FIELDS = {"other_title": "title", "other_summary": "summary", "other_description": "description"}


def language_options() -> list[tuple[str, str]]:
    return [(code, LOCALE_NAMES[code]) for code in TEXT_LANGUAGES]


def other_language(language: str) -> str:
    return next(code for code in TEXT_LANGUAGES if code != language)


# A tier's and a product's version in the other language: the form's fields, by the text each gives. The form says
# which language that is (`other_language`, the other one than the row's), as the row's own is not typed in it.
OTHER_TIER_FIELDS = {"other_title": "title", "other_description": "description"}
OTHER_PRODUCT_FIELDS = {"other_name": "name"}


def other_version(values: FormValues, fields: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    """The translations a tier's or a product's form gives: {} when none is typed (which clears a kept one)."""
    language = values.get("other_language", "")
    other = {text: values.get(name, "").strip() or None for name, text in fields.items()}
    return {language: other} if language in TEXT_LANGUAGES and any(other.values()) else {}


def other_values(language: str, translations: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, str]:
    """The other-language fields of a tier's or a product's form, as kept for a row written in `language`."""
    other = other_language(language)
    return {"other_language": other} | {
        name: str((translations.get(other) or {}).get(text) or "") for name, text in fields.items()
    }


def read_campaign(values: FormValues) -> CampaignCreate | FieldMessages:
    currency = values.get("currency", "").strip().upper()
    errors: dict[str, str] = {}
    data: dict[str, Any] = {name: values.get(name, "") for name in ("title", "summary", "description", "space_id")}
    data["language"] = language = values.get("language", "") or current_locale.get()
    other = {text: values.get(name, "").strip() or None for name, text in OTHER_LANGUAGE_FIELDS.items()}
    if language in TEXT_LANGUAGES and any(other.values()):
        data["translations"] = {other_language(language): other}
    data["currency"] = currency
    data["goal"] = _money(values, "goal", currency, errors)
    data["duration_days"] = whole_number(values.get("duration_days", ""))
    checked = validate_form(
        CampaignCreate,
        data,
        invalid={
            "currency": _("Choose a currency."),
            "goal": _("Enter a goal above zero."),
            "space_id": _("Choose the makerspace that will vet your campaign."),
            "duration_days": _("Enter a whole number of days from 1 to 60."),
            "language": _("Choose English or Chinese."),
            "translations": _("In the other language too, the title holds at most 200 characters and the summary 500."),
        },
    )
    if isinstance(checked, dict) and "translations" in checked:
        checked["other_title"] = checked.pop("translations")
    return _merge(checked, errors)


def campaign_values(campaign: Campaign) -> dict[str, str]:
    return {
        "title": campaign.title,
        "summary": campaign.summary,
        "description": campaign.description,
        "currency": campaign.currency,
        "goal": major_units(campaign.goal, campaign.currency),
        "space_id": str(campaign.space_id),
        "duration_days": str(campaign.duration_days),
        "language": campaign.language,
    } | {
        name: str((campaign.translations.get(other_language(campaign.language)) or {}).get(text) or "")
        for name, text in OTHER_LANGUAGE_FIELDS.items()
    }


# Products


def read_product(values: FormValues, currency: str) -> ProductCreate | FieldMessages:
    errors: dict[str, str] = {}
    data: dict[str, Any] = {"sku": values.get("sku", ""), "name": values.get("name", "")}
    data["translations"] = other_version(values, OTHER_PRODUCT_FIELDS)
    data["weight_grams"] = whole_number(values.get("weight_grams", ""))
    data["batch_size"] = whole_number(values.get("batch_size", ""))
    data["unit_cost"] = _money(values, "unit_cost", currency, errors, required=False)
    overage = values.get("overage_percent", "").strip()
    try:
        data["overage_bps"] = scaled_integer(overage, 2) if overage else 0
    except NumberInputError as exc:
        errors["overage_percent"] = exc.message
        data["overage_bps"] = overage
    checked = validate_form(
        ProductCreate,
        data,
        invalid={
            "sku": _("Use letters, digits, dots, dashes and underscores, starting with a letter or a digit."),
            "weight_grams": _("Enter the weight in whole grams."),
            "unit_cost": _("Enter what one unit costs to make, or leave it empty."),
            "batch_size": _("Enter how many units the factory makes in one batch: at least 1."),
            "overage_bps": _("Enter a percentage from 0 to 100."),
            "translations": _("In the other language too, the name holds at most 200 characters."),
        },
    )
    if isinstance(checked, dict) and "translations" in checked:
        checked["other_name"] = checked.pop("translations")
    if isinstance(checked, dict) and "overage_bps" in checked:
        checked["overage_percent"] = checked.pop("overage_bps")
    return _merge(checked, errors)


def product_values(product: Product, currency: str) -> dict[str, str]:
    return {
        "sku": product.sku,
        "name": product.name,
        "weight_grams": str(product.weight_grams),
        "unit_cost": major_units(product.unit_cost, currency) if product.unit_cost is not None else "",
        "batch_size": str(product.batch_size),
        "overage_percent": scaled_text(product.overage_bps, 2).removesuffix(".00"),
    } | other_values(product.language, product.translations, OTHER_PRODUCT_FIELDS)


# Tiers: items are rows of SKU x quantity, shipping rows of country x fee


def _rows(values: FormValues, table: str, fields: tuple[str, str]) -> list[tuple[int, dict[str, str]]]:
    """The rows of `table` that have anything typed in them, by their index in the form."""
    indices = sorted({int(m.group(2)) for key in values if (m := _ROW_KEY.match(key)) and m.group(1) == table})
    rows = []
    for index in indices:
        row = {name: values.get(f"{table}-{index}-{name}", "").strip() for name in fields}
        if any(row.values()):
            rows.append((index, row))
    return rows


def row_count(values: FormValues, table: str, blank: int) -> int:
    """How many rows of `table` the form shows: up to the last one typed into, then `blank` empty ones."""
    fields = ("sku", "quantity") if table == "items" else ("country", "fee")
    filled = [index for index, _row in _rows(values, table, fields)]
    return (max(filled) + 1 if filled else 0) + blank


def country_options() -> list[tuple[str, str]]:
    """The shipping destinations a maker picks from: "everywhere else" first, then every country by its name in the
    page's language."""
    named = sorted(((code, str(babel_locale().territories.get(code, code))) for code in country_codes()), key=_by_name)
    return [(EVERYWHERE_ELSE, _("Everywhere else")), *named]


def _by_name(option: tuple[str, str]) -> str:
    return option[1]


def typed_month(text: str) -> str:
    """The month as YYYY-MM: the picker's own value, or a month typed where the browser shows a text box."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    match = _TYPED_MONTH.match(cleaned)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        return cleaned
    return f"{match.group(1)}-{int(match.group(2)):02d}"


def country_code(text: str) -> str:
    """A country as sent: its code ("cn"), "*", or its name in the reader's language or English ("China", "中国")."""
    cleaned = text.strip()
    if len(cleaned) <= 2:
        return cleaned.upper()
    wanted = cleaned.casefold()
    for names in (babel_locale().territories, _english_territories()):
        for code, name in names.items():
            if len(code) == 2 and is_country(code) and str(name).casefold() == wanted:
                return str(code)
    return cleaned


def _english_territories() -> Mapping[str, str]:
    return Locale("en").territories


def read_tier(values: FormValues, currency: str) -> TierCreate | FieldMessages:
    errors: dict[str, str] = {}
    items: list[dict[str, Any]] = []
    for index, row in _rows(values, "items", ("sku", "quantity")):
        if not row["sku"]:
            errors[f"items-{index}-sku"] = _("Choose a product for this row, or empty the row.")
            continue
        typed: dict[str, Any] = {"sku": row["sku"], "quantity": whole_number(row["quantity"] or "1")}
        item = validate_form(
            TierItem,
            typed,
            invalid={"sku": _("Choose one of the campaign's products."), "quantity": _("Enter a quantity from 1.")},
        )
        if isinstance(item, dict):
            errors.update({f"items-{index}-{field}": message for field, message in item.items()})
        else:
            items.append(item.model_dump())
    shipping = read_shipping(values, currency, errors)
    if not items and not any(key.startswith("items-") for key in errors):
        errors["items"] = _("Choose at least one product for this tier: a backer pays for what is in the box.")
    price = read_price(values, "price", currency, errors)
    data: dict[str, Any] = {
        "title": values.get("title", ""),
        "description": values.get("description", ""),
        "price": price,
        "estimated_delivery": typed_month(values.get("estimated_delivery", "")),
        "items": items,
        "shipping": shipping,
        "quantity_limit": None,
        "translations": other_version(values, OTHER_TIER_FIELDS),
    }
    if values.get("limit") == "limited":
        data["quantity_limit"] = whole_number(values.get("quantity_limit", ""))
    checked = validate_form(
        TierCreate,
        data,
        invalid={
            "price": _("Enter a price above zero."),
            "quantity_limit": _("Enter how many can be sold: a whole number from 1."),
            "estimated_delivery": _("Choose a month, written YYYY-MM, such as 2027-03."),
            "items": _("Give each product once, with its quantity."),
            "shipping": _("Give each country once."),
            "translations": _("In the other language too, the title holds at most 200 characters."),
        },
    )
    if isinstance(checked, dict) and "translations" in checked:
        checked["other_title"] = checked.pop("translations")
    if isinstance(checked, dict) and not items:  # said above, beside the rows, in the words of this rule
        checked.pop("items", None)
    if isinstance(checked, dict) and "estimated_delivery" in checked:  # "at least 7 characters" says too little
        checked["estimated_delivery"] = (
            _("Choose a month, written YYYY-MM, such as 2027-03.")
            if data["estimated_delivery"]
            else _("This field is required.")
        )
    return _merge(checked, errors)


def read_shipping(values: FormValues, currency: str, errors: dict[str, str]) -> list[dict[str, Any]]:
    """The shipping rows typed (shipping-N-country, shipping-N-fee); a message per bad cell into `errors`."""
    shipping: list[dict[str, Any]] = []
    for index, row in _rows(values, "shipping", ("country", "fee")):
        row_errors: dict[str, str] = {}
        fee = _money({"fee": row["fee"]}, "fee", currency, row_errors)
        rate = validate_form(
            ShippingRate,
            {"country": country_code(row["country"]), "fee": fee},
            invalid={
                "country": _("Choose a country from the list, or everywhere else."),
                "fee": _("Enter the shipping fee; 0 ships for free."),
            },
        )
        if isinstance(rate, dict) or row_errors:
            problems = {**(rate if isinstance(rate, dict) else {}), **row_errors}
            if "country" in problems:  # "at most 2 characters" says less than the list to choose from
                problems["country"] = _("Choose a country from the list, or everywhere else.")
            errors.update({f"shipping-{index}-{field}": message for field, message in problems.items()})
        else:
            shipping.append(rate.model_dump())
    return shipping


def read_price(values: FormValues, name: str, currency: str, errors: dict[str, str]) -> Any:
    """A price typed in major units, checked against the currency's table like a tier's (campaigns/currencies.py)."""
    price = _money(values, name, currency, errors)
    if isinstance(price, int):
        try:
            check_price(name, price, currency)
        except AmountRefused as refused:
            errors[name] = price_message(refused)
    return price


def batch_cost_view(products: Sequence[Product], goal: int, currency: str) -> dict[str, Any]:
    """The first batch's arithmetic, product by product, beside the goal: for the maker's warning and the review."""
    lines = [
        {
            "sku": product.sku,
            "name": product.name,
            "batch_size": product.batch_size,
            "unit_cost": product.unit_cost,
            "cost": product.batch_size * product.unit_cost,
        }
        for product in products
        if product.unit_cost is not None
    ]
    total = first_batch_cost(products)
    return {"lines": lines, "total": total, "goal": goal, "currency": currency, "short": bool(lines) and goal < total}


def month_name(month: str) -> str:
    """A YYYY-MM month for people: "February 2027", "2027年2月"."""
    year, number = (int(part) for part in month.split("-"))
    return str(format_skeleton("yMMMM", date(year, number, 1), locale=babel_locale()))


def delivery_message(early: DeliveryTooEarly) -> str:
    return _("Choose %(month)s or later: the campaign ends on %(deadline)s, and backers are charged then.") % {
        "month": month_name(early.earliest),
        "deadline": readable_date(early.deadline),
    }


def tier_values(tier: Tier, currency: str) -> dict[str, str]:
    values = {
        "title": tier.title,
        "description": tier.description,
        "price": major_units(tier.price, currency),
        "limit": "limited" if tier.quantity_limit is not None else "unlimited",
        "quantity_limit": str(tier.quantity_limit) if tier.quantity_limit is not None else "",
        "estimated_delivery": tier.estimated_delivery,
    } | other_values(tier.language, tier.translations, OTHER_TIER_FIELDS)
    for index, item in enumerate(tier.items):
        values[f"items-{index}-sku"] = str(item["sku"])
        values[f"items-{index}-quantity"] = str(item["quantity"])
    for index, rate in enumerate(tier.shipping):
        values[f"shipping-{index}-country"] = str(rate["country"])
        values[f"shipping-{index}-fee"] = major_units(int(rate["fee"]), currency)
    return values


def currency_hint(currency: str) -> str:
    digits = display_exponent(currency)
    if digits == 0:
        return _("In %(currency)s, whole units only, e.g. 5000.") % {"currency": currency}
    return _("In %(currency)s, e.g. %(example)s.") % {"currency": currency, "example": "149." + "0" * digits}


# Updates and reviews


def read_update(values: FormValues) -> UpdateCreate | FieldMessages:
    """The update in the campaign's language (the form's `language`), and in the other one when the maker gave it."""
    data: dict[str, Any] = {name: values.get(name, "") for name in ("title", "body", "visibility")}
    data["language"] = language = values.get("language") or None
    other = {
        "title": values.get("other_title", "").strip() or None,
        "body": values.get("other_body", "").strip() or None,
    }
    if language in TEXT_LANGUAGES and any(other.values()):
        data["translations"] = {other_language(str(language)): other}
    checked = validate_form(
        UpdateCreate,
        data,
        invalid={
            "visibility": _("Choose who may read the update."),
            "language": _("Choose English or Chinese."),
            "translations": _("In the other language too, the title holds at most 200 characters."),
        },
    )
    if isinstance(checked, dict) and "translations" in checked:
        checked["other_title"] = checked.pop("translations")
    return checked


_ANSWERS = {"yes": True, "no": False, "": None}


def read_review(values: FormValues) -> ReviewCreate | FieldMessages:
    checklist = {item: _ANSWERS.get(values.get(f"checklist-{item}", "")) for item in CHECKLIST_ITEMS}
    data: dict[str, Any] = {
        "decision": values.get("decision", ""),
        "notes": values.get("notes", ""),
        # Notes typed on a page are taken to be in the page's language.
        "language": current_locale.get(),
        "checklist": checklist,
    }
    return validate_form(
        ReviewCreate, data, invalid={"decision": _("Choose a decision: approve, ask for changes, or reject.")}
    )
