"""Sign-up, log-in and log-out pages: the API's rules and throttles, with a session cookie instead of a token."""

from __future__ import annotations

import time
from typing import Any

from annotated_types import MinLen
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import accounts, two_factor
from campaigns.errors import TooManyRequests
from campaigns.ids import parse_id
from campaigns.models import User
from campaigns.preferences import DEFAULT_TIME_ZONE, is_time_zone
from campaigns.schemas import TokenCreate, UserCreate
from service.endpoints.accounts import authenticate_throttled, second_factor_throttled, sign_up_throttled
from service.i18n import gettext as _
from service.pages import safe_next, validate_form, viewer, wait_message, welcomed
from service.web import end_signed_in_session, read_form, redirect, render, start_signed_in_session, uow

# How long the code step of a log-in waits after the password was right.
CODE_STEP_SECONDS = 5 * 60

# Said on the form; the rule itself is the API's.
PASSWORD_MIN_LENGTH = next(m.min_length for m in UserCreate.model_fields["password"].metadata if isinstance(m, MinLen))


def _form_page(
    request: Request,
    template: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    form_error: str | None = None,
    status: int = 200,
) -> Response:
    values = {k: v for k, v in (values or {}).items() if k not in ("password", "code", "csrf_token")}
    next_url = safe_next(values.get("next") or request.query_params.get("next"))
    context = {
        "values": values,
        "errors": errors or {},
        "form_error": form_error,
        "next": next_url,
        "password_min_length": PASSWORD_MIN_LENGTH,
        "done": _done_messages().get(request.query_params.get("done", "")),
    }
    return render(request, template, context, status=status)


def _done_messages() -> dict[str, str]:
    return {
        "password-reset": _("Your new password is saved. Log in with it."),
        "everywhere": _("You are logged out everywhere."),
        "deleted": _("Your account is deleted. Thank you for being part of Kindling."),
    }


def _throttled(request: Request, template: str, values: dict[str, Any], exc: TooManyRequests) -> Response:
    response = _form_page(request, template, values=values, form_error=wait_message(exc.retry_after), status=429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def signup_form(request: Request) -> Response:
    async with uow(request) as session:
        if await viewer(request, session) is not None:
            return redirect(safe_next(request.query_params.get("next")))
    return _form_page(request, "accounts/signup.html")


async def signup(request: Request) -> Response:
    form = await read_form(request)
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    checked = validate_form(
        UserCreate,
        {k: values.get(k, "") for k in ("name", "email", "password")},
        invalid={"email": _("Enter a valid email address, like name@example.com.")},
    )
    if not isinstance(checked, UserCreate):
        return _form_page(request, "accounts/signup.html", values=values, errors=checked, status=422)
    try:
        await sign_up_throttled(request)
    except TooManyRequests as exc:
        return _throttled(request, "accounts/signup.html", values, exc)
    try:
        # The browser's zone, which the page's script puts in a hidden field; without the script, UTC.
        told_zone = values.get("time_zone", "")
        async with uow(request) as session:
            user = await accounts.register_user(
                session,
                email=checked.email,
                password=checked.password,
                name=checked.name,
                locale=request.state.locale,
                time_zone=told_zone if is_time_zone(told_zone) else DEFAULT_TIME_ZONE,
            )
            await start_signed_in_session(request, session, user)
    except accounts.EmailTaken:
        errors = {"email": _("An account with this email exists already. Log in instead.")}
        return _form_page(request, "accounts/signup.html", values=values, errors=errors, status=409)
    return redirect(welcomed(safe_next(values.get("next"))))


async def login_form(request: Request) -> Response:
    async with uow(request) as session:
        if await viewer(request, session) is not None:
            return redirect(safe_next(request.query_params.get("next")))
    return _form_page(request, "accounts/login.html")


async def login(request: Request) -> Response:
    form = await read_form(request)
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    checked = validate_form(TokenCreate, {k: values.get(k, "") for k in ("email", "password")})
    if not isinstance(checked, TokenCreate):
        return _form_page(request, "accounts/login.html", values=values, errors=checked, status=422)
    try:
        user = await authenticate_throttled(request, checked.email, checked.password)
    except TooManyRequests as exc:
        return _throttled(request, "accounts/login.html", values, exc)
    except accounts.WrongCredentials:
        message = _("The email or the password is wrong.")
        return _form_page(request, "accounts/login.html", values=values, form_error=message, status=401)
    if two_factor.has_two_factor(user):
        # Not signed in yet: the cookie remembers only whose password was right, and until when the code may come.
        async with uow(request) as session:
            await end_signed_in_session(request, session)
        request.session["code_step"] = {"user_id": str(user.id), "until": int(time.time()) + CODE_STEP_SECONDS}
        return _form_page(request, "accounts/login_code.html", values={"next": values.get("next", "")})
    # The credentials are right (and no second factor is asked): from here on, this browser is signed in as `user`.
    async with uow(request) as session:
        await start_signed_in_session(request, session, user)
    return redirect(safe_next(values.get("next")))


async def login_code(request: Request) -> Response:
    """The log-in's second step, for an account with two-factor on: the password was right moments ago."""
    form = await read_form(request)
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    step = request.session.get("code_step") or {}
    user_id = parse_id(step.get("user_id", "")) if isinstance(step, dict) else None
    user = None
    if user_id is not None and int(step.get("until", 0)) >= time.time():
        async with uow(request) as session:
            user = await session.get(User, user_id)
    if user is None:
        request.session.pop("code_step", None)
        message = _("That took too long. Please log in again.")
        return _form_page(request, "accounts/login.html", values=values, form_error=message, status=401)
    code = values.get("code", "").strip()
    if not code:
        errors = {"code": _("This field is required.")}
        return _form_page(request, "accounts/login_code.html", values=values, errors=errors, status=422)
    try:
        await second_factor_throttled(request, user, code)
    except TooManyRequests as exc:
        return _throttled(request, "accounts/login_code.html", values, exc)
    except two_factor.TwoFactorRequired:
        errors = {"code": _("That code is wrong or was used already. Enter the code your app shows now.")}
        return _form_page(request, "accounts/login_code.html", values=values, errors=errors, status=401)
    request.session.pop("code_step", None)
    # The password and the code are right: from here on, this browser is signed in as `user`.
    async with uow(request) as session:
        await start_signed_in_session(request, session, user)
    return redirect(safe_next(values.get("next")))


async def logout(request: Request) -> Response:
    await read_form(request)
    async with uow(request) as session:
        await end_signed_in_session(request, session)
    return redirect("/")


routes = [
    Route("/signup", signup_form, methods=["GET"]),
    Route("/signup", signup, methods=["POST"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/login/code", login_code, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
