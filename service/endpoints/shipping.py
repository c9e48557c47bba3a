"""Shipping's API: how a campaign prices shipping, per item or by a weight table per country."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns.pledges import shipping
from campaigns.pledges.shipping import ShippingIn, ShippingOut
from service.api import json_response
from service.routes import api
from service.web import current_user, optional_user, uow

TAGS = ["shipping"]


@api.route(
    "GET",
    "/campaigns/{campaign_id}/shipping",
    summary="How the campaign prices shipping: per item (each tier's and add-on's fees) or by a weight table per "
    "country",
    response=ShippingOut,
    auth=False,
    tags=TAGS,
)
async def get_shipping(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await optional_user(request, session)
        campaign = await shipping.shipping_of(session, request.path_params["campaign_id"], viewer)
    return json_response(ShippingOut.of(campaign))


@api.route(
    "PUT",
    "/campaigns/{campaign_id}/shipping",
    summary="Choose per-item fees or a weight table per country, with its brackets up_to_grams -> fee (maker, while "
    "a draft, so that the space's review covers them)",
    body=ShippingIn,
    response=ShippingOut,
    errors=(403, 409, 422),
    tags=TAGS,
)
async def put_shipping(request: Request, body: ShippingIn) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign = await shipping.set_shipping(session, request.path_params["campaign_id"], maker, body)
    return json_response(ShippingOut.of(campaign))
