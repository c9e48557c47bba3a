"""Pre-order pages: choosing a late reward of a funded campaign (with any of its late add-ons), paying it at once
with Stripe.js confirmCardPayment (static/js/pay.js), and giving it up (asked once more). The rules are
payments.preorders'; the JSON API calls the same functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.access import visible_campaign
from campaigns.add_ons import OfferedAddOn, offered_add_ons
from campaigns.errors import Conflict, InvalidInput, NotFound
from campaigns.late_pledges import late_add_on_offers, late_offers
from campaigns.models import Campaign, Product, Tier
from campaigns.pledges.choices import MOST_OF_ONE_ADD_ON
from campaigns.pledges.lifecycle import PledgeStatus
from campaigns.pledges.pricing import PledgeChoice
from fulfillment.queue import next_open_batch_month
from payments import preorders
from payments.ledger import EscrowShort
from service.endpoints.pledges import checkout_of
from service.i18n import gettext as _
from service.i18n import money
from service.pages import FieldMessages, viewer
from service.pages.catalog_views import product_name
from service.pages.checkout import ADD_ON_FIELD, Catalogue, country_menu, login_redirect, own_pledge_of, read_add_ons
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.pages.preorder_offers import offer_view
from service.web import gateway_of, read_form, redirect, render, uow

# Choosing


async def _form_context(session: Any, campaign: Campaign, tier_ref: str) -> tuple[dict[str, Any], Catalogue]:
    """The form's context, and the late add-ons it offers (open, allowed with the reward) for reading it back."""
    offers = {str(offer.tier.id): offer for offer in await late_offers(session, campaign)}
    offer = offers.get(tier_ref) or next((o for o in offers.values() if o.open), None)
    if offer is None:
        raise NotFound("No such late reward.")
    products = await _optioned_products(session, offer.tier)
    late_add_ons = await _late_add_ons(session, campaign, offer.tier)
    context = {
        "campaign": {"title": campaign.title, "url": f"/campaigns/{campaign.slug}", "slug": campaign.slug},
        "offer": offer_view(offer, campaign.currency),
        "countries": country_menu(offer.tier, [offer.tier], campaign.currency),
        "products": [
            {
                "id": str(product.id),
                "name": product.name,
                "options": [{"name": o["name"], "values": list(o["values"])} for o in product.options],
            }
            for product in products
        ],
        "add_ons": [
            {
                "id": str(offered.add_on.id),
                "name": product_name(offered.product),
                "price": price,
                "currency": campaign.currency,
                "remaining": remaining,
                "most": MOST_OF_ONE_ADD_ON if remaining is None else min(MOST_OF_ONE_ADD_ON, remaining),
                "options": [
                    {"name": str(o["name"]), "choices": [str(v) for v in o["values"]]} for o in offered.product.options
                ]
                if offered.variant is None
                else [],
            }
            for offered, price, remaining in late_add_ons
        ],
        "estimated_ship_month": await next_open_batch_month(session, campaign.id),
        "action": f"/campaigns/{campaign.slug}/preorder",
    }
    return context, Catalogue(products=(), variants=(), add_ons=[offered for offered, _p, _r in late_add_ons])


async def _late_add_ons(session: Any, campaign: Campaign, tier: Tier) -> list[tuple[OfferedAddOn, int, int | None]]:
    """The late add-ons on sale now that go with `tier`: each with its late price and what is left of it late."""
    late = {offer.add_on.id: offer for offer in await late_add_on_offers(session, campaign) if offer.open}
    if not late:
        return []
    offered = (await offered_add_ons(session, [campaign.id]))[campaign.id]
    return [
        (one, late[one.add_on.id].price, late[one.add_on.id].remaining)
        for one in offered
        if one.add_on.id in late and (not one.tier_ids or tier.id in one.tier_ids)
    ]


async def _optioned_products(session: Any, tier: Tier) -> Sequence[Product]:
    skus = [str(item["sku"]) for item in tier.items]
    found = await session.scalars(
        select(Product).where(Product.campaign_id == tier.campaign_id, Product.sku.in_(skus)).order_by(Product.sku)
    )
    return [product for product in found if product.options]


def _choice(
    values: Mapping[str, str], products: Sequence[Mapping[str, Any]], catalogue: Catalogue, errors: FieldMessages
) -> PledgeChoice:
    variants = {
        product["id"]: {
            option["name"]: values.get(f"variant.{product['id']}.{option['name']}", "") for option in product["options"]
        }
        for product in products
    }
    add_ons = tuple(read_add_ons(values, catalogue, errors))
    return PledgeChoice(
        values.get("tier") or None, 0, values.get("shipping_country") or None, variants=variants, add_ons=add_ons
    )


async def preorder_form(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        campaign, _roles = await visible_campaign(session, request.path_params["slug"], user)
        context, _catalogue = await _form_context(session, campaign, request.query_params.get("tier", ""))
    return render(request, "checkout/preorder.html", context | {"values": {}, "errors": {}, "error": None})


async def preorder(request: Request) -> Response:
    form = await read_form(request)
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        campaign, _roles = await visible_campaign(session, request.path_params["slug"], user)
        context, catalogue = await _form_context(session, campaign, values.get("tier", ""))
    errors: FieldMessages = {}
    error: str | None = None
    choice = _choice(values, context["products"], catalogue, errors)
    if not errors:
        try:
            pledge = await preorders.start_preorder(
                checkout_of(request), user, campaign_id=str(campaign.id), choice=choice
            )
        except InvalidInput as refused:
            errors = {_form_field(item.field, choice): _field_message(item.field) for item in refused.errors}
        except Conflict as refused:
            error = _conflict_message(refused.type)
        else:
            return redirect(f"/me/pledges/{pledge.id}/pay")
    status = 422 if errors else 409
    return render(
        request, "checkout/preorder.html", context | {"values": values, "errors": errors, "error": error}, status=status
    )


def _form_field(field: str, choice: PledgeChoice) -> str:
    """The form field a refusal names: add_ons.<n>.* is the n-th chosen add-on's quantity field."""
    if field.startswith("add_ons."):
        position = field.split(".")[1]
        if position.isascii() and position.isdigit() and int(position) < len(choice.add_ons):
            return f"{ADD_ON_FIELD}{choice.add_ons[int(position)].add_on_id}"
    return field


def _field_message(field: str) -> str:
    if field == "shipping_country":
        return _("Choose a country this reward ships to.")
    if field.startswith("variant"):
        return _("Choose one of each option.")
    if field.startswith("add_ons"):
        return _("Choose this add-on's options and a quantity from 0 to %(most)d.") % {"most": MOST_OF_ONE_ADD_ON}
    return _("Choose a reward that is on sale.")


def _conflict_message(kind: str) -> str:
    return {
        "sold-out": _("This reward, or an add-on in the number chosen, has just sold out."),
        "not-open": _("This reward is no longer on sale."),
        "already-pledged": _("You already have a pledge on this campaign: see it under My pledges."),
    }.get(kind, _("This pre-order could not be made. Try again."))


# Paying


async def pay_page(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, request.path_params["pledge_id"], user)
        if not pledge.late or pledge.status != PledgeStatus.REQUIRES_PAYMENT_METHOD:
            return redirect(f"/me/pledges/{pledge.id}")
        campaign = await session.get_one(Campaign, pledge.campaign_id)
        tier = await session.get_one(Tier, pledge.tier_id)
        month = await next_open_batch_month(session, campaign.id)
    context = {
        "campaign": {"title": campaign.title, "url": f"/campaigns/{campaign.slug}"},
        "pledge": {
            "id": str(pledge.id),
            "url": f"/me/pledges/{pledge.id}",
            "tier_title": tier.title,
            "amount": pledge.amount,
            "shipping_fee": pledge.shipping_fee,
            "currency": pledge.currency,
        },
        "estimated_ship_month": month,
        "stripe": {
            "publishable_key": gateway_of(request).publishable_key,
            "client_secret": pledge.payment_intent_client_secret or "",
            "confirm_url": f"/api/v1/pledges/{pledge.id}/confirm",
            "done_url": f"/me/pledges/{pledge.id}",
        },
    }
    return render(request, "checkout/pay.html", context)


# Giving it up


def _cancel_question(amount: int, currency: str, paid: bool, back_url: str, title: str) -> Confirmation:
    shown = money(amount, currency)
    consequences = (
        [
            _("Your pre-order is cancelled and its place in the batch goes to someone else."),
            _("%(amount)s is refunded to your card in full; banks take a few days to show it.") % {"amount": shown},
        ]
        if paid
        else [_("Your pre-order is cancelled. Nothing was charged.")]
    )
    return Confirmation(
        title=_("Cancel this pre-order?"),
        subject=title,
        consequences=consequences,
        confirm_label=_("Yes, cancel and refund") if paid else _("Yes, cancel my pre-order"),
        back_url=back_url,
    )


async def cancel_preorder(request: Request) -> Response:
    form = await read_form(request)
    ref = request.path_params["pledge_id"]
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, ref, user)
        if not pledge.late:
            raise NotFound("No such pre-order.")
        campaign = await session.get_one(Campaign, pledge.campaign_id)
    back = f"/me/pledges/{pledge.id}"
    if not is_confirmed(form):
        paid = pledge.status != PledgeStatus.REQUIRES_PAYMENT_METHOD
        return ask_first(request, form, _cancel_question(pledge.amount, pledge.currency, paid, back, campaign.title))
    try:
        async with uow(request) as session:
            await preorders.cancel_preorder(session, pledge.id, user)
    except (Conflict, EscrowShort) as refused:
        return render(
            request,
            "checkout/preorder_refused.html",
            {"message": _cancel_refusal(refused.type), "back_url": back},
            status=409,
        )
    return redirect(f"{back}?done=preorder-cancelled")


def _cancel_refusal(kind: str) -> str:
    if kind == "batch-confirmed":
        return _(
            "Its batch is confirmed for production, so this pre-order can no longer be cancelled. "
            "If something is wrong, write to the sponsoring space: they can still refund it."
        )
    return _("This pre-order can no longer be cancelled.")


routes = [
    Route("/campaigns/{slug}/preorder", preorder_form, methods=["GET"]),
    Route("/campaigns/{slug}/preorder", preorder, methods=["POST"]),
    Route("/me/pledges/{pledge_id}/pay", pay_page, methods=["GET"]),
    Route("/me/pledges/{pledge_id}/cancel-preorder", cancel_preorder, methods=["POST"]),
]
