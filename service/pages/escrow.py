"""The public escrow statement of a campaign that succeeded: what was collected, what the fees took, what was released
to the maker, what escrow still holds and what went back to backers, and the milestones, as figures and charts. Before
that (a live campaign) or without it (an unsuccessful one), the page says what it will show, or why there is nothing.

It reads the books with the functions the JSON API's public ledger answers with (payments.ledger.public_books_for,
campaign_ledger, payments.milestones.milestone_figures) and, like it, shows no backer data: sums only.
The helpers that put the books into words and charts are shared with the maker's funding page and the operator's
escrow releases (service/pages/funding.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from babel.numbers import format_percent
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from campaigns import service as campaign_service
from campaigns.models import Campaign, Space
from campaigns.service import CampaignDetail
from payments import ledger, milestones
from payments.ledger import LedgerSummary
from payments.milestones import MilestoneFigures
from service.i18n import babel_locale
from service.i18n import gettext as _
from service.pages import fee_percent, viewer
from service.pages.campaigns import space_view, status_label
from service.pages.svg_charts import COLORS, BarPart, TrackStep, milestone_track, stacked_bar, status_dot, swatch
from service.web import render, settings_of, uow


def milestone_name(name: str) -> str:
    """The default plan's names (payments.milestones.DEFAULT_MILESTONE_PLAN) in the reader's language; a space's own
    names as the space wrote them."""
    names = {
        "Funding": _("Funding"),
        "First batch confirmed": _("First batch confirmed"),
        "Shipping done": _("Shipping done"),
    }
    return names.get(name, name)


def milestone_status_label(status: str, *, due: bool = False) -> str:
    """A milestone's state in words; one the campaign has reached but nobody asked for yet never reads "not yet
    reached"."""
    if status == "pending" and due:
        return _("Reached, not yet requested")
    labels = {
        "pending": _("Not yet reached"),
        "requested": _("Release requested"),
        "released": _("Released"),
        "cancelled": _("Cancelled"),
    }
    return labels.get(status, status)


def milestone_badge(status: str, *, due: bool = False) -> str:
    """The badge class of a milestone's status (site.css's generic badges)."""
    if status == "pending" and due:
        return "info"
    return {"pending": "draft", "requested": "pending", "released": "success", "cancelled": "danger"}.get(
        status, "info"
    )


def unlock_condition(unlocks_on: str) -> str:
    conditions = {
        "funded": _("when the campaign is funded"),
        "first_batch_confirmed": _("when the first manufacturing batch is confirmed"),
        "shipping_done": _("when every reward has shipped"),
    }
    return conditions.get(unlocks_on, unlocks_on)


def share_percent(part: int, whole: int) -> str:
    """`part` as a percentage of `whole` for people (0 % of nothing)."""
    ratio = Decimal(part) / whole if whole else Decimal(0)
    return format_percent(ratio, format="#,##0.#%", locale=babel_locale())


def money_parts(summary: LedgerSummary) -> list[dict[str, Any]]:
    """Where the collected money is: fees, released to the maker, held in escrow, refunded, and (once a backer's bank
    has disputed a charge) held in open disputes and lost to disputes; they add up to collected."""
    parts = [
        ("fees", _("Fees"), summary.fees),
        ("released", _("Released to the maker"), summary.released),
        ("held", _("Held in escrow"), summary.escrow_held),
        ("refunded", _("Refunded to backers"), summary.refunded),
    ]
    if summary.disputed or summary.dispute_lost:
        parts += [
            ("disputed", _("Held in open disputes"), summary.disputed),
            ("dispute_lost", _("Lost to disputes"), summary.dispute_lost),
        ]
    return [
        {
            "key": key,
            "label": label,
            "amount": amount,
            "percent": share_percent(amount, summary.collected),
            "swatch": swatch(COLORS[key]),
        }
        for key, label, amount in parts
    ]


def money_bar(summary: LedgerSummary) -> Markup:
    parts = [BarPart(max(part["amount"], 0), COLORS[part["key"]]) for part in money_parts(summary)]
    return stacked_bar(parts, label=_("Where the collected money is: fees, released, held in escrow, refunded"))


def milestones_view(figures: Sequence[MilestoneFigures]) -> list[dict[str, Any]]:
    return [
        {
            "id": str(f.milestone.id),
            "position": f.milestone.position + 1,
            "name": milestone_name(f.milestone.name),
            "share": fee_percent(f.milestone.share_bps),
            "status": f.milestone.status,
            "status_label": milestone_status_label(f.milestone.status, due=f.due),
            "badge": milestone_badge(f.milestone.status, due=f.due),
            "dot": status_dot(f.milestone.status),
            "amount": f.amount,
            "condition": unlock_condition(f.milestone.unlocks_on),
            "due": f.due,
            "requested_at": f.milestone.requested_at,
            "released_at": f.milestone.released_at,
        }
        for f in figures
    ]


def milestones_track(figures: Sequence[MilestoneFigures]) -> Markup:
    steps = [TrackStep(f.milestone.share_bps, f.milestone.status) for f in figures]
    return milestone_track(steps, label=_("The milestones in order, each as long as its share of the escrow"))


def legend_dots() -> list[dict[str, Any]]:
    return [
        {"dot": status_dot("released"), "label": milestone_status_label("released")},
        {"dot": status_dot("requested"), "label": milestone_status_label("requested")},
        # The key's grey dot stands for reached and unreached milestones alike: neither is asked for yet.
        {"dot": status_dot("pending"), "label": _("Not yet requested")},
    ]


def campaign_note(campaign: Campaign, space: Space) -> str | None:
    """What a reader should know about the figures in the campaign's present state."""
    if campaign.status == "successful":
        return _(
            "The goal was reached and backers' cards are being charged: the figures grow until every pledge is settled."
        )
    if campaign.status == "suspended":
        return _(
            "%(space)s suspended this campaign. What escrow still held was refunded to the backers, in proportion to "
            "what each of them paid."
        ) % {"space": space.name}
    return None


async def escrow_page(request: Request) -> Response:
    ref = str(request.path_params["slug"])
    async with uow(request) as session:
        await viewer(request, session)
        try:
            campaign = await ledger.public_books_for(session, ref)
        except ledger.LedgerNotPublic:
            # Live or unsuccessful: no books yet (or ever), but a reader may still ask what the page will show.
            detail = await campaign_service.campaign_detail(session, ref, None)
            if ref != detail.campaign.slug:
                return RedirectResponse(f"/campaigns/{detail.campaign.slug}/escrow", status_code=301)
            space = await session.get_one(Space, detail.campaign.space_id)
            return _before_the_books(request, detail, space)
        if ref != campaign.slug:
            return RedirectResponse(f"/campaigns/{campaign.slug}/escrow", status_code=301)
        summary = await ledger.campaign_ledger(session, campaign.id)
        figures = await milestones.milestone_figures(session, campaign, summary.escrow_held)
        space = await session.get_one(Space, campaign.space_id)
    context = {
        "campaign": {
            "slug": campaign.slug,
            "title": campaign.title,
            "status": campaign.status,
            "status_label": status_label(campaign.status),
            "space": space_view(space, campaign),
        },
        "currency": summary.currency,
        "summary": summary,
        "split": money_parts(summary),
        "bar": money_bar(summary),
        "milestones": milestones_view(figures),
        "track": milestones_track(figures) if figures else None,
        "legend_dots": legend_dots(),
        "platform_fee": fee_percent(settings_of(request).platform_fee_bps),
        "note": campaign_note(campaign, space),
    }
    return render(request, "money/escrow.html", context)


def _before_the_books(request: Request, detail: CampaignDetail, space: Space) -> Response:
    """The escrow page of a campaign whose books are not open: what it will show after a successful deadline."""
    campaign = detail.campaign
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
            "space": space_view(space, campaign),
            "goal": campaign.goal,
            "currency": campaign.currency,
            "ends_at": campaign.ends_at,
            "pledged": detail.pledged,
            "backers": detail.backers,
        },
        "plan": plan,
        "platform_fee": fee_percent(settings_of(request).platform_fee_bps),
    }
    return render(request, "money/escrow_before.html", context)


routes = [Route("/campaigns/{slug}/escrow", escrow_page, methods=["GET"])]
