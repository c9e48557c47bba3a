"""A confirmed batch's packages one by one, each with a form for its carrier and tracking number: the maker types what
the CSV upload would say for one line, and fulfillment.shipments.record_shipment applies it as the upload does (the
backer is told once; a new number is a correction)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import Conflict, ValidationFailed
from fulfillment import shipments
from fulfillment.service import batch_of, fulfillment_campaign
from fulfillment.shipments import SHIPPING_STATUSES, Package
from service.i18n import gettext as _
from service.pages import country_name, viewer
from service.pages.fulfillment import line_problem
from service.web import current_user, read_form, redirect, render, uow

PACKAGES_SHOWN = 100
FIELDS = ("carrier", "tracking_number")


def _list_url(slug: str, batch_id: object, *, after: str | None = None, **query: str) -> str:
    params = ({"after": after} if after else {}) | query
    return f"/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/packages" + (
        "?" + urlencode(params) if params else ""
    )


def _after(request: Request) -> int | None:
    typed = request.query_params.get("after") or ""
    return int(typed) if typed.isascii() and typed.isdigit() and len(typed) <= 18 else None


def _package_view(
    package: Package, slug: str, batch_id: uuid.UUID, after: int | None, typed: dict[str, str] | None
) -> dict[str, Any]:
    query = f"?after={after}" if after is not None else ""
    base = f"/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/packages/{package.pledge_id}"
    return {
        "id": str(package.pledge_id),
        "number": package.number,
        "recipient": package.recipient,
        "place": ", ".join(part for part in (package.city, country_name(package.country)) if part),
        "shipped_at": package.shipped_at,
        "typed": typed or {"carrier": package.carrier or "", "tracking_number": package.tracking_number or ""},
        "action": f"{base}/tracking{query}",
    }


async def _packages_page(
    request: Request,
    *,
    failed_id: str | None = None,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    action_error: str | None = None,
    status: int = 200,
) -> Response:
    slug = str(request.path_params["slug"])
    after = _after(request)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        campaign, roles = await fulfillment_campaign(session, slug, user)
        batch, packages, next_after = await shipments.batch_packages(
            session, slug, str(request.path_params["batch_id"]), user, after=after, limit=PACKAGES_SHOWN
        )
    manage = "maker" in roles and campaign.status in SHIPPING_STATUSES and batch.status != "planned"
    done = request.query_params.get("done")
    context = {
        "campaign": {"slug": campaign.slug, "title": campaign.title},
        "batch": {"number": batch.number, "status": batch.status},
        "manage": manage,
        "packages": [
            _package_view(p, slug, batch.id, after, typed if str(p.pledge_id) == failed_id else None) for p in packages
        ],
        "failed_id": failed_id,
        "errors": errors or {},
        "action_error": action_error,
        "done": _("The tracking number is saved, and the backer is told by mail.") if done == "shipped" else None,
        "more_url": _list_url(slug, batch.id, after=str(next_after)) if next_after is not None else None,
        "first_url": _list_url(slug, batch.id) if after is not None else None,
        "fulfillment_url": f"/maker/campaigns/{slug}/fulfillment#batches",
    }
    return render(request, "fulfillment/packages.html", context, status=status)


async def packages(request: Request) -> Response:
    return await _packages_page(request)


def _field_messages(failed: ValidationFailed) -> dict[str, str]:
    """The use case's problems under the form's field names (`pledge_id`: a problem with the package itself)."""
    return {problem.field: line_problem(problem.message) for problem in failed.errors}


async def save_tracking(request: Request) -> Response:
    form = await read_form(request)
    typed = {name: str(form.get(name) or "").strip() for name in FIELDS}
    slug, pledge_id = str(request.path_params["slug"]), str(request.path_params["pledge_id"])
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            campaign, _roles = await fulfillment_campaign(session, slug, maker)
            await batch_of(session, campaign, str(request.path_params["batch_id"]))
            await shipments.record_shipment(
                session, slug, maker, pledge_id, carrier=typed["carrier"], tracking_number=typed["tracking_number"]
            )
    except ValidationFailed as failed:
        errors = _field_messages(failed)
        return await _packages_page(
            request,
            failed_id=pledge_id,
            typed=typed,
            errors=errors,
            action_error=errors.pop("pledge_id", None),
            status=422,
        )
    except Conflict:
        message = _("Tracking numbers are taken once a batch is confirmed with the factory.")
        return await _packages_page(request, action_error=message, status=409)
    after = request.query_params.get("after")
    target = _list_url(slug, request.path_params["batch_id"], after=after if after and after.isdigit() else None)
    joiner = "&" if "?" in target else "?"
    return redirect(f"{target}{joiner}done=shipped#package-{pledge_id}")


routes = [
    Route("/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/packages", packages, methods=["GET"]),
    Route(
        "/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/packages/{pledge_id}/tracking",
        save_tracking,
        methods=["POST"],
    ),
]
