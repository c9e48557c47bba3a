"""The audit log as a page: admins read all of it, a space's operators their spaces' rows."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import audit
from campaigns.ids import parse_id
from service.i18n import gettext as _
from service.pages import viewer
from service.web import redirect, render, uow

ROWS_PER_PAGE = 50


def action_labels() -> dict[str, str]:
    return {
        "campaign.approve": _("Approved a campaign"),
        "campaign.request_changes": _("Asked for changes to a campaign"),
        "campaign.reject": _("Rejected a campaign"),
        "campaign.suspend": _("Suspended a campaign"),
        "campaign.export_backers": _("Downloaded a campaign's backers"),
        "campaign.export_addresses": _("Downloaded a campaign's backer addresses"),
        "campaign.export_transactions": _("Downloaded a campaign's ledger transactions"),
        "campaign.match": _("Matched a campaign's backers"),
        "campaign.match_withdraw": _("Withdrew a campaign's match"),
        "comment.hide": _("Hid a comment"),
        "late_add_on.end": _("Ended a late add-on"),
        "late_reward.end": _("Ended a late reward"),
        "mail.suppress": _("Stopped mail to a bounced or complaining address"),
        "milestone.release": _("Released a milestone from escrow"),
        "payout.mark_paid": _("Marked a payout paid"),
        "pledge.refund": _("Refunded a pledge"),
        "space.create": _("Created a space"),
        "space.update": _("Edited a space"),
        "space.operator_add": _("Added an operator"),
        "space.operator_remove": _("Removed an operator"),
        "space.milestone_plan_change": _("Changed a milestone plan"),
        "user.promote": _("Made a user an admin"),
    }


async def audit_log(request: Request) -> Response:
    params = request.query_params
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        rows, next_cursor = await audit.audit_entries(
            session,
            user,
            space_id=parse_id(params.get("space_id", "")),
            actor_id=parse_id(params.get("actor_id", "")),
            action=params.get("action") or None,
            object_id=params.get("object") or None,
            limit=ROWS_PER_PAGE,
            cursor=params.get("cursor"),
        )
        names, space_names = await audit.names_for(session, rows)
    labels = action_labels()
    command_line = _("Kindling's command line")
    kept = {key: value for key, value in params.items() if key != "cursor" and value}
    return render(
        request,
        "audit/log.html",
        {
            "rows": [
                {
                    "when": row.created_at,
                    "who": names.get(row.actor_id, "") if row.actor_id else command_line,
                    "action": labels.get(row.action, row.action),
                    "object": f"{row.object_type} {row.object_id}",
                    "space": space_names.get(row.space_id, "") if row.space_id else "",
                    "address": row.client_address or "",
                }
                for row in rows
            ],
            "actions": sorted(labels.items(), key=lambda item: item[1]),
            "filters": kept,
            "next_url": f"/audit?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None,
        },
    )


routes = [Route("/audit", audit_log, methods=["GET"])]
