from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from payments.webhooks import record_webhook_event
from service.api import json_response
from service.routes import api
from service.web import gateway_of, uow

STRIPE_EVENT_CONTENT = {
    "application/json": {
        "schema": {
            "type": "object",
            "description": "A Stripe event, exactly as Stripe sent it, signed in the Stripe-Signature header.",
            "required": ["id", "type", "data"],
            "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "data": {"type": "object"}},
        }
    }
}
RECEIVED_CONTENT = {
    "application/json": {
        "schema": {"type": "object", "required": ["received"], "properties": {"received": {"type": "boolean"}}}
    }
}


@api.route(
    "POST",
    "/webhooks/stripe",
    summary="Receive a Stripe event (signed with the endpoint's secret; applied once however often it comes)",
    auth=False,
    errors=(400,),
    tags=["webhooks"],
    request_content=STRIPE_EVENT_CONTENT,
    response_content=RECEIVED_CONTENT,
)
async def receive_stripe_event(request: Request) -> Response:
    # The signature covers the exact bytes, so the body is read raw rather than through `body=`.
    event = gateway_of(request).verify_webhook(await request.body(), request.headers.get("stripe-signature"))
    async with uow(request) as session:
        await record_webhook_event(session, event)
    return json_response({"received": True})
