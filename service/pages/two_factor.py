"""Two-factor set-up in pages: start (a secret and its QR code), confirm with a first code, keep the recovery codes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import two_factor
from campaigns.errors import InvalidInput
from campaigns.models import User
from service.i18n import gettext as _
from service.pages import viewer
from service.web import read_form, redirect, render, uow


def _setup_page(
    request: Request,
    user: User,
    *,
    errors: dict[str, str] | None = None,
    recovery_codes: list[str] | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "enabled": two_factor.has_two_factor(user),
        "recovery_codes": recovery_codes,
        "errors": errors or {},
        "values": {},
        "form_error": None,
        "pending": None,
    }
    if not context["enabled"] and user.totp_secret is not None:
        uri = two_factor.otpauth_uri(user, user.totp_secret)
        context["pending"] = {
            "secret": user.totp_secret,
            "uri": uri,
            "qr_svg": Markup(two_factor.qr_code_svg(uri)),  # noqa: S704 - segno's own SVG, no user text in it
        }
    return render(request, "accounts/two_factor.html", context, status=status)


async def setup(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        return _setup_page(request, user)


async def start(request: Request) -> Response:
    await read_form(request)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=/me/two-factor")
        if not two_factor.has_two_factor(user):
            await two_factor.begin_two_factor(session, user)
    return redirect("/me/two-factor#scan")


async def confirm(request: Request) -> Response:
    form = await read_form(request)
    code = form.get("code")
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=/me/two-factor")
        if two_factor.has_two_factor(user):
            return redirect("/me/two-factor")
        if not isinstance(code, str) or not code.strip():
            return _setup_page(request, user, errors={"code": _("This field is required.")}, status=422)
        try:
            codes = await two_factor.confirm_two_factor(session, user, code)
        except InvalidInput:
            message = _("That is not the code your app shows now. Wait for the next code and try again.")
            return _setup_page(request, user, errors={"code": message}, status=422)
        except two_factor.TwoFactorNotStarted:
            return redirect("/me/two-factor")
        request.state.needs_two_factor = False
        return _setup_page(request, user, recovery_codes=codes)


routes = [
    Route("/me/two-factor", setup, methods=["GET"]),
    Route("/me/two-factor/start", start, methods=["POST"]),
    Route("/me/two-factor/confirm", confirm, methods=["POST"]),
]
