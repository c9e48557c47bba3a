"""The operator's dashboard: the campaigns waiting for review in the spaces they operate, the review form with the
vetting checklist, and the decisions they made before. The decision is recorded by campaigns.review.review_campaign,
the function the JSON API calls. The same page suspends a campaign the space sponsors, with a reason, asked once more
with what the backers get back; payments.refunds.suspend_campaign (the API's own) does it."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import lifecycle, review, service
from campaigns.access import operated_spaces
from campaigns.campaign_schemas import CHECKLIST_ITEMS
from campaigns.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from campaigns.languages import Written
from campaigns.late_pledges import late_add_on_offers, late_offers
from campaigns.matching import MatchView, campaign_match, withdraw_match
from campaigns.models import Campaign, CampaignEvent, Pledge, Review, Space
from campaigns.pledges.checkout import start_match
from campaigns.pledges.lifecycle import CARD_SETUP_STATUSES, WAITING_PLEDGE_STATUSES
from campaigns.transparency.evidence import campaign_evidence
from payments import ledger, risk_fund
from payments.refunds import suspend_campaign
from service.endpoints.payments_actions import SuspensionIn
from service.endpoints.pledges import checkout_of
from service.i18n import current_locale, money, ngettext
from service.i18n import gettext as _
from service.pages import FieldMessages, country_name, validate_form, viewer
from service.pages.campaign_forms import batch_cost_view, read_review
from service.pages.campaigns import (
    checklist_labels,
    decision_label,
    review_view,
    space_view,
    spaces_by_id,
    status_label,
    tier_view,
    users_by_id,
)
from service.pages.catalog_views import add_on_views, product_name, products_with_options
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.pages.evidence import evidence_by_checklist_item, evidence_view
from service.pages.money_input import NumberInputError, minor_units
from service.web import client_address, current_user, read_form, redirect, render, settings_of, uow

QUEUE_LIMIT = 200
PAST_DECISIONS = 50


def _done_messages() -> dict[str, str]:
    return {
        "approve": _("Approved. The maker is told by mail and may launch the campaign."),
        "request_changes": _("Changes requested. The maker is told by mail, with your notes."),
        "reject": _("Rejected. The maker is told by mail, with your notes."),
    }


async def _submitted_at(session: AsyncSession, campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """When each campaign was last submitted, from its timeline, in one query."""
    if not campaign_ids:
        return {}
    rows = await session.execute(
        select(CampaignEvent.campaign_id, func.max(CampaignEvent.created_at))
        .where(CampaignEvent.campaign_id.in_(campaign_ids), CampaignEvent.action == "submit")
        .group_by(CampaignEvent.campaign_id)
    )
    return {campaign_id: submitted for campaign_id, submitted in rows}


async def queue(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        operated = await operated_spaces(session, user)
        details, _next = await service.list_campaigns(session, user, status="in_review", limit=QUEUE_LIMIT)
        # Theirs to review: campaigns of the spaces they operate, not their own (the table says who may approve).
        waiting = [detail for detail in details if "approve" in detail.actions]
        sponsors = await spaces_by_id(session, (detail.campaign.space_id for detail in waiting))
        makers = await users_by_id(session, (detail.campaign.maker_id for detail in waiting))
        submitted = await _submitted_at(session, [detail.campaign.id for detail in waiting])
        own_spaces = await spaces_by_id(session, operated)
        past = (
            await session.execute(
                select(Review, Campaign)
                .join(Campaign, Campaign.id == Review.campaign_id)
                .where(Review.reviewer_id == user.id)
                .order_by(Review.created_at.desc(), Review.id.desc())
                .limit(PAST_DECISIONS)
            )
        ).all()
    rows = [
        {
            "title": detail.campaign.title,
            "summary": detail.campaign.summary,
            "url": f"/operator/campaigns/{detail.campaign.slug}",
            "space_name": sponsors[detail.campaign.space_id].name,
            "maker_name": makers[detail.campaign.maker_id].name,
            "goal": detail.campaign.goal,
            "currency": detail.campaign.currency,
            "tiers": len(detail.tiers),
            "submitted_at": submitted.get(detail.campaign.id),
        }
        for detail in waiting
    ]
    decisions = [
        {
            "title": campaign.title,
            "url": f"/campaigns/{campaign.slug}",
            "decision": row.decision,
            "decision_label": decision_label(row.decision),
            "decided_at": row.created_at,
            "notes": row.notes,
            "status": campaign.status,
            "status_label": status_label(campaign.status),
        }
        for row, campaign in past
    ]
    context = {
        "queue": rows,
        "decisions": decisions,
        "operates": bool(operated),
        "own_spaces": sorted(
            ({"name": space.name, "edit_url": f"/operator/spaces/{space.id}"} for space in own_spaces.values()),
            key=lambda space: space["name"],
        ),
        "done": _done_messages().get(request.query_params.get("done") or ""),
    }
    return render(request, "operator/queue.html", context)


async def _review_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldMessages | None = None,
    action_error: str | None = None,
    match_values: dict[str, str] | None = None,
    match_errors: FieldMessages | None = None,
    match_error: str | None = None,
    status: int = 200,
) -> Response:
    slug = str(request.path_params["slug"])
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        detail = await service.campaign_detail(session, slug, user)
        if not detail.roles & lifecycle.INSIDERS:
            raise NotFound("Only the campaign's makerspace reviews it.")
        history = await review.reviews_of(session, detail.campaign.id, user)
        space = await session.get_one(Space, detail.campaign.space_id)
        people = await users_by_id(session, [detail.campaign.maker_id, *(row.reviewer_id for row in history)])
        records = await campaign_evidence(session, detail.campaign.id)
        late = await late_offers(session, detail.campaign)
        late_add_ons = await late_add_on_offers(session, detail.campaign)
        match = await campaign_match(session, detail.campaign)
    campaign = detail.campaign
    may_match = campaign.status == "live" and "operator" in detail.roles
    costs = {product.sku: product.unit_cost for product in detail.products}
    names = {product.sku: product_name(product) for product in detail.products}
    tiers = []
    for tier in detail.tiers:
        view = tier_view(tier, currency=campaign.currency, product_names=names)
        view["cost_of_goods"] = _cost_of_goods(tier.items, costs)
        tiers.append(view)
    maker = people.get(campaign.maker_id)
    context = {
        "campaign": {
            "slug": campaign.slug,
            # The operator vets what the maker wrote: the original, whatever the page's language.
            "title": Written(campaign.title, campaign.language),
            "summary": Written(campaign.summary, campaign.language),
            "status": campaign.status,
            "status_label": status_label(campaign.status),
            "story_html": Markup(campaign.description_html),  # noqa: S704 - sanitised by render_story when saved
            "currency": campaign.currency,
            "goal": campaign.goal,
            "duration_days": campaign.duration_days,
            "maker_name": maker.name if maker else "",
            "space": space_view(space),
            "products": detail.products,
            "tiers": tiers,
            "choices": products_with_options(detail),
            "add_ons": add_on_views(detail),
            "late_rewards": [
                {
                    "title": Written(offer.tier.title, offer.tier.language or campaign.language),
                    "price": offer.price,
                    "tier_price": offer.tier.price,
                    "quantity_limit": offer.quantity_limit,
                }
                for offer in late
            ],
            "late_add_ons": [
                {
                    "name": product_name(offer.product),
                    "price": offer.price,
                    "add_on_price": offer.add_on.price,
                    "quantity_limit": offer.quantity_limit,
                }
                for offer in late_add_ons
            ],
            "batch": batch_cost_view(detail.products, campaign.goal, campaign.currency),
            "shipping": {
                "by_weight": campaign.shipping_mode == "weight",
                "table": [
                    {
                        "country": "*" if row["country"] == "*" else country_name(str(row["country"])),
                        "brackets": row["brackets"],
                    }
                    for row in campaign.shipping_table
                ],
            },
        },
        "can_review": "approve" in detail.actions,
        "can_suspend": "suspend" in detail.actions,
        "suspended": request.query_params.get("done") == "suspended" and campaign.status == "suspended",
        "action_error": action_error,
        "is_maker": "maker" in detail.roles,
        "reviews": [review_view(row, people) for row in reversed(history)],
        "checklist_items": list(checklist_labels().items()),
        "evidence": evidence_view(records),
        "evidence_by_item": evidence_by_checklist_item(records),
        # Admins see the review page; evidence files are the maker's and the space's operators' alone.
        "can_download_evidence": bool(detail.roles & {"maker", "operator"}),
        "values": values or {},
        "errors": errors or {},
        "match": _match_view(match, user.id, may_match) if match is not None else None,
        "can_match": may_match and match is None,
        "match_values": match_values or {"sponsor_name": space.name},
        "match_errors": match_errors or {},
        "match_error": match_error,
        "match_done": _("The match is withdrawn.") if request.query_params.get("done") == "match-withdrawn" else None,
    }
    return render(request, "operator/review.html", context, status=status)


def _match_view(match: MatchView, user_id: uuid.UUID, may_match: bool) -> dict[str, Any]:
    waiting = match.status in CARD_SETUP_STATUSES and match.owner_id == user_id
    return {
        "sponsor_name": match.sponsor_name,
        "cap": match.cap,
        "matched": match.matched,
        "card_url": f"/me/pledges/{match.pledge_id}/card" if waiting else None,
        "withdrawable": may_match,
    }


def _cost_of_goods(items: list[dict[str, Any]], unit_costs: dict[str, int | None]) -> int | None:
    """What the products in a tier cost to make, when the maker gave the cost of each."""
    total = 0
    for item in items:
        cost = unit_costs.get(item["sku"])
        if cost is None:
            return None
        total += cost * int(item["quantity"])
    return total if items else None


async def review_form(request: Request) -> Response:
    return await _review_page(request)


def _review_errors(exc: ValidationFailed) -> FieldMessages:
    errors: FieldMessages = {}
    for problem in exc.errors:
        if problem.field.startswith("checklist."):
            errors["checklist-" + problem.field.removeprefix("checklist.")] = _("Answer yes or no before approving.")
        elif problem.field == "notes":
            errors["notes"] = _("Explain in the notes why you approve with an item answered no.")
    return errors


async def record_review(request: Request) -> Response:
    form = await read_form(request)
    values = {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "csrf_token"}
    checked = read_review(values)
    if isinstance(checked, dict):
        errors = {("checklist-" + key if key in CHECKLIST_ITEMS else key): message for key, message in checked.items()}
        return await _review_page(request, values=values, errors=errors, status=422)
    try:
        async with uow(request) as session:
            reviewer = await current_user(request, session)
            await review.review_campaign(
                session,
                str(request.path_params["slug"]),
                reviewer,
                checked,
                base_url=settings_of(request).base_url,
                client_address=client_address(request),
            )
    except ValidationFailed as exc:
        return await _review_page(request, values=values, errors=_review_errors(exc), status=422)
    return redirect(f"/operator?done={checked.decision}")


# Suspension


def _suspension_question(
    campaign: Campaign, due: dict[uuid.UUID, int], topped_up: int, waiting: int, reason: str
) -> Confirmation:
    refunded = sum(due.values())
    consequences = [
        _("The campaign stops at once: no more pledges or charges, and the milestones not yet released are cancelled."),
        ngettext(
            "%(amount)s still in escrow goes back to %(num)d backer.",
            "%(amount)s still in escrow goes back to %(num)d backers, in proportion to what each paid.",
            len(due),
        )
        % {"amount": money(refunded, campaign.currency), "num": len(due)}
        if due
        else _("Escrow holds nothing to refund: no money goes back to the backers."),
    ]
    if topped_up:
        consequences.append(
            _("The space's risk-compensation fund adds %(amount)s to these refunds, shared the same way.")
            % {"amount": money(topped_up, campaign.currency)}
        )
    if waiting:
        consequences.append(
            ngettext(
                "%(num)d pledge not charged yet is cancelled; its card is never charged.",
                "%(num)d pledges not charged yet are cancelled; their cards are never charged.",
                waiting,
            )
            % {"num": waiting}
        )
    consequences += [
        _("The maker and every backer are told by mail, with your reason: “%(reason)s”.") % {"reason": reason},
        _("A suspended campaign cannot be started again."),
    ]
    return Confirmation(
        title=_("Suspend “%(title)s”?") % {"title": campaign.title},
        subject=campaign.title,
        consequences=consequences,
        confirm_label=_("Yes, suspend the campaign"),
        back_url=f"/operator/campaigns/{campaign.slug}",
    )


async def _waiting_pledges(session: AsyncSession, campaign_id: uuid.UUID) -> int:
    """The pledges the suspension cancels before any charge."""
    count = await session.scalar(
        select(func.count())
        .select_from(Pledge)
        .where(Pledge.campaign_id == campaign_id, Pledge.status.in_(WAITING_PLEDGE_STATUSES))
    )
    return int(count or 0)


async def suspend(request: Request) -> Response:
    slug = str(request.path_params["slug"])
    form = await read_form(request)
    reason = form.get("reason")
    values = {"reason": reason.strip() if isinstance(reason, str) else ""}
    checked = validate_form(SuspensionIn, values)
    if isinstance(checked, dict):
        if "reason" in checked and not values["reason"]:
            checked = {"reason": _("Give the reason: the maker and every backer read it.")}
        return await _review_page(request, values=values, errors=checked, status=422)
    if not is_confirmed(form):
        question = None
        async with uow(request) as session:
            user = await viewer(request, session)
            if user is None:
                return redirect("/login?next=" + quote(f"/operator/campaigns/{slug}"))
            detail = await service.campaign_detail(session, slug, user)
            if "suspend" in detail.actions:
                # The same figures the suspension refunds, from the same function, escrow locked while they are read.
                topped_up = await risk_fund.fund_top_up_due(session, detail.campaign)
                due = await ledger.escrow_refunds_due(session, detail.campaign)
                waiting = await _waiting_pledges(session, detail.campaign.id)
                question = _suspension_question(detail.campaign, due, topped_up, waiting, checked.reason)
        if question is not None:
            return ask_first(request, form, question)
    try:
        async with uow(request) as session:
            user = await current_user(request, session)
            await suspend_campaign(
                session,
                slug,
                user,
                reason=checked.reason,
                client_address=client_address(request),
                language=current_locale.get(),  # typed on this page: in its language
            )
    except Conflict:
        message = _("The campaign cannot be suspended now: it has ended, or it was suspended already.")
        return await _review_page(request, values=values, action_error=message, status=409)
    return redirect(f"/operator/campaigns/{slug}?done=suspended")


# Matching


async def set_up_match(request: Request) -> Response:
    slug = str(request.path_params["slug"])
    form = await read_form(request)
    values = {name: str(form.get(name) or "").strip() for name in ("cap", "sponsor_name")}
    errors: FieldMessages = {}
    cap = 0
    async with uow(request) as session:
        user = await current_user(request, session)
        detail = await service.campaign_detail(session, slug, user)
    try:
        cap = minor_units(values["cap"], detail.campaign.currency)
    except NumberInputError as exc:
        errors["cap"] = exc.message
    if not errors and cap <= 0:
        errors["cap"] = _("Enter a cap above zero.")
    if not values["sponsor_name"]:
        errors["sponsor_name"] = _("Give the name the campaign page shows.")
    if errors:
        return await _review_page(request, match_values=values, match_errors=errors, status=422)
    try:
        pledge = await start_match(
            checkout_of(request),
            user,
            detail.campaign.id,
            cap=cap,
            sponsor_name=values["sponsor_name"],
            client_address=client_address(request),
        )
    except InvalidInput as exc:
        errors = {problem.field: _("Check this: %(reason)s") % {"reason": problem.message} for problem in exc.errors}
        return await _review_page(request, match_values=values, match_errors=errors, status=422)
    except Conflict as exc:
        return await _review_page(request, match_values=values, match_error=_match_refusals().get(exc.type), status=409)
    return redirect(f"/me/pledges/{pledge.id}/card")


def _match_refusals() -> dict[str, str]:
    return {
        "already-matched": _("This campaign has a match already."),
        "already-pledged": _("You back this campaign yourself: another operator of your space must set up the match."),
        "not-live": _("The campaign is not live: it can no longer be matched."),
        "not-sponsor": _("Your space does not sponsor this campaign."),
    }


async def withdraw(request: Request) -> Response:
    slug = str(request.path_params["slug"])
    form = await read_form(request)
    if not is_confirmed(form):
        async with uow(request) as session:
            user = await viewer(request, session)
            if user is None:
                return redirect("/login?next=" + quote(f"/operator/campaigns/{slug}"))
            detail = await service.campaign_detail(session, slug, user)
            match = await campaign_match(session, detail.campaign)
        if match is not None:
            question = Confirmation(
                title=_("Withdraw the match of “%(title)s”?") % {"title": detail.campaign.title},
                subject=detail.campaign.title,
                consequences=[
                    _("The campaign page no longer shows it, and it no longer counts toward the goal."),
                    _("Its card is never charged. You may set up another match while the campaign is live."),
                ],
                confirm_label=_("Yes, withdraw the match"),
                back_url=f"/operator/campaigns/{slug}#match",
            )
            return ask_first(request, form, question)
    try:
        async with uow(request) as session:
            user = await current_user(request, session)
            await withdraw_match(session, slug, user, client_address=client_address(request))
    except (Conflict, NotFound):
        message = _("The match cannot be withdrawn now: the campaign has ended, or it was withdrawn already.")
        return await _review_page(request, match_error=message, status=409)
    return redirect(f"/operator/campaigns/{slug}?done=match-withdrawn#match")


routes = [
    Route("/operator", queue, methods=["GET"]),
    Route("/operator/campaigns/{slug}", review_form, methods=["GET"]),
    Route("/operator/campaigns/{slug}", record_review, methods=["POST"]),
    Route("/operator/campaigns/{slug}/suspend", suspend, methods=["POST"]),
    Route("/operator/campaigns/{slug}/match", set_up_match, methods=["POST"]),
    Route("/operator/campaigns/{slug}/match/withdraw", withdraw, methods=["POST"]),
]
