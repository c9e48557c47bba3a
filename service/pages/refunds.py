"""Refunds for the sponsoring space: the campaign's collected pledges with what is left of each, and a refund of one
pledge, whole or in part, with a reason, asked once more before it is made.

Who may, and how much, is payments.pledge_refunds's to say (the function the JSON API calls); this module only puts
it into forms and words.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import Conflict, InvalidInput, NotAllowed, NotFound
from campaigns.models import User
from payments import ledger
from payments.pledge_refunds import (
    REASON_LIMIT,
    REFUNDERS,
    ChargedPledge,
    campaign_refunds,
    charged_pledges,
    pledge_balance,
    pledge_to_refund,
    refund_pledge,
)
from service.i18n import gettext as _
from service.i18n import money as money_text
from service.i18n import ngettext
from service.pages import FieldMessages, viewer
from service.pages.campaigns import status_label
from service.pages.money_input import NumberInputError, minor_units
from service.web import client_address, current_user, read_form, redirect, render, uow

# How many pledges and refunds the page lists.
PLEDGES_SHOWN = 500
REFUNDS_SHOWN = 50


def _list_url(slug: str) -> str:
    return f"/operator/campaigns/{slug}/refunds"


def _form_url(slug: str, pledge_id: uuid.UUID | str) -> str:
    return f"/operator/campaigns/{slug}/pledges/{pledge_id}/refund"


def refund_status_label(status: str) -> str:
    labels = {"pending": _("Being refunded"), "succeeded": _("Refunded"), "failed": _("Refused by the card network")}
    return labels.get(status, status)


def _refusals() -> dict[str, str]:
    return {
        "nothing-to-refund": _("Nothing is left to refund on this pledge."),
        "escrow-short": _(
            "Escrow does not hold enough for this refund: most of it has been released to the maker already."
        ),
    }


def _pledge_row(slug: str, row: ChargedPledge) -> dict[str, Any]:
    return {
        "id": str(row.pledge.id),
        "number": row.pledge.number,
        "backer": row.backer_name,
        "email": row.backer_email,
        "status": row.pledge.status,
        "collected": row.money.collected,
        "refunded": row.money.refunded + row.money.refunding,
        "disputed": row.money.disputed + row.money.dispute_lost,
        "left": row.money.left,
        "refund_url": _form_url(slug, row.pledge.id),
    }


async def refunds_page(request: Request) -> Response:
    slug = str(request.path_params["slug"])
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        campaign, roles = await ledger.books_for(session, slug, user)
        if not roles & REFUNDERS:
            raise NotAllowed("Only the sponsoring space's operators and admins refund pledges.")
        rows = await charged_pledges(session, campaign.id, limit=PLEDGES_SHOWN)
        refunds = await campaign_refunds(session, campaign.id, limit=REFUNDS_SHOWN)
        summary = await ledger.campaign_ledger(session, campaign.id)
    names = {row.pledge.id: row.backer_name for row in rows}
    context = {
        "campaign": {
            "slug": campaign.slug,
            "title": campaign.title,
            "status": campaign.status,
            "status_label": status_label(campaign.status),
        },
        "currency": campaign.currency,
        "summary": summary,
        "pledges": [_pledge_row(campaign.slug, row) for row in rows],
        "refunds": [
            {
                "backer": names.get(r.pledge_id, ""),
                "amount": r.amount,
                "status": r.status,
                "status_label": refund_status_label(r.status),
                "reason": r.reason,
                "created_at": r.created_at,
            }
            for r in refunds
        ],
        "done": _("The refund is on its way: the backer is told by email once the card network has it.")
        if request.query_params.get("done") == "refunded"
        else None,
    }
    return render(request, "money/refunds.html", context)


async def _refund_form(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldMessages | None = None,
    form_error: str | None = None,
    confirm: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    slug = str(request.path_params["slug"])
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        pledge, campaign = await pledge_to_refund(session, str(request.path_params["pledge_id"]), user)
        if campaign.slug != slug:
            raise NotFound("No such pledge.")
        money = await pledge_balance(session, pledge.id)
        backer_name = (await session.get_one(User, pledge.backer_id)).name
    context = {
        "campaign": {"slug": campaign.slug, "title": campaign.title},
        "pledge": {
            "id": str(pledge.id),
            "number": pledge.number,
            "backer": backer_name,
            "collected": money.collected,
            "refunded": money.refunded + money.refunding,
            "disputed": money.disputed + money.dispute_lost,
            "left": money.left,
        },
        "currency": campaign.currency,
        "values": values or {},
        "errors": errors or {},
        "form_error": form_error,
        "confirm": confirm,
        "action": _form_url(campaign.slug, pledge.id),
        "back_url": _list_url(campaign.slug),
        "reason_limit": REASON_LIMIT,
    }
    return render(request, "money/refund_form.html", context, status=status)


async def refund_form(request: Request) -> Response:
    return await _refund_form(request)


def _read_refund(form: Any, currency: str) -> tuple[dict[str, str], int | None, str, FieldMessages]:
    """What was typed, the amount in minor units (None: all that is left), the reason, and one message per bad field."""
    values = {name: str(form.get(name) or "") for name in ("amount", "reason")}
    errors: FieldMessages = {}
    amount: int | None = None
    typed = values["amount"].strip()
    if typed:
        try:
            amount = minor_units(typed, currency)
        except NumberInputError as bad:
            errors["amount"] = bad.message
        else:
            if amount <= 0:
                errors["amount"] = _("Enter an amount above zero, or leave it empty to refund all that is left.")
    reason = values["reason"].strip()
    if not reason:
        errors["reason"] = _("This field is required.")
    elif len(reason) > REASON_LIMIT:
        errors["reason"] = ngettext(
            "Use at most %(num)d character.", "Use at most %(num)d characters.", REASON_LIMIT
        ) % {"num": REASON_LIMIT}
    elif any(ord(ch) < 0x20 and ch not in "\n\r\t" for ch in reason):
        errors["reason"] = _("This value is not valid.")
    return values, amount, reason, errors


async def make_refund(request: Request) -> Response:
    form = await read_form(request)
    async with uow(request) as session:
        user = await current_user(request, session)
        pledge, campaign = await pledge_to_refund(session, str(request.path_params["pledge_id"]), user)
        money = await pledge_balance(session, pledge.id)
    if campaign.slug != str(request.path_params["slug"]):
        raise NotFound("No such pledge.")
    currency = campaign.currency
    values, amount, reason, errors = _read_refund(form, currency)
    if errors:
        return await _refund_form(request, values=values, errors=errors, status=422)
    if amount is not None and amount > money.left:
        message = _("At most %(left)s is left to refund on this pledge.") % {"left": money_text(money.left, currency)}
        return await _refund_form(request, values=values, errors={"amount": message}, status=422)
    if form.get("confirmed") != "yes":
        # An irreversible step: say what will happen, and ask once more.
        confirm = {"amount": money.left if amount is None else amount, "reason": reason, "typed": values["amount"]}
        return await _refund_form(request, values=values, confirm=confirm)
    try:
        async with uow(request) as session:
            user = await current_user(request, session)
            await refund_pledge(
                session, str(pledge.id), user, amount=amount, reason=reason, client_address=client_address(request)
            )
    except InvalidInput:
        message = _("Less is left to refund on this pledge now. Check the figures above and try again.")
        return await _refund_form(request, values=values, errors={"amount": message}, status=422)
    except Conflict as refused:
        message = _refusals().get(refused.type, _("Something changed in the meantime. Reload the page and try again."))
        return await _refund_form(request, values=values, form_error=message, status=409)
    return redirect(_list_url(campaign.slug) + "?done=refunded")


routes = [
    Route("/operator/campaigns/{slug}/refunds", refunds_page, methods=["GET"]),
    Route("/operator/campaigns/{slug}/pledges/{pledge_id}/refund", refund_form, methods=["GET"]),
    Route("/operator/campaigns/{slug}/pledges/{pledge_id}/refund", make_refund, methods=["POST"]),
]
