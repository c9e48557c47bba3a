"""Two-factor set-up for the signed-in user: a secret for the authenticator app, then a first code to turn it on."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns import two_factor
from campaigns.schemas import RecoveryCodesOut, TwoFactorConfirm, TwoFactorStarted
from service.api import json_response
from service.routes import api
from service.web import current_user, uow


@api.route(
    "POST",
    "/me/two-factor",
    summary="Start two-factor set-up: a new secret for an authenticator app (not active until confirmed)",
    response=TwoFactorStarted,
    status=201,
    errors=(409,),
    tags=["users"],
)
async def start_two_factor(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        enrolment = await two_factor.begin_two_factor(session, user)
    return json_response(TwoFactorStarted(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri), 201)


@api.route(
    "POST",
    "/me/two-factor/confirm",
    summary="Turn two-factor on with a code of the app; answers the ten one-time recovery codes, shown this once",
    body=TwoFactorConfirm,
    response=RecoveryCodesOut,
    errors=(409,),
    tags=["users"],
)
async def confirm_two_factor(request: Request, body: TwoFactorConfirm) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        codes = await two_factor.confirm_two_factor(session, user, body.code)
    return json_response(RecoveryCodesOut(recovery_codes=codes))
