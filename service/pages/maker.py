"""The maker's dashboard: their campaigns; drafting one with its products, tiers and images; submitting, launching,
posting updates; the campaign's timeline and its review notes.

Each form is read by service/pages/campaign_forms.py into the API's request model and saved by the same service
function the JSON API calls, in one transaction: a form with a problem saves nothing and comes back with each message
beside its field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import accounts, catalog, review, service, updates
from campaigns.campaign_schemas import CampaignPatch, ProductPatch, TierPatch
from campaigns.catalog import DeliveryTooEarly, SkuTaken, campaign_deadline, earliest_delivery
from campaigns.currencies import AmountRefused
from campaigns.errors import InvalidInput, NotFound
from campaigns.images import (
    IMAGE_ROLES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_MB,
    add_campaign_image,
    image_url,
    remove_campaign_image,
)
from campaigns.languages import language_of
from campaigns.models import CampaignEvent, Product, Space, Tier, User
from campaigns.transparency.evidence import MAX_EVIDENCE_BYTES, MAX_EVIDENCE_MB, attach_evidence, campaign_evidence
from service import i18n
from service.i18n import current_locale, ngettext
from service.i18n import gettext as _
from service.pages import FieldMessages, viewer
from service.pages.campaign_forms import (
    BLANK_ITEM_ROWS,
    BLANK_SHIPPING_ROWS,
    MORE_ROWS,
    OTHER_PRODUCT_FIELDS,
    OTHER_TIER_FIELDS,
    batch_cost_view,
    campaign_values,
    country_options,
    currency_hint,
    currency_options,
    delivery_message,
    language_options,
    month_name,
    other_values,
    price_message,
    product_values,
    read_campaign,
    read_product,
    read_tier,
    read_update,
    row_count,
    tier_values,
)
from service.pages.campaigns import (
    days_left,
    every_space,
    percent_funded,
    review_view,
    shown,
    space_view,
    spaces_by_id,
    sponsor_label,
    status_label,
    tier_view,
    users_by_id,
)
from service.pages.catalog_views import add_on_views, products_with_options
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.pages.evidence import evidence_kind_labels, evidence_view
from service.pages.money_input import scaled_text
from service.web import BodyTooLarge, UploadTimedOut, current_user, read_form, redirect, render, settings_of, uow

MY_CAMPAIGNS = 100


def _done_messages() -> dict[str, str]:
    return {
        "created": _("Your draft is saved. Add its products and reward tiers, then submit it for review."),
        "saved": _("Your changes are saved."),
        "product-added": _("The product is added."),
        "product-saved": _("The product is saved."),
        "product-removed": _("The product is removed."),
        "tier-added": _("The reward tier is added."),
        "tier-saved": _("The reward tier is saved."),
        "late-pledges": _("Your late pledges are saved: the space reviews them with the campaign."),
        "shipping": _("Your shipping is saved: the space reviews it with the campaign."),
        "tier-removed": _("The reward tier is removed."),
        "add-on-added": _("The add-on is added."),
        "add-on-saved": _("The add-on is saved."),
        "add-on-removed": _("The add-on is removed."),
        "image-added": _("The image is added."),
        "image-removed": _("The image is removed."),
        "evidence-added": _("The file is recorded in the design log."),
        "submitted": _("Submitted. The makerspace's operators are told, and will review your campaign."),
        "launched": _("Your campaign is live. Share its page with the people who should back it."),
        "update-posted": _("Your update is posted, and every backer gets it by mail."),
        "update-saved": _("Your update is saved. It stays posted, marked as edited."),
        "update-deleted": _("Your update is deleted."),
    }


def _event_labels() -> dict[str, str]:
    return {
        "submit": _("Submitted for review"),
        "approve": _("Approved by the makerspace"),
        "request_changes": _("Changes requested by the makerspace"),
        "reject": _("Not approved by the makerspace"),
        "launch": _("Launched"),
        "succeed": _("Reached its goal"),
        "fail": _("Ended without reaching its goal"),
        "fund": _("Funded: every pledge settled"),
        "start_fulfilment": _("Started making the rewards"),
        "finish_fulfilment": _("Every reward delivered"),
        "suspend": _("Suspended by the makerspace"),
    }


def _form_values(form: FormData) -> dict[str, str]:
    return {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "csrf_token"}


def _login_first(request: Request) -> Response:
    return redirect("/login?next=" + quote(request.url.path))


async def _my_campaign(session: AsyncSession, slug: str, maker: User) -> service.CampaignDetail:
    """The campaign as its maker sees it; anyone else (an operator, an admin) is sent to the public page's rules."""
    detail = await service.campaign_detail(session, slug, maker)
    if "maker" not in detail.roles:
        raise NotFound("No such campaign among yours.")
    return detail


async def _my_campaign_or_login(
    request: Request, session: AsyncSession, *, to_edit: bool = False
) -> service.CampaignDetail | Response:
    """The signed-in maker's campaign of this address; else the answer to give: log in first, or, for a form that
    edits (`to_edit`) a campaign no longer a draft, its manage page."""
    maker = await viewer(request, session)
    if maker is None:
        return _login_first(request)
    detail = await _my_campaign(session, _slug(request), maker)
    if to_edit and "edit" not in detail.actions:
        return redirect(_manage_url(detail.campaign.slug))
    return detail


def _slug(request: Request) -> str:
    return str(request.path_params["slug"])


def _manage_url(slug: str, done: str | None = None, anchor: str = "") -> str:
    return f"/maker/campaigns/{slug}" + (f"?done={done}" if done else "") + (f"#{anchor}" if anchor else "")


# The dashboard


def _next_step(detail: service.CampaignDetail, space_name: str, day_seconds: int) -> str:
    campaign = detail.campaign
    status = campaign.status
    if status == "draft":
        if detail.latest_review is not None and detail.latest_review.decision == "request_changes":
            return _("%(space)s asked for changes: read their notes, then submit again.") % {"space": space_name}
        if not detail.tiers:
            return _("Add its products and at least one reward tier, then submit it for review.")
        return _("Ready when you are: submit it to %(space)s for review.") % {"space": space_name}
    if status == "live":
        left = days_left(campaign, day_seconds)
        return ngettext("Live: %(num)d day left.", "Live: %(num)d days left.", left) % {"num": left}
    steps = {
        "in_review": _("Waiting for %(space)s to review it.") % {"space": space_name},
        "approved": _("Approved by %(space)s. Launch it when you are ready.") % {"space": space_name},
        "rejected": _("%(space)s decided not to sponsor it. Read their notes.") % {"space": space_name},
        "successful": _("It reached its goal. Backers' cards are being charged."),
        "unsuccessful": _("It ended without reaching its goal. Nobody was charged."),
        "funded": _("Funded. Time to plan the first manufacturing batch."),
        "fulfilling": _("The rewards are being made and shipped."),
        "fulfilled": _("Every reward is delivered."),
        "suspended": _("The makerspace suspended it."),
    }
    return steps.get(status, "")


async def dashboard(request: Request) -> Response:
    async with uow(request) as session:
        maker = await viewer(request, session)
        if maker is None:
            return _login_first(request)
        details, _next = await service.list_campaigns(session, maker, maker_id=maker.id, limit=MY_CAMPAIGNS)
        sponsors = await spaces_by_id(session, (detail.campaign.space_id for detail in details))
    day_seconds = settings_of(request).day_seconds
    rows = []
    for detail in details:
        campaign = detail.campaign
        space = sponsors[campaign.space_id]
        rows.append(
            {
                "title": campaign.title,
                "url": _manage_url(campaign.slug),
                "status": campaign.status,
                "status_label": status_label(campaign.status),
                "space_name": space.name,
                "space_label": sponsor_label(campaign.status, space.name),
                "pledged": detail.pledged,
                "goal": campaign.goal,
                "currency": campaign.currency,
                "percent": percent_funded(detail.pledged, campaign.goal),
                "backers": detail.backers,
                "cover_url": image_url(detail.cover) if detail.cover else None,
                "next_step": _next_step(detail, space.name, day_seconds),
                "launched": campaign.launched_at is not None,
            }
        )
    return render(request, "maker/dashboard.html", {"campaigns": rows})


# Drafting: the campaign itself


async def _campaign_form_page(
    request: Request,
    *,
    values: dict[str, str],
    errors: FieldMessages | None = None,
    slug: str | None = None,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        maker = await viewer(request, session)
        if maker is None:
            return _login_first(request)
        if slug is not None:
            detail = await _my_campaign(session, slug, maker)
            if "edit" not in detail.actions:  # no longer a draft: nothing here to change
                return redirect(_manage_url(slug))
            title = detail.campaign.title
            batch = batch_cost_view(detail.products, detail.campaign.goal, detail.campaign.currency)
        all_spaces = await every_space(session)
    context = {
        "values": values,
        "errors": errors or {},
        "slug": slug,
        "campaign_title": title if slug is not None else None,
        "batch": batch if slug is not None else None,
        "currency_options": currency_options(),
        "language_options": language_options(),
        "space_options": [("", _("Choose a makerspace"))]
        + [(str(space.id), f"{space.name} · {space.city}") for space in all_spaces],
        "has_spaces": bool(all_spaces),
    }
    return render(request, "maker/campaign_form.html", context, status=status)


async def new_campaign_form(request: Request) -> Response:
    values = {"currency": "CNY", "duration_days": "30", "language": language_of(current_locale.get())}
    return await _campaign_form_page(request, values=values)


async def create_campaign(request: Request) -> Response:
    values = _form_values(await read_form(request))
    checked = read_campaign(values)
    if isinstance(checked, dict):
        return await _campaign_form_page(request, values=values, errors=checked, status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            campaign = await service.create_campaign(session, maker, checked)
    except InvalidInput:  # the chosen space was removed meanwhile
        errors = {"space_id": _("Choose the makerspace that will vet your campaign.")}
        return await _campaign_form_page(request, values=values, errors=errors, status=422)
    return redirect(_manage_url(campaign.slug, "created"))


async def edit_campaign_form(request: Request) -> Response:
    async with uow(request) as session:
        detail = await _my_campaign_or_login(request, session)
    if isinstance(detail, Response):
        return detail
    return await _campaign_form_page(request, values=campaign_values(detail.campaign), slug=_slug(request))


async def edit_campaign(request: Request) -> Response:
    values = _form_values(await read_form(request))
    checked = read_campaign(values)
    if isinstance(checked, dict):
        return await _campaign_form_page(request, values=values, errors=checked, slug=_slug(request), status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            patch = CampaignPatch.model_validate(checked.model_dump(exclude_none=True))
            campaign = await service.update_campaign(session, _slug(request), maker, patch)
    except InvalidInput as exc:
        if exc.errors[0].field == "currency":
            errors = {"currency": _("Some reward tiers' prices cannot be charged in this currency: change them first.")}
        else:
            errors = {"space_id": _("Choose the makerspace that will vet your campaign.")}
        return await _campaign_form_page(request, values=values, errors=errors, slug=_slug(request), status=422)
    return redirect(_manage_url(campaign.slug, "saved"))


# The campaign's own page for its maker


async def _timeline(session: AsyncSession, detail: service.CampaignDetail) -> list[dict[str, Any]]:
    """Every change of status, oldest first, after the moment it was drafted."""
    campaign = detail.campaign
    # Only the maker reaches this page; the events are the campaign's own history.
    events = list(
        await session.scalars(
            select(CampaignEvent)
            .where(CampaignEvent.campaign_id == campaign.id)
            .order_by(CampaignEvent.created_at, CampaignEvent.id)
        )
    )
    actors = await users_by_id(session, (event.actor_id for event in events))
    labels = _event_labels()
    timeline = [{"label": _("Drafted"), "at": campaign.created_at, "actor": None, "note": "", "status": "draft"}]
    for event in events:
        actor = actors.get(event.actor_id) if event.actor_id else None
        timeline.append(
            {
                "label": labels.get(event.action, event.action),
                "at": event.created_at,
                "actor": actor.name if actor else None,
                "note": shown("note", event.note, event.language),
                "status": event.to_status,
            }
        )
    return timeline


async def _manage_page(
    request: Request,
    *,
    action_error: str | None = None,
    image_errors: FieldMessages | None = None,
    evidence_errors: FieldMessages | None = None,
    update_values: dict[str, str] | None = None,
    update_errors: FieldMessages | None = None,
    unverified: bool = False,
    status: int = 200,
) -> Response:
    settings = settings_of(request)
    async with uow(request) as session:
        maker = await viewer(request, session)
        if maker is None:
            return _login_first(request)
        detail = await _my_campaign(session, _slug(request), maker)
        campaign = detail.campaign
        space = await session.get_one(Space, campaign.space_id)
        history = await review.reviews_of(session, campaign.id, maker)
        reviewers = await users_by_id(session, (row.reviewer_id for row in history))
        timeline = await _timeline(session, detail)
        posted, _next = await updates.list_updates(session, campaign.id, maker, limit=50, cursor=None)
        evidence = evidence_view(await campaign_evidence(session, campaign.id))
    product_names = {product.sku: product.name for product in detail.products}
    is_draft = "edit" in detail.actions
    view = {
        "slug": campaign.slug,
        "title": campaign.title,
        "summary": campaign.summary,
        "language": campaign.language,
        "status": campaign.status,
        "status_label": status_label(campaign.status),
        "currency": campaign.currency,
        "goal": campaign.goal,
        "pledged": detail.pledged,
        "backers": detail.backers,
        "percent": percent_funded(detail.pledged, campaign.goal),
        "days_left": days_left(campaign, settings.day_seconds),
        "duration_days": campaign.duration_days,
        "ends_at": campaign.ends_at,
        "space": space_view(space),
        "space_label": sponsor_label(campaign.status, space.name),
        "actions": detail.actions,
        "is_draft": is_draft,
        "has_story": bool(campaign.description.strip()),
        "products": [
            {
                "id": str(product.id),
                "sku": product.sku,
                "name": product.name,
                "weight_grams": product.weight_grams,
                "unit_cost": product.unit_cost,
                "batch_size": product.batch_size,
                "overage": scaled_text(product.overage_bps, 2).removesuffix(".00"),
            }
            for product in detail.products
        ],
        "tiers": [tier_view(tier, currency=campaign.currency, product_names=product_names) for tier in detail.tiers],
        "choices": {choice["id"]: choice for choice in products_with_options(detail)},
        "add_ons": add_on_views(detail),
        "cover": {"id": str(detail.cover.id), "url": image_url(detail.cover)} if detail.cover else None,
        "gallery": [{"id": str(image.id), "url": image_url(image)} for image in detail.gallery],
        "latest_review": review_view(detail.latest_review, reviewers),
        "reviews": [review_view(row, reviewers) for row in reversed(history)],
        "timeline": timeline,
        "updates": [
            {
                "title": row.title,
                "posted_at": row.created_at,
                "backers_only": row.visibility == "backers",
                "edit_url": f"/maker/campaigns/{campaign.slug}/updates/{row.id}/edit",
            }
            for row in posted
        ],
    }
    done = request.query_params.get("done")
    context = {
        "campaign": view,
        "done": _done_messages().get(done or ""),
        "action_error": action_error,
        "image_errors": image_errors or {},
        "evidence": evidence,
        "evidence_kinds": list(evidence_kind_labels().items()),
        "evidence_errors": evidence_errors or {},
        "max_evidence_mb": MAX_EVIDENCE_MB,
        "max_evidence_bytes": MAX_EVIDENCE_BYTES,
        "max_image_mb": MAX_IMAGE_MB,
        "max_image_bytes": MAX_IMAGE_BYTES,
        "update_values": update_values or {"visibility": "public"},
        "update_errors": update_errors or {},
        "unverified": unverified,
    }
    return render(request, "maker/campaign.html", context, status=status)


async def manage(request: Request) -> Response:
    return await _manage_page(request)


async def submit(request: Request) -> Response:
    await read_form(request)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await service.submit_campaign(session, _slug(request), maker, base_url=settings_of(request).base_url)
    except accounts.EmailUnverified:
        return await _manage_page(request, unverified=True, status=409)
    except service.NoTiers:
        message = _("Add at least one reward tier before you submit the campaign.")
        return await _manage_page(request, action_error=message, status=409)
    except service.UnknownTierSku:
        message = _("A reward tier names a SKU the campaign has no product for. Add the product, or change the tier.")
        return await _manage_page(request, action_error=message, status=409)
    except service.TierLargerThanBatch:
        message = _(
            "A reward tier needs more of a product than one manufacturing batch makes, and a backer's reward is never "
            "split between batches. Raise the product's batch size, or lower the quantity in the tier."
        )
        return await _manage_page(request, action_error=message, status=409)
    return redirect(_manage_url(_slug(request), "submitted"))


def _launch_question(detail: service.CampaignDetail, day_seconds: int) -> Confirmation:
    campaign = detail.campaign
    days = campaign.duration_days
    ends_at = datetime.now(UTC) + timedelta(seconds=days * day_seconds)
    tiers = len(detail.tiers)
    return Confirmation(
        title=_("Launch this campaign now?"),
        subject=campaign.title,
        consequences=[
            ngettext(
                "It goes live at once and takes pledges for %(num)d day, until %(ends)s.",
                "It goes live at once and takes pledges for %(num)d days, until %(ends)s.",
                days,
            )
            % {"num": days, "ends": i18n.datetime_(ends_at)},
            ngettext(
                "Its %(num)d reward tier is open to backers from now on.",
                "Its %(num)d reward tiers are open to backers from now on.",
                tiers,
            )
            % {"num": tiers},
            _("Its goal is %(goal)s: cards are charged only if pledges reach it by the deadline.")
            % {"goal": i18n.money(campaign.goal, campaign.currency)},
            _("A live campaign cannot be edited or taken back: its story, goal, products and tiers stay as they are."),
        ],
        confirm_label=_("Yes, launch it"),
        back_url=_manage_url(campaign.slug),
        danger=False,
    )


async def launch(request: Request) -> Response:
    form = await read_form(request)
    settings = settings_of(request)
    if not is_confirmed(form):
        async with uow(request) as session:
            detail = await _my_campaign_or_login(request, session)
        if isinstance(detail, Response):
            return detail
        if "launch" in detail.actions:
            return ask_first(request, form, _launch_question(detail, settings.day_seconds))
    async with uow(request) as session:
        maker = await current_user(request, session)
        await service.launch_campaign(
            session, _slug(request), maker, day_seconds=settings.day_seconds, base_url=settings.base_url
        )
    return redirect(_manage_url(_slug(request), "launched"))


async def post_update(request: Request) -> Response:
    values = _form_values(await read_form(request))
    checked = read_update(values)
    if isinstance(checked, dict):
        return await _manage_page(request, update_values=values, update_errors=checked, status=422)
    async with uow(request) as session:
        maker = await current_user(request, session)
        await updates.post_update(session, _slug(request), maker, checked)
    return redirect(_manage_url(_slug(request), "update-posted", "updates"))


# Images


def _image_refused() -> str:
    return _("Kindling cannot use this file. Upload a JPEG, PNG, WebP or GIF image of at most %(mb)d MB.") % {
        "mb": MAX_IMAGE_MB
    }


async def upload_image(request: Request) -> Response:
    try:
        form = await read_form(request)
    except BodyTooLarge:
        return await _manage_page(request, image_errors={"file": _image_refused()}, status=413)
    except UploadTimedOut:
        return await _manage_page(request, image_errors={"file": _("The file took too long to arrive.")}, status=408)
    upload, role = form.get("file"), form.get("role")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors = {"file": _("Choose an image file to upload.")}
        return await _manage_page(request, image_errors=errors, status=422)
    if not isinstance(role, str) or role not in IMAGE_ROLES:
        return await _manage_page(request, image_errors={"role": _("Choose cover or gallery.")}, status=422)
    data = await upload.read(MAX_IMAGE_BYTES + 1)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await add_campaign_image(
                session, _slug(request), maker, data=data, role=role, media_dir=settings_of(request).media_dir
            )
    except InvalidInput:
        return await _manage_page(request, image_errors={"file": _image_refused()}, status=422)
    return redirect(_manage_url(_slug(request), "image-added", "images"))


def _evidence_refused() -> str:
    return _("Kindling cannot take this file. Upload a file of at most %(mb)d MB.") % {"mb": MAX_EVIDENCE_MB}


async def upload_evidence(request: Request) -> Response:
    try:
        form = await read_form(request)
    except BodyTooLarge:
        return await _manage_page(request, evidence_errors={"file": _evidence_refused()}, status=413)
    except UploadTimedOut:
        slow = {"file": _("The file took too long to arrive.")}
        return await _manage_page(request, evidence_errors=slow, status=408)
    upload, kind, confirmed = form.get("file"), form.get("kind"), form.get("confirm")
    errors: FieldMessages = {}
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = _("Choose a file to upload.")
    if not isinstance(kind, str) or kind not in evidence_kind_labels():
        errors["kind"] = _("Choose what kind of file this is.")
    if confirmed != "yes":
        # Recording is for good: the log is append-only, so the maker says once more that this is the file.
        errors["confirm"] = _("Confirm that this file is recorded for good.")
    if errors or not isinstance(upload, UploadFile) or not isinstance(kind, str):
        return await _manage_page(request, evidence_errors=errors, status=422)
    data = await upload.read(MAX_EVIDENCE_BYTES + 1)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            await attach_evidence(
                session,
                _slug(request),
                maker,
                data=data,
                file_name=upload.filename or "",
                kind=kind,
                media_dir=settings_of(request).media_dir,
            )
    except InvalidInput:
        return await _manage_page(request, evidence_errors={"file": _evidence_refused()}, status=422)
    return redirect(_manage_url(_slug(request), "evidence-added", "evidence"))


def _remove_image_question(detail: service.CampaignDetail, image_id: str) -> Confirmation:
    is_cover = detail.cover is not None and str(detail.cover.id) == image_id
    if not is_cover and all(str(image.id) != image_id for image in detail.gallery):
        raise NotFound("This campaign has no such image.")
    consequences = [
        _("The picture is deleted from the campaign's page and from Kindling's storage."),
        _("It cannot be brought back: to show it again, you upload it anew."),
    ]
    if is_cover:
        consequences.append(_("The campaign has no cover picture until you upload another."))
    return Confirmation(
        title=_("Remove this picture?"),
        subject=detail.campaign.title,
        consequences=consequences,
        confirm_label=_("Yes, remove the picture"),
        back_url=_manage_url(detail.campaign.slug, anchor="images"),
    )


async def remove_image(request: Request) -> Response:
    form = await read_form(request)
    image_id = str(request.path_params["image_id"])
    if not is_confirmed(form):
        async with uow(request) as session:
            detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
        return ask_first(request, form, _remove_image_question(detail, image_id))
    async with uow(request) as session:
        maker = await current_user(request, session)
        await remove_campaign_image(session, _slug(request), image_id, maker)
    return redirect(_manage_url(_slug(request), "image-removed", "images"))


# Products


async def _product_form_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldMessages | None = None,
    product_id: str | None = None,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
        product = _product_of(detail, product_id) if product_id else None
    currency = detail.campaign.currency
    if values is None:
        values = (
            product_values(product, currency)
            if product
            else {"overage_percent": "0"} | other_values(detail.campaign.language, {}, OTHER_PRODUCT_FIELDS)
        )
    context = {
        "campaign": {"slug": detail.campaign.slug, "title": detail.campaign.title, "currency": currency},
        "values": values,
        "errors": errors or {},
        "product_id": product_id,
        "money_hint": currency_hint(currency),
    }
    return render(request, "maker/product_form.html", context, status=status)


def _product_of(detail: service.CampaignDetail, product_id: str) -> Product:
    for product in detail.products:
        if str(product.id) == product_id:
            return product
    raise NotFound("This campaign has no such product.")


async def _campaign_currency(request: Request) -> str:
    async with uow(request) as session:
        maker = await current_user(request, session)
        detail = await _my_campaign(session, _slug(request), maker)
    return detail.campaign.currency


async def new_product_form(request: Request) -> Response:
    return await _product_form_page(request)


async def edit_product_form(request: Request) -> Response:
    return await _product_form_page(request, product_id=str(request.path_params["product_id"]))


async def save_product(request: Request) -> Response:
    """Adds a product (no id in the path) or changes one."""
    values = _form_values(await read_form(request))
    product_id = request.path_params.get("product_id")
    product_ref = str(product_id) if product_id else None
    checked = read_product(values, await _campaign_currency(request))
    if isinstance(checked, dict):
        return await _product_form_page(request, values=values, errors=checked, product_id=product_ref, status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            if product_ref is None:
                await catalog.add_product(session, _slug(request), maker, checked)
            else:
                patch = ProductPatch.model_validate(checked.model_dump(exclude={"language"}))
                await catalog.update_product(session, _slug(request), product_ref, maker, patch)
    except SkuTaken:
        errors = {"sku": _("This campaign already has a product with this SKU.")}
        return await _product_form_page(request, values=values, errors=errors, product_id=product_ref, status=409)
    done = "product-added" if product_ref is None else "product-saved"
    return redirect(_manage_url(_slug(request), done, "products"))


def _remove_product_question(detail: service.CampaignDetail, product: Product) -> Confirmation:
    naming = [tier.title for tier in detail.tiers if any(item["sku"] == product.sku for item in tier.items)]
    consequences = [
        _("The product “%(name)s” (SKU %(sku)s) is deleted with its weight and factory quote.")
        % {"name": product.name, "sku": product.sku},
        _("It cannot be brought back: to offer it again, you enter it anew."),
    ]
    if naming:
        consequences.append(
            ngettext(
                "%(num)d reward tier still names its SKU (%(tiers)s): before you submit, add the product again or "
                "change the tier.",
                "%(num)d reward tiers still name its SKU (%(tiers)s): before you submit, add the product again or "
                "change the tiers.",
                len(naming),
            )
            % {"num": len(naming), "tiers": ", ".join(naming)}
        )
    offered = sum(1 for add_on in detail.add_ons if add_on.product.id == product.id)
    if offered:
        consequences.append(
            ngettext(
                "Its %(num)d add-on is removed with it.",
                "Its %(num)d add-ons are removed with it.",
                offered,
            )
            % {"num": offered}
        )
    return Confirmation(
        title=_("Remove this product?"),
        subject=detail.campaign.title,
        consequences=consequences,
        confirm_label=_("Yes, remove the product"),
        back_url=_manage_url(detail.campaign.slug, anchor="products"),
    )


async def remove_product(request: Request) -> Response:
    form = await read_form(request)
    if not is_confirmed(form):
        async with uow(request) as session:
            detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
        product = _product_of(detail, str(request.path_params["product_id"]))
        return ask_first(request, form, _remove_product_question(detail, product))
    async with uow(request) as session:
        maker = await current_user(request, session)
        await catalog.remove_product(session, _slug(request), str(request.path_params["product_id"]), maker)
    return redirect(_manage_url(_slug(request), "product-removed", "products"))


# Tiers


async def _tier_form_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldMessages | None = None,
    tier_id: str | None = None,
    more_rows: bool = False,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
        tier = _tier_of(detail, tier_id) if tier_id else None
    currency = detail.campaign.currency
    earliest = earliest_delivery(campaign_deadline(detail.campaign))
    if values is None:
        values = (
            tier_values(tier, currency)
            if tier
            else {"limit": "unlimited"} | other_values(detail.campaign.language, {}, OTHER_TIER_FIELDS)
        )
    extra = MORE_ROWS if more_rows else 0
    context = {
        "campaign": {"slug": detail.campaign.slug, "title": detail.campaign.title, "currency": currency},
        "values": values,
        "errors": errors or {},
        "tier_id": tier_id,
        "earliest_month": earliest,
        "earliest_month_name": month_name(earliest),
        "money_hint": currency_hint(currency),
        "product_options": [("", _("Choose a product"))]
        + [(product.sku, f"{product.name} ({product.sku})") for product in detail.products],
        "item_rows": range(row_count(values, "items", BLANK_ITEM_ROWS + extra)),
        "shipping_rows": range(row_count(values, "shipping", BLANK_SHIPPING_ROWS + extra)),
        "countries": country_options(),
    }
    return render(request, "maker/tier_form.html", context, status=status)


def _tier_of(detail: service.CampaignDetail, tier_id: str) -> Tier:
    for tier in detail.tiers:
        if str(tier.id) == tier_id:
            return tier
    raise NotFound("This campaign has no such tier.")


async def new_tier_form(request: Request) -> Response:
    return await _tier_form_page(request)


async def edit_tier_form(request: Request) -> Response:
    return await _tier_form_page(request, tier_id=str(request.path_params["tier_id"]))


async def save_tier(request: Request) -> Response:
    """Adds a tier (no id in the path) or changes one; "More rows" shows the form again with more empty rows."""
    values = _form_values(await read_form(request))
    tier_id = request.path_params.get("tier_id")
    tier_ref = str(tier_id) if tier_id else None
    if "more_rows" in values:
        return await _tier_form_page(request, values=values, tier_id=tier_ref, more_rows=True)
    checked = read_tier(values, await _campaign_currency(request))
    if isinstance(checked, dict):
        return await _tier_form_page(request, values=values, errors=checked, tier_id=tier_ref, status=422)
    try:
        async with uow(request) as session:
            maker = await current_user(request, session)
            if tier_ref is None:
                await catalog.add_tier(session, _slug(request), maker, checked)
            else:
                patch = TierPatch.model_validate(checked.model_dump(exclude={"language"}))
                await catalog.update_tier(session, _slug(request), tier_ref, maker, patch)
    except AmountRefused as refused:
        errors = {"price": price_message(refused)}
        return await _tier_form_page(request, values=values, errors=errors, tier_id=tier_ref, status=422)
    except DeliveryTooEarly as early:
        errors = {"estimated_delivery": delivery_message(early)}
        return await _tier_form_page(request, values=values, errors=errors, tier_id=tier_ref, status=422)
    return redirect(_manage_url(_slug(request), "tier-added" if tier_ref is None else "tier-saved", "tiers"))


def _remove_tier_question(detail: service.CampaignDetail, tier: Tier) -> Confirmation:
    return Confirmation(
        title=_("Remove this reward tier?"),
        subject=detail.campaign.title,
        consequences=[
            _("The reward tier “%(title)s” at %(price)s is deleted with its description, items and shipping prices.")
            % {"title": tier.title, "price": i18n.money(tier.price, detail.campaign.currency)},
            _("It cannot be brought back: to offer it again, you enter it anew."),
        ],
        confirm_label=_("Yes, remove the tier"),
        back_url=_manage_url(detail.campaign.slug, anchor="tiers"),
    )


async def remove_tier(request: Request) -> Response:
    form = await read_form(request)
    if not is_confirmed(form):
        async with uow(request) as session:
            detail = await _my_campaign_or_login(request, session, to_edit=True)
        if isinstance(detail, Response):
            return detail
        tier = _tier_of(detail, str(request.path_params["tier_id"]))
        return ask_first(request, form, _remove_tier_question(detail, tier))
    async with uow(request) as session:
        maker = await current_user(request, session)
        await catalog.remove_tier(session, _slug(request), str(request.path_params["tier_id"]), maker)
    return redirect(_manage_url(_slug(request), "tier-removed", "tiers"))


routes = [
    Route("/maker", dashboard, methods=["GET"]),
    Route("/maker/new", new_campaign_form, methods=["GET"]),
    Route("/maker/new", create_campaign, methods=["POST"]),
    Route("/maker/campaigns/{slug}", manage, methods=["GET"]),
    Route("/maker/campaigns/{slug}/edit", edit_campaign_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/edit", edit_campaign, methods=["POST"]),
    Route("/maker/campaigns/{slug}/submit", submit, methods=["POST"]),
    Route("/maker/campaigns/{slug}/launch", launch, methods=["POST"]),
    Route("/maker/campaigns/{slug}/updates", post_update, methods=["POST"]),
    Route("/maker/campaigns/{slug}/images", upload_image, methods=["POST"]),
    Route("/maker/campaigns/{slug}/evidence", upload_evidence, methods=["POST"]),
    Route("/maker/campaigns/{slug}/images/{image_id}/remove", remove_image, methods=["POST"]),
    Route("/maker/campaigns/{slug}/products/new", new_product_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/products/new", save_product, methods=["POST"]),
    Route("/maker/campaigns/{slug}/products/{product_id}/edit", edit_product_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/products/{product_id}/edit", save_product, methods=["POST"]),
    Route("/maker/campaigns/{slug}/products/{product_id}/remove", remove_product, methods=["POST"]),
    Route("/maker/campaigns/{slug}/tiers/new", new_tier_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/tiers/new", save_tier, methods=["POST"]),
    Route("/maker/campaigns/{slug}/tiers/{tier_id}/edit", edit_tier_form, methods=["GET"]),
    Route("/maker/campaigns/{slug}/tiers/{tier_id}/edit", save_tier, methods=["POST"]),
    Route("/maker/campaigns/{slug}/tiers/{tier_id}/remove", remove_tier, methods=["POST"]),
]
