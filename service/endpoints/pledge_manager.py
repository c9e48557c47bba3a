"""The pledge manager's JSON API: add-ons added (and, after the close, paid at once), removed, variants changed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns.pledges import service as pledges
from campaigns.pledges.manager import change_variants, check_open_for_changes, managed_pledge
from campaigns.pledges.manager_schemas import PledgeItemAdd, PledgeVariantsChange
from campaigns.pledges.schemas import PledgeOut
from payments.add_on_charges import add_add_on, remove_add_on
from service.api import json_response
from service.endpoints.pledges import own_pledge_out
from service.routes import api
from service.web import current_user, stripe_work_of, uow


@api.route(
    "POST",
    "/pledges/{pledge_id}/items",
    summary="Add an add-on to the pledge: while live it is charged with the pledge at the deadline; after the close, "
    "until the address lock, it is charged at once with the saved card (409 card-declined: nothing added)",
    body=PledgeItemAdd,
    response=PledgeOut,
    status=201,
    idempotent=True,
    errors=(403, 409, 502, 503),
    tags=["pledges"],
)
async def add_pledge_item(request: Request, body: PledgeItemAdd) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    await add_add_on(
        stripe_work_of(request),
        backer,
        request.path_params["pledge_id"],
        body.add_on_id,
        quantity=body.quantity,
        variant=body.variant,
    )
    async with uow(request) as session:
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
    return json_response(await own_pledge_out(request, pledge, backer), 201)


@api.route(
    "DELETE",
    "/pledges/{pledge_id}/items/{item_id}",
    summary="Remove an add-on line: while live it is simply gone; after the close, until the address lock, a paid "
    "add-on is refunded in full (422 naming item for a tier line; 409 escrow-short, nothing changed, when releases "
    "left escrow less than the refund)",
    response=PledgeOut,
    errors=(403, 409, 422),
    tags=["pledges"],
)
async def remove_pledge_item(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    await remove_add_on(
        stripe_work_of(request), backer, request.path_params["pledge_id"], request.path_params["item_id"]
    )
    async with uow(request) as session:
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
    return json_response(await own_pledge_out(request, pledge, backer))


@api.route(
    "PUT",
    "/pledges/{pledge_id}/variants",
    summary="Choose other variants for the pledge's lines until the address lock (409 address-locked after it, "
    "409 sold-out leaves the old choice)",
    body=PledgeVariantsChange,
    response=PledgeOut,
    errors=(403, 409),
    tags=["pledges"],
)
async def change_pledge_variants(request: Request, body: PledgeVariantsChange) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        managed = await managed_pledge(session, request.path_params["pledge_id"], backer)
        check_open_for_changes(managed)
        await change_variants(session, managed, body.variant_choices())
        pledge = managed.pledge
    return json_response(await own_pledge_out(request, pledge, backer))
