"""The pledge manager page: one page per pledge where its backer sees what they get, picks variants, adds add-ons
(paid at once with the saved card after the close, asked once more first) or gives them back, and sees their
address and the date the contents lock.

Every change goes through the JSON API's functions (payments/add_on_charges.py, campaigns/pledges/manager.py); this
module only reads forms and puts answers into words. No JavaScript needed.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.add_ons import offered_add_ons
from campaigns.errors import Conflict, InvalidInput, NotFound
from campaigns.models import AddOn, Campaign, Pledge, Product, Tier, User
from campaigns.pledges.choices import MOST_OF_ONE_ADD_ON
from campaigns.pledges.contents import pledge_contents, units_of
from campaigns.pledges.lifecycle import OPEN_PLEDGE_STATUSES, PLEDGES_IN_PLAY, SHIPPABLE_PLEDGE_STATUSES
from campaigns.pledges.manager import (
    CLOSED_AND_KEPT,
    BatchOrdered,
    ChargeUnderWay,
    ChoicesLocked,
    NotYetPaid,
    VariantChoice,
    add_on_shipping,
    change_variants,
    check_open_for_changes,
    managed_pledge,
)
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.service import lines_of
from campaigns.pledges.viewers import PledgeViewer, visible_address
from campaigns.stock import UnitsSoldOut
from campaigns.variants import chosen_values, variants_of
from payments.add_on_charges import (
    AddOnCardRefused,
    AddOnChargeInDoubt,
    EscrowShortForLine,
    NoSavedCard,
    add_add_on,
    remove_add_on,
)
from payments.cards import card_of
from payments.gateway import GatewayError
from service.i18n import gettext as _
from service.i18n import money
from service.pages import viewer
from service.pages.checkout import login_redirect, own_pledge_of
from service.pages.confirmation import Confirmation, ask_first, is_confirmed
from service.web import gateway_of, read_form, redirect, render, stripe_work_of, uow

OPTION_PREFIX = "option:"
# The pickers' fields: "variant:<product id>:<option>" for the reward's products, "line:<line id>:<option>" for an
# add-on line whose colour (or other option) the backer chose.
TIER_PICKER, LINE_PICKER = "variant", "line"


def manager_path(pledge_id: uuid.UUID | str) -> str:
    return f"/me/pledges/{pledge_id}/manage"


def _open_now(pledge: Pledge, campaign: Campaign, locked: bool) -> bool:
    if campaign.status == "live":
        return pledge.status in OPEN_PLEDGE_STATUSES
    return campaign.status in CLOSED_AND_KEPT and pledge.status in PLEDGES_IN_PLAY and not locked


async def _page(
    request: Request,
    ref: str,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, ref, user)
        context = await _context(session, request, pledge, user)
    done = {
        "added": _("The add-on is now part of your pledge."),
        "paid": _("Paid: the add-on is now part of your pledge."),
        "removed": _("The add-on is no longer part of your pledge."),
        "refunded": _("The add-on is no longer part of your pledge; its price goes back to your card."),
        "variants": _("Your choices are saved."),
    }.get(request.query_params.get("done", ""))
    context |= {"error": error, "errors": errors or {}, "done": done}
    return render(request, "pledges/manager.html", context, status=status)


async def _context(session: AsyncSession, request: Request, pledge: Pledge, user: User) -> dict[str, Any]:
    campaign = await session.get_one(Campaign, pledge.campaign_id)
    locked = bool(
        await session.scalar(
            select(func.coalesce(Campaign.address_lock_at <= func.now(), False)).where(Campaign.id == campaign.id)
        )
    )
    open_now = _open_now(pledge, campaign, locked)
    after_close = campaign.status != "live"
    products = list(await session.scalars(select(Product).where(Product.campaign_id == campaign.id)))
    by_id = {product.id: product for product in products}
    by_sku = {product.sku: product for product in products}
    variants = await variants_of(session, [product.id for product in products if product.options])
    variant_names = {variant.sku: (by_id[variant.product_id], variant) for variant in variants}
    tier = await session.get(Tier, pledge.tier_id) if pledge.tier_id else None
    lines = (await lines_of(session, [pledge.id]))[pledge.id]
    contents = (await pledge_contents(session, [pledge.id])).get(pledge.id, {})
    card = await card_of(gateway_of(request), pledge)
    paid = after_close and pledge.status in SHIPPABLE_PLEDGE_STATUSES
    return {
        "pledge": {
            "id": str(pledge.id),
            "url": f"/me/pledges/{pledge.id}",
            "manage_url": manager_path(pledge.id),
            "amount": pledge.amount,
            "currency": pledge.currency,
            "shipping_country": pledge.shipping_country,
        },
        "campaign": {"title": campaign.title, "url": f"/campaigns/{campaign.slug}", "status": campaign.status},
        "lock_at": campaign.address_lock_at,
        "locked": locked,
        "open_now": open_now,
        "after_close": after_close,
        "can_buy": open_now and (not after_close or paid),
        "lines": [_line_view(line, tier, by_id, pledge.currency, removable=open_now) for line in lines],
        "contents": [
            {"sku": sku, "quantity": quantity, "name": _sku_name(sku, by_sku, variant_names)}
            for sku, quantity in sorted(contents.items())
        ],
        "pickers": _pickers(tier, lines, by_sku) + await _line_pickers(session, lines, by_id) if open_now else [],
        "add_ons": await _add_ons(session, campaign, pledge) if open_now else [],
        "card": {"brand": card.brand.title(), "last4": card.last4} if card else None,
        "address": visible_address(pledge, PledgeViewer.its_backer()),
        "most": MOST_OF_ONE_ADD_ON,
    }


def _sku_name(sku: str, by_sku: dict[str, Product], variant_names: dict[str, Any]) -> str:
    if sku in variant_names:
        product, variant = variant_names[sku]
        return f"{product.name} ({', '.join(chosen_values(product.options, variant.choice))})"
    product = by_sku.get(sku)
    return product.name if product else sku


def _line_view(
    line: PledgeItem, tier: Tier | None, by_id: dict[uuid.UUID, Product], currency: str, *, removable: bool
) -> dict[str, Any]:
    if line.kind == "tier":
        name = tier.title if tier else _("Reward")
        chosen = [
            f"{by_id[uuid.UUID(product_id)].name}: {', '.join(str(value) for value in choice.values())}"
            for product_id, choice in line.variant.items()
            if uuid.UUID(product_id) in by_id
        ]
        name = f"{name} ({'; '.join(chosen)})" if chosen else name
    elif line.kind == "addon":
        product = by_id.get(line.ref_id) if line.ref_id else None
        name = product.name if product else (line.sku or "")
        if line.variant and product is not None:
            name = f"{name} ({', '.join(chosen_values(product.options, line.variant))})"
    elif line.kind == "bonus":
        name = _("Extra support")
    else:
        name = _("Shipping")
    return {
        "id": str(line.id),
        "name": name,
        "quantity": line.quantity,
        "total": money(line.quantity * line.unit_amount, currency),
        "removable": removable and line.kind == "addon",
    }


def _pickers(tier: Tier | None, lines: list[PledgeItem], by_sku: dict[str, Product]) -> list[dict[str, Any]]:
    """A picker for each product of the reward that comes in variants, with the current choice."""
    tier_line = next((line for line in lines if line.kind == "tier"), None)
    if tier is None or tier_line is None:
        return []
    pickers = []
    for sku in units_of(tier.items):
        product = by_sku.get(sku)
        if product is None or not product.options:
            continue
        current = tier_line.variant.get(str(product.id), {})
        pickers.append(
            {
                "product_id": str(product.id),
                "name": product.name,
                "options": [
                    {
                        "field": f"{TIER_PICKER}:{product.id}:{option['name']}",
                        "name": option["name"],
                        "choices": [("", _("Choose"))] + [(value, value) for value in option["values"]],
                        "current": current.get(option["name"], ""),
                    }
                    for option in product.options
                ],
            }
        )
    return pickers


async def _line_pickers(
    session: AsyncSession, lines: list[PledgeItem], by_id: dict[uuid.UUID, Product]
) -> list[dict[str, Any]]:
    """A picker for each add-on line whose options the backer chose (not fixed by the maker), with the current
    choice."""
    ids = {line.add_on_id for line in lines if line.kind == "addon" and line.add_on_id is not None}
    fixed = {
        add_on.id
        for add_on in await session.scalars(select(AddOn).where(AddOn.id.in_(ids)))
        if add_on.variant_id is not None
    }
    pickers = []
    for line in lines:
        product = by_id.get(line.ref_id) if line.ref_id else None
        if line.kind != "addon" or line.add_on_id is None or line.add_on_id in fixed or not product:
            continue
        if not product.options:
            continue
        name = product.name if line.quantity == 1 else f"{line.quantity} × {product.name}"
        pickers.append(
            {
                "line_id": str(line.id),
                "name": name,
                "options": [
                    {
                        "field": f"{LINE_PICKER}:{line.id}:{option['name']}",
                        "name": option["name"],
                        "choices": [(value, value) for value in option["values"]],
                        "current": line.variant.get(option["name"], ""),
                    }
                    for option in product.options
                ],
            }
        )
    return pickers


async def _add_ons(session: AsyncSession, campaign: Campaign, pledge: Pledge) -> list[dict[str, Any]]:
    """The add-ons this pledge may take, with their price including shipping to its country."""
    offered = (await offered_add_ons(session, [campaign.id]))[campaign.id]
    shown = []
    for item in offered:
        add_on = item.add_on
        if item.tier_ids and pledge.tier_id not in item.tier_ids:
            continue
        fee = await add_on_shipping(session, campaign, pledge, add_on)
        if fee is None:
            continue
        name = item.product.name
        if item.variant is not None:
            name = f"{name} ({', '.join(chosen_values(item.product.options, item.variant.choice))})"
        shown.append(
            {
                "id": str(add_on.id),
                "name": name,
                "price": money(add_on.price, campaign.currency),
                "shipping": money(fee, campaign.currency) if fee else None,
                "total": money(add_on.price + fee, campaign.currency),
                "sold_out": add_on.remaining == 0,
                "options": []
                if item.variant is not None
                else [
                    {
                        "field": f"{OPTION_PREFIX}{option['name']}",
                        "name": option["name"],
                        "choices": [(value, value) for value in option["values"]],
                    }
                    for option in item.product.options
                ],
            }
        )
    return shown


# Forms


def _choice_of(form: FormData) -> dict[str, str]:
    return {
        str(key)[len(OPTION_PREFIX) :]: str(value)
        for key, value in form.multi_items()
        if str(key).startswith(OPTION_PREFIX) and isinstance(value, str) and value
    }


def _quantity(form: FormData) -> int | None:
    typed = str(form.get("quantity") or "1").strip()
    if not (typed.isascii() and typed.isdigit() and len(typed) <= 3):
        return None
    quantity = int(typed)
    return quantity if 1 <= quantity <= MOST_OF_ONE_ADD_ON else None


async def add(request: Request) -> Response:
    form = await read_form(request)
    ref = request.path_params["pledge_id"]
    quantity = _quantity(form)
    if quantity is None:
        message = _("Choose how many: from 1 to %(most)d.") % {"most": MOST_OF_ONE_ADD_ON}
        return await _page(request, ref, errors={"quantity": message}, status=422)
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, ref, user)
        campaign = await session.get_one(Campaign, pledge.campaign_id)
        question = None
        if campaign.status != "live" and not is_confirmed(form):
            question = await _payment_question(session, request, pledge, campaign, form, quantity)
    if question is not None:
        return ask_first(request, form, question)
    try:
        added = await add_add_on(
            stripe_work_of(request),
            user,
            ref,
            str(form.get("add_on_id") or ""),
            quantity=quantity,
            variant=_choice_of(form),
        )
    except InvalidInput as exc:
        field = exc.errors[0].field
        message = (
            _("Choose one of each of its options.")
            if field == "variant"
            else _("This add-on cannot be added to your pledge: %(why)s.") % {"why": exc.errors[0].message}
        )
        return await _page(request, ref, error=message, status=422)
    except UnitsSoldOut:
        return await _page(request, ref, error=_("This add-on has just sold out."), status=409)
    except AddOnCardRefused:
        message = _("Your card was declined: the add-on was not added and nothing was charged.")
        return await _page(request, ref, error=message, status=409)
    except (AddOnChargeInDoubt, GatewayError):
        message = _("The payment service did not answer. If the charge went through, the add-on appears here shortly.")
        return await _page(request, ref, error=message, status=503)
    except Conflict as exc:
        return await _page(request, ref, error=_conflict_message(exc), status=409)
    return redirect(f"{manager_path(ref)}?done={'paid' if added.paid else 'added'}")


async def _payment_question(
    session: AsyncSession, request: Request, pledge: Pledge, campaign: Campaign, form: FormData, quantity: int
) -> Confirmation | None:
    """After the close an add-on is paid at once: say with which card and how much, before charging it. None when
    the add-on is not one of the campaign's (the use case then refuses it with its message)."""
    offered = await _add_ons(session, campaign, pledge)
    wanted = next((item for item in offered if item["id"] == str(form.get("add_on_id") or "")), None)
    if wanted is None:
        return None
    add_on = await session.get_one(AddOn, uuid.UUID(wanted["id"]))
    fee = await add_on_shipping(session, campaign, pledge, add_on, quantity) or 0
    total = money(quantity * add_on.price + fee, campaign.currency)
    card = await card_of(gateway_of(request), pledge)
    charged = (
        _("Your card ending %(last4)s will be charged %(amount)s now.") % {"last4": card.last4, "amount": total}
        if card
        else _("Your saved card will be charged %(amount)s now.") % {"amount": total}
    )
    return Confirmation(
        title=_("Pay for this add-on now?"),
        subject=f"{quantity} × {wanted['name']}",
        consequences=[
            charged,
            _("It ships with your reward. You can give it back for a refund until the contents are locked."),
        ],
        confirm_label=_("Pay %(amount)s") % {"amount": total},
        back_url=manager_path(pledge.id),
        danger=False,
    )


def _conflict_message(exc: Conflict) -> str:
    if isinstance(exc, ChoicesLocked):
        return _("The maker has locked the contents and addresses for shipping: nothing can be changed now.")
    if isinstance(exc, BatchOrdered):
        return _("The batch that makes your pledge is already ordered from the factory: its contents stay as they are.")
    if isinstance(exc, NotYetPaid):
        return _("Your pledge has not been charged yet: add-ons can be bought once it has.")
    if isinstance(exc, ChargeUnderWay):
        return _("Your pledge is being charged right now: try again in a few minutes.")
    if isinstance(exc, NoSavedCard):
        return _("Your pledge has no saved card to pay with.")
    if isinstance(exc, EscrowShortForLine):
        return _(
            "This add-on can no longer be refunded here: the project has been paid most of the money already "
            "(%(held)s is left to refund). Your add-on stays in your pledge; ask the maker."
        ) % {"held": money(exc.held, exc.currency)}
    return _("This pledge can no longer be changed.")


async def remove(request: Request) -> Response:
    form = await read_form(request)
    ref, item = request.path_params["pledge_id"], request.path_params["item_id"]
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        pledge = await own_pledge_of(session, ref, user)
        campaign = await session.get_one(Campaign, pledge.campaign_id)
    after_close = campaign.status != "live"
    if after_close and not is_confirmed(form):
        return ask_first(
            request,
            form,
            Confirmation(
                title=_("Give this add-on back?"),
                subject=campaign.title,
                consequences=[
                    _("It is taken out of your pledge, and what you paid for it goes back to your card."),
                    _("If it is limited, someone else may take it meanwhile."),
                ],
                confirm_label=_("Yes, give it back"),
                back_url=manager_path(pledge.id),
            ),
        )
    try:
        await remove_add_on(stripe_work_of(request), user, ref, item)
    except InvalidInput:
        return await _page(request, ref, error=_("Only add-ons can be removed here."), status=422)
    except NotFound:
        return await _page(request, ref, error=_("This add-on is no longer part of your pledge."), status=404)
    except Conflict as exc:
        return await _page(request, ref, error=_conflict_message(exc), status=409)
    return redirect(f"{manager_path(ref)}?done={'refunded' if after_close else 'removed'}")


async def choose_variants(request: Request) -> Response:
    form = await read_form(request)
    ref = request.path_params["pledge_id"]
    wanted: dict[str, dict[str, str]] = {}  # the reward's products' options, by product id
    by_line: dict[str, dict[str, str]] = {}  # the add-on lines' options, by line id
    for key, value in form.multi_items():
        parts = str(key).split(":", 2)
        if len(parts) == 3 and parts[0] in (TIER_PICKER, LINE_PICKER) and isinstance(value, str) and value:
            (wanted if parts[0] == TIER_PICKER else by_line).setdefault(parts[1], {})[parts[2]] = value
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return login_redirect(request)
        await own_pledge_of(session, ref, user)
    try:
        async with uow(request) as session:
            managed = await managed_pledge(session, ref, user)
            check_open_for_changes(managed)
            lines = (await lines_of(session, [managed.pledge.id]))[managed.pledge.id]
            tier_line = next((line for line in lines if line.kind == "tier"), None)
            choices = [VariantChoice(line_id, choice) for line_id, choice in by_line.items()]
            if wanted:
                if tier_line is None:
                    raise InvalidInput("variant", "this pledge has no reward to choose for")
                choices.insert(0, VariantChoice(tier_line.id, wanted))
            await change_variants(session, managed, choices)
    except InvalidInput:
        return await _page(request, ref, error=_("Choose one of each option."), status=422)
    except UnitsSoldOut:
        message = _("That choice has just sold out: your earlier choice is kept.")
        return await _page(request, ref, error=message, status=409)
    except Conflict as exc:
        return await _page(request, ref, error=_conflict_message(exc), status=409)
    return redirect(f"{manager_path(ref)}?done=variants")


async def manager_page(request: Request) -> Response:
    return await _page(request, request.path_params["pledge_id"])


routes = [
    Route("/me/pledges/{pledge_id}/manage", manager_page, methods=["GET"]),
    Route("/me/pledges/{pledge_id}/manage/add-ons", add, methods=["POST"]),
    Route("/me/pledges/{pledge_id}/manage/variants", choose_variants, methods=["POST"]),
    Route("/me/pledges/{pledge_id}/manage/items/{item_id}/remove", remove, methods=["POST"]),
]
