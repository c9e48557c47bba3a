"""Money for the people who run a campaign: the maker's funding dashboard (pledges over time, pledges by state, the
books, the milestones and asking for one), and the operator's escrow desk (releasing requested milestones of the
spaces they operate, marking payouts paid with the bank's reference, seeing the charges settled as failed after too
long in doubt).

The books, the milestones and every action come from the functions the JSON API calls (payments.ledger.books_for,
campaign_ledger, payments.milestones.*); only the two sums a chart needs are read here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import Date, cast, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import lifecycle
from campaigns.access import operated_spaces, roles_from
from campaigns.errors import Conflict
from campaigns.lifecycle import Role
from campaigns.matching import not_a_match
from campaigns.models import Campaign, Pledge, Space, User
from campaigns.pledges.contents import campaign_units
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES, PLEDGES_IN_PLAY
from campaigns.variants import campaign_skus, chosen_values
from payments import charging, ledger, milestones
from payments.ledger import PUBLIC_LEDGER_STATUSES
from payments.milestones import MilestoneFigures
from payments.models import Milestone, Payout
from service.endpoints.money import PayoutMark
from service.i18n import gettext as _
from service.i18n import money
from service.pages import FieldMessages, fee_percent, validate_form, viewer
from service.pages.campaigns import percent_funded, spaces_by_id, status_label, users_by_id
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.pages.escrow import (
    legend_dots,
    milestone_name,
    milestones_track,
    milestones_view,
    money_bar,
    money_parts,
    unlock_condition,
)
from service.pages.svg_charts import cumulative_chart, nice_ceiling
from service.web import client_address, current_user, read_form, redirect, render, settings_of, uow

# Where the escrow desk stops listing: campaigns with something to act on, payouts already paid, campaigns followed.
DESK_CAMPAIGNS = 100
PAID_SHOWN = 20
FOLLOWED_SHOWN = 50
SETTLED_DOUBTS_SHOWN = 100
# The chart's widest span, in days: a campaign lasts at most 60, pre-orders may come for a while after.
CHART_DAYS = 366
# Pledge states as the funding page counts them: partially refunded pledges count with the refunded.
STATE_ORDER = ("active", "collected", "errored", "dropped", "refunded")


def _login_first(request: Request) -> Response:
    return redirect("/login?next=" + quote(request.url.path))


def _slug(request: Request) -> str:
    return str(request.path_params["slug"])


def _action_errors() -> dict[str, str]:
    """A refused milestone action (its Conflict type) in words for people."""
    return {
        "milestone-not-due": _("The campaign has not reached this milestone yet."),
        "milestone-not-pending": _("This milestone has already been requested or released."),
        "milestone-not-requested": _("Only a milestone the maker has asked for can be released."),
        "campaign-not-funded": _("Escrow is released only while the campaign is funded, being fulfilled or fulfilled."),
        "escrow-short": _("Escrow does not hold enough for this release. Reload the page to see the figures now."),
        "no-payout": _("This milestone has no payout to mark paid."),
        "payout-already-paid": _("This payout is already marked paid."),
    }


def _action_error(error: Conflict) -> str:
    return _action_errors().get(error.type, _("Something changed in the meantime. Reload the page and try again."))


# The maker's funding dashboard


async def pledges_by_day(session: AsyncSession, campaign_id: uuid.UUID) -> list[tuple[date, int, int]]:
    """(day, pledges made that day, their amount) for the backers' pledges that count (a card on file, not walked
    away; a sponsor's match is no backer's), day by day in UTC, in one GROUP BY."""
    day = cast(func.timezone("UTC", Pledge.created_at), Date)
    rows = await session.execute(
        select(day, func.count(), func.sum(Pledge.amount))
        .where(Pledge.campaign_id == campaign_id, Pledge.status.in_(COUNTED_PLEDGE_STATUSES), not_a_match())
        .group_by(day)
        .order_by(day)
    )
    return [(when, int(count), int(amount)) for when, count, amount in rows]


async def pledges_by_state(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, tuple[int, int]]:
    """(how many, their amount) per status of the backers' pledges (a match left out), in one GROUP BY."""
    rows = await session.execute(
        select(Pledge.status, func.count(), func.sum(Pledge.amount))
        .where(Pledge.campaign_id == campaign_id, not_a_match())
        .group_by(Pledge.status)
    )
    return {status: (int(count), int(amount)) for status, count, amount in rows}


def daily_totals(days: Sequence[tuple[date, int, int]], start: date, end: date) -> list[dict[str, Any]]:
    """Every day from `start` to `end` with its new pledges and the running total, days without pledges included;
    pledges made before `start` count on its first day."""
    by_day: dict[date, tuple[int, int]] = {}
    for when, count, amount in days:
        day = max(when, start)
        before = by_day.get(day, (0, 0))
        by_day[day] = (before[0] + count, before[1] + amount)
    rows = []
    total = 0
    current = start
    while current <= end:
        count, amount = by_day.get(current, (0, 0))
        total += amount
        rows.append({"day": current, "count": count, "amount": amount, "total": total})
        current += timedelta(days=1)
    return rows


def chart_span(campaign: Campaign, days: Sequence[tuple[date, int, int]], today: date) -> tuple[date, date] | None:
    """The days the chart covers: from launch to the deadline (today while live), stretched to the last pledge
    (pre-orders come after the deadline); None before launch and without pledges."""
    if campaign.launched_at is None and not days:
        return None
    start = campaign.launched_at.astimezone(UTC).date() if campaign.launched_at else days[0][0]
    closed = campaign.ends_at is not None and campaign.status != "live"
    end = campaign.ends_at.astimezone(UTC).date() if closed and campaign.ends_at else today
    if days:
        end = max(end, days[-1][0])
    end = max(start, min(end, start + timedelta(days=CHART_DAYS - 1)))
    return start, end


async def sku_units(session: AsyncSession, campaign_id: uuid.UUID) -> list[dict[str, Any]]:
    """What the backers who count have asked for, per SKU (variants and add-ons included), with each SKU's name."""
    units = await campaign_units(session, campaign_id, COUNTED_PLEDGE_STATUSES & PLEDGES_IN_PLAY)
    names = {
        found.sku: (
            f"{found.product.name} ({', '.join(chosen_values(found.product.options, found.choice))})"
            if found.variant
            else found.product.name
        )
        for found in await campaign_skus(session, campaign_id)
    }
    return [{"sku": sku, "name": names.get(sku, sku), "units": count} for sku, count in sorted(units.items())]


def state_view(states: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    labels = {
        "active": (_("Card saved"), _("Charged if the campaign succeeds")),
        "collected": (_("Collected"), _("Charged and in escrow")),
        "errored": (_("Charge failed"), _("The backer can give a new card during the retry window")),
        "dropped": (_("Dropped"), _("The retry window passed; the reward was freed")),
        "refunded": (_("Refunded"), _("Money given back, in full or in part")),
    }
    merged = dict(states)
    partly = merged.pop("partially_refunded", (0, 0))
    refunded = merged.get("refunded", (0, 0))
    merged["refunded"] = (refunded[0] + partly[0], refunded[1] + partly[1])
    return [
        {
            "key": key,
            "label": labels[key][0],
            "hint": labels[key][1],
            "count": merged.get(key, (0, 0))[0],
            "amount": merged.get(key, (0, 0))[1],
        }
        for key in STATE_ORDER
    ]


def books_view(summary: ledger.LedgerSummary) -> list[dict[str, Any]]:
    """The books line by line, signed the way they add up to what escrow holds."""
    lines = [
        {"label": _("Collected from backers"), "amount": summary.collected, "sign": ""},
        {"label": _("Kindling's fee"), "amount": summary.platform_fee, "sign": "−"},
        {"label": _("The sponsoring space's fee"), "amount": summary.sponsor_fee, "sign": "−"},
        {"label": _("Card processing fees"), "amount": summary.processor_fee, "sign": "−"},
        {"label": _("Refunded to backers"), "amount": summary.refunded, "sign": "−"},
        {"label": _("Released to you"), "amount": summary.released, "sign": "−"},
    ]
    if summary.disputed or summary.dispute_lost:
        lines += [
            {"label": _("Held in open disputes"), "amount": summary.disputed, "sign": "−"},
            {"label": _("Lost to disputes"), "amount": summary.dispute_lost, "sign": "−"},
        ]
    return lines


def _funding_milestones(figures: Sequence[MilestoneFigures], roles: frozenset[Role]) -> list[dict[str, Any]]:
    views = milestones_view(figures)
    for view, figure in zip(views, figures, strict=True):
        payout = figure.payout
        view["can_request"] = "maker" in roles and figure.due
        view["payout"] = (
            {
                "status": payout.status,
                "amount": payout.amount,
                "bank_reference": payout.bank_reference,
                "paid_at": payout.paid_at,
            }
            if payout
            else None
        )
    return views


async def _funding_page(
    request: Request, *, action_error: str | None = None, unverified: bool = False, status: int = 200
) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        campaign, roles = await ledger.books_for(session, _slug(request), user)
        summary = await ledger.campaign_ledger(session, campaign.id)
        figures = await milestones.milestone_figures(session, campaign, summary.escrow_held)
        days = await pledges_by_day(session, campaign.id)
        states = await pledges_by_state(session, campaign.id)
        space = await session.get_one(Space, campaign.space_id)
        units = await sku_units(session, campaign.id)
    backers = sum(count for key, (count, _amount) in states.items() if key in COUNTED_PLEDGE_STATUSES)
    span = chart_span(campaign, days, datetime.now(UTC).date())
    chart = None
    if span is not None:
        rows = daily_totals(days, *span)
        top = nice_ceiling(max(campaign.goal, rows[-1]["total"] if rows else 0))
        chart = {
            "svg": cumulative_chart(
                [row["total"] for row in rows],
                top=top,
                goal=campaign.goal,
                label=_("Pledged so far, day by day, against the goal"),
            ),
            "top": top,
            "middle": top // 2,
            "start": span[0],
            "end": span[1],
            "rows": [row for row in rows if row["count"]],
        }
    plan = [
        {
            "name": milestone_name(planned.name),
            "share": fee_percent(planned.share_bps),
            "condition": unlock_condition(planned.unlocks_on),
        }
        for planned in milestones.campaign_milestone_plan(campaign, space)
    ]
    context = {
        "campaign": {
            "slug": campaign.slug,
            "title": campaign.title,
            "status": campaign.status,
            "status_label": status_label(campaign.status),
            "goal": campaign.goal,
            "space_name": space.name,
            "public_books": campaign.status in PUBLIC_LEDGER_STATUSES,
            "fulfillment": campaign.status in ("funded", "fulfilling", "fulfilled", "suspended"),
        },
        "is_maker": "maker" in roles,
        "is_operator": "operator" in roles,
        "can_refund": bool(roles & {"operator", "admin"}),
        "currency": summary.currency,
        "summary": summary,
        "percent": percent_funded(summary.pledged, campaign.goal),
        "backers": backers,
        "chart": chart,
        "states": state_view(states),
        "units": units,
        "books": books_view(summary),
        "split": money_parts(summary),
        "bar": money_bar(summary),
        "milestones": _funding_milestones(figures, roles),
        "track": milestones_track(figures) if figures else None,
        "legend_dots": legend_dots(),
        "plan": plan,
        "done": {"requested": _("Asked. The makerspace's operators can now release it.")}.get(
            request.query_params.get("done") or ""
        ),
        "action_error": action_error,
        "unverified": unverified,
    }
    return render(request, "money/funding.html", context, status=status)


async def funding(request: Request) -> Response:
    return await _funding_page(request)


@dataclass(frozen=True)
class MilestoneAt:
    """One milestone of a campaign as its confirmation page needs it."""

    campaign: Campaign
    roles: frozenset[Role]
    figure: MilestoneFigures
    escrow_held: int
    space_name: str
    maker_name: str


async def _milestone_at(session: AsyncSession, request: Request, user: User) -> MilestoneAt | None:
    """The milestone of this address, if `user` may read the campaign's books."""
    campaign, roles = await ledger.books_for(session, _slug(request), user)
    summary = await ledger.campaign_ledger(session, campaign.id)
    figures = await milestones.milestone_figures(session, campaign, summary.escrow_held)
    wanted = str(request.path_params["milestone_id"])
    figure = next((f for f in figures if str(f.milestone.id) == wanted), None)
    if figure is None:
        return None
    space = await session.get_one(Space, campaign.space_id)
    maker = await session.get_one(User, campaign.maker_id)
    return MilestoneAt(campaign, roles, figure, summary.escrow_held, space.name, maker.name)


def _request_question(at: MilestoneAt) -> Confirmation:
    campaign, milestone = at.campaign, at.figure.milestone
    return Confirmation(
        title=_("Ask for the release of “%(name)s”?") % {"name": milestone_name(milestone.name)},
        subject=campaign.title,
        consequences=[
            _("You ask %(space)s's operators to release %(amount)s (%(share)s) from escrow to you.")
            % {
                "space": at.space_name,
                "amount": money(at.figure.amount, campaign.currency),
                "share": fee_percent(milestone.share_bps),
            },
            _("The request cannot be withdrawn. Once an operator releases it, that money leaves escrow for good."),
        ],
        confirm_label=_("Yes, ask for it"),
        back_url=f"/maker/campaigns/{campaign.slug}/funding#milestones",
        danger=False,
    )


async def request_release(request: Request) -> Response:
    form = await read_form(request)
    if not is_confirmed(form):
        async with uow(request) as session:
            maker = await viewer(request, session)
            if maker is None:
                return _login_first(request)
            at = await _milestone_at(session, request, maker)
        # An unconfirmed address is refused at once below, with the way to confirm it, rather than asked first.
        if (
            at
            and "maker" in at.roles
            and at.figure.due
            and at.figure.milestone.status == "pending"
            and maker.email_verified
        ):
            return ask_first(request, form, _request_question(at))
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await milestones.request_milestone(session, _slug(request), str(request.path_params["milestone_id"]), maker)
    except Conflict as refused:
        if refused.type == "email-unverified":
            return await _funding_page(request, unverified=True, status=409)
        return await _funding_page(request, action_error=_action_error(refused), status=409)
    return redirect(f"/maker/campaigns/{_slug(request)}/funding?done=requested#milestones")


# The operator's escrow desk


def _desk_scope(user: User, operated: frozenset[uuid.UUID]) -> Any:
    """SQL: the campaigns whose escrow `user` looks after (an admin: all of them)."""
    return true() if user.is_admin else Campaign.space_id.in_(operated)


async def _desk(
    request: Request,
    *,
    payout_values: dict[str, str] | None = None,
    payout_errors: dict[str, FieldMessages] | None = None,
    action_error: str | None = None,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        operated = await operated_spaces(session, user)
        scope = _desk_scope(user, operated)
        actionable = await session.scalars(
            select(Campaign)
            .where(
                scope,
                or_(
                    Campaign.id.in_(select(Milestone.campaign_id).where(Milestone.status == "requested")),
                    Campaign.id.in_(select(Payout.campaign_id).where(Payout.status == "pending")),
                ),
            )
            .order_by(Campaign.title, Campaign.id)
            .limit(DESK_CAMPAIGNS)
        )
        to_release: list[dict[str, Any]] = []
        to_pay: list[dict[str, Any]] = []
        campaigns = list(actionable)
        sponsors = await spaces_by_id(session, (campaign.space_id for campaign in campaigns))
        makers = await users_by_id(session, (campaign.maker_id for campaign in campaigns))
        for campaign in campaigns:
            roles = roles_from(campaign, user, operated)
            summary = await ledger.campaign_ledger(session, campaign.id)
            for figure in await milestones.milestone_figures(session, campaign, summary.escrow_held):
                row = _desk_row(campaign, figure, sponsors[campaign.space_id], makers[campaign.maker_id], roles)
                if figure.milestone.status == "requested":
                    to_release.append(row)
                if figure.payout is not None and figure.payout.status == "pending":
                    to_pay.append(row)
        paid = (
            await session.execute(
                select(Payout, Milestone, Campaign)
                .join(Milestone, Milestone.id == Payout.milestone_id)
                .join(Campaign, Campaign.id == Payout.campaign_id)
                .where(scope, Payout.status == "paid")
                .order_by(Payout.paid_at.desc(), Payout.id)
                .limit(PAID_SHOWN)
            )
        ).all()
        settled_doubts = await charging.charges_settled_after_doubt(session, scope, limit=SETTLED_DOUBTS_SHOWN)
        followed = list(
            await session.scalars(
                select(Campaign)
                .where(scope, Campaign.status.in_(PUBLIC_LEDGER_STATUSES))
                .order_by(Campaign.updated_at.desc(), Campaign.id)
                .limit(FOLLOWED_SHOWN)
            )
        )
    context = {
        "operates": bool(operated) or user.is_admin,
        "to_release": to_release,
        "to_pay": to_pay,
        "paid": [
            {
                "campaign_title": campaign.title,
                "funding_url": f"/maker/campaigns/{campaign.slug}/funding",
                "milestone": milestone_name(milestone.name),
                "amount": payout.amount,
                "currency": payout.currency,
                "bank_reference": payout.bank_reference,
                "paid_at": payout.paid_at,
            }
            for payout, milestone, campaign in paid
        ],
        "followed": [
            {
                "title": campaign.title,
                "status": campaign.status,
                "status_label": status_label(campaign.status),
                "funding_url": f"/maker/campaigns/{campaign.slug}/funding",
                "fulfillment_url": f"/operator/campaigns/{campaign.slug}/fulfillment",
                "escrow_url": f"/campaigns/{campaign.slug}/escrow",
                "fulfilling": campaign.status in ("funded", "fulfilling", "fulfilled", "suspended"),
                "suspend_url": f"/operator/campaigns/{campaign.slug}#suspend-title"
                if "suspend" in lifecycle.allowed_actions(campaign.status, roles_from(campaign, user, operated))
                else None,
            }
            for campaign in followed
        ],
        "doubt_hours": settings_of(request).charge_doubt_hours,
        "settled_doubts": [
            {
                "campaign_title": row.campaign_title,
                "funding_url": f"/maker/campaigns/{row.campaign_slug}/funding",
                "pledge_id": str(row.pledge_id),
                "attempt": row.attempt,
                "amount": row.amount,
                "currency": row.currency,
                "settled_at": row.settled_at,
            }
            for row in settled_doubts
        ],
        "payout_values": payout_values or {},
        "payout_errors": payout_errors or {},
        "done": _desk_done().get(request.query_params.get("done") or ""),
        "action_error": action_error,
    }
    return render(request, "money/releases.html", context, status=status)


def _desk_done() -> dict[str, str]:
    return {
        "released": _("Released. The amount moved from escrow to the maker; pay it and mark the payout paid below."),
        "paid": _("The payout is marked paid."),
    }


def _desk_row(
    campaign: Campaign, figure: MilestoneFigures, space: Space, maker: User, roles: frozenset[Role]
) -> dict[str, Any]:
    m = figure.milestone
    payout = figure.payout
    return {
        "id": str(m.id),
        "campaign_title": campaign.title,
        "campaign_slug": campaign.slug,
        "funding_url": f"/maker/campaigns/{campaign.slug}/funding",
        "space_name": space.name,
        "maker_name": maker.name,
        "name": milestone_name(m.name),
        "share": fee_percent(m.share_bps),
        "amount": payout.amount if payout else figure.amount,
        "currency": campaign.currency,
        "requested_at": m.requested_at,
        "released_at": m.released_at,
        "can_release": "operator" in roles,
        "is_maker": "maker" in roles,
        "can_mark_paid": bool(roles & {"operator", "admin"}),
        "release_url": f"/operator/campaigns/{campaign.slug}/milestones/{m.id}/release",
        "payout_url": f"/operator/campaigns/{campaign.slug}/milestones/{m.id}/payout",
    }


async def desk(request: Request) -> Response:
    return await _desk(request)


def _release_question(at: MilestoneAt) -> Confirmation:
    campaign, milestone = at.campaign, at.figure.milestone
    amount = at.figure.amount
    return Confirmation(
        title=_("Release “%(name)s” to the maker?") % {"name": milestone_name(milestone.name)},
        subject=campaign.title,
        consequences=[
            _("%(amount)s moves from escrow to %(maker)s. It cannot be moved back.")
            % {"amount": money(amount, campaign.currency), "maker": at.maker_name},
            _("Escrow then holds %(left)s: if the campaign is suspended later, only that goes back to the backers.")
            % {"left": money(max(0, at.escrow_held - amount), campaign.currency)},
            _("Then pay the maker from the space's bank account and mark the payout paid on the escrow desk."),
        ],
        confirm_label=_("Yes, release it"),
        back_url="/operator/milestones",
    )


async def release(request: Request) -> Response:
    form = await read_form(request)
    if not is_confirmed(form):
        async with uow(request) as session:
            operator = await current_user(request, session)
            at = await _milestone_at(session, request, operator)
        if at and "operator" in at.roles and at.figure.milestone.status == "requested":
            return ask_first(request, form, _release_question(at))
    try:
        async with uow(request) as session:
            operator = await current_user(request, session)
            await milestones.release_milestone(
                session,
                _slug(request),
                str(request.path_params["milestone_id"]),
                operator,
                client_address=client_address(request),
            )
    except Conflict as refused:
        return await _desk(request, action_error=_action_error(refused), status=409)
    return redirect("/operator/milestones?done=released#payouts")


def _mark_paid_question(at: MilestoneAt, payout: Payout, reference: str) -> Confirmation:
    campaign = at.campaign
    return Confirmation(
        title=_("Mark this payout paid?"),
        subject=campaign.title,
        consequences=[
            _(
                "The payout of %(amount)s to %(maker)s for “%(name)s” is recorded as paid, with the bank reference "
                "%(ref)s."
            )
            % {
                "amount": money(payout.amount, payout.currency),
                "maker": at.maker_name,
                "name": milestone_name(at.figure.milestone.name),
                "ref": reference,
            },
            _("The maker and the books show it as paid from now on; it cannot be marked unpaid again."),
        ],
        confirm_label=_("Yes, mark it paid"),
        back_url="/operator/milestones#payouts",
    )


async def mark_paid(request: Request) -> Response:
    form = await read_form(request)
    milestone_id = str(request.path_params["milestone_id"])
    reference = form.get("bank_reference")
    values = {"bank_reference": reference if isinstance(reference, str) else ""}
    checked = validate_form(PayoutMark, values)
    if isinstance(checked, dict):
        return await _desk(
            request,
            payout_values={milestone_id: values["bank_reference"]},
            payout_errors={milestone_id: checked},
            status=422,
        )
    if not is_confirmed(form):
        async with uow(request) as session:
            user = await current_user(request, session)
            at = await _milestone_at(session, request, user)
        payout = at.figure.payout if at else None
        if at and payout and payout.status != "paid" and at.roles & {"operator", "admin"}:
            return ask_first(request, form, _mark_paid_question(at, payout, checked.bank_reference))
    try:
        async with uow(request) as session:
            user = await current_user(request, session)
            await milestones.mark_payout_paid(
                session,
                _slug(request),
                milestone_id,
                user,
                checked.bank_reference,
                client_address=client_address(request),
            )
    except Conflict as refused:
        return await _desk(request, action_error=_action_error(refused), status=409)
    return redirect("/operator/milestones?done=paid#paid")


routes = [
    Route("/maker/campaigns/{slug}/funding", funding, methods=["GET"]),
    Route("/maker/campaigns/{slug}/milestones/{milestone_id}/request", request_release, methods=["POST"]),
    Route("/operator/milestones", desk, methods=["GET"]),
    Route("/operator/campaigns/{slug}/milestones/{milestone_id}/release", release, methods=["POST"]),
    Route("/operator/campaigns/{slug}/milestones/{milestone_id}/payout", mark_paid, methods=["POST"]),
]
