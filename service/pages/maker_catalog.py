"""The maker's pages for a product's options and variants and for the campaign's add-ons.

Like the rest of the maker's workspace (service/pages/maker.py), each form is read into the API's request model
(service/pages/catalog_forms.py) and saved by the service function the JSON API calls, in one transaction.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import add_ons, service, variants
from campaigns.add_ons import OfferedAddOn
from campaigns.campaign_schemas import AddOnPatch
from campaigns.catalog import SkuTaken
from campaigns.errors import InvalidInput, NotFound
from campaigns.variants import variant_name
from service import i18n
from service.i18n import gettext as _
from service.pages import FieldMessages
from service.pages.campaign_forms import country_options, currency_hint, row_count
from service.pages.catalog_forms import (
    BLANK_SHIPPING_ROWS,
    add_on_values,
    offer_choices,
    option_values,
    read_add_on,
    read_options,
    read_variants,
    variant_values,
)
from service.pages.catalog_views import variant_view
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.pages.maker import _form_values, _manage_url, _my_campaign, _my_campaign_or_login, _product_of, _slug
from service.web import current_user, read_form, redirect, render, uow

# A service error's field, as the add-on form names it.
_ADD_ON_FIELDS = {"product_id": "offer", "variant_id": "offer", "tier_ids": "tier_ids", "price": "price"}


# Options and variants


def _product_id(request: Request) -> str:
    return str(request.path_params["product_id"])


async def _options_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldMessages | None = None,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
        product = _product_of(detail, _product_id(request))
    own = [variant for variant in detail.variants if variant.product_id == product.id]
    context = {
        "campaign": {"slug": detail.campaign.slug, "title": detail.campaign.title},
        "product": {"id": str(product.id), "sku": product.sku, "name": product.name},
        "values": values if values is not None else option_values(product) | variant_values(own),
        "errors": errors or {},
        "variants": [variant_view(product, variant) for variant in own],
        "done": {
            "options-saved": _("The options are saved; each combination is a variant with its own SKU."),
            "variants-saved": _("The variants are saved."),
        }.get(request.query_params.get("done") or ""),
    }
    return render(request, "maker/options_form.html", context, status=status)


async def options_form(request: Request) -> Response:
    return await _options_page(request)


async def save_options(request: Request) -> Response:
    values = _form_values(await read_form(request))
    checked = read_options(values)
    if isinstance(checked, dict):
        return await _options_page(request, values=values, errors=checked, status=422)
    async with uow(request) as session:
        maker = await current_user(request, session)
        await variants.set_options(session, _slug(request), _product_id(request), maker, checked.options)
    return redirect(f"/maker/campaigns/{_slug(request)}/products/{_product_id(request)}/options?done=options-saved")


async def save_variants(request: Request) -> Response:
    values = _form_values(await read_form(request))
    async with uow(request) as session:
        detail = await _my_campaign(session, _slug(request), await current_user(request, session))
        product = _product_of(detail, _product_id(request))
    count = sum(1 for variant in detail.variants if variant.product_id == product.id)
    rows = read_variants(values, count)
    if isinstance(rows, dict):
        return await _options_page(request, values=values, errors=rows, status=422)
    failed_row = 0
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            for index, (variant_id, patch) in enumerate(rows):
                failed_row = index
                await variants.update_variant(session, _slug(request), product.id, variant_id, maker, patch)
    except SkuTaken:
        errors = {f"variants-{failed_row}-sku": _("This campaign already has a product or variant with this SKU.")}
        return await _options_page(request, values=values, errors=errors, status=409)
    return redirect(f"/maker/campaigns/{_slug(request)}/products/{product.id}/options?done=variants-saved")


# Add-ons


def _offered(detail: service.CampaignDetail, add_on_id: str) -> OfferedAddOn:
    for offered in detail.add_ons:
        if str(offered.add_on.id) == add_on_id:
            return offered
    raise NotFound("This campaign has no such add-on.")


async def _add_on_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    tier_ids: list[str] | None = None,
    errors: FieldMessages | None = None,
    add_on_id: str | None = None,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
    currency = detail.campaign.currency
    if values is None:
        if add_on_id is not None:
            values, tier_ids = add_on_values(_offered(detail, add_on_id), currency)
        else:
            values, tier_ids = {"ships_alone": "1"}, []
    context = {
        "campaign": {"slug": detail.campaign.slug, "title": detail.campaign.title, "currency": currency},
        "values": values,
        "chosen_tiers": tier_ids or [],
        "errors": errors or {},
        "add_on_id": add_on_id,
        "money_hint": currency_hint(currency),
        "offer_options": offer_choices(detail.products, detail.variants),
        "tiers": [{"id": str(tier.id), "title": tier.title} for tier in detail.tiers],
        "shipping_rows": range(row_count(values, "shipping", BLANK_SHIPPING_ROWS)),
        "countries": country_options(),
    }
    return render(request, "maker/add_on_form.html", context, status=status)


async def new_add_on_form(request: Request) -> Response:
    return await _add_on_page(request)


async def edit_add_on_form(request: Request) -> Response:
    return await _add_on_page(request, add_on_id=str(request.path_params["add_on_id"]))


async def save_add_on(request: Request) -> Response:
    """Adds an add-on (no id in the path) or changes one."""
    form = await read_form(request)
    values = _form_values(form)
    tier_ids = [value for value in form.getlist("tier_ids") if isinstance(value, str)]
    add_on_id = request.path_params.get("add_on_id")
    add_on_ref = str(add_on_id) if add_on_id else None
    async with uow(request) as session:
        detail = await _my_campaign(session, _slug(request), await current_user(request, session))
    checked = read_add_on(values, tier_ids, detail.campaign.currency)
    if isinstance(checked, dict):
        return await _add_on_page(
            request, values=values, tier_ids=tier_ids, errors=checked, add_on_id=add_on_ref, status=422
        )
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            if add_on_ref is None:
                await add_ons.add_add_on(session, _slug(request), maker, checked)
            else:
                patch = AddOnPatch.model_validate(checked.model_dump())
                await add_ons.update_add_on(session, _slug(request), add_on_ref, maker, patch)
    except InvalidInput as refused:
        field = _ADD_ON_FIELDS.get(refused.errors[0].field, "shipping") if refused.errors else "offer"
        errors = {field: _("Choose among this campaign's own products and reward tiers.")}
        if field in ("price", "shipping"):
            errors = {field: _("Enter an amount this campaign's currency can take.")}
        return await _add_on_page(
            request, values=values, tier_ids=tier_ids, errors=errors, add_on_id=add_on_ref, status=422
        )
    return redirect(_manage_url(_slug(request), "add-on-added" if add_on_ref is None else "add-on-saved", "add-ons"))


def _remove_add_on_question(detail: service.CampaignDetail, offered: OfferedAddOn) -> Confirmation:
    name = variant_name(offered.product, offered.variant) if offered.variant else offered.product.name
    return Confirmation(
        title=_("Remove this add-on?"),
        subject=detail.campaign.title,
        consequences=[
            _("The add-on “%(name)s” at %(price)s is deleted with its limit, reward tiers and shipping prices.")
            % {"name": name, "price": i18n.money(offered.add_on.price, detail.campaign.currency)},
            _("It cannot be brought back: to offer it again, you enter it anew."),
        ],
        confirm_label=_("Yes, remove the add-on"),
        back_url=_manage_url(detail.campaign.slug, anchor="add-ons"),
    )


async def remove_add_on(request: Request) -> Response:
    form = await read_form(request)
    add_on_id = str(request.path_params["add_on_id"])
    if not is_confirmed(form):
        async with uow(request) as session:
            detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
        return ask_first(request, form, _remove_add_on_question(detail, _offered(detail, add_on_id)))
    async with uow(request) as session:
        maker = await current_user(request, session)
        await add_ons.remove_add_on(session, _slug(request), add_on_id, maker)
    return redirect(_manage_url(_slug(request), "add-on-removed", "add-ons"))


routes = [
    Route("/maker/campaigns/{slug}/products/{product_id}/options", options_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/products/{product_id}/options", save_options, methods=["POST"]),
    Route("/maker/campaigns/{slug}/products/{product_id}/variants", save_variants, methods=["POST"]),
    Route("/maker/campaigns/{slug}/add-ons/new", new_add_on_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/add-ons/new", save_add_on, methods=["POST"]),
    Route("/maker/campaigns/{slug}/add-ons/{add_on_id}/edit", edit_add_on_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/add-ons/{add_on_id}/edit", save_add_on, methods=["POST"]),
    Route("/maker/campaigns/{slug}/add-ons/{add_on_id}/remove", remove_add_on, methods=["POST"]),
]
