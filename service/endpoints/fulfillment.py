"""Fulfillment's API: batches, shipping lists, held-back pledges, tracking uploads, addresses and settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from campaigns.errors import InvalidInput
from campaigns.pledges.schemas import AddressIn, PledgeOut, ShippingQuoteOut, ShippingQuoteQuery
from campaigns.pledges.service import get_pledge
from campaigns.schemas import PageQuery
from campaigns.schemas_base import Page
from fulfillment import batch_dates, service, shipments
from fulfillment.schemas import (
    BatchDatesIn,
    BatchList,
    BatchOut,
    FulfillmentSettingsIn,
    FulfillmentSettingsOut,
    HeldBackOut,
    ShipmentsOut,
    TrackingIn,
)
from payments.address_changes import change_address, quote_address
from service.api import UnsupportedMediaType, json_response
from service.endpoints.pledges import own_pledge_out
from service.routes import api
from service.web import current_user, sessions_of, settings_of, stripe_work_of, uow

TAGS = ["fulfillment"]
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}


def _campaign_ref(request: Request) -> str:
    return str(request.path_params["campaign_id"])


def _batch_ref(request: Request) -> str:
    return str(request.path_params["batch_id"])


# Batches


async def _batches_out(
    session: AsyncSession, campaign_id: uuid.UUID, summaries: list[service.BatchSummary]
) -> list[BatchOut]:
    """The batches with the maker's dates and their history."""
    schedules = await batch_dates.schedules_of(session, campaign_id)
    history = await batch_dates.date_history(session, campaign_id)
    return [
        BatchOut.of(summary, schedules.get(summary.batch.number), history.get(summary.batch.number, ()))
        for summary in summaries
    ]


@api.route(
    "GET",
    "/campaigns/{campaign_id}/batches",
    summary="The campaign's manufacturing batches, once it is funded (maker, operators, admins)",
    response=BatchList,
    errors=(403, 409),
    tags=TAGS,
)
async def list_batches(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await current_user(request, session)
        summaries = await service.batches_of(session, _campaign_ref(request), viewer)
        batches = await _batches_out(session, summaries[0].batch.campaign_id, summaries) if summaries else []
    return json_response(BatchList(batches))


@api.route(
    "POST",
    "/campaigns/{campaign_id}/batches/{batch_id}/confirm",
    summary="Confirm a batch with the factory (maker): it never changes again; the first one starts fulfilment",
    response=BatchOut,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def confirm_batch(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        summary = await service.confirm_batch(session, _campaign_ref(request), _batch_ref(request), maker)
        [batch] = await _batches_out(session, summary.batch.campaign_id, [summary])
    return json_response(batch)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/batches/{batch_id}/start-production",
    summary="Mark a confirmed batch as in production (maker)",
    response=BatchOut,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def start_batch_production(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        summary = await service.start_batch_production(session, _campaign_ref(request), _batch_ref(request), maker)
        [batch] = await _batches_out(session, summary.batch.campaign_id, [summary])
    return json_response(batch)


@api.route(
    "PUT",
    "/campaigns/{campaign_id}/batches/{batch_id}/dates",
    summary="Plan or move a batch's production and ship dates, with the reason backers read (maker); a ship date "
    "that slips more than 14 days mails the batch's waiting backers once",
    body=BatchDatesIn,
    response=BatchOut,
    errors=(403, 409, 422),
    tags=TAGS,
)
async def put_batch_dates(request: Request, body: BatchDatesIn) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        changed = await batch_dates.set_batch_dates(
            session,
            _campaign_ref(request),
            _batch_ref(request),
            maker,
            production_on=body.production_on,
            ship_on=body.ship_on,
            reason=body.reason,
        )
        campaign_id = changed.schedule.campaign_id
        summaries = await service.batch_summaries(session, campaign_id)
        [batch] = await _batches_out(
            session, campaign_id, [s for s in summaries if s.batch.number == changed.schedule.number]
        )
    return json_response(batch)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/batches/{batch_id}/shipping-list.csv",
    summary="The batch's shipping list as CSV, one row per package, grouped by country (maker, operators; it holds "
    "addresses, so only while the campaign is funded or later, and not for admins)",
    errors=(403,),
    response_content=CSV_CONTENT,
    tags=TAGS,
)
async def download_shipping_list(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await current_user(request, session)
        batch = await shipments.shipping_list_batch(session, _campaign_ref(request), _batch_ref(request), viewer)
        batch_id, number = batch.id, batch.number
    sessions = sessions_of(request)

    async def parts() -> AsyncIterator[str]:
        # The request's transaction has ended; the list is read in a session of its own, open while it streams.
        async with sessions() as list_session:
            async for part in shipments.shipping_list_csv(list_session, batch_id):
                yield part

    return StreamingResponse(
        parts(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="batch-{number}-shipping-list.csv"'},
    )


@api.route(
    "GET",
    "/campaigns/{campaign_id}/unaddressed",
    summary="Paid pledges held back for want of an address, earliest first (maker, operators, admins)",
    query=PageQuery,
    response=Page[HeldBackOut],
    errors=(403,),
    tags=TAGS,
)
async def list_unaddressed(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        viewer = await current_user(request, session)
        held, next_cursor = await shipments.unaddressed_pledges(
            session, _campaign_ref(request), viewer, limit=query.limit, cursor=query.cursor
        )
    return json_response(Page[HeldBackOut](items=[HeldBackOut.of(h) for h in held], next_cursor=next_cursor))


@api.route(
    "POST",
    "/campaigns/{campaign_id}/shipments",
    summary="Upload tracking numbers as CSV (pledge_id, carrier, tracking_number): all lines or none (maker)",
    response=ShipmentsOut,
    errors=(403, 409, 413, 415, 422),
    idempotent=True,
    request_content=CSV_CONTENT,
    tags=TAGS,
)
async def upload_shipments(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in CSV_TYPES:
            raise UnsupportedMediaType("Send the file as text/csv: pledge_id, carrier, tracking_number.")
        try:
            csv_text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("body", "must be UTF-8 text") from None
        outcome = await shipments.record_shipments(session, _campaign_ref(request), maker, csv_text)
    return json_response(ShipmentsOut.of(outcome))


@api.route(
    "PUT",
    "/campaigns/{campaign_id}/batches/{batch_id}/packages/{pledge_id}/tracking",
    summary="One package's carrier and tracking number (maker; the package is the pledge's on the batch's list): "
    "the backer is told once, a new number is a correction",
    body=TrackingIn,
    response=ShipmentsOut,
    errors=(403, 409, 422),
    tags=TAGS,
)
async def put_package_tracking(request: Request, body: TrackingIn) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        outcome = await shipments.record_shipment(
            session,
            _campaign_ref(request),
            maker,
            str(request.path_params["pledge_id"]),
            carrier=body.carrier,
            tracking_number=body.tracking_number,
            batch_ref=_batch_ref(request),
        )
    return json_response(ShipmentsOut.of(outcome))


# Settings


def _settings_out(campaign: object) -> FulfillmentSettingsOut:
    return FulfillmentSettingsOut.model_validate(campaign)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/fulfillment-settings",
    summary="The address lock and the packaging weight (maker, operators, admins)",
    response=FulfillmentSettingsOut,
    errors=(403,),
    tags=TAGS,
)
async def get_fulfillment_settings(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await current_user(request, session)
        campaign = await service.fulfillment_settings(session, _campaign_ref(request), viewer)
    return json_response(_settings_out(campaign))


@api.route(
    "PUT",
    "/campaigns/{campaign_id}/fulfillment-settings",
    summary="Set when addresses lock (RFC 3339, or null) and the packaging weight in grams (maker)",
    body=FulfillmentSettingsIn,
    response=FulfillmentSettingsOut,
    errors=(403, 409, 422),
    tags=TAGS,
)
async def put_fulfillment_settings(request: Request, body: FulfillmentSettingsIn) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign = await service.set_fulfillment_settings(
            session,
            _campaign_ref(request),
            maker,
            address_lock_at=body.address_lock_at,
            packaging_weight_grams=body.packaging_weight_grams,
            survey_seconds=settings_of(request).address_survey_seconds,
        )
    return json_response(_settings_out(campaign))


# Addresses


@api.route(
    "GET",
    "/pledges/{pledge_id}/shipping-quote",
    summary="What an address in `country` would do to the pledge's shipping (the backer), before it is given: after "
    "the close, the difference charged at once or refunded; 422 naming country where the contents do not ship",
    query=ShippingQuoteQuery,
    response=ShippingQuoteOut,
    errors=(403, 409),
    tags=["pledges"],
)
async def get_shipping_quote(request: Request, query: ShippingQuoteQuery) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        quote = await quote_address(session, request.path_params["pledge_id"], backer, {"country": query.country})
    return json_response(
        ShippingQuoteOut(
            country=query.country,
            currency=quote.currency,
            shipping_fee=quote.shipping_fee,
            current_shipping_fee=quote.current_shipping_fee,
            difference=quote.difference,
        )
    )


@api.route(
    "PUT",
    "/pledges/{pledge_id}/address",
    summary="Give or change the address the reward ships to (the backer), until the campaign's address lock; after "
    "the close the shipping is priced again for the new country and the difference charged at once with the saved "
    "card (409 card-declined: the old address stays) or refunded (409 escrow-short: nothing changes)",
    body=AddressIn,
    response=PledgeOut,
    errors=(403, 409, 502, 503),
    tags=["pledges"],
)
async def put_pledge_address(request: Request, body: AddressIn) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    changed = await change_address(stripe_work_of(request), backer, request.path_params["pledge_id"], body.model_dump())
    async with uow(request) as session:
        pledge = await get_pledge(session, changed.pledge_id)
        shipment = await shipments.shipment_of(session, pledge.id)
    return json_response(await own_pledge_out(request, pledge, backer, shipment=shipment))
