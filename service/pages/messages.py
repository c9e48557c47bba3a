"""Conversations as pages: the inbox with unread counts, one conversation with its reply form and the member's
"ask the space to step in", the question form reached from a campaign's page, and the maker's form to write to one
backer or many. Every step calls campaigns.talk.messages, as the API does; none of it needs JavaScript."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.access import visible_campaign
from campaigns.accounts import normalise_email
from campaigns.errors import InvalidInput, NotAllowed
from campaigns.models import Tier, User
from campaigns.talk import messages
from campaigns.talk.schemas import BroadcastCreate, MessageCreate
from service.i18n import gettext as _
from service.i18n import ngettext
from service.pages import FieldMessages, validate_form, viewer
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import read_form, redirect, render, settings_of, uow


def _to_log_in(request: Request) -> Response:
    return redirect("/login?next=" + quote(request.url.path, safe=""))


def side_label(side: str) -> str:
    return {"member": _("Backer"), "maker": _("Maker"), "space": _("Sponsoring space")}.get(side, side)


async def inbox_page(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _to_log_in(request)
        found, next_cursor = await messages.inbox(session, user, cursor=request.query_params.get("cursor") or None)
    rows = [
        {
            "url": f"/messages/{seen.conversation.id}",
            "campaign_title": seen.campaign.title,
            # The other side: the maker (and the space asked in) see who asked; the member sees the campaign.
            "with": _("The maker of “%(title)s”") % {"title": seen.campaign.title}
            if seen.side == "member"
            else seen.member.name,
            "space": seen.side == "space",
            "last_message_at": seen.conversation.last_message_at,
            "unread": seen.unread,
        }
        for seen in found
    ]
    return render(request, "talk/inbox.html", {"conversations": rows, "next_cursor": next_cursor})


async def _conversation_page(
    request: Request, user: User, values: dict[str, str], errors: FieldMessages, *, status: int = 200
) -> Response:
    async with uow(request) as session:
        seen, listed = await messages.read_conversation(session, request.path_params["conversation_id"], user)
        # Reading marks it read: the navigation's badge drops at once.
        request.state.unread_messages = await messages.unread_count(session, user)
    context: dict[str, Any] = {
        "conversation": seen.conversation,
        "campaign": seen.campaign,
        "member_name": seen.member.name,
        "side": seen.side,
        "messages": [
            {
                "author": name,
                "role": m.author_role,
                "role_label": side_label(m.author_role),
                "body": m.body,
                "at": m.created_at,
                "mine": m.author_id == user.id,
            }
            for m, name in listed
        ],
        "action": f"/messages/{seen.conversation.id}",
        "space_action": f"/messages/{seen.conversation.id}/space",
        "values": values,
        "errors": errors,
        "sent": request.query_params.get("done") == "sent",
        "space_asked": request.query_params.get("done") == "space",
    }
    return render(request, "talk/conversation.html", context, status=status)


async def conversation_page(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
    if user is None:
        return _to_log_in(request)
    return await _conversation_page(request, user, {}, {})


async def reply(request: Request) -> Response:
    form = await read_form(request)
    values = {"body": str(form.get("body") or "").strip()}
    checked = validate_form(MessageCreate, values)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _to_log_in(request)
        if isinstance(checked, MessageCreate):
            await messages.reply(
                session,
                request.path_params["conversation_id"],
                user,
                checked.body,
                base_url=settings_of(request).base_url,
            )
    if not isinstance(checked, MessageCreate):
        return await _conversation_page(request, user, values, checked, status=422)
    return redirect(f"/messages/{request.path_params['conversation_id']}?done=sent#latest")


async def invite_space(request: Request) -> Response:
    form = await read_form(request)
    conversation_id = request.path_params["conversation_id"]
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _to_log_in(request)
        if not is_confirmed(form):
            seen, _listed = await messages.read_conversation(session, conversation_id, user)
            question = Confirmation(
                title=_("Ask the sponsoring space to step in?"),
                subject=seen.campaign.title,
                consequences=[
                    _(
                        "The operators of the space that sponsors this campaign can read this whole conversation, "
                        "and write in it."
                    ),
                    _("They are told by mail. This cannot be taken back."),
                ],
                confirm_label=_("Yes, ask the space"),
                back_url=f"/messages/{conversation_id}",
                danger=False,
            )
            return ask_first(request, form, question)
        await messages.invite_space(session, conversation_id, user, base_url=settings_of(request).base_url)
    return redirect(f"/messages/{conversation_id}?done=space")


# Asking from the campaign's page


async def _question_page(
    request: Request, values: dict[str, str], errors: FieldMessages, *, status: int = 200
) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        campaign, roles = await visible_campaign(session, request.path_params["slug"], user)
    if "maker" in roles:
        raise NotAllowed("The maker answers questions about their campaign; write to a backer instead.")
    context = {"campaign": campaign, "values": values, "errors": errors, "action": f"/campaigns/{campaign.slug}/ask"}
    return render(request, "talk/ask.html", context, status=status)


async def question_form(request: Request) -> Response:
    async with uow(request) as session:
        if await viewer(request, session) is None:
            return _to_log_in(request)
    return await _question_page(request, {}, {})


async def ask(request: Request) -> Response:
    form = await read_form(request)
    values = {"body": str(form.get("body") or "").strip()}
    checked = validate_form(MessageCreate, values)
    if not isinstance(checked, MessageCreate):
        return await _question_page(request, values, checked, status=422)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _to_log_in(request)
        message = await messages.ask_maker(
            session, request.path_params["slug"], user, checked.body, base_url=settings_of(request).base_url
        )
    return redirect(f"/messages/{message.conversation_id}?done=sent#latest")


# The maker writes to backers

AUDIENCE_FIELDS = ("audience", "email", "body")


async def _backers_form(
    request: Request, values: dict[str, str], errors: FieldMessages, *, status: int = 200
) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        campaign, roles = await visible_campaign(session, request.path_params["slug"], user)
        if "maker" not in roles:
            raise NotAllowed("Only the campaign's maker writes to its backers.")
        tiers = list(await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id).order_by(Tier.position)))
    audiences = [
        ("all", _("All backers")),
        *((f"tier:{tier.id}", _("Backers of “%(tier)s”") % {"tier": tier.title}) for tier in tiers),
        ("no_address", _("Backers without a shipping address")),
        ("charge_failed", _("Backers whose charge failed")),
        ("one", _("One backer (by email)")),
    ]
    context = {
        "campaign": campaign,
        "audiences": audiences,
        "values": values,
        "errors": errors,
        "action": f"/maker/campaigns/{campaign.slug}/messages",
        "queued": request.query_params.get("done") == "queued",
    }
    return render(request, "talk/write_to_backers.html", context, status=status)


async def backers_form(request: Request) -> Response:
    async with uow(request) as session:
        if await viewer(request, session) is None:
            return _to_log_in(request)
    return await _backers_form(request, {"audience": "all"}, {})


async def write_to_backers(request: Request) -> Response:
    form = await read_form(request)
    values = {name: str(form.get(name) or "").strip() for name in AUDIENCE_FIELDS}
    slug = str(request.path_params["slug"])
    audience, _sep, tier_id = values["audience"].partition(":")
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _to_log_in(request)
        if audience == "one":
            checked_one = validate_form(MessageCreate, {"body": values["body"]})
            member = await session.scalar(select(User).where(User.email == normalise_email(values["email"])))
            errors: FieldMessages = checked_one if not isinstance(checked_one, MessageCreate) else {}
            if member is None:
                errors["email"] = _("Nobody with this email has backed or asked about this campaign.")
            if errors or member is None or not isinstance(checked_one, MessageCreate):
                return await _backers_form(request, values, errors, status=422)
            try:
                message = await messages.write_to_member(
                    session, slug, user, member.id, checked_one.body, base_url=settings_of(request).base_url
                )
            except InvalidInput:
                return await _backers_form(
                    request,
                    values,
                    {"email": _("Nobody with this email has backed or asked about this campaign.")},
                    status=422,
                )
            return redirect(f"/messages/{message.conversation_id}?done=sent#latest")
        checked = validate_form(
            BroadcastCreate,
            {"body": values["body"], "audience": audience} | ({"tier_id": tier_id} if tier_id else {}),
            invalid={"audience": _("Choose whom to write to."), "tier_id": _("Choose whom to write to.")},
        )
        if not isinstance(checked, BroadcastCreate):
            if "tier_id" in checked:
                checked["audience"] = checked.pop("tier_id")
            return await _backers_form(request, values, checked, status=422)
        if not is_confirmed(form):
            campaign, roles = await visible_campaign(session, slug, user)
            if "maker" not in roles:
                raise NotAllowed("Only the campaign's maker writes to its backers.")
            try:
                reached = await messages.audience_size(session, campaign.id, user.id, checked.audience, checked.tier_id)
            except InvalidInput:
                return await _backers_form(request, values, {"audience": _("Choose whom to write to.")}, status=422)
            question = Confirmation(
                title=_("Send this message to your backers?"),
                subject=campaign.title,
                consequences=[
                    ngettext(
                        "It goes to %(num)d backer now, in their conversation with you and by mail.",
                        "It goes to %(num)d backers now, in their conversation with you and by mail.",
                        reached,
                    )
                    % {"num": reached},
                    _("A message sent cannot be taken back."),
                ],
                confirm_label=_("Yes, send it"),
                back_url=f"/maker/campaigns/{slug}/messages",
                danger=False,
            )
            return ask_first(request, form, question)
        try:
            await messages.write_to_backers(
                session, slug, user, audience=checked.audience, tier_id=checked.tier_id, body=checked.body
            )
        except InvalidInput:
            return await _backers_form(request, values, {"audience": _("Choose whom to write to.")}, status=422)
    return redirect(f"/maker/campaigns/{slug}/messages?done=queued")


routes = [
    Route("/messages", inbox_page, methods=["GET"]),
    Route("/messages/{conversation_id}", conversation_page, methods=["GET"]),
    Route("/messages/{conversation_id}", reply, methods=["POST"]),
    Route("/messages/{conversation_id}/space", invite_space, methods=["POST"]),
    Route("/campaigns/{slug}/ask", question_form, methods=["GET"]),
    Route("/campaigns/{slug}/ask", ask, methods=["POST"]),
    Route("/maker/campaigns/{slug}/messages", backers_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/messages", write_to_backers, methods=["POST"]),
]
