"""The maker's shipping form: per-item fees, or a weight table per country with its brackets. Chosen while the
campaign is a draft (campaigns.pledges.shipping says why and how a pledge is priced by it).

The table is drawn as rows of fields that work without JavaScript: a row per country (`country_<n>`) and, in each,
brackets of a weight and a fee (`grams_<n>_<m>`, `fee_<n>_<m>`), with empty slots to add more. Empty rows and
brackets are left out; the service's refusals (`table.<n>.brackets.<m>.up_to_grams`...) are shown beside the fields
they name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.currencies import AmountRefused
from campaigns.errors import Conflict, InvalidInput
from campaigns.pledges.shipping import MOST_BRACKETS, MOST_TABLE_ROWS, ShippingIn
from campaigns.pledges.shipping import set_shipping as save_choice
from service.i18n import gettext as _
from service.pages import FieldMessages, viewer
from service.pages.campaign_forms import currency_hint, price_message
from service.pages.maker import _form_values, _my_campaign
from service.pages.money_input import NumberInputError, major_units, minor_units
from service.web import current_user, read_form, redirect, render, uow

GRAMS_DIGITS = 8
_ROW = re.compile(r"^country_(\d{1,3})$")
_BRACKET = re.compile(r"^(?:grams|fee)_(\d{1,3})_(\d{1,2})$")


def _slots(values: Mapping[str, str]) -> tuple[int, int]:
    """How many rows and brackets a row the form draws: those filled in, and one empty of each to add more."""
    rows = [int(m.group(1)) for name in values if (m := _ROW.match(name)) and values[name].strip()]
    brackets = [int(m.group(2)) for name in values if (m := _BRACKET.match(name)) and values[name].strip()]
    return (
        min(MOST_TABLE_ROWS, max([1, *[r + 2 for r in rows]])),
        min(MOST_BRACKETS, max([3, *[b + 2 for b in brackets]])),
    )


def _grams_message() -> str:
    return _("Enter the weight in whole grams, above zero.")


def _country_message() -> str:
    return _("Enter a two-letter country code such as CN, or * for everywhere else.")


def read_shipping(values: Mapping[str, str], currency: str) -> tuple[ShippingIn, dict[str, str]] | FieldMessages:
    """The form as the API's body, with the form field each of the body's fields came from (to show a refusal
    beside it); or a message per field typed wrong."""
    errors: FieldMessages = {}
    rows, brackets_per_row = _slots(values)
    table: list[dict[str, Any]] = []
    origin: dict[str, str] = {}
    for n in range(rows):
        country = values.get(f"country_{n}", "").strip().upper()
        brackets: list[dict[str, int]] = []
        for m in range(brackets_per_row):
            typed_grams = values.get(f"grams_{n}_{m}", "").strip()
            typed_fee = values.get(f"fee_{n}_{m}", "").strip()
            if not typed_grams and not typed_fee:
                continue
            grams = 0
            if typed_grams.isascii() and typed_grams.isdigit() and len(typed_grams) <= GRAMS_DIGITS:
                grams = int(typed_grams)
            if grams <= 0:
                errors[f"grams_{n}_{m}"] = _grams_message()
            fee = 0
            if not typed_fee:
                errors[f"fee_{n}_{m}"] = _("Enter the fee for packages up to this weight (0 for free shipping).")
            else:
                try:
                    fee = minor_units(typed_fee, currency)
                except NumberInputError as wrong:
                    errors[f"fee_{n}_{m}"] = wrong.message
            at = f"table.{len(table)}.brackets.{len(brackets)}"
            origin[f"{at}.up_to_grams"], origin[f"{at}.fee"] = f"grams_{n}_{m}", f"fee_{n}_{m}"
            brackets.append({"up_to_grams": grams, "fee": fee})
        if not country and not brackets:
            continue
        if not country:
            errors[f"country_{n}"] = _country_message()
        elif not brackets:
            errors[f"grams_{n}_0"] = _("Give at least one weight and its fee for this country.")
        origin[f"table.{len(table)}.country"] = f"country_{n}"
        table.append({"country": country, "brackets": brackets})
    mode = values.get("mode", "")
    if mode not in ("per_item", "weight"):
        errors["mode"] = _("Choose how shipping is priced.")
    if errors:
        return errors
    try:
        body = ShippingIn.model_validate({"mode": mode, "table": table})
    except ValidationError as wrong:
        for error in wrong.errors():
            field = ".".join(str(part) for part in error["loc"])
            name = origin.get(field, "mode")
            errors.setdefault(name, _country_message() if name.startswith("country_") else _grams_message())
        return errors
    return body, origin


def _refusal_field(refused: InvalidInput, origin: Mapping[str, str]) -> tuple[str, str]:
    """The form field a refusal of the service names, and the message to show there."""
    field = refused.errors[0].field
    name = origin.get(field, "country_0")
    if field == "table":
        return "country_0", _("Give at least one country (or * for everywhere else) and its weights and fees.")
    if field.endswith(".country"):
        return name, _("This country is given twice: give each country once, with all its weights.")
    if field.endswith(".up_to_grams"):
        return name, _("Give the weights from the lightest to the heaviest, each once.")
    if isinstance(refused, AmountRefused):
        return name, price_message(refused)
    return name, _("A heavier package cannot cost less to ship than a lighter one.")


def _values_of(mode: str, table: list[Any], currency: str) -> dict[str, str]:
    values = {"mode": mode}
    for n, row in enumerate(table):
        values[f"country_{n}"] = str(row["country"])
        for m, bracket in enumerate(row["brackets"]):
            values[f"grams_{n}_{m}"] = str(bracket["up_to_grams"])
            values[f"fee_{n}_{m}"] = major_units(int(bracket["fee"]), currency)
    return values


async def _form_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldMessages | None = None,
    form_error: str | None = None,
    status: int = 200,
) -> Response:
    slug = str(request.path_params["slug"])
    async with uow(request) as session:
        maker = await viewer(request, session)
        if maker is None:
            return redirect("/login?next=" + quote(request.url.path))
        detail = await _my_campaign(session, slug, maker)
    campaign = detail.campaign
    if values is None:
        values = _values_of(campaign.shipping_mode, list(campaign.shipping_table), campaign.currency)
    rows, brackets = _slots(values)
    context = {
        "campaign": {"slug": campaign.slug, "title": campaign.title, "currency": campaign.currency},
        "editable": "edit" in detail.actions,
        "modes": [
            ("per_item", _("Per item: each reward's and add-on's own fee to each country")),
            ("weight", _("By weight: the table below, by the package's total weight")),
        ],
        "rows": range(rows),
        "brackets": range(brackets),
        "products": [{"sku": p.sku, "name": p.name, "grams": p.weight_grams} for p in detail.products],
        "values": values,
        "errors": errors or {},
        "form_error": form_error,
        "money_hint": currency_hint(campaign.currency),
    }
    return render(request, "maker/shipping_form.html", context, status=status)


async def shipping_form(request: Request) -> Response:
    return await _form_page(request)


async def save_shipping(request: Request) -> Response:
    form = await read_form(request)
    values = _form_values(form)
    slug = str(request.path_params["slug"])
    async with uow(request) as session:
        maker = await current_user(request, session)
        detail = await _my_campaign(session, slug, maker)
    checked = read_shipping(values, detail.campaign.currency)
    if isinstance(checked, dict):
        return await _form_page(request, values=values, errors=checked, status=422)
    body, origin = checked
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await save_choice(session, slug, maker, body)
    except InvalidInput as refused:
        name, message = _refusal_field(refused, origin)
        return await _form_page(request, values=values, errors={name: message}, status=422)
    except Conflict:
        message = _("The campaign is no longer a draft: its shipping is the one its space reviewed.")
        return await _form_page(request, values=values, form_error=message, status=409)
    return redirect(f"/maker/campaigns/{slug}?done=shipping#tiers")


routes = [
    Route("/maker/campaigns/{slug}/shipping", shipping_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/shipping", save_shipping, methods=["POST"]),
]
