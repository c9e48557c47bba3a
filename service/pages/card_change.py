"""The card a backer's pledge is charged to, on the pledge page, and the page that changes it while the campaign is
live: Stripe's card form (static/js/card.js, as when the pledge was made) on a SetupIntent of its own; the old card
stays the one charged until Stripe has saved the new one (payments.cards)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.models import Campaign, Pledge
from campaigns.pledges.contents import contents_of
from payments.cards import card_of
from payments.gateway import PaymentGateway
from service.i18n import gettext as _
from service.pages import viewer
from service.pages.checkout import (
    campaign_facts,
    load_backing,
    login_redirect,
    own_pledge_of,
    pledge_summary,
    taking_pledges,
)
from service.web import gateway_of, redirect, render, uow

# Brands as Stripe names them, in the words people know them by.
BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "unionpay": "UnionPay",
    "jcb": "JCB",
    "discover": "Discover",
    "diners": "Diners Club",
}


def can_change_card(pledge: Pledge, campaign: Campaign) -> bool:
    return pledge.status == "active" and taking_pledges(campaign)


async def card_view(gateway: PaymentGateway, pledge: Pledge, campaign: Campaign) -> dict[str, Any]:
    """What the pledge page says of the card: its brand and last four digits, and where to change it while live."""
    card = await card_of(gateway, pledge)
    return {
        "card": {"brand": BRANDS.get(card.brand, card.brand.title()), "last4": card.last4} if card else None,
        "card_change_url": f"/me/pledges/{pledge.id}/card/change" if can_change_card(pledge, campaign) else None,
    }


async def change_card_page(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, request.path_params["pledge_id"], user)
        backing = await load_backing(session, str(pledge.campaign_id), user)
        contents = await contents_of(session, pledge.id)
    if not can_change_card(pledge, backing.campaign):
        return redirect(f"/me/pledges/{pledge.id}")
    tier = next((t for t in backing.tiers if t.id == pledge.tier_id), None)
    gateway = gateway_of(request)
    context = {
        "campaign": campaign_facts(backing),
        "pledge": pledge_summary(pledge, tier, contents, backing.products, variants=backing.variants),
        "changing": True,
        "updating": False,
        "too_late": False,
        "hold_until": None,
        "current_card": (await card_view(gateway, pledge, backing.campaign))["card"],
        "stripe": {
            "publishable_key": gateway.publishable_key,
            "client_secret": "",  # card.js asks payment_method_url for the change's own SetupIntent
            "confirm_url": f"/api/v1/pledges/{pledge.id}/card-change/confirm",
            "payment_method_url": f"/api/v1/pledges/{pledge.id}/card-change",
            "done_url": f"/me/pledges/{pledge.id}",
            "pledge_url": f"/api/v1/pledges/{pledge.id}",
            "saved_outcome": "card-changed",
        },
        "title": _("Change your card"),
    }
    return render(request, "checkout/card.html", context)


routes = [Route("/me/pledges/{pledge_id}/card/change", change_card_page, methods=["GET"])]
