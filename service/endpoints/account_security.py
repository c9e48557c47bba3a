"""An account's own security in the API: forgotten and changed passwords, confirmed and changed addresses,
sessions and tokens listed and ended."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from campaigns import account_links, sessions
from campaigns.account_deletion import delete_account
from campaigns.account_export import AccountExport, export_account
from campaigns.account_schemas import (
    AcceptedOut,
    AccountDeletion,
    EmailChangeCreate,
    PasswordChange,
    PasswordResetCreate,
    PasswordResetUse,
    SessionList,
    SessionOut,
    TokenInfoOut,
    TokenList,
)
from campaigns.accounts import normalise_email
from campaigns.models import User
from campaigns.schemas import AccountOut
from service.api import json_response
from service.idempotency import forget_user_requests
from service.routes import api
from service.throttle import hit_and_check
from service.web import bearer_token, client_address, current_user, sessions_of, uow

HOUR = 3600
RESETS_PER_EMAIL_PER_HOUR = 5
RESETS_PER_ADDRESS_PER_HOUR = 20
MAILS_PER_USER_PER_HOUR = 5
TAGS = ["account"]


async def password_reset_throttled(request: Request, email: str) -> None:
    for bucket, limit in (
        (f"reset:email:{normalise_email(email)}", RESETS_PER_EMAIL_PER_HOUR),
        (f"reset:ip:{client_address(request)}", RESETS_PER_ADDRESS_PER_HOUR),
    ):
        await hit_and_check(sessions_of(request), bucket, limit=limit, window=HOUR)


async def account_mail_throttled(request: Request, user: User, kind: str) -> None:
    """At most a few mails of one kind per user and hour, so nobody can make Kindling flood a mailbox."""
    await hit_and_check(sessions_of(request), f"{kind}:user:{user.id}", limit=MAILS_PER_USER_PER_HOUR, window=HOUR)


async def current_credentials(request: Request, session: AsyncSession) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The session and the token this request came with (one of them is None)."""
    token = bearer_token(request)
    token_id = await sessions.token_id_of(session, token) if token is not None else None
    return getattr(request.state, "session_id", None), token_id


@api.route(
    "POST",
    "/password-resets",
    summary="Mail a password reset link; the same answer whether or not an account has the address",
    body=PasswordResetCreate,
    response=AcceptedOut,
    status=202,
    auth=False,
    errors=(429,),
    tags=TAGS,
)
async def create_password_reset(request: Request, body: PasswordResetCreate) -> Response:
    await password_reset_throttled(request, body.email)
    async with uow(request) as session:
        await account_links.request_password_reset(session, body.email)
    detail = "If an account has this email, a link to reset its password is on its way; it works once, for an hour."
    return json_response(AcceptedOut(detail=detail), 202)


@api.route(
    "POST",
    "/password-resets/{token}",
    summary="Set a new password from a reset link; every session and token of the account ends",
    body=PasswordResetUse,
    response=AccountOut,
    auth=False,
    errors=(404,),
    tags=TAGS,
)
async def use_password_reset(request: Request, body: PasswordResetUse) -> Response:
    async with uow(request) as session:
        user = await account_links.reset_password(session, request.path_params["token"], body.password)
    return json_response(AccountOut.model_validate(user))


@api.route(
    "PUT",
    "/me/password",
    summary="Change the password, given the current one; every other session and token ends",
    body=PasswordChange,
    response=AccountOut,
    tags=TAGS,
)
async def change_password(request: Request, body: PasswordChange) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        keep_session, keep_token = await current_credentials(request, session)
        await account_links.change_password(
            session,
            user,
            current_password=body.current_password,
            new_password=body.password,
            keep_session=keep_session,
            keep_token=keep_token,
        )
    return json_response(AccountOut.model_validate(user))


@api.route(
    "POST",
    "/me/email-changes",
    summary="Mail a link to a new address; the email changes once it is followed",
    body=EmailChangeCreate,
    response=AcceptedOut,
    status=202,
    errors=(409, 429),
    tags=TAGS,
)
async def create_email_change(request: Request, body: EmailChangeCreate) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        await account_mail_throttled(request, user, "email-change")
        await account_links.request_email_change(session, user, new_email=body.email, password=body.password)
    detail = "A link is on its way to the new address; the email changes once it is followed, within a day."
    return json_response(AcceptedOut(detail=detail), 202)


@api.route(
    "POST",
    "/email-changes/{token}",
    summary="Confirm a new address from the link mailed to it; the old address is told",
    response=AccountOut,
    auth=False,
    errors=(404, 409),
    tags=TAGS,
)
async def confirm_email_change(request: Request) -> Response:
    async with uow(request) as session:
        user = await account_links.confirm_email_change(session, request.path_params["token"])
    return json_response(AccountOut.model_validate(user))


@api.route(
    "POST",
    "/email-verifications",
    summary="Mail the link that confirms the account's address again",
    response=AcceptedOut,
    status=202,
    errors=(409, 429),
    tags=TAGS,
)
async def resend_email_verification(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        await account_mail_throttled(request, user, "verify")
        await account_links.send_verification_again(session, user)
    return json_response(AcceptedOut(detail=f"A new link is on its way to {user.email}."), 202)


@api.route(
    "POST",
    "/email-verifications/{token}",
    summary="Confirm the account's address from the link mailed to it",
    response=AccountOut,
    auth=False,
    errors=(404,),
    tags=TAGS,
)
async def verify_email(request: Request) -> Response:
    async with uow(request) as session:
        user = await account_links.verify_email(session, request.path_params["token"])
    return json_response(AccountOut.model_validate(user))


@api.route("GET", "/me/sessions", summary="The account's signed-in browsers", response=SessionList, tags=TAGS)
async def list_sessions(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        current = getattr(request.state, "session_id", None)
        rows = await sessions.active_sessions(session, user)
        items = [SessionOut.of(row, current=row.id == current) for row in rows]
    return json_response(SessionList(items=items))


@api.route("DELETE", "/me/sessions/{session_id}", summary="Log one browser out", status=204, errors=(404,), tags=TAGS)
async def end_session(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        await sessions.end_session_of(session, user, request.path_params["session_id"])
    return Response(status_code=204)


@api.route("DELETE", "/me/sessions", summary="Log every browser out", status=204, tags=TAGS)
async def end_all_sessions(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        await sessions.end_sessions(session, user.id)
    return Response(status_code=204)


@api.route(
    "GET",
    "/me/export",
    summary="Everything Kindling holds about the signed-in user: account, pledges and addresses, campaigns, mails",
    response=AccountExport,
    tags=TAGS,
)
async def export_me(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        document = await export_account(session, user, now=datetime.now(UTC))
    response = json_response(document)
    response.headers["Content-Disposition"] = 'attachment; filename="kindling-account.json"'
    return response


@api.route("GET", "/me/tokens", summary="The account's live API tokens", response=TokenList, tags=TAGS)
async def list_tokens(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        _session_id, current = await current_credentials(request, session)
        rows = await sessions.active_tokens(session, user)
        items = [TokenInfoOut.of(row, current=row.id == current) for row in rows]
    return json_response(TokenList(items=items))


@api.route("DELETE", "/me/tokens/{token_id}", summary="Revoke one API token", status=204, errors=(404,), tags=TAGS)
async def revoke_token(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        await sessions.revoke_token_of(session, user, request.path_params["token_id"])
    return Response(status_code=204)


@api.route(
    "POST",
    "/me/deletion",
    summary="Delete the account, given its password: personal data is erased, money records stay anonymised",
    body=AccountDeletion,
    status=204,
    errors=(409,),
    tags=TAGS,
)
async def delete_me(request: Request, body: AccountDeletion) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        await delete_account(session, user, password=body.password)
        await forget_user_requests(session, user.id)
    return Response(status_code=204)
