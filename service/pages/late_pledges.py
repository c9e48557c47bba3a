"""The maker's late-pledge form: which tiers and add-ons stay on sale after the deadline, at what price, how many.
Chosen while the campaign is a draft (campaigns.late_pledges says why)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.add_ons import OfferedAddOn
from campaigns.currencies import AmountRefused
from campaigns.errors import Conflict
from campaigns.late_pledges import LateAddOnChoice, LateChoice, late_add_on_offers, late_offers, set_late_pledges
from campaigns.models import Tier
from service.i18n import gettext as _
from service.pages import FieldMessages, viewer
from service.pages.campaign_forms import currency_hint, price_message
from service.pages.catalog_views import add_on_views
from service.pages.maker import _form_values, _my_campaign
from service.pages.money_input import NumberInputError, major_units, minor_units
from service.web import current_user, read_form, redirect, render, uow

LIMIT_DIGITS = 7


def read_late_choices(
    values: Mapping[str, str], tiers: Sequence[Tier], currency: str
) -> list[LateChoice] | FieldMessages:
    """The form as choices: a ticked tier, its late price (empty: the tier's own) and its limit (empty: none)."""
    choices: list[LateChoice] = []
    errors: FieldMessages = {}
    for tier in tiers:
        if values.get(f"sell_{tier.id}"):
            price, limit = _price_and_limit(values, str(tier.id), currency, errors)
            choices.append(LateChoice(tier_id=tier.id, price=price, quantity_limit=limit))
    return errors or choices


def read_late_add_on_choices(
    values: Mapping[str, str], add_ons: Sequence[OfferedAddOn], currency: str
) -> list[LateAddOnChoice] | FieldMessages:
    """The form's add-ons as choices, as for tiers: fields `sell_addon_<id>`, `price_addon_<id>`, `limit_addon_<id>`."""
    choices: list[LateAddOnChoice] = []
    errors: FieldMessages = {}
    for offered in add_ons:
        key = f"addon_{offered.add_on.id}"
        if values.get(f"sell_{key}"):
            price, limit = _price_and_limit(values, key, currency, errors)
            choices.append(LateAddOnChoice(add_on_id=offered.add_on.id, price=price, quantity_limit=limit))
    return errors or choices


def _price_and_limit(
    values: Mapping[str, str], key: str, currency: str, errors: FieldMessages
) -> tuple[int | None, int | None]:
    """The late price (None: empty, the own price) and limit (None: empty, no limit) typed for `key`; a message in
    `errors` for each typed wrong."""
    price: int | None = None
    typed_price = values.get(f"price_{key}", "").strip()
    if typed_price:
        try:
            price = minor_units(typed_price, currency)
        except NumberInputError as wrong:
            errors[f"price_{key}"] = str(wrong)
        else:
            if price <= 0:
                errors[f"price_{key}"] = _("Enter a price above zero, or leave it empty for the tier's own.")
    limit: int | None = None
    typed_limit = values.get(f"limit_{key}", "").strip()
    if typed_limit:
        if typed_limit.isascii() and typed_limit.isdigit() and len(typed_limit) <= LIMIT_DIGITS:
            limit = int(typed_limit)
        if not limit:
            errors[f"limit_{key}"] = _("Enter a whole number above zero, or leave it empty for no limit.")
    return price, limit


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
        offers = {offer.tier.id: offer for offer in await late_offers(session, detail.campaign)}
        add_on_offers = {offer.add_on.id: offer for offer in await late_add_on_offers(session, detail.campaign)}
    currency = detail.campaign.currency
    if values is None:
        values = {}
        for tier_id, offer in offers.items():
            values[f"sell_{tier_id}"] = "1"
            if offer.price != offer.tier.price:
                values[f"price_{tier_id}"] = major_units(offer.price, currency)
            if offer.quantity_limit:
                values[f"limit_{tier_id}"] = str(offer.quantity_limit)
        for add_on_id, add_on_offer in add_on_offers.items():
            key = f"addon_{add_on_id}"
            values[f"sell_{key}"] = "1"
            if add_on_offer.price != add_on_offer.add_on.price:
                values[f"price_{key}"] = major_units(add_on_offer.price, currency)
            if add_on_offer.quantity_limit:
                values[f"limit_{key}"] = str(add_on_offer.quantity_limit)
    context = {
        "campaign": {"slug": detail.campaign.slug, "title": detail.campaign.title, "currency": currency},
        "editable": "edit" in detail.actions,
        "tiers": [{"id": str(tier.id), "title": tier.title, "price": tier.price} for tier in detail.tiers],
        "add_ons": [
            {"key": f"addon_{view['id']}", "name": view["name"], "variant": view["variant"], "price": view["price"]}
            for view in add_on_views(detail)
        ],
        "values": values,
        "errors": errors or {},
        "form_error": form_error,
        "money_hint": currency_hint(currency),
    }
    return render(request, "maker/late_pledges_form.html", context, status=status)


async def late_pledges_form(request: Request) -> Response:
    return await _form_page(request)


async def save_late_pledges(request: Request) -> Response:
    form = await read_form(request)
    values = _form_values(form)
    slug = str(request.path_params["slug"])
    async with uow(request) as session:
        maker = await current_user(request, session)
        detail = await _my_campaign(session, slug, maker)
    checked = read_late_choices(values, detail.tiers, detail.campaign.currency)
    checked_add_ons = read_late_add_on_choices(values, detail.add_ons, detail.campaign.currency)
    if isinstance(checked, dict) or isinstance(checked_add_ons, dict):
        errors = (checked if isinstance(checked, dict) else {}) | (
            checked_add_ons if isinstance(checked_add_ons, dict) else {}
        )
        return await _form_page(request, values=values, errors=errors, status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await set_late_pledges(session, slug, maker, checked, checked_add_ons)
    except AmountRefused as refused:
        field = refused.errors[0].field  # tiers[n].price or add_ons[n].price
        position = int(field.split("[")[1].split("]")[0])
        key = (
            f"addon_{checked_add_ons[position].add_on_id}"
            if field.startswith("add_ons")
            else str(checked[position].tier_id)
        )
        return await _form_page(request, values=values, errors={f"price_{key}": price_message(refused)}, status=422)
    except Conflict:
        message = _("The campaign is no longer a draft: its late pledges are the ones its space reviewed.")
        return await _form_page(request, values=values, form_error=message, status=409)
    return redirect(f"/maker/campaigns/{slug}?done=late-pledges#tiers")


routes = [
    Route("/maker/campaigns/{slug}/late-pledges", late_pledges_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/late-pledges", save_late_pledges, methods=["POST"]),
]
