"""The account's own pages: a forgotten password, the links mailed to confirm an address, and the account page
(password, email, sessions and tokens). The rules are the API's (campaigns.account_links, campaigns.sessions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import account_links, sessions
from campaigns.account_deletion import AccountInUse, delete_account
from campaigns.account_schemas import (
    AccountDeletion,
    EmailChangeCreate,
    PasswordChange,
    PasswordResetCreate,
    PasswordResetUse,
)
from campaigns.errors import InvalidInput, NotFound, TooManyRequests
from campaigns.models import User
from campaigns.preferences import offered_time_zones, set_preferences
from campaigns.schemas import PreferencesUpdate
from service.endpoints.account_security import account_mail_throttled, password_reset_throttled
from service.i18n import LOCALE_NAMES, current_locale, time_zone_label
from service.i18n import gettext as _
from service.idempotency import forget_user_requests
from service.pages import safe_next, validate_form, viewer, wait_message
from service.pages.accounts import PASSWORD_MIN_LENGTH
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import end_signed_in_session, read_form, redirect, render, uow


def _form_values(form: Any) -> dict[str, str]:
    return {key: value for key, value in form.items() if isinstance(value, str) and key != "csrf_token"}


def _email_invalid() -> dict[str, str]:
    return {"email": _("Enter a valid email address, like name@example.com.")}


def _link_page(request: Request, title: str, message: str, *, status: int = 200) -> Response:
    context = {"title": title, "message": message}
    return render(request, "accounts/link_result.html", context, status=status)


def _link_invalid(request: Request, *, again: str, again_label: str) -> Response:
    context = {
        "title": _("This link does not work any more"),
        "message": _("It was used already, has expired, or was copied incompletely. Ask for a new one."),
        "again": again,
        "again_label": again_label,
    }
    return render(request, "accounts/link_result.html", context, status=404)


def _login_first(request: Request) -> Response:
    return redirect("/login?next=" + request.url.path)


# A forgotten password


async def forgot_form(request: Request) -> Response:
    return render(request, "accounts/forgot.html", {"values": {}, "errors": {}, "sent": False})


async def forgot(request: Request) -> Response:
    values = _form_values(await read_form(request))
    checked = validate_form(PasswordResetCreate, {"email": values.get("email", "")}, invalid=_email_invalid())
    if not isinstance(checked, PasswordResetCreate):
        context = {"values": values, "errors": checked, "sent": False}
        return render(request, "accounts/forgot.html", context, status=422)
    try:
        await password_reset_throttled(request, checked.email)
    except TooManyRequests as exc:
        context = {"values": values, "errors": {}, "form_error": wait_message(exc.retry_after), "sent": False}
        response = render(request, "accounts/forgot.html", context, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    async with uow(request) as session:
        await account_links.request_password_reset(session, checked.email)
    return render(request, "accounts/forgot.html", {"values": values, "errors": {}, "sent": True})


def _reset_page(request: Request, *, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    context = {"errors": errors or {}, "values": {}, "password_min_length": PASSWORD_MIN_LENGTH}
    return render(request, "accounts/reset.html", context, status=status)


def _reset_invalid(request: Request) -> Response:
    return _link_invalid(request, again="/forgot-password", again_label=_("Ask for a new link"))


async def reset_form(request: Request) -> Response:
    async with uow(request) as session:
        usable = await account_links.link_is_usable(session, request.path_params["token"], "reset_password")
    return _reset_page(request) if usable else _reset_invalid(request)


async def reset(request: Request) -> Response:
    values = _form_values(await read_form(request))
    checked = validate_form(PasswordResetUse, {"password": values.get("password", "")})
    if not isinstance(checked, PasswordResetUse):
        return _reset_page(request, errors=checked, status=422)
    try:
        async with uow(request) as session:
            await account_links.reset_password(session, request.path_params["token"], checked.password)
            # Every session ended, this browser's too: it logs in anew with the new password (and whatever else
            # logging in asks for).
            await end_signed_in_session(request, session)
    except account_links.LinkInvalid:
        return _reset_invalid(request)
    return redirect("/login?done=password-reset")


# Links that confirm an address


async def verify_email(request: Request) -> Response:
    try:
        async with uow(request) as session:
            await account_links.verify_email(session, request.path_params["token"])
    except account_links.LinkInvalid:
        return _link_invalid(request, again="/account#email", again_label=_("Send a new link from your account"))
    return _link_page(
        request, _("Your email address is confirmed"), _("Thank you. Everything Kindling offers is open to you now.")
    )


async def confirm_email_form(request: Request) -> Response:
    async with uow(request) as session:
        link = await account_links.usable_link(session, request.path_params["token"], "change_email")
    if link is None:
        return _link_invalid(request, again="/account#email", again_label=_("Ask again from your account"))
    return render(request, "accounts/confirm_email.html", {"new_email": link.new_email})


async def confirm_email(request: Request) -> Response:
    await read_form(request)
    try:
        async with uow(request) as session:
            user = await account_links.confirm_email_change(session, request.path_params["token"])
    except account_links.LinkInvalid:
        return _link_invalid(request, again="/account#email", again_label=_("Ask again from your account"))
    except account_links.EmailTaken:
        message = _("Another account uses this email address now, so yours stays as it was.")
        return _link_page(request, _("The email address was not changed"), message, status=409)
    message = _("Your account now uses %(email)s. We told your old address.") % {"email": user.email}
    return _link_page(request, _("Your email address is changed"), message)


# The account page


async def _account_page(
    request: Request,
    session: AsyncSession,
    user: User,
    *,
    password_errors: dict[str, str] | None = None,
    email_errors: dict[str, str] | None = None,
    email_values: dict[str, str] | None = None,
    form_error: str | None = None,
    delete_error: str | None = None,
    preference_errors: dict[str, str] | None = None,
    preference_values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    current = getattr(request.state, "session_id", None)
    browsers = await sessions.active_sessions(session, user)
    tokens = await sessions.active_tokens(session, user)
    context = {
        "account": user,
        "browsers": [{"row": row, "current": row.id == current} for row in browsers],
        "tokens": tokens,
        "done": _done_messages().get(request.query_params.get("done", "")),
        "password_errors": password_errors or {},
        "email_errors": email_errors or {},
        "email_values": email_values or {},
        "form_error": form_error,
        "delete_error": delete_error,
        "password_min_length": PASSWORD_MIN_LENGTH,
        "preference_errors": preference_errors or {},
        "preference_values": preference_values or {"language": user.locale, "time_zone": user.time_zone},
        "languages": list(LOCALE_NAMES.items()),
        "now": datetime.now(UTC),
        "time_zones": [
            (zone, time_zone_label(zone)) for zone in offered_time_zones(current_locale.get(), user.time_zone)
        ],
    }
    return render(request, "accounts/account.html", context, status=status)


def _done_messages() -> dict[str, str]:
    return {
        "password": _("Your password is changed. Every other session and API token has ended."),
        "email": _("Check the new address: the change happens once you follow the link we sent there."),
        "verification": _("A new confirmation link is on its way. It works for three days."),
        "ended": _("That session has ended."),
        "revoked": _("That token is revoked."),
        "preferences": _("Saved. Pages and mail now use your language and time zone."),
    }


async def account(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        return await _account_page(request, session, user)


async def change_password(request: Request) -> Response:
    values = _form_values(await read_form(request))
    fields = {k: values.get(k, "") for k in ("current_password", "password")}
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        checked = validate_form(PasswordChange, fields)
        if not isinstance(checked, PasswordChange):
            return await _account_page(request, session, user, password_errors=checked, status=422)
        try:
            async with session.begin_nested():
                await account_links.change_password(
                    session,
                    user,
                    current_password=checked.current_password,
                    new_password=checked.password,
                    keep_session=getattr(request.state, "session_id", None),
                )
        except InvalidInput:
            errors = {"current_password": _("This is not your current password.")}
            return await _account_page(request, session, user, password_errors=errors, status=422)
    return redirect("/account?done=password")


async def change_email(request: Request) -> Response:
    values = _form_values(await read_form(request))
    # The page has three password fields; this one is `email_password` on it.
    fields = {"email": values.get("email", ""), "password": values.get("email_password", "")}
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        checked = validate_form(EmailChangeCreate, fields, invalid=_email_invalid())
        if not isinstance(checked, EmailChangeCreate):
            return await _account_page(request, session, user, email_errors=checked, email_values=values, status=422)
        try:
            await account_mail_throttled(request, user, "email-change")
            async with session.begin_nested():
                await account_links.request_email_change(
                    session, user, new_email=checked.email, password=checked.password
                )
        except TooManyRequests as exc:
            return await _account_page(
                request, session, user, form_error=wait_message(exc.retry_after), email_values=values, status=429
            )
        except InvalidInput as exc:
            if exc.errors[0].field == "password":
                errors = {"email_password": _("This is not your current password.")}
            else:
                errors = {"email": _("This is your email address already.")}
            return await _account_page(request, session, user, email_errors=errors, email_values=values, status=422)
        except account_links.EmailTaken:
            errors = {"email": _("An account with this email exists already.")}
            return await _account_page(request, session, user, email_errors=errors, email_values=values, status=409)
    return redirect("/account?done=email")


async def resend_verification(request: Request) -> Response:
    values = _form_values(await read_form(request))
    back = safe_next(values.get("next"), "/account")
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        if user.email_verified:
            return redirect("/account")
        try:
            await account_mail_throttled(request, user, "verify")
        except TooManyRequests as exc:
            return await _account_page(request, session, user, form_error=wait_message(exc.retry_after), status=429)
        await account_links.send_verification_again(session, user)
    return redirect(back + ("&" if "?" in back else "?") + "done=verification")


async def change_preferences(request: Request) -> Response:
    values = _form_values(await read_form(request))
    fields = {k: values.get(k, "") for k in ("language", "time_zone")}
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        checked = validate_form(
            PreferencesUpdate,
            fields,
            invalid={
                "language": _("Choose a language from the list."),
                "time_zone": _("Choose a time zone from the list."),
            },
        )
        if not isinstance(checked, PreferencesUpdate):
            return await _account_page(
                request, session, user, preference_errors=checked, preference_values=fields, status=422
            )
        await set_preferences(session, user, language=checked.language, time_zone=checked.time_zone)
    return redirect("/account?done=preferences#preferences")


async def end_session(request: Request) -> Response:
    await read_form(request)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        await sessions.end_session_of(session, user, request.path_params["session_id"])
    return redirect("/account?done=ended#sessions")


def _revoke_question(name: str | None) -> Confirmation:
    return Confirmation(
        title=_("Revoke this API token?"),
        subject=name or _("Unnamed token"),
        consequences=[
            _("Every program that uses it is refused from now on."),
            _("It cannot be brought back: give those programs a new token."),
        ],
        confirm_label=_("Yes, revoke the token"),
        back_url="/account#tokens",
    )


async def revoke_token(request: Request) -> Response:
    form = await read_form(request)
    token_id = str(request.path_params["token_id"])
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        if not is_confirmed(form):
            token = next((t for t in await sessions.active_tokens(session, user) if str(t.id) == token_id), None)
            if token is None:
                raise NotFound("No such active token of yours.")
            return ask_first(request, form, _revoke_question(token.name))
        await sessions.revoke_token_of(session, user, token_id)
    return redirect("/account?done=revoked#tokens")


async def log_out_everywhere(request: Request) -> Response:
    await read_form(request)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        await sessions.end_everything(session, user.id)
        await end_signed_in_session(request, session)
    return redirect("/login?done=everywhere")


async def delete_me(request: Request) -> Response:
    values = _form_values(await read_form(request))
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        checked = validate_form(AccountDeletion, {"password": values.get("delete_password", "")})
        if not isinstance(checked, AccountDeletion):
            return await _account_page(request, session, user, delete_error=_("Give your password."), status=422)
        try:
            async with session.begin_nested():
                await delete_account(session, user, password=checked.password)
        except InvalidInput:
            message = _("This is not your current password.")
            return await _account_page(request, session, user, delete_error=message, status=422)
        except AccountInUse:
            message = _(
                "Your account cannot be deleted yet: a campaign you back or make is still under way. Once it is "
                "fulfilled (or your pledge is cancelled while the campaign is live), you can delete it."
            )
            return await _account_page(request, session, user, delete_error=message, status=409)
        await forget_user_requests(session, user.id)
        await end_signed_in_session(request, session)
    return redirect("/login?done=deleted")


routes = [
    Route("/forgot-password", forgot_form, methods=["GET"]),
    Route("/forgot-password", forgot, methods=["POST"]),
    Route("/reset-password/{token}", reset_form, methods=["GET"]),
    Route("/reset-password/{token}", reset, methods=["POST"]),
    Route("/verify-email/{token}", verify_email, methods=["GET"]),
    Route("/confirm-email/{token}", confirm_email_form, methods=["GET"]),
    Route("/confirm-email/{token}", confirm_email, methods=["POST"]),
    Route("/account", account, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/account/preferences", change_preferences, methods=["POST"]),
    Route("/account/email", change_email, methods=["POST"]),
    Route("/account/verification", resend_verification, methods=["POST"]),
    Route("/account/sessions/{session_id}/end", end_session, methods=["POST"]),
    Route("/account/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
    Route("/account/log-out-everywhere", log_out_everywhere, methods=["POST"]),
    Route("/account/delete", delete_me, methods=["POST"]),
]
