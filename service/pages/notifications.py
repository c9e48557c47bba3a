"""Which mails an account gets: the settings page in the account, and the one-click unsubscribe link of RFC 8058
(GET shows a button; POST, from that button or straight from a mail client, turns the mail off without logging in:
the signed token in the link is the proof)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import NotFound
from campaigns.notification_settings import (
    NOTIFICATION_KINDS,
    notification_settings,
    read_unsubscribe_token,
    set_notification_settings,
    unsubscribe,
)
from service.i18n import gettext as _
from service.pages import viewer
from service.web import read_form, redirect, render, settings_of, uow


def _kind_words(kind: str) -> str:
    return {
        "updates": _("update emails from the campaigns you back"),
        "comments": _("emails about replies to your comments"),
        "messages": _("emails about new messages"),
    }.get(kind, kind)


async def settings_page(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        values = {kind: "on" for kind, wanted in notification_settings(user).items() if wanted}
    done = _("Saved.") if request.query_params.get("done") == "saved" else None
    return render(request, "notifications/settings.html", {"values": values, "done": done})


async def save_settings(request: Request) -> Response:
    form = await read_form(request)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        await set_notification_settings(
            session, user, {kind: form.get(kind) is not None for kind in NOTIFICATION_KINDS}
        )
    return redirect("/account/notifications?done=saved")


async def unsubscribe_page(request: Request) -> Response:
    token = str(request.path_params["token"])
    read = read_unsubscribe_token(settings_of(request).secret_key, token)
    if read is None:
        raise NotFound("This unsubscribe link is not one Kindling sent.")
    question = _("You will get no more %(what)s. You can turn them on again in your account.") % {
        "what": _kind_words(read[1])
    }
    return render(request, "notifications/unsubscribe.html", {"question": question, "done": None})


async def unsubscribe_now(request: Request) -> Response:
    # The mail provider's one-click POST (`List-Unsubscribe=One-Click`) carries no session, hence no CSRF token: the
    # signed token in the path is the proof. Its form is still read like every other.
    await read_form(request, csrf=False)
    async with uow(request) as session:
        kind = await unsubscribe(session, settings_of(request).secret_key, str(request.path_params["token"]))
    done = _("You get no more %(what)s.") % {"what": _kind_words(kind)}
    return render(request, "notifications/unsubscribe.html", {"question": None, "done": done})


routes = [
    Route("/account/notifications", settings_page, methods=["GET"]),
    Route("/account/notifications", save_settings, methods=["POST"]),
    Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
    Route("/unsubscribe/{token}", unsubscribe_now, methods=["POST"]),
]
