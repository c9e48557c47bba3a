"""Which mails an account gets (its notification settings), and the addresses no mail may go to (bounces and
complaints, recorded by an admin or a mail provider's hook run by one)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns.audit import record_audit
from campaigns.backer_schemas import (
    NotificationSettingsOut,
    NotificationSettingsPatch,
    SuppressionIn,
    SuppressionOut,
)
from campaigns.errors import NotAllowed
from campaigns.notification_settings import notification_settings, set_notification_settings, suppress_address
from campaigns.two_factor import require_two_factor
from service.api import json_response
from service.routes import api
from service.web import client_address, current_user, uow


@api.route(
    "GET",
    "/me/notification-settings",
    summary="Which mails the signed-in user gets: updates, comments, messages",
    response=NotificationSettingsOut,
    tags=["users"],
)
async def get_notification_settings(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        return json_response(NotificationSettingsOut(**notification_settings(user)))


@api.route(
    "PATCH",
    "/me/notification-settings",
    summary="Turn update, comment or message mails on or off (the kinds not named stay as they are)",
    body=NotificationSettingsPatch,
    response=NotificationSettingsOut,
    errors=(422,),
    tags=["users"],
)
async def change_notification_settings(request: Request, body: NotificationSettingsPatch) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        settings = await set_notification_settings(session, user, body.changes())
        return json_response(NotificationSettingsOut(**settings))


@api.route(
    "POST",
    "/mail-suppressions",
    summary="Record a bounce or a complaint (admin): no more mail of any kind goes to the address",
    body=SuppressionIn,
    response=SuppressionOut,
    status=201,
    errors=(403, 422),
    tags=["users"],
)
async def record_suppression(request: Request, body: SuppressionIn) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        if not user.is_admin:
            raise NotAllowed("Only platform admins record bounces and complaints.")
        require_two_factor(user)
        address = body.address.strip().lower()
        added = await suppress_address(session, address, body.reason, detail=body.detail)
        await record_audit(
            session,
            user.id,
            "mail.suppress",
            "mail_address",
            address,
            space_id=None,
            client_address=client_address(request),
            details={"reason": body.reason},
        )
        return json_response(SuppressionOut(address=address, reason=body.reason, added=added), 201)
