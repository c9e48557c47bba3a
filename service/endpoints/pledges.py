from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from campaigns.access import visible_campaign
from campaigns.errors import NotAllowed, NotFound
from campaigns.models import Pledge, User
from campaigns.pagination import Cursor, page_after
from campaigns.pledges import service as pledges
from campaigns.pledges.checkout import Checkout, confirm_pledge, start_pledge
from campaigns.pledges.schemas import PledgeChange, PledgeCreate, PledgeOut, PreorderCreate, QueueOut
from campaigns.pledges.service import HoldLimit
from campaigns.pledges.viewers import PledgeViewer
from campaigns.schemas import PageQuery
from campaigns.schemas_base import Page
from fulfillment.queue import places_of, queue_place
from fulfillment.shipments import shipment_of
from payments import preorders
from service.api import json_response
from service.database import unit_of_work
from service.routes import api
from service.web import client_address, current_user, gateway_of, sender_of, sessions_of, settings_of, uow


def checkout_of(request: Request) -> Checkout:
    return Checkout(partial(unit_of_work, sessions_of(request), sender_of(request)), gateway_of(request))


async def own_pledge_out(
    request: Request, pledge: Pledge, user: User, *, shipment: dict[str, Any] | None = None
) -> PledgeOut:
    """The pledge in the answer to its backer's own request (anyone else is refused before; were they not, they
    would be shown nothing of the backer's), with its lines as they are now."""
    async with uow(request) as session:
        items = (await pledges.lines_of(session, [pledge.id]))[pledge.id]
        place = await queue_place(session, pledge.campaign_id, pledge.id)
    viewer = PledgeViewer(backer=pledge.backer_id == user.id, roles=frozenset(), campaign_status="")
    return PledgeOut.for_viewer(
        pledge,
        viewer,
        items=items,
        publishable_key=gateway_of(request).publishable_key,
        shipment=shipment,
        queue=QueueOut.model_validate(place) if place else None,
    )


def hold_limit_of(request: Request) -> HoldLimit:
    return HoldLimit(client_address(request), settings_of(request).max_open_holds)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/pledges",
    summary="Pledge to a live campaign; returns the card set-up",
    body=PledgeCreate,
    response=PledgeOut,
    status=201,
    idempotent=True,
    errors=(403, 409, 502, 503),
    tags=["pledges"],
)
async def create_pledge(request: Request, body: PledgeCreate) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    pledge = await start_pledge(
        checkout_of(request),
        backer,
        campaign_id=request.path_params["campaign_id"],
        choice=body.choice(),
        hold_limit=hold_limit_of(request),
    )
    return json_response(await own_pledge_out(request, pledge, backer), 201)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/preorders",
    summary="Pre-order a late reward of a funded campaign, with any of its late add-ons: the pledge at the late "
    "prices and a PaymentIntent for the browser to confirm (Stripe.js confirmCardPayment), then "
    "POST /pledges/{id}/confirm; 409 `not-open`, `sold-out`",
    body=PreorderCreate,
    response=PledgeOut,
    status=201,
    idempotent=True,
    errors=(403, 409, 502, 503),
    tags=["pledges"],
)
async def create_preorder(request: Request, body: PreorderCreate) -> Response:
    async with uow(request) as session:
        buyer = await current_user(request, session)
    pledge = await preorders.start_preorder(
        checkout_of(request), buyer, campaign_id=request.path_params["campaign_id"], choice=body.choice()
    )
    return json_response(await own_pledge_out(request, pledge, buyer), 201)


@api.route(
    "POST",
    "/pledges/{pledge_id}/confirm",
    summary="Activate the pledge once Stripe has saved its card; a pre-order: record its payment once Stripe says "
    "its PaymentIntent succeeded (409 `not-paid` until then)",
    response=PledgeOut,
    errors=(403, 409, 502, 503),
    tags=["pledges"],
)
async def confirm(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        late = await pledges.is_late(session, request.path_params["pledge_id"])
    confirming = preorders.confirm_preorder if late else confirm_pledge
    pledge = await confirming(checkout_of(request), backer, request.path_params["pledge_id"])
    return json_response(await own_pledge_out(request, pledge, backer))


@api.route(
    "PATCH",
    "/pledges/{pledge_id}",
    summary="Change the tier, bonus or shipping country while the campaign is live",
    body=PledgeChange,
    response=PledgeOut,
    errors=(403, 409),
    tags=["pledges"],
)
async def change_pledge(request: Request, body: PledgeChange) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
        pledge = await pledges.change_pledge(session, pledge, backer, body.choice())
    return json_response(await own_pledge_out(request, pledge, backer))


@api.route(
    "DELETE",
    "/pledges/{pledge_id}",
    summary="Cancel the pledge while the campaign is live; a pre-order: unpaid, at once; paid, refunded in full "
    "until its batch is confirmed (409 `batch-confirmed` after)",
    response=PledgeOut,
    errors=(403, 409),
    tags=["pledges"],
)
async def cancel_pledge(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
        if pledge.late:
            pledge = await preorders.cancel_preorder(session, pledge.id, backer)
        else:
            pledge = await pledges.cancel_pledge(session, pledge, backer)
    return json_response(await own_pledge_out(request, pledge, backer))


@api.route(
    "GET",
    "/pledges/{pledge_id}",
    summary="One pledge (its backer, the campaign's maker and operators, admins); the card set-up only to its backer, "
    "the address to its backer and, once the campaign is funded, to the maker and the space's operators",
    response=PledgeOut,
    tags=["pledges"],
)
async def get_pledge(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
        viewer = PledgeViewer.its_backer()
        if pledge.backer_id != user.id:
            campaign, roles = await visible_campaign(session, pledge.campaign_id, user)
            if not roles & {"maker", "operator", "admin"}:
                raise NotFound("No such pledge.")
            viewer = PledgeViewer(backer=False, roles=roles, campaign_status=campaign.status)
        shipment = await shipment_of(session, pledge.id)
        items = (await pledges.lines_of(session, [pledge.id]))[pledge.id]
        place = await queue_place(session, pledge.campaign_id, pledge.id)
    out = PledgeOut.for_viewer(
        pledge,
        viewer,
        items=items,
        publishable_key=gateway_of(request).publishable_key,
        shipment=shipment,
        queue=QueueOut.model_validate(place) if place else None,
    )
    return json_response(out)


@api.route(
    "GET",
    "/me/pledges",
    summary="The signed-in user's pledges, newest first",
    query=PageQuery,
    response=Page[PledgeOut],
    tags=["pledges"],
)
async def my_pledges(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        rows, next_cursor = await page_after(
            session,
            select(Pledge).where(Pledge.backer_id == user.id),
            Pledge,
            limit=query.limit,
            cursor=Cursor.decode(query.cursor),
            newest_first=True,
        )
        lines = await pledges.lines_of(session, [pledge.id for pledge in rows])
        places = await places_of(session, [(pledge.id, pledge.campaign_id) for pledge in rows])
    publishable_key = gateway_of(request).publishable_key
    items = [
        PledgeOut.for_viewer(
            pledge,
            PledgeViewer.its_backer(),
            items=lines[pledge.id],
            publishable_key=publishable_key,
            queue=QueueOut.model_validate(places[pledge.id]) if pledge.id in places else None,
        )
        for pledge in rows
    ]
    return json_response(Page[PledgeOut](items=items, next_cursor=next_cursor))


@api.route(
    "GET",
    "/campaigns/{campaign_id}/pledges",
    summary="A campaign's pledges (maker, operators, admin); no card set-up, addresses only to the maker and the "
    "space's operators once the campaign is funded",
    query=PageQuery,
    response=Page[PledgeOut],
    errors=(403,),
    tags=["pledges"],
)
async def campaign_pledges(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        campaign, roles = await visible_campaign(session, request.path_params["campaign_id"], user)
        if not roles & {"maker", "operator", "admin"}:
            raise NotAllowed("Only the maker, the space's operators and admins see a campaign's pledges.")
        rows, next_cursor = await page_after(
            session,
            select(Pledge).where(Pledge.campaign_id == campaign.id),
            Pledge,
            limit=query.limit,
            cursor=Cursor.decode(query.cursor),
        )
        lines = await pledges.lines_of(session, [pledge.id for pledge in rows])
        places = await places_of(session, [(pledge.id, pledge.campaign_id) for pledge in rows])
    publishable_key = gateway_of(request).publishable_key
    items = [
        PledgeOut.for_viewer(
            pledge,
            PledgeViewer(backer=pledge.backer_id == user.id, roles=roles, campaign_status=campaign.status),
            items=lines[pledge.id],
            publishable_key=publishable_key,
            queue=QueueOut.model_validate(places[pledge.id]) if pledge.id in places else None,
        )
        for pledge in rows
    ]
    return json_response(Page[PledgeOut](items=items, next_cursor=next_cursor))
