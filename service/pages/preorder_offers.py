"""The campaign page's "Pre-order" section: the late rewards a funded campaign still sells (service/pages/preorders.py
sells them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.late_pledges import SELLING_STATUSES, LateOffer, late_add_on_offers, late_offers
from campaigns.models import Campaign
from fulfillment.queue import next_open_batch_month
from service.pages.catalog_views import product_name


def offer_view(offer: LateOffer, currency: str) -> dict[str, Any]:
    return {
        "tier_id": str(offer.tier.id),
        "title": offer.tier.title,
        "price": offer.price,
        "currency": currency,
        "remaining": offer.remaining,
        "open": offer.open,
    }


async def preorder_section(session: AsyncSession, campaign: Campaign, *, can_buy: bool) -> dict[str, Any] | None:
    """The campaign page's "Pre-order" section once the campaign sells its late rewards: each with its price, what
    is left and a link to buy it, the late add-ons a pre-order may include (their late price, what is left), and the
    month a pre-order made now would ship. None when there is nothing to show."""
    if campaign.status not in SELLING_STATUSES:
        return None
    offers = await late_offers(session, campaign)
    if not offers:
        return None
    base = f"/campaigns/{campaign.slug}/preorder"
    return {
        "offers": [
            offer_view(offer, campaign.currency)
            | {"url": f"{base}?tier={offer.tier.id}" if can_buy and offer.open else None}
            for offer in offers
        ],
        "add_ons": [
            {
                "id": str(offer.add_on.id),
                "name": product_name(offer.product),
                "price": offer.price,
                "currency": campaign.currency,
                "remaining": offer.remaining,
                "open": offer.open,
            }
            for offer in await late_add_on_offers(session, campaign)
        ],
        "estimated_ship_month": await next_open_batch_month(session, campaign.id),
    }
