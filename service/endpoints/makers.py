from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns import service
from campaigns.makers import public_maker
from fulfillment.delivery_record import maker_delivery_record
from fulfillment.schemas import DeliveryRecordOut, MakerCampaignOut, MakerOut
from service.api import json_response
from service.routes import api
from service.web import uow

# A maker's public campaigns, newest first: more than a page of them is not a maker's profile any more.
MAKER_CAMPAIGNS = 100


@api.route(
    "GET",
    "/makers/{maker_id}",
    summary="A maker's public profile: name, public campaigns and delivery record",
    response=MakerOut,
    auth=False,
    errors=(404,),
    tags=["makers"],
)
async def get_maker(request: Request) -> Response:
    async with uow(request) as session:
        maker = await public_maker(session, request.path_params["maker_id"])
        details, _next = await service.list_campaigns(session, None, maker_id=maker.id, limit=MAKER_CAMPAIGNS)
        record = await maker_delivery_record(session, maker.id)
    return json_response(
        MakerOut(
            id=maker.id,
            name=maker.name,
            campaigns=[MakerCampaignOut.model_validate(detail.campaign) for detail in details],
            delivery_record=DeliveryRecordOut.model_validate(record),
        )
    )
