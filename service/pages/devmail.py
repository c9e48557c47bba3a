"""Under `kindling dev`, mail is kept in the database instead of sent; these pages let you read it, on this machine
only: they are mounted only under `kindling dev` (KINDLING_DEV) and answer only loopback clients (404 to others)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from functools import wraps

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from campaigns.errors import NotFound
from campaigns.ids import parse_id
from campaigns.models import Mail
from campaigns.pagination import Cursor, page_after
from service.pages import viewer
from service.web import render, uow

DEV_ONLY = True
MAILS_PER_PAGE = 50

# The stored HTML is shown in a sandboxed frame of its own: no scripts, no forms, nothing fetched from elsewhere,
# but the inline styles mail is written with.
_MAIL_HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)


async def _mail(request: Request) -> Mail:
    mail_id = parse_id(request.path_params["mail_id"])
    async with uow(request) as session:
        await viewer(request, session)
        mail = await session.get(Mail, mail_id) if mail_id else None
    if mail is None:
        raise NotFound("No such mail.")
    return mail


async def mailbox(request: Request) -> Response:
    async with uow(request) as session:
        await viewer(request, session)
        mails, next_cursor = await page_after(
            session,
            select(Mail),
            Mail,
            limit=MAILS_PER_PAGE,
            cursor=Cursor.decode(request.query_params.get("cursor")),
            newest_first=True,
        )
    return render(request, "dev/mail.html", {"mails": mails, "mail": None, "next_cursor": next_cursor})


async def one_mail(request: Request) -> Response:
    mail = await _mail(request)
    facts = json.dumps(mail.facts, ensure_ascii=False, indent=2, sort_keys=True)
    return render(request, "dev/mail.html", {"mails": [], "mail": mail, "facts": facts, "next_cursor": None})


async def mail_html(request: Request) -> Response:
    mail = await _mail(request)
    if mail.html_body is None:
        raise NotFound("This mail has no HTML body yet.")
    headers = {"Content-Security-Policy": _MAIL_HTML_POLICY, "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(mail.html_body, headers=headers)


def from_this_machine(request: Request) -> bool:
    """The client is on loopback (127.0.0.0/8 or ::1): the developer's own browser, not someone on the network."""
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def _this_machine_only(page: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    @wraps(page)
    async def guarded(request: Request) -> Response:
        if not from_this_machine(request):
            raise NotFound("No such page.")
        return await page(request)

    return guarded


routes = [
    Route("/dev/mail", _this_machine_only(mailbox), methods=["GET"]),
    Route("/dev/mail/{mail_id}", _this_machine_only(one_mail), methods=["GET"]),
    Route("/dev/mail/{mail_id}/html", _this_machine_only(mail_html), methods=["GET"]),
]
