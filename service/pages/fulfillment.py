"""The maker's fulfillment dashboard: what the factory makes (SKU totals with spares), the batches with their status and
counts, each batch's shipping list, the pledges held back for want of an address, the tracking upload with every bad
line shown, and the settings (address lock, packaging weight). The space's operators and admins see it read-only.

Everything is read and done by the functions the JSON API calls (fulfillment.service, fulfillment.shipments); the
shipping lists are the API's own CSV downloads, which take the session cookie.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote, urlencode

from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import Conflict, InvalidInput, ValidationFailed
from campaigns.lifecycle import NotFunded
from campaigns.models import Campaign, Product, Space, Tier
from campaigns.pledges.viewers import PledgeViewer, sees_address
from fulfillment import batch_dates, service, shipments
from fulfillment.schemas import MAX_PACKAGING_GRAMS, BatchDatesIn, FulfillmentSettingsIn
from fulfillment.service import PLANNING_STATUSES, BatchSummary
from fulfillment.shipments import SHIPPING_STATUSES, HeldBack
from service.i18n import (
    DEFAULT_TIME_ZONE,
    current_time_zone,
    ngettext,
    number,
    reader_zone,
    time_zone_label,
    zone_abbreviation,
)
from service.i18n import gettext as _
from service.pages import FieldMessages, country_name, validate_form, viewer
from service.pages.campaigns import status_label
from service.pages.catalog_views import product_name, tier_title
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import UploadTimedOut, current_user, read_form, redirect, render, settings_of, uow

UNADDRESSED_SHOWN = 50
# A file with thousands of bad lines shows the first of them and how many more there are.
LINE_ERRORS_SHOWN = 200
LOCK_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


def _login_first(request: Request) -> Response:
    return redirect("/login?next=" + quote(request.url.path))


def _slug(request: Request) -> str:
    return str(request.path_params["slug"])


def _page_url(slug: str, **query: str | int) -> str:
    anchor = str(query.pop("anchor", ""))
    return (
        f"/maker/campaigns/{slug}/fulfillment"
        + (f"?{urlencode(query)}" if query else "")
        + (f"#{anchor}" if anchor else "")
    )


def batch_status_label(status: str) -> str:
    labels = {
        "planned": _("Planned"),
        "confirmed": _("Confirmed with the factory"),
        "in_production": _("In production"),
        "shipped": _("Shipped"),
    }
    return labels.get(status, status)


def _batch_badge(status: str) -> str:
    return {"planned": "draft", "confirmed": "info", "in_production": "pending", "shipped": "success"}.get(
        status, "info"
    )


def _action_error(error: Conflict) -> str:
    messages = {
        "batch-out-of-order": _("Confirm the earlier batch first: batches are made in order, earliest backers first."),
        "plan-changed": _(
            "Pledges changed since you opened this page, and the batches with them. Check them and confirm again."
        ),
        "batch-not-planned": _("This batch is already confirmed."),
        "add-on-being-charged": _(
            "A backer of this batch is paying for an add-on right now. Confirm again in a minute, once it is settled."
        ),
        "batch-not-confirmed": _("Only a batch confirmed with the factory goes into production."),
        "not-funded": _("Batches are confirmed while the campaign is funded or being fulfilled."),
        "not-fulfilling": _("Confirm a batch with the factory before you upload tracking numbers."),
        "fulfillment-closed": _("The campaign's fulfillment settings can no longer change."),
        "batch-shipped": _("This batch has shipped: its dates are history."),
        "pledge-larger-than-batch": _(
            "A pledge needs more of a product than one batch makes. Ask the factory for larger batches of it."
        ),
    }
    return messages.get(error.type, _("Something changed in the meantime. Reload the page and try again."))


def N_(message: str) -> str:  # noqa: N802 - the name pybabel looks for
    """Marks a message for the catalogue; it is translated where it is used."""
    return message


# A bad line of the tracking file, in the reader's language: fulfillment.shipping_csv and fulfillment.shipments word
# them in English for the API; the page knows their shapes and says the same in words of its own.
_LINE_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (r"^no pledge has the id (?P<id>\S+)$", N_("No pledge has the id %(id)s.")),
        (r"^pledge (?P<id>\S+) belongs to another campaign$", N_("Pledge %(id)s belongs to another campaign.")),
        (
            r"^pledge (?P<id>\S+) is \w+: it ships nothing$",
            N_("Pledge %(id)s ships nothing: it is not paid for, or it was refunded."),
        ),
        (
            r"^pledge (?P<id>\S+) is on no shipping list",
            N_("Pledge %(id)s is on no shipping list: it has no address yet, or no reward."),
        ),
        (
            r"^pledge (?P<id>\S+) is on the list of batch (?P<batch>\d+), which is not confirmed yet$",
            N_("Pledge %(id)s is on the list of batch %(batch)s, which is not confirmed yet."),
        ),
        (r"^pledge_id (?P<value>.+) is not a pledge id$", N_("%(value)s is not a pledge id.")),
        (r"^pledge_id is empty$", N_("The pledge_id is empty.")),
        (
            r"^pledge (?P<id>\S+) is already on line (?P<line>\d+): one package per pledge$",
            N_("Pledge %(id)s is already on line %(line)s: one package per pledge."),
        ),
        (r"^(?P<column>carrier|tracking_number) is empty$", N_("The %(column)s is empty.")),
        (
            r"^(?P<column>carrier|tracking_number) is longer than (?P<num>\d+) characters$",
            N_("The %(column)s is longer than %(num)s characters."),
        ),
        (
            r"^(?P<column>carrier|tracking_number) contains a line break or another control character$",
            N_("The %(column)s contains a line break or another control character."),
        ),
        (
            r"^expected (?P<expected>\d+) cells \((?P<columns>.*)\), found (?P<found>\d+)$",
            N_("Expected %(expected)s cells (%(columns)s), found %(found)s."),
        ),
        (r"^missing column (?P<column>.+)$", N_("The column %(column)s is missing.")),
        (r"^unknown column (?P<column>.+)$", N_("Unknown column %(column)s.")),
        (r"^column (?P<column>.+) appears twice$", N_("The column %(column)s appears twice.")),
        (r"^not readable as CSV: (?P<reason>.*)$", N_("This line is not readable as CSV (%(reason)s).")),
        (r"^the header row is missing", N_("The header row is missing: pledge_id, carrier, tracking_number.")),
        (r"^there are no shipments after the header row$", N_("There are no shipments after the header row.")),
    )
)


def line_problem(message: str) -> str:
    """What is wrong with a line of the tracking file, in the reader's language (as the API says it if unknown)."""
    for pattern, wording in _LINE_PROBLEMS:
        found = pattern.match(message)
        if found:
            return _(wording) % found.groupdict()
    return message


def line_errors(failed: ValidationFailed) -> list[dict[str, Any]]:
    """Each bad line of an upload: its number and what is wrong, in line order."""
    rows = []
    for problem in failed.errors:
        line = problem.field.removeprefix("line ").strip()
        rows.append({"line": int(line) if line.isdigit() else None, "message": line_problem(problem.message)})
    return sorted(rows, key=lambda row: row["line"] or 0)


def sku_totals(summaries: Sequence[BatchSummary], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Units per SKU over every batch: for the backers, spares, and what the factory makes in all."""
    units: dict[str, int] = {}
    spares: dict[str, int] = {}
    for summary in summaries:
        for sku, count in summary.batch.units.items():
            units[sku] = units.get(sku, 0) + int(count)
        for sku, count in summary.batch.spares.items():
            spares[sku] = spares.get(sku, 0) + int(count)
    return [
        {
            "sku": sku,
            "name": names.get(sku, sku),
            "units": units.get(sku, 0),
            "spares": spares.get(sku, 0),
            "total": units.get(sku, 0) + spares.get(sku, 0),
        }
        for sku in sorted(set(units) | set(spares))
        if units.get(sku, 0) + spares.get(sku, 0)
    ]


def _batch_view(summary: BatchSummary, campaign: Campaign, *, manage: bool, addresses: bool) -> dict[str, Any]:
    batch = summary.batch
    made = {sku: int(count) + int(batch.spares.get(sku, 0)) for sku, count in batch.units.items()}
    return {
        "id": str(batch.id),
        "number": batch.number,
        "status": batch.status,
        "status_label": batch_status_label(batch.status),
        "badge": _batch_badge(batch.status),
        "made": [{"sku": sku, "quantity": count} for sku, count in sorted(made.items()) if count],
        "pledges": summary.pledges,
        "packages": summary.packages,
        "shipped": summary.shipped,
        "confirmed_at": batch.confirmed_at,
        "production_started_at": batch.production_started_at,
        "shipped_at": batch.shipped_at,
        "can_confirm": manage and batch.status == "planned" and campaign.status in PLANNING_STATUSES,
        "can_start": manage and batch.status == "confirmed",
        # The list holds addresses: only for those who ship (an admin sees the batches, not where they go).
        "csv_url": f"/api/v1/campaigns/{campaign.id}/batches/{batch.id}/shipping-list.csv" if addresses else None,
        "packages_url": f"/maker/campaigns/{campaign.slug}/fulfillment/batches/{batch.id}/packages"
        if addresses and batch.status != "planned"
        else None,
        "confirm_url": f"/maker/campaigns/{campaign.slug}/fulfillment/batches/{batch.id}/confirm",
        "start_url": f"/maker/campaigns/{campaign.slug}/fulfillment/batches/{batch.id}/start-production",
    }


def _held_view(held: Sequence[HeldBack], tier_titles: Mapping[Any, str]) -> list[dict[str, Any]]:
    return [
        {
            "backer_name": row.backer_name,
            "tier": tier_titles.get(row.tier_id, "") if row.tier_id else "",
            "country": country_name(row.shipping_country) if row.shipping_country else "",
            "batch_number": row.batch_number,
            "surveyed_at": row.surveyed_at,
            "reminded_at": row.reminded_at,
        }
        for row in held
    ]


def _lock_zone() -> str:
    """The zone the lock is typed in, as its label names it: "UTC", or "China (Shanghai) Time · UTC+8"."""
    zone = current_time_zone.get()
    return "UTC" if zone == DEFAULT_TIME_ZONE else time_zone_label(zone)


def settings_values(campaign: Campaign) -> dict[str, str]:
    """The settings as the form shows them: the lock on the reader's clock (the account's time zone)."""
    lock = campaign.address_lock_at
    return {
        "address_lock_at": lock.astimezone(reader_zone()).strftime(LOCK_INPUT_FORMAT) if lock else "",
        "packaging_weight_grams": str(campaign.packaging_weight_grams),
    }


def _done_message(request: Request) -> str | None:
    params = request.query_params
    done = params.get("done")
    if done == "shipped":
        counts = {key: params.get(key, "0") for key in ("shipped", "corrected", "unchanged")}
        if not all(value.isdigit() for value in counts.values()):
            return _("The tracking numbers are saved.")
        return (
            _(
                "The tracking numbers are saved: %(shipped)s packages marked shipped, %(corrected)s corrected, "
                "%(unchanged)s already known. Each backer whose package shipped is told by mail."
            )
            % counts
        )
    return {
        "confirmed": _("The batch is confirmed with the factory. It will not change again."),
        "started": _("The batch is marked as in production."),
        "settings": _("The fulfillment settings are saved."),
        "dates": _("The batch's dates are saved, with your reason, in its history."),
        "dates_mailed": _(
            "The batch's dates are saved. Its ship date slipped more than two weeks, so each of its waiting backers "
            "is told by mail, with your reason."
        ),
    }.get(done or "")


async def _fulfillment_page(
    request: Request,
    *,
    upload_errors: list[dict[str, Any]] | None = None,
    upload_error: str | None = None,
    values: dict[str, str] | None = None,
    errors: FieldMessages | None = None,
    dates_values: dict[str, str] | None = None,
    dates_errors: FieldMessages | None = None,
    action_error: str | None = None,
    status: int = 200,
) -> Response:
    slug = _slug(request)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return _login_first(request)
        campaign, roles = await service.fulfillment_campaign(session, slug, user)
        try:
            summaries: list[BatchSummary] | None = await service.batches_of(session, slug, user)
        except NotFunded:
            summaries = None
        held, next_cursor = await shipments.unaddressed_pledges(
            session, slug, user, limit=UNADDRESSED_SHOWN, cursor=request.query_params.get("cursor") or None
        )
        anything_paid = await shipments.has_paid_pledges(session, campaign.id)
        products = await session.scalars(select(Product).where(Product.campaign_id == campaign.id))
        # Names in the reader's language where the maker gave one: the space's operators may read the other.
        names = {product.sku: str(product_name(product)) for product in products}
        tiers = await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id))
        tier_titles = {tier.id: str(tier_title(tier)) for tier in tiers}
        space = await session.get_one(Space, campaign.space_id)
        schedules = await batch_dates.schedules_of(session, campaign.id)
        history = await batch_dates.date_history(session, campaign.id)
    manage = "maker" in roles
    addresses = sees_address(PledgeViewer(backer=False, roles=roles, campaign_status=campaign.status))
    batches = [_batch_view(summary, campaign, manage=manage, addresses=addresses) for summary in summaries or []]
    for batch in batches:
        schedule = schedules.get(batch["number"])
        batch["production_on"] = schedule.production_on if schedule else None
        batch["ship_on"] = schedule.ship_on if schedule else None
        batch["date_history"] = history.get(batch["number"], [])
    datable = [batch for batch in batches if batch["status"] != "shipped"]
    context = {
        "campaign": {
            "id": str(campaign.id),
            "slug": campaign.slug,
            "title": campaign.title,
            "status": campaign.status,
            "status_label": status_label(campaign.status),
            "space_name": space.name,
            "address_lock_at": campaign.address_lock_at,
            "packaging_weight_grams": campaign.packaging_weight_grams,
        },
        "manage": manage,
        "planned": summaries is not None,
        "batches": batches,
        "skus": sku_totals(summaries or [], names),
        "packages": sum(batch["packages"] for batch in batches),
        "shipped": sum(batch["shipped"] for batch in batches),
        "anything_paid": anything_paid,
        "held": _held_view(held, tier_titles),
        "held_more_url": _page_url(campaign.slug, cursor=next_cursor, anchor="unaddressed") if next_cursor else None,
        "held_first_url": _page_url(campaign.slug, anchor="unaddressed")
        if request.query_params.get("cursor")
        else None,
        "takes_tracking": manage and campaign.status in SHIPPING_STATUSES,
        "upload_errors": (upload_errors or [])[:LINE_ERRORS_SHOWN],
        "upload_errors_more": max(0, len(upload_errors or []) - LINE_ERRORS_SHOWN),
        "upload_error": upload_error,
        "values": values or settings_values(campaign),
        "errors": errors or {},
        "max_packaging_grams": MAX_PACKAGING_GRAMS,
        "dates_shown": manage and bool(datable) and campaign.status in PLANNING_STATUSES,
        "dates_batches": [(batch["id"], _("Batch %(num)d") % {"num": batch["number"]}) for batch in datable],
        "dates_values": dates_values or {},
        "dates_errors": dates_errors or {},
        "lock_zone": _lock_zone(),
        "done": _done_message(request),
        "action_error": action_error,
    }
    return render(request, "fulfillment/dashboard.html", context, status=status)


async def dashboard(request: Request) -> Response:
    return await _fulfillment_page(request)


def _confirm_batch_question(campaign: Campaign, summary: BatchSummary) -> Confirmation:
    made = _batch_view(summary, campaign, manage=True, addresses=False)["made"]
    items = ", ".join(f"{item['sku']} × {number(item['quantity'])}" for item in made) or _("nothing to make")
    consequences = [
        _("Batch %(num)d is fixed as it stands: %(pledges)s pledges, making %(items)s.")
        % {"num": summary.batch.number, "pledges": number(summary.pledges), "items": items},
        _("It will not change again: confirm it only once you have ordered exactly this from the factory."),
    ]
    if campaign.status == "funded":
        consequences.append(
            _(
                "It is the campaign's first confirmed batch: the campaign moves on to making rewards, and the escrow "
                "milestone that waits for the first batch can be asked for."
            )
        )
    return Confirmation(
        title=_("Confirm batch %(num)d with the factory?") % {"num": summary.batch.number},
        subject=campaign.title,
        consequences=consequences,
        confirm_label=_("Yes, confirm the batch"),
        back_url=_page_url(campaign.slug, anchor="batches"),
        danger=False,
    )


async def confirm_batch(request: Request) -> Response:
    form = await read_form(request)
    if not is_confirmed(form):
        batch_id = str(request.path_params["batch_id"])
        async with uow(request) as session:
            maker = await viewer(request, session)
            if maker is None:
                return _login_first(request)
            campaign, _roles = await service.fulfillment_campaign(session, _slug(request), maker, manage=True)
            planning = campaign.status in PLANNING_STATUSES
            summaries = await service.batches_of(session, _slug(request), maker) if planning else []
        summary = next((s for s in summaries if str(s.batch.id) == batch_id and s.batch.status == "planned"), None)
        if summary is not None:
            return ask_first(request, form, _confirm_batch_question(campaign, summary))
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await service.confirm_batch(session, _slug(request), str(request.path_params["batch_id"]), maker)
    except Conflict as refused:
        return await _fulfillment_page(request, action_error=_action_error(refused), status=409)
    return redirect(_page_url(_slug(request), done="confirmed", anchor="batches"))


async def start_production(request: Request) -> Response:
    await read_form(request)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await service.start_batch_production(session, _slug(request), str(request.path_params["batch_id"]), maker)
    except Conflict as refused:
        return await _fulfillment_page(request, action_error=_action_error(refused), status=409)
    return redirect(_page_url(_slug(request), done="started", anchor="batches"))


async def upload_tracking(request: Request) -> Response:
    """The tracking file from the form: checked whole, applied whole or not at all, each bad line shown by number."""
    try:
        form = await read_form(request)
    except UploadTimedOut:
        return await _fulfillment_page(request, upload_error=_("The file took too long to arrive."), status=408)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _fulfillment_page(request, upload_error=_("Choose the CSV file to upload."), status=422)
    try:
        text = (await upload.read()).decode("utf-8")
    except UnicodeDecodeError:
        message = _("The file is not UTF-8 text. Save it from your spreadsheet as “CSV UTF-8” and upload it again.")
        return await _fulfillment_page(request, upload_error=message, status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            outcome = await shipments.record_shipments(session, _slug(request), maker, text)
    except ValidationFailed as failed:
        return await _fulfillment_page(request, upload_errors=line_errors(failed), status=422)
    except Conflict as refused:
        return await _fulfillment_page(request, action_error=_action_error(refused), status=409)
    done = {"shipped": outcome.shipped, "corrected": outcome.corrected, "unchanged": outcome.unchanged}
    return redirect(_page_url(_slug(request), done="shipped", **done, anchor="tracking"))


def read_settings(values: Mapping[str, str]) -> FulfillmentSettingsIn | FieldMessages:
    """The settings form as the API's model: the lock is typed on the reader's clock, the account's time zone (a date
    and a time, or nothing: never), and kept in UTC."""
    typed = values.get("address_lock_at", "").strip()
    lock: str | None = None
    if typed:
        try:
            moment = datetime.fromisoformat(typed)
        except ValueError:
            return {"address_lock_at": _("Enter a date and a time, like 2027-03-01 12:00, or leave it empty.")}
        lock = (moment if moment.tzinfo else moment.replace(tzinfo=reader_zone())).astimezone(UTC).isoformat()
    fields = {"address_lock_at": lock, "packaging_weight_grams": values.get("packaging_weight_grams", "").strip()}
    weight_message = _("Enter a whole number of grams from 0 to %(max)s.") % {"max": number(MAX_PACKAGING_GRAMS)}
    return validate_form(
        FulfillmentSettingsIn,
        cast(dict[str, str], fields),  # the lock is None when empty: the model takes it as "never locks"
        invalid={"packaging_weight_grams": weight_message},
    )


def lock_too_early_message(request: Request, early: service.LockTooEarly) -> str:
    # Rounded up to the minute the form takes, so that the moment shown is one the form accepts, on the reader's clock.
    earliest = early.earliest.astimezone(reader_zone())
    if earliest.second or earliest.microsecond:
        earliest = earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)
    moment = f"{earliest.strftime('%Y-%m-%d %H:%M')} {zone_abbreviation(earliest)}"
    days = settings_of(request).address_survey_days
    if early.was_set:
        message = ngettext(
            "The address lock can only move later, and backers keep %(num)d day after the address survey to answer "
            "it: choose %(earliest)s or later.",
            "The address lock can only move later, and backers keep %(num)d days after the address survey to answer "
            "it: choose %(earliest)s or later.",
            days,
        )
    else:
        message = ngettext(
            "Backers keep %(num)d day after the address survey to answer it: choose %(earliest)s or later.",
            "Backers keep %(num)d days after the address survey to answer it: choose %(earliest)s or later.",
            days,
        )
    return message % {"num": days, "earliest": moment}


async def save_settings(request: Request) -> Response:
    form = await read_form(request)
    values = {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "csrf_token"}
    checked = read_settings(values)
    if isinstance(checked, dict):
        return await _fulfillment_page(request, values=values, errors=checked, status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await service.set_fulfillment_settings(
                session,
                _slug(request),
                maker,
                address_lock_at=checked.address_lock_at,
                packaging_weight_grams=checked.packaging_weight_grams,
                survey_seconds=settings_of(request).address_survey_seconds,
            )
    except service.LockTooEarly as early:
        errors = {"address_lock_at": lock_too_early_message(request, early)}
        return await _fulfillment_page(request, values=values, errors=errors, status=422)
    except Conflict as refused:
        return await _fulfillment_page(request, values=values, action_error=_action_error(refused), status=409)
    return redirect(_page_url(_slug(request), done="settings", anchor="settings"))


def read_batch_dates(values: Mapping[str, str]) -> BatchDatesIn | FieldMessages:
    day = _("Enter a day, like 2027-03-15.")
    return validate_form(
        BatchDatesIn,
        {key: values.get(key, "") for key in ("production_on", "ship_on", "reason")},
        invalid={"production_on": day, "ship_on": day},
    )


async def save_batch_dates(request: Request) -> Response:
    """The maker plans or moves a batch's dates, with the reason backers read."""
    form = await read_form(request)
    values = {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "csrf_token"}
    checked = read_batch_dates(values)
    if isinstance(checked, dict):
        return await _fulfillment_page(request, dates_values=values, dates_errors=checked, status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            changed = await batch_dates.set_batch_dates(
                session,
                _slug(request),
                values.get("batch_id", ""),
                maker,
                production_on=checked.production_on,
                ship_on=checked.ship_on,
                reason=checked.reason,
            )
    except InvalidInput as invalid:
        errors = {
            error.field: _("The batch ships on or after the day its production starts.")
            if error.field == "ship_on"
            else _("This field is required.")
            for error in invalid.errors
        }
        return await _fulfillment_page(request, dates_values=values, dates_errors=errors, status=422)
    except Conflict as refused:
        return await _fulfillment_page(request, dates_values=values, action_error=_action_error(refused), status=409)
    done = "dates_mailed" if changed.backers_told else "dates"
    return redirect(_page_url(_slug(request), done=done, anchor="batches"))


routes = [
    Route("/maker/campaigns/{slug}/fulfillment", dashboard, methods=["GET"]),
    Route("/operator/campaigns/{slug}/fulfillment", dashboard, methods=["GET"]),
    Route("/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/confirm", confirm_batch, methods=["POST"]),
    Route(
        "/maker/campaigns/{slug}/fulfillment/batches/{batch_id}/start-production", start_production, methods=["POST"]
    ),
    Route("/maker/campaigns/{slug}/fulfillment/tracking", upload_tracking, methods=["POST"]),
    Route("/maker/campaigns/{slug}/fulfillment/settings", save_settings, methods=["POST"]),
    Route("/maker/campaigns/{slug}/fulfillment/batch-dates", save_batch_dates, methods=["POST"]),
]
