"""The backer's pledges: all of them with their next step, and one with its figures, its change and cancel forms, the
address its reward ships to, and how far its delivery has come.

Every change goes through the same functions as the JSON API (`change_pledge`, `cancel_pledge`, `give_address`);
these views only put their answers into words. None of it needs JavaScript; the card pages are checkout.py's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.errors import Conflict, InvalidInput
from campaigns.models import Campaign, Pledge, Tier, User
from campaigns.pagination import Cursor, page_after
from campaigns.phones import PHONE_DIGITS
from campaigns.pledges.contents import Contents, contents_of, pledge_contents
from campaigns.pledges.lifecycle import (
    COUNTED_PLEDGE_STATUSES,
    ENDED_PLEDGE_STATUSES,
    HOLDING_PLEDGE_STATUSES,
    OPEN_PLEDGE_STATUSES,
    PLEDGES_IN_PLAY,
    SHIPPABLE_PLEDGE_STATUSES,
    PledgeClosed,
    PledgeStatus,
)
from campaigns.pledges.manager import BatchOrdered, ChoicesLocked
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import PledgeTerms
from campaigns.pledges.schemas import AddressIn
from campaigns.pledges.service import (
    ChangedMeanwhile,
    NotLive,
    SoldOut,
    cancel_pledge,
    change_pledge,
    get_pledge,
    lines_of,
)
from campaigns.pledges.viewers import PledgeViewer, visible_address
from campaigns.stock import UnitsSoldOut
from fulfillment.addresses import AddressLocked, AlreadyShipped, NothingToShip, NotShipping, suggested_address
from fulfillment.batch_dates import date_history
from fulfillment.models import Allocation, Batch, Shipment
from fulfillment.queue import queue_place
from payments.add_on_charges import EscrowShortForLine, NoSavedCard
from payments.address_changes import ShippingCardRefused, ShippingQuote, change_address, quote_address
from payments.cards import card_of
from payments.gateway import CardDetails, GatewayUnavailable
from service.i18n import datetime_, money
from service.i18n import gettext as _
from service.pages import FieldMessages, country_name, validate_form, viewer
from service.pages.card_change import card_view
from service.pages.checkout import (
    Backing,
    add_ons_amount,
    campaign_facts,
    choice_form,
    choice_values,
    country_menu,
    extras_error_field,
    extras_message,
    held_add_ons,
    kept_split_add_ons,
    load_backing,
    login_redirect,
    own_pledge_of,
    pledge_summary,
    price_choice,
    read_choice,
    taking_pledges,
    values_of,
)
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import gateway_of, read_form, redirect, render, stripe_work_of, uow

PLEDGES_PER_PAGE = 50
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
# Pledges whose reward may still need an address (a card is on file, or the money is in).
ADDRESS_STATUSES = COUNTED_PLEDGE_STATUSES - {PledgeStatus.REFUNDED}
NOT_SHIPPING_CAMPAIGNS = ("rejected", "unsuccessful", "suspended")


# Words


def status_label(status: str) -> str:
    labels = {
        "requires_payment_method": _("Card needed"),
        "active": _("Active"),
        "cancelled": _("Cancelled"),
        "collected": _("Paid"),
        "errored": _("Payment failed"),
        "dropped": _("Dropped"),
        "refunded": _("Refunded"),
        "partially_refunded": _("Partly refunded"),
    }
    return labels.get(status, status)


def status_badge(status: str) -> str:
    """The badge class (site.css) that colours a pledge status."""
    badges = {
        "requires_payment_method": "badge-pending",
        "active": "badge-success",
        "collected": "badge-success",
        "errored": "badge-danger",
        "refunded": "badge-info",
        "partially_refunded": "badge-info",
    }
    return badges.get(status, "badge-draft")


def status_explanation(pledge: Pledge, campaign: Campaign, shipment: Shipment | None = None) -> str:
    """What the pledge's status means for the backer, given where the campaign is."""
    amount = money(pledge.amount, pledge.currency)
    if shipment is not None and pledge.status in SHIPPABLE_PLEDGE_STATUSES:
        return _("Your reward is on its way with %(carrier)s.") % {"carrier": shipment.carrier}
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD and not taking_pledges(campaign):
        return _("No card was added before the campaign stopped taking pledges. Nothing was charged.")
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD:
        return _(
            "Add your card to complete this pledge. Until then it does not count, and its reward is held only briefly."
        )
    if pledge.status == PledgeStatus.ACTIVE:
        if campaign.status == "live" and campaign.ends_at is not None:
            return _(
                "Your card is saved. It will be charged %(amount)s only if the campaign reaches its goal by %(date)s."
            ) % {
                "amount": amount,
                "date": datetime_(campaign.ends_at),
            }
        if campaign.status in ("successful", "funded", "fulfilling", "fulfilled"):
            return _("The campaign reached its goal. Your card is being charged %(amount)s.") % {"amount": amount}
        if campaign.status in ("unsuccessful", "suspended"):
            return _("The campaign did not go ahead. Your card will not be charged.")
        return _("Your card is saved.")
    if pledge.status == PledgeStatus.CANCELLED:
        return _("This pledge is cancelled. Nothing was charged.")
    if pledge.status == PledgeStatus.COLLECTED:
        return _("Your card was charged %(amount)s. Thank you for backing this project!") % {"amount": amount}
    if pledge.status == PledgeStatus.ERRORED and pledge.retry_until is not None:
        return _(
            "We could not charge your card. Give another card by %(date)s to keep your pledge and your reward."
        ) % {"date": datetime_(pledge.retry_until)}
    if pledge.status == PledgeStatus.ERRORED:
        return _("We could not charge your card. Give another card to keep your pledge and your reward.")
    if pledge.status == PledgeStatus.DROPPED:
        return _(
            "The charge failed and no other card was given in time, so the pledge was dropped. Nothing was charged."
        )
    if pledge.status == PledgeStatus.REFUNDED:
        return _("Your payment was refunded.")
    if pledge.status == PledgeStatus.PARTIALLY_REFUNDED:
        return _("Part of your payment was refunded: what was still held for the project when it stopped.")
    return ""


def batch_label(status: str) -> str:
    labels = {
        "planned": _("Planned"),
        "confirmed": _("Confirmed with the factory"),
        "in_production": _("In production"),
        "shipped": _("Shipped"),
    }
    return labels.get(status, status)


def done_notice(key: str | None) -> str | None:
    notices = {
        "card-saved": _("Your card is saved and your pledge is active. We have sent you a confirmation by mail."),
        "card-given": _("Your new card is saved and we are charging it now. We will mail you the result."),
        "charged": _("Your new card was charged. Your pledge is paid: thank you!"),
        "changed": _("Your pledge is changed."),
        "card-changed": _("Your new card is saved: your pledge will be charged to it, not to the old one."),
        "cancelled": _("Your pledge is cancelled. Nothing was charged."),
        "address": _("Your address is saved. Your reward will ship there."),
        "preorder-paid": _("Your pre-order is paid: thank you! It is made in the next batch."),
        "preorder-cancelled": _("Your pre-order is cancelled. A paid one is refunded in full."),
    }
    return notices.get(key or "")


# Facts about one pledge


def addresses_locked(campaign: Campaign, now: datetime) -> bool:
    return campaign.address_lock_at is not None and now >= campaign.address_lock_at


def next_step(
    pledge: Pledge,
    campaign: Campaign,
    ships_reward: bool,
    shipment: Shipment | None,
    now: datetime,
    *,
    backs_it_already: bool = False,
) -> dict[str, Any] | None:
    """The one thing the backer should do (or know) next about this pledge. `backs_it_already`: the backer holds
    another pledge in the same campaign (so a cancelled one does not offer to back again)."""
    url = f"/me/pledges/{pledge.id}"
    if pledge.status == PledgeStatus.CANCELLED:
        if backs_it_already or not taking_pledges(campaign):
            return None
        return {"kind": "back-again", "label": _("Back again"), "url": f"/campaigns/{campaign.slug}/back"}
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD and pledge.late:
        return {"kind": "card", "label": _("Pay for your pre-order"), "url": f"{url}/pay"}
    if pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD:
        if not taking_pledges(campaign):
            return None
        return {"kind": "card", "label": _("Add your card"), "url": f"{url}/card"}
    if pledge.status == PledgeStatus.ERRORED:
        return {"kind": "card", "label": _("Update your card"), "url": f"{url}/card"}
    if shipment is not None:
        return {"kind": "tracking", "carrier": shipment.carrier, "tracking_number": shipment.tracking_number}
    needs_address = (
        ships_reward
        and not isinstance(pledge.address, dict)
        and pledge.status in SHIPPABLE_PLEDGE_STATUSES
        and not addresses_locked(campaign, now)
    )
    if needs_address:
        return {"kind": "address", "label": _("Give your address"), "url": f"{url}#address"}
    return None


# The list


async def my_pledges(request: Request) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        rows, next_cursor = await page_after(
            session,
            select(Pledge).where(Pledge.backer_id == user.id),
            Pledge,
            limit=PLEDGES_PER_PAGE,
            cursor=Cursor.decode(request.query_params.get("cursor")),
            newest_first=True,
        )
        campaigns = await _by_id(session, Campaign, {p.campaign_id for p in rows})
        tiers = await _by_id(session, Tier, {p.tier_id for p in rows if p.tier_id})
        contents = await pledge_contents(session, [p.id for p in rows])
        shipped = {
            s.pledge_id: s
            for s in await session.scalars(select(Shipment).where(Shipment.pledge_id.in_([p.id for p in rows])))
        }
        backed = set(
            await session.scalars(
                select(Pledge.campaign_id).where(
                    Pledge.backer_id == user.id,
                    Pledge.campaign_id.in_(campaigns.keys()),
                    Pledge.status.in_(HOLDING_PLEDGE_STATUSES),
                )
            )
        )
    now = datetime.now(UTC)
    items = []
    for pledge in rows:
        campaign = campaigns[pledge.campaign_id]
        tier = tiers.get(pledge.tier_id) if pledge.tier_id else None
        items.append(
            {
                "url": f"/me/pledges/{pledge.id}",
                "campaign_title": campaign.title,
                "campaign_url": f"/campaigns/{campaign.slug}",
                "tier_title": tier.title if tier else None,
                "amount": pledge.amount,
                "currency": pledge.currency,
                "created_at": pledge.created_at,
                "status": pledge.status,
                "status_label": status_label(pledge.status),
                "badge": status_badge(pledge.status),
                "explanation": status_explanation(pledge, campaign, shipped.get(pledge.id)),
                "next": next_step(
                    pledge,
                    campaign,
                    pledge.id in contents,
                    shipped.get(pledge.id),
                    now,
                    backs_it_already=campaign.id in backed,
                ),
                "closed": pledge.status in ENDED_PLEDGE_STATUSES,
            }
        )
    return render(request, "pledges/list.html", {"pledges": items, "next_cursor": next_cursor})


async def _by_id(session: AsyncSession, model: Any, ids: set[Any]) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    return {row.id: row for row in await session.scalars(select(model).where(model.id.in_(ids)))}


# One pledge


async def _pledge_page(
    request: Request,
    pledge_ref: str,
    *,
    change_values: Mapping[str, str] | None = None,
    change_errors: FieldMessages | None = None,
    change_error: str | None = None,
    change_terms: PledgeTerms | None = None,
    address_values: Mapping[str, str] | None = None,
    address_errors: FieldMessages | None = None,
    address_error: str | None = None,
    cancel_error: str | None = None,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, pledge_ref, user)
        backing = await load_backing(session, str(pledge.campaign_id), user)
        shipment = await session.get(Shipment, pledge.id)
        batch = await session.scalar(
            select(Batch).join(Allocation, Allocation.batch_id == Batch.id).where(Allocation.pledge_id == pledge.id)
        )
        suggested = await suggested_address(session, pledge)
        contents = await contents_of(session, pledge.id)
        place = await queue_place(session, pledge.campaign_id, pledge.id)
        changes = (await date_history(session, pledge.campaign_id)).get(batch.number, []) if batch else []
        lines = (await lines_of(session, [pledge.id]))[pledge.id]
    context = _pledge_context(
        pledge, backing, user, contents, lines, shipment=shipment, batch=batch, suggested=suggested
    )
    context["queue"] = place
    context["date_changes"] = changes
    context["pledge"] = summary = pledge_summary(
        pledge,
        context["tier"],
        contents,
        backing.products,
        variants=backing.variants,
        add_ons_amount=add_ons_amount(lines),
    )
    context |= await card_view(gateway_of(request), pledge, backing.campaign)
    context["done"] = done_notice(request.query_params.get("done"))
    # Before any change the figures are the pledge's own.
    context["change"]["summary"] = {
        "currency": summary["currency"],
        "price": summary["price"],
        "add_ons": summary["add_ons"],
        "shipping": summary["shipping_fee"],
        "bonus": summary["bonus"],
        "total": summary["amount"],
        "ships": summary["ships"],
    }
    if change_values is not None:
        context["change_values"] = change_values
        context["change_open"] = True
        context["change"] = choice_form(
            change_values,
            backing.campaign,
            backing.tiers,
            backing.products,
            own_tier_id=pledge.tier_id,
            catalogue=backing.catalogue,
            terms=change_terms,
            weights=backing.weights,
            held=held_add_ons(lines),
        )
    context["change_errors"] = change_errors or {}
    context["change_error"] = change_error
    if address_values is not None:
        context["address_values"] = address_values
    context["address_errors"] = address_errors or {}
    context["address_error"] = address_error
    context["cancel_error"] = cancel_error
    return render(request, "pledges/detail.html", context, status=status)


def _pledge_context(
    pledge: Pledge,
    backing: Backing,
    user: User,
    contents: Contents,
    lines: Sequence[PledgeItem],
    *,
    shipment: Shipment | None,
    batch: Batch | None,
    suggested: dict[str, Any] | None,
) -> dict[str, Any]:
    campaign = backing.campaign
    now = datetime.now(UTC)
    tier = next((t for t in backing.tiers if t.id == pledge.tier_id), None)
    can_change = pledge.status in OPEN_PLEDGE_STATUSES and taking_pledges(campaign)
    ships_reward = bool(contents)
    address = visible_address(
        pledge, PledgeViewer(backer=pledge.backer_id == user.id, roles=frozenset(), campaign_status=campaign.status)
    )
    locked = addresses_locked(campaign, now)
    address_shown = ships_reward and pledge.status in ADDRESS_STATUSES and campaign.status not in NOT_SHIPPING_CAMPAIGNS
    values = values_of(pledge, lines)
    prefill = dict(suggested or {"name": user.name, "country": pledge.shipping_country or ""})
    return {
        "campaign": campaign_facts(backing),
        "tier": tier,
        "pledge": pledge_summary(pledge, tier, contents, backing.products),
        "status_label": status_label(pledge.status),
        "badge": status_badge(pledge.status),
        "explanation": status_explanation(pledge, campaign, shipment),
        "next": next_step(pledge, campaign, ships_reward, shipment, now),
        "can_change": can_change,
        "change": choice_form(
            values,
            campaign,
            backing.tiers,
            backing.products,
            own_tier_id=pledge.tier_id,
            catalogue=backing.catalogue,
            weights=backing.weights,
            held=held_add_ons(lines),
        ),
        "change_values": values,
        "change_open": False,
        "address_shown": address_shown,
        "address": address,
        "address_editable": address_shown and not locked and shipment is None,
        "address_locked_at": campaign.address_lock_at,
        "address_locked": locked,
        "address_values": {key: str(prefill.get(key) or "") for key in ADDRESS_FIELDS},
        "address_suggested": address is None and suggested is not None,
        "address_countries": country_menu(tier, [tier], campaign.currency, with_fees=False) if tier else None,
        "batch": {"number": batch.number, "status": batch_label(batch.status)} if batch else None,
        "shipment": (
            {
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "shipped_at": shipment.shipped_at,
            }
            if shipment
            else None
        ),
        "address_paid": pledge.status in SHIPPABLE_PLEDGE_STATUSES,
        # The pledge manager: add-ons and variants, while live and after the close until the address lock.
        "manage_url": f"/me/pledges/{pledge.id}/manage"
        if pledge.status in PLEDGES_IN_PLAY
        and campaign.status not in NOT_SHIPPING_CAMPAIGNS
        and not locked
        and not pledge.late
        else None,
        "delivery_shown": ships_reward and pledge.status in SHIPPABLE_PLEDGE_STATUSES,
        # A pre-order is given up until its batch is confirmed for production (payments.preorders.cancel_preorder).
        "preorder_cancel_url": f"/me/pledges/{pledge.id}/cancel-preorder"
        if pledge.late
        and pledge.cancelled_at is None
        and pledge.status in (PledgeStatus.REQUIRES_PAYMENT_METHOD, PledgeStatus.COLLECTED)
        and (batch is None or batch.status == "planned")
        else None,
    }


async def pledge_page(request: Request) -> Response:
    return await _pledge_page(request, request.path_params["pledge_id"])


async def change(request: Request) -> Response:
    form = await read_form(request)
    values = choice_values(form)
    ref = request.path_params["pledge_id"]
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, ref, user)
        backing = await load_backing(session, str(pledge.campaign_id), user)
    checked = read_choice(
        values, backing.campaign, backing.tiers, own_tier_id=pledge.tier_id, catalogue=backing.catalogue
    )
    if isinstance(checked, dict):
        return await _pledge_page(request, ref, change_values=values, change_errors=checked, status=422)
    terms = None
    if checked.variants or checked.add_ons:
        async with uow(request) as session:
            priced = await price_choice(session, backing.campaign, checked)
        if isinstance(priced, dict):
            return await _pledge_page(request, ref, change_values=values, change_errors=priced, status=422)
        terms = priced
    if form.get("action") == "update":
        return await _pledge_page(request, ref, change_values=values, change_terms=terms)
    try:
        async with uow(request) as session:
            pledge = await get_pledge(session, ref)
            lines = (await lines_of(session, [pledge.id]))[pledge.id]
            await change_pledge(session, pledge, user, kept_split_add_ons(checked.choice(), values, pledge, lines))
    except SoldOut:
        errors = {"tier": _("This reward has just sold out. Choose another one.")}
        return await _pledge_page(request, ref, change_values=values, change_errors=errors, status=409)
    except UnitsSoldOut:
        message = _("Something you chose has just sold out: nothing was changed. Check the options and add-ons.")
        return await _pledge_page(request, ref, change_values=values, change_error=message, status=409)
    except (NotLive, PledgeClosed):
        message = _("This pledge can no longer be changed: the campaign has ended or the pledge is closed.")
        return await _pledge_page(request, ref, change_values=values, change_error=message, status=409)
    except ChangedMeanwhile:
        message = _("Your pledge changed in another window meanwhile. Check it below and try again.")
        return await _pledge_page(request, ref, change_error=message, status=409)
    except InvalidInput as exc:
        errors = {extras_error_field(exc.errors[0].field, checked): extras_message(exc, checked)}
        return await _pledge_page(request, ref, change_values=values, change_errors=errors, status=422)
    return redirect(f"/me/pledges/{ref}?done=changed")


def _cancel_question(pledge: Pledge, campaign: Campaign, tier: Tier | None) -> Confirmation:
    amount = money(pledge.amount, pledge.currency)
    consequences = [
        _("Your pledge of %(amount)s for “%(tier)s” is cancelled.") % {"amount": amount, "tier": tier.title}
        if tier
        else _("Your pledge of %(amount)s is cancelled.") % {"amount": amount},
        _("Nothing has been charged, and your card will not be charged for it."),
    ]
    if tier is not None and tier.quantity_limit is not None:
        consequences.append(_("Your place in this limited reward goes back to the other backers."))
    if campaign.ends_at is not None:
        ends = datetime_(campaign.ends_at)
        consequences.append(_("You can pledge again while the campaign is live, until %(ends)s.") % {"ends": ends})
    return Confirmation(
        title=_("Cancel this pledge?"),
        subject=campaign.title,
        consequences=consequences,
        confirm_label=_("Yes, cancel my pledge"),
        back_url=f"/me/pledges/{pledge.id}",
    )


async def cancel(request: Request) -> Response:
    form = await read_form(request)
    ref = request.path_params["pledge_id"]
    if not is_confirmed(form):
        async with uow(request) as session:
            user = await viewer(request, session)
            if user is None:
                return login_redirect(request)
            pledge = await own_pledge_of(session, ref, user)
            campaign = await session.get_one(Campaign, pledge.campaign_id)
            tier = await session.get(Tier, pledge.tier_id) if pledge.tier_id else None
        if pledge.status in OPEN_PLEDGE_STATUSES and taking_pledges(campaign):
            return ask_first(request, form, _cancel_question(pledge, campaign, tier))
    try:
        async with uow(request) as session:
            user = await viewer(request, session)
            if user is None:
                return login_redirect(request)
            pledge = await own_pledge_of(session, ref, user)
            await cancel_pledge(session, pledge, user)
    except (NotLive, PledgeClosed):
        message = _("This pledge can no longer be cancelled: the campaign has ended or the pledge is closed.")
        return await _pledge_page(request, ref, cancel_error=message, status=409)
    return redirect(f"/me/pledges/{ref}?done=cancelled")


async def give_address(request: Request) -> Response:
    form = await read_form(request)
    values = {key: str(form.get(key) or "").strip() for key in ADDRESS_FIELDS}
    values["country"] = values["country"].upper()
    ref = request.path_params["pledge_id"]
    checked = validate_form(
        AddressIn,
        values,
        invalid={
            "country": _("Choose a country from the list."),
            "phone": _("A phone number has %(min)d to %(max)d digits: use digits, spaces and + ( ) - only.")
            % {"min": PHONE_DIGITS.start, "max": PHONE_DIGITS.stop - 1},
        },
    )
    if not isinstance(checked, AddressIn):
        return await _pledge_page(request, ref, address_values=values, address_errors=checked, status=422)
    address = checked.model_dump()
    try:
        if not is_confirmed(form):
            async with uow(request) as session:
                user = await viewer(request, session)
                if user is None:
                    return login_redirect(request)
                quote = await quote_address(session, ref, user, address)
            if quote.difference != 0:
                card = await card_of(gateway_of(request), await _pledge_of(request, ref))
                return ask_first(request, form, _reship_question(ref, values["country"], quote, card))
        async with uow(request) as session:
            user = await viewer(request, session)
            if user is None:
                return login_redirect(request)
        await change_address(stripe_work_of(request), user, ref, address)
    except InvalidInput:
        errors = {
            "country": _("This reward does not ship to %(country)s.") % {"country": country_name(values["country"])}
        }
        return await _pledge_page(request, ref, address_values=values, address_errors=errors, status=422)
    except (Conflict, GatewayUnavailable) as exc:
        message = _address_refusal(exc)
        status = 503 if isinstance(exc, GatewayUnavailable) else 409
        return await _pledge_page(request, ref, address_values=values, address_error=message, status=status)
    return redirect(f"/me/pledges/{ref}?done=address#address")


async def _pledge_of(request: Request, ref: str) -> Pledge:
    async with uow(request) as session:
        return await get_pledge(session, ref)


def _reship_question(ref: str, country: str, quote: ShippingQuote, card: CardDetails | None) -> Confirmation:
    """Before an address that moves money is saved: what shipping there costs, and what is charged or refunded."""
    fees = {
        "country": country_name(country),
        "new": money(quote.shipping_fee, quote.currency),
        "old": money(quote.current_shipping_fee, quote.currency),
    }
    moved = money(abs(quote.difference), quote.currency)
    consequences = [_("Shipping to %(country)s costs %(new)s instead of %(old)s.") % fees]
    if quote.difference > 0:
        consequences += [
            _("Your card ending %(last4)s will be charged %(amount)s now.") % {"last4": card.last4, "amount": moved}
            if card
            else _("Your saved card will be charged %(amount)s now.") % {"amount": moved},
            _("If the card is declined, your address stays as it was."),
        ]
        title, label = _("Pay the dearer shipping?"), _("Pay %(amount)s") % {"amount": moved}
    else:
        consequences.append(_("%(amount)s will be refunded to your card.") % {"amount": moved})
        title, label = _("Change the address and get the difference back?"), _("Change the address")
    return Confirmation(
        title=title,
        subject=country_name(country),
        consequences=consequences,
        confirm_label=label,
        back_url=f"/me/pledges/{ref}#address",
        danger=False,
    )


def _address_refusal(exc: Exception) -> str:
    """Why an address was not saved, in the backer's words."""
    if isinstance(exc, AddressLocked | ChoicesLocked):
        return _("Addresses for this campaign are locked: the shipping lists are made. Ask the maker for help.")
    if isinstance(exc, AlreadyShipped):
        return _("Your reward has already shipped. Ask the maker or the carrier to redirect it.")
    if isinstance(exc, NothingToShip | NotShipping | PledgeClosed):
        return _("This pledge has nothing to ship, so it needs no address.")
    if isinstance(exc, BatchOrdered):
        return _(
            "The batch that makes your pledge is already ordered from the factory: its shipping can no longer "
            "change. Ask the maker to send it to this address."
        )
    if isinstance(exc, ShippingCardRefused):
        return _(
            "Your card was declined, so nothing was charged and your address stays the old one. Give your pledge a "
            "new card, or try again later."
        )
    if isinstance(exc, EscrowShortForLine):
        return _(
            "The difference can no longer be refunded here: the project has been paid most of the money already "
            "(%(held)s is left to refund). Your address stays as it was; ask the maker."
        ) % {"held": money(exc.held, exc.currency)}
    if isinstance(exc, NoSavedCard):
        return _("Your pledge has no saved card to pay with.")
    if isinstance(exc, GatewayUnavailable):
        return _(
            "We could not hear back from the payment provider. Your new address is saved as soon as it confirms "
            "the charge."
        )
    return _("Your pledge is being charged right now: try again in a few minutes.")


async def address_link(request: Request) -> Response:
    """The address survey's mails link here."""
    return redirect(f"/me/pledges/{request.path_params['pledge_id']}#address")


routes = [
    Route("/me/pledges", my_pledges, methods=["GET"]),
    Route("/me/pledges/{pledge_id}", pledge_page, methods=["GET"]),
    Route("/me/pledges/{pledge_id}/change", change, methods=["POST"]),
    Route("/me/pledges/{pledge_id}/cancel", cancel, methods=["POST"]),
    Route("/me/pledges/{pledge_id}/address", give_address, methods=["POST"]),
    Route("/pledges/{pledge_id}/address", address_link, methods=["GET"]),
]
