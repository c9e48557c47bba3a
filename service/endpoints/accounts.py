from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from campaigns import accounts, two_factor
from campaigns.models import User
from campaigns.preferences import DEFAULT_TIME_ZONE, set_preferences
from campaigns.schemas import MeOut, PreferencesUpdate, RolesOut, TokenCreate, TokenOut, UserCreate, UserOut
from service.api import json_response
from service.routes import api
from service.throttle import count_login_attempt, count_sign_up
from service.web import bearer_token, client_address, current_user, sessions_of, settings_of, uow, user_agent_of


async def sign_up_throttled(request: Request) -> None:
    await count_sign_up(request, sessions_of(request))


async def authenticate_throttled(request: Request, email: str, password: str) -> User:
    """Check a password once the attempt is counted: whoever fails too often from one address, or for one email from
    one address, waits longer and longer (service/throttle.py)."""
    attempt = await count_login_attempt(request, sessions_of(request), email)
    async with uow(request) as session:
        user = await accounts.authenticate(session, email=email, password=password)
    await attempt.succeeded()
    return user


async def second_factor_throttled(request: Request, user: User, otp: str | None) -> None:
    """The one check between "the password is right" and a session or token: for a user with two-factor on, a fresh
    code of their app or an unused recovery code. A code is counted like a password before it is judged (the same
    buckets, service/throttle.py), and its count given back when it was right."""
    attempt = await count_login_attempt(request, sessions_of(request), user.email) if otp else None
    async with uow(request) as session:
        await two_factor.check_second_factor(session, await session.get_one(User, user.id), otp)
    if attempt is not None:
        await attempt.succeeded()


@api.route(
    "POST",
    "/users",
    summary="Create an account",
    body=UserCreate,
    response=UserOut,
    status=201,
    auth=False,
    errors=(409, 429),
    tags=["users"],
)
async def create_user(request: Request, body: UserCreate) -> Response:
    await sign_up_throttled(request)
    async with uow(request) as session:
        user = await accounts.register_user(
            session,
            email=body.email,
            password=body.password,
            name=body.name,
            locale=body.language or request.state.locale,
            time_zone=body.time_zone or DEFAULT_TIME_ZONE,
        )
    return json_response(UserOut.model_validate(user), 201)


@api.route(
    "POST",
    "/tokens",
    summary="Log in: exchange email and password for a bearer token",
    body=TokenCreate,
    response=TokenOut,
    status=201,
    auth=False,
    errors=(401, 429),
    tags=["users"],
)
async def create_token(request: Request, body: TokenCreate) -> Response:
    user = await authenticate_throttled(request, body.email, body.password)
    await second_factor_throttled(request, user, body.otp)
    async with uow(request) as session:
        token = await accounts.issue_token(
            session,
            user,
            days=settings_of(request).token_days,
            name=body.name,
            address=client_address(request),
            user_agent=user_agent_of(request),
        )
    return json_response(TokenOut(token=token, user=UserOut.model_validate(user)), 201)


@api.route("DELETE", "/tokens/current", summary="Revoke the token this request carries", status=204, tags=["users"])
async def revoke_current_token(request: Request) -> Response:
    async with uow(request) as session:
        await current_user(request, session)
        token = bearer_token(request)
        if token is not None:
            await accounts.revoke_token(session, token)
    return Response(status_code=204)


async def _me(session: AsyncSession, user: User) -> MeOut:
    roles = await accounts.roles_of(session, user)
    return MeOut(
        id=user.id,
        email=user.email,
        name=user.name,
        email_verified=user.email_verified,
        roles=RolesOut(admin=roles.admin, operator_of=roles.operator_of),
        two_factor=two_factor.has_two_factor(user),
        language="zh_CN" if user.locale == "zh_CN" else "en",
        time_zone=user.time_zone,
    )


@api.route("GET", "/me", summary="The signed-in user and their roles", response=MeOut, tags=["users"])
async def me(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        return json_response(await _me(session, user))


@api.route(
    "PATCH",
    "/me",
    summary="Change the account's language (en, zh_CN) or time zone (an IANA name): its pages and mail follow",
    body=PreferencesUpdate,
    response=MeOut,
    errors=(422,),
    tags=["users"],
)
async def update_me(request: Request, body: PreferencesUpdate) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        await set_preferences(session, user, language=body.language, time_zone=body.time_zone)
        return json_response(await _me(session, user))
