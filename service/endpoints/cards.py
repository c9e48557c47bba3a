"""The card a backer's pledge is charged to: which it is, and changing it while the campaign is live (a SetupIntent
confirmed in the browser by Stripe.js, then confirmed here, where Stripe is asked whether the card is saved)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from campaigns.errors import NotFound
from campaigns.pledges.schemas import PledgeOut
from campaigns.pledges.service import act_on_own_pledge, get_pledge
from campaigns.schemas_base import ResponseModel
from payments import cards
from service.api import json_response
from service.database import unit_of_work
from service.endpoints.pledges import own_pledge_out
from service.routes import api
from service.web import current_user, gateway_of, sender_of, sessions_of, uow

TAGS = ["pledges"]


class CardOut(ResponseModel):
    brand: str
    last4: str


class CardChangeOut(ResponseModel):
    """Confirm `client_secret` with Stripe.js (confirmCardSetup), then POST …/card-change/confirm."""

    setup_intent_id: str
    client_secret: str
    publishable_key: str


def _transaction(request: Request) -> cards.Transaction:
    def transaction() -> AbstractAsyncContextManager[AsyncSession]:
        return unit_of_work(sessions_of(request), sender_of(request))

    return transaction


@api.route(
    "GET",
    "/pledges/{pledge_id}/card",
    summary="The card the pledge is charged to: brand and last four digits (its backer)",
    response=CardOut,
    errors=(403, 502, 503),
    tags=TAGS,
)
async def get_card(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        pledge = await get_pledge(session, request.path_params["pledge_id"])
        await act_on_own_pledge(session, pledge, backer)
    card = await cards.card_of(gateway_of(request), pledge)
    if card is None:
        raise NotFound("This pledge has no card on file.")
    return json_response(CardOut(brand=card.brand, last4=card.last4))


@api.route(
    "POST",
    "/pledges/{pledge_id}/card-change",
    summary="Begin changing the card of an active pledge while the campaign is live (its backer); the old card is "
    "charged until the new one is confirmed",
    response=CardChangeOut,
    errors=(403, 409, 502, 503),
    tags=TAGS,
)
async def begin_card_change(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    gateway = gateway_of(request)
    intent = await cards.begin_card_change(_transaction(request), gateway, backer, request.path_params["pledge_id"])
    out = CardChangeOut(
        setup_intent_id=intent.id, client_secret=intent.client_secret or "", publishable_key=gateway.publishable_key
    )
    return json_response(out)


@api.route(
    "POST",
    "/pledges/{pledge_id}/card-change/confirm",
    summary="Take the new card once Stripe has saved it (its backer); 409 card-not-saved until then",
    response=PledgeOut,
    errors=(403, 409, 502, 503),
    tags=TAGS,
)
async def confirm_card_change(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    pledge = await cards.finish_card_change(
        _transaction(request), gateway_of(request), backer, request.path_params["pledge_id"]
    )
    return json_response(await own_pledge_out(request, pledge, backer))
