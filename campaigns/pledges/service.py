"""Pledges: reserving a tier's slot exactly, changing and cancelling, expiring the unconfirmed.

Everything that decides "is there a slot" is one UPDATE on the tier row, conditional or held by the tier's CHECK
(remaining >= 0); nothing here calls Stripe, so no transaction of these functions ever waits on the network
(campaigns/pledges/checkout.py orchestrates the card around them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Text, bindparam, cast, delete, exists, func, literal, select, text, true, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import roles_on
from campaigns.errors import Conflict, InvalidInput, NotAllowed, NotFound
from campaigns.ids import parse_id
from campaigns.languages import VERSIONS_FACT, mail_versions
from campaigns.lifecycle import INSIDERS
from campaigns.models import AddOn, Campaign, Pledge, Product, ProductVariant, Tier, User, new_id
from campaigns.notifications import notify
from campaigns.pledges.choices import (
    MOST_ADD_ON_LINES,
    add_on_columns,
    add_on_idents,
    offered_add_ons,
    resolve_choice,
)
from campaigns.pledges.lifecycle import (
    ENDED_PLEDGE_STATUSES,
    OPEN_PLEDGE_STATUSES,
    PledgeAction,
    PledgeClosed,
    PledgeStatus,
    in_sql,
    next_status,
    outcome,
    sources,
)
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import AddOnChoice, PledgeChoice, PledgeTerms, price_pledge
from campaigns.pledges.shipping import weight_table
from campaigns.pledges.units import give_back_pledge_units, take_chosen_units, units_to_take
from campaigns.stock import UnitsSoldOut


class NotLive(Conflict):
    type = "not-live"
    title = "The campaign is not taking pledges"


class SoldOut(Conflict):
    type = "sold-out"
    title = "That reward tier is sold out"


class TooManyOpenHolds(Conflict):
    type = "too-many-open-holds"
    title = "Too many pledges from this address are waiting for a card"


@dataclass(frozen=True)
class HoldLimit:
    """One client address holds at most `most` pledges that wait for a card (`requires_payment_method`), whichever
    accounts made them: each such pledge takes one of the address's numbered hold slots 1..most, and a unique index
    over (client_address, hold_slot) of the waiting pledges makes that exact under any concurrency. `most` 0: the
    address is kept on the pledge, with no limit."""

    client_address: str
    most: int


class AlreadyPledged(Conflict):
    type = "already-pledged"
    title = "You have already pledged to this campaign"


class ChangedMeanwhile(Conflict):
    type = "changed-meanwhile"
    title = "The pledge was changed by another request"


async def reserve_tier_slot(session: AsyncSession, tier: Tier) -> None:
    """Take one slot of a limited tier, or raise SoldOut. Unlimited tiers always have room."""
    if tier.quantity_limit is None:
        return
    taken = await session.scalar(
        update(Tier)
        .where(Tier.id == tier.id, Tier.remaining > 0)
        .values(remaining=Tier.remaining - 1)
        .returning(Tier.remaining)
    )
    if taken is None:
        raise _sold_out(tier)


async def release_tier_slots(session: AsyncSession, tier_id: uuid.UUID | None, count: int = 1) -> None:
    if tier_id is None or count == 0:
        return
    await session.execute(
        update(Tier).where(Tier.id == tier_id, Tier.remaining.is_not(None)).values(remaining=Tier.remaining + count)
    )


async def live_campaign_for_pledging(
    session: AsyncSession, campaign_id: uuid.UUID | str, *, share_lock: bool = True
) -> Campaign:
    """The campaign, share-locked so that it cannot close while this transaction adds or changes a pledge (unless the
    caller re-checks that it is live under a lock of its own, as `create_pledge` does)."""
    ident = parse_id(campaign_id)
    row = None
    if ident is not None:
        query = (
            select(Campaign, func.coalesce(Campaign.ends_at > func.now(), False))
            .where(Campaign.id == ident)
            .execution_options(populate_existing=True)
        )
        if share_lock:
            query = query.with_for_update(read=True, of=Campaign)
        row = (await session.execute(query)).first()
    if row is None or row[0].status in ("draft", "in_review", "approved", "rejected"):
        raise NotFound("No such campaign.")
    campaign, open_now = row
    if campaign.status != "live" or not open_now:
        raise NotLive("This campaign is not taking pledges now.")
    return campaign


async def _tier_of(
    session: AsyncSession, campaign: Campaign, tier_id: uuid.UUID | str | None
) -> tuple[Tier | None, bool]:
    """The tier, and whether a product of its bundle has options (asked in the same query, so that a pledge of a
    tier without any costs the reservation no query more)."""
    tier, optioned, _offered = await _tier_and_add_ons(session, campaign, tier_id, ())
    return tier, optioned


async def _tier_and_add_ons(
    session: AsyncSession, campaign: Campaign, tier_id: uuid.UUID | str | None, add_ons: Sequence[AddOnChoice]
) -> tuple[Tier | None, bool, list[Any] | None]:
    """`_tier_of`, and with it the rows of the chosen add-ons for `resolve_choice` (`offered`) in the same query,
    so that a pledge of a tier plus add-ons costs no round trip more than a plain one (None: not asked, as when
    there is no tier or there are more add-on lines than a pledge may hold)."""
    if tier_id is None:
        return None, False, None
    ident = parse_id(tier_id)
    rows: list[Any] = []
    asked = 0 < len(add_ons) <= MOST_ADD_ON_LINES  # more lines: resolve_add_ons refuses them, naming the field
    if ident is not None:
        item = func.jsonb_array_elements(Tier.items).table_valued("value").render_derived()
        optioned = (
            select(Product.id)
            .select_from(Product)
            .join(item, Product.sku == func.jsonb_extract_path_text(item.c.value, "sku"))
            .where(Product.campaign_id == Tier.campaign_id, func.jsonb_array_length(Product.options) > 0)
            .exists()
        )
        query = select(Tier, optioned).where(Tier.id == ident)
        if asked:
            # One row per add-on found (the tier's repeated), or one with NULLs when none is.
            offered = offered_add_ons(campaign.id, add_on_idents(add_ons))
            query = (
                select(Tier, optioned, *add_on_columns())
                .select_from(Tier)
                .outerjoin(AddOn, offered)
                .outerjoin(Product, Product.id == AddOn.product_id)
                .where(Tier.id == ident)
            )
        rows = list((await session.execute(query)).all())
    if not rows or rows[0][0].campaign_id != campaign.id:
        raise InvalidInput("tier_id", "is not a reward tier of this campaign")
    tier, optioned_found = rows[0][0], bool(rows[0][1])
    return tier, optioned_found, [tuple(row[2:]) for row in rows] if asked else None


async def create_pledge(
    session: AsyncSession,
    *,
    campaign_id: uuid.UUID | str,
    backer: User,
    choice: PledgeChoice,
    hold_limit: HoldLimit | None = None,
) -> Pledge:
    """A new pledge holding a slot of its tier, made by one statement that is atomic by itself.

    That statement share-locks the campaign while checking that it is live (so it cannot close meanwhile), inserts
    the pledge unless the backer has an open one already, and takes a slot of a limited tier by decrementing
    `remaining`, which the tier's CHECK (remaining >= 0) refuses when it is sold out, undoing the whole statement.
    Being atomic by itself, it is safe in autocommit, where checkout.py runs it: the tier's row, which every
    pledge of a launch rush updates, is then locked only while PostgreSQL runs the statement, never across a round
    trip to the web process (bench/launch_rush.py measures it). The reads before it only validate.

    With `hold_limit`, the same statement also takes the lowest free hold slot of the client address (409
    `too-many-open-holds` when none is free). Two requests from one address that pick the same slot at once: the
    unique index lets one through and the other tries again with the next slot.
    """
    attempts = hold_limit.most if hold_limit is not None and hold_limit.most else 1
    for _attempt in range(attempts):
        try:
            return await _reserve(session, campaign_id, backer, choice, hold_limit)
        except IntegrityError as exc:
            if _violated_constraint(exc) != HOLD_SLOT_INDEX:
                raise
    # Each attempt lost its slot to another pledge from the address that took it meanwhile: `most` of them did.
    assert hold_limit is not None and hold_limit.most
    raise _too_many_holds(hold_limit)


HOLD_SLOT_INDEX = "uq_pledges_open_hold_slot"
UNITS_CHECKS = ("ck_product_variants_remaining_nonnegative", "ck_add_ons_remaining_nonnegative")


async def _reserve(
    session: AsyncSession,
    campaign_id: uuid.UUID | str,
    backer: User,
    choice: PledgeChoice,
    hold_limit: HoldLimit | None,
) -> Pledge:
    campaign = await live_campaign_for_pledging(session, campaign_id, share_lock=False)
    if campaign.maker_id == backer.id:
        raise NotAllowed("Makers cannot back their own campaign.")
    tier, optioned, offered = await _tier_and_add_ons(session, campaign, choice.tier_id, choice.add_ons)
    resolved = await resolve_choice(session, campaign, tier, choice, optioned=optioned, offered=offered)
    terms = price_pledge(campaign.currency, tier, choice, resolved, await weight_table(session, campaign))
    if tier is not None and tier.remaining == 0:
        raise _sold_out(tier)  # already seen sold out: no need to try
    pledge_id = new_id()
    live = (
        select(Campaign.id)
        .where(Campaign.id == campaign.id, Campaign.status == "live", Campaign.ends_at > func.now())
        .with_for_update(read=True)
        .cte("live")
    )
    values = {
        "id": pledge_id,
        "backer_id": backer.id,
        "tier_id": terms.tier_id,
        "amount": terms.amount,
        "bonus": terms.bonus,
        "shipping_fee": terms.shipping_fee,
        "shipping_country": terms.shipping_country,
        "currency": terms.currency,
    }
    if hold_limit is not None:
        values["client_address"] = hold_limit.client_address
    columns = Pledge.__table__.c
    constants = [literal(value, columns[name].type) for name, value in values.items()]
    inserted = ["campaign_id", *values]
    chosen = select(live.c.id, *constants)
    limited = hold_limit is not None and hold_limit.most > 0
    hold_slot: Any = literal(None, columns["hold_slot"].type)
    if hold_limit is not None and limited:
        hold_slot = _free_hold_slot(hold_limit)
        chosen = select(live.c.id, *constants, hold_slot).where(hold_slot.is_not(None))
        inserted.append("hold_slot")
    added = (
        insert(Pledge)
        .from_select(inserted, chosen)
        .on_conflict_do_nothing(
            index_elements=[Pledge.campaign_id, Pledge.backer_id],
            index_where=text(f"status NOT IN ({in_sql(ENDED_PLEDGE_STATUSES)})"),
        )
        .returning(Pledge.id)
        .cte("added")
    )
    # The pledge's lines go in with it, in the same statement: a pledge is never seen without them.
    lines = _lines_table(terms)
    itemised = insert(PledgeItem).from_select(
        ["pledge_id", *LINE_COLUMNS, "variant"],
        select(added.c.id, *(lines.c[name] for name in LINE_COLUMNS), cast(lines.c.variant, JSONB)).select_from(
            added.join(lines, true())
        ),
    )
    taken = (
        update(Tier)
        .where(Tier.id == terms.tier_id, Tier.remaining.is_not(None), exists(select(added.c.id)))
        .values(remaining=Tier.remaining - 1)
        .returning(Tier.id)
        .cte("taken")
    )
    # The units of limited variants and add-ons, taken by the same statement before the slot (each EXISTS below is
    # evaluated in turn: variants, add-ons, then the tier, by id, so two pledges never lock rows in opposite orders);
    # one that has too few left breaks its CHECK (remaining >= 0) and undoes the whole statement, slot included.
    variant_units, add_on_units = units_to_take(resolved)
    units_taken = [
        update(model)
        .where(model.id == row_id, model.remaining.is_not(None), exists(select(added.c.id)))
        .values(remaining=model.remaining - quantity)
        .returning(model.id)
        .cte(f"units_{position}")
        for position, (model, row_id, quantity) in enumerate(
            [(ProductVariant, row_id, n) for row_id, n in sorted(variant_units.items())]
            + [(AddOn, row_id, n) for row_id, n in sorted(add_on_units.items())]
        )
    ]
    statement = select(
        exists(select(live.c.id)),
        exists(select(added.c.id)),
        *(exists(units.select()) for units in units_taken),
        exists(taken.select()),
        hold_slot.is_not(None),
    ).add_cte(itemised.cte("itemised"))
    try:
        is_live, is_added, *_taken, slot_free = (await session.execute(statement)).one()
    except IntegrityError as exc:
        violated = _violated_constraint(exc)
        if tier is not None and violated == "ck_tiers_remaining_nonnegative":
            raise _sold_out(tier) from None
        if violated in UNITS_CHECKS:
            raise UnitsSoldOut("Something chosen has fewer units left than the pledge needs.") from None
        raise
    if not is_live:
        raise NotLive("This campaign is not taking pledges now.")
    if hold_limit is not None and limited and not slot_free:
        raise _too_many_holds(hold_limit)
    if not is_added:
        raise AlreadyPledged("You already back this campaign: change that pledge instead.")
    return await session.get_one(Pledge, pledge_id)


def item_rows(pledge_id: uuid.UUID, terms: PledgeTerms) -> list[dict[str, Any]]:
    """The pledge's lines as rows of `pledge_items`, in the order priced."""
    return [
        {
            "id": new_id(),
            "pledge_id": pledge_id,
            "position": position,
            "kind": item.kind,
            "ref_id": item.ref_id,
            "variant": dict(item.variant),
            "quantity": item.quantity,
            "unit_amount": item.unit_amount,
            "sku": item.sku,
            "add_on_id": item.add_on_id,
        }
        for position, item in enumerate(terms.items)
    ]


LINE_COLUMNS = ("id", "position", "kind", "ref_id", "quantity", "unit_amount", "sku", "add_on_id")


def _lines_table(terms: PledgeTerms) -> Any:
    """The lines as a table of one array a column (unnest): a handful of parameters, however many lines. The
    variants go as JSON text, cast back to jsonb by the select."""
    columns = PledgeItem.__table__.c
    rows = item_rows(new_id(), terms)
    arrays = [
        bindparam(f"line_{name}", [row[name] for row in rows], type_=ARRAY(columns[name].type)) for name in LINE_COLUMNS
    ]
    variants = bindparam("line_variant", [json.dumps(row["variant"]) for row in rows], type_=ARRAY(Text()))
    return func.unnest(*arrays, variants).table_valued(*LINE_COLUMNS, "variant").render_derived()


async def replace_items(session: AsyncSession, pledge_id: uuid.UUID, terms: PledgeTerms) -> None:
    """The pledge's lines become those of `terms`; the caller changes its amount in the same transaction."""
    await session.execute(delete(PledgeItem).where(PledgeItem.pledge_id == pledge_id))
    await session.execute(insert(PledgeItem), item_rows(pledge_id, terms))


async def lines_of(session: AsyncSession, pledge_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[PledgeItem]]:
    """Each pledge's lines, in the order priced."""
    lines: dict[uuid.UUID, list[PledgeItem]] = {pledge_id: [] for pledge_id in pledge_ids}
    found = await session.scalars(
        select(PledgeItem).where(PledgeItem.pledge_id.in_(pledge_ids)).order_by(PledgeItem.position)
    )
    for item in found:
        lines[item.pledge_id].append(item)
    return lines


def _too_many_holds(limit: HoldLimit) -> TooManyOpenHolds:
    return TooManyOpenHolds(
        f"{limit.most} pledges made from your address are waiting for a card already: add the card to one of them, "
        "or cancel one, before starting another."
    )


def _free_hold_slot(limit: HoldLimit) -> Any:
    """The lowest of the address's hold slots 1..most that none of its waiting pledges takes, or NULL. With n slots
    taken a free one is among the first n + 1, so only those are looked at (the index finds the n)."""
    taken_slots = select(Pledge.hold_slot).where(
        Pledge.client_address == limit.client_address,
        Pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD,
        Pledge.hold_slot.is_not(None),
    )
    candidates = func.least(limit.most, select(func.count()).select_from(taken_slots.subquery()).scalar_subquery() + 1)
    slots = func.generate_series(1, candidates).table_valued("slot").render_derived()
    return select(func.min(slots.c.slot)).where(slots.c.slot.not_in(taken_slots)).scalar_subquery()


def _sold_out(tier: Tier) -> SoldOut:
    return SoldOut(f"Every one of the {tier.quantity_limit} slots of {tier.title!r} is taken.")


def _violated_constraint(exc: IntegrityError) -> str | None:
    # asyncpg's error, under SQLAlchemy's DBAPI adapter, names the constraint
    name = getattr(exc.orig.__cause__, "constraint_name", None) if exc.orig is not None else None
    return name if isinstance(name, str) else None


async def get_pledge(session: AsyncSession, pledge_id: uuid.UUID | str) -> Pledge:
    ident = parse_id(pledge_id)
    pledge = await session.get(Pledge, ident) if ident else None
    if pledge is None:
        raise NotFound("No such pledge.")
    return pledge


async def is_late(session: AsyncSession, pledge_ref: uuid.UUID | str) -> bool:
    """Whether the pledge is a pre-order (False for one that does not exist: its own path says so)."""
    ident = parse_id(pledge_ref)
    late = await session.scalar(select(Pledge.late).where(Pledge.id == ident)) if ident else None
    return bool(late)


def own_pledge(pledge: Pledge, user: User) -> None:
    if pledge.backer_id != user.id:
        raise NotFound("No such pledge.")


async def act_on_own_pledge(session: AsyncSession, pledge: Pledge, user: User) -> None:
    """Only the backer acts on a pledge: those who may see it (the maker, the space's operators, admins) are refused
    (403), anyone else learns nothing of it (404)."""
    if pledge.backer_id == user.id:
        return
    campaign = await session.get_one(Campaign, pledge.campaign_id)
    if await roles_on(session, campaign, user) & INSIDERS:
        raise NotAllowed("Only the backer acts on their pledge.")
    raise NotFound("No such pledge.")


async def record_setup_intent(
    session: AsyncSession, pledge: Pledge, *, setup_intent_id: str, client_secret: str
) -> None:
    pledge.setup_intent_id = setup_intent_id
    pledge.setup_intent_client_secret = client_secret
    await session.flush()


async def record_first_setup_intent(
    session: AsyncSession, pledge_id: uuid.UUID, *, setup_intent_id: str, client_secret: str
) -> bool:
    """The card set-up of a pledge still waiting for its card and without one. False when it already had one."""
    recorded = await session.scalar(
        update(Pledge)
        .where(
            Pledge.id == pledge_id,
            Pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD,
            Pledge.setup_intent_id.is_(None),
        )
        .values(setup_intent_id=setup_intent_id, setup_intent_client_secret=client_secret)
        .returning(Pledge.id)
    )
    return recorded is not None


async def activate_pledge(session: AsyncSession, pledge_id: uuid.UUID, payment_method_id: str) -> bool:
    """requires_payment_method → active once the card is saved. False when it was no longer waiting for one."""
    activated = await session.scalar(
        update(Pledge)
        .where(Pledge.id == pledge_id, Pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD)
        .values(status=PledgeStatus.ACTIVE, payment_method_id=payment_method_id, confirmed_at=func.now())
        .returning(Pledge.id)
    )
    return activated is not None


async def change_pledge(
    session: AsyncSession,
    pledge: Pledge,
    backer: User,
    choice: PledgeChoice,
) -> Pledge:
    """Move to another tier (taking the new slot first, so sold out leaves the pledge as it was) and re-price."""
    await act_on_own_pledge(session, pledge, backer)
    if pledge.is_match:
        raise PledgeClosed("A match is changed by withdrawing it and setting up another.")
    campaign = await live_campaign_for_pledging(session, pledge.campaign_id)
    new_tier, optioned = await _tier_of(session, campaign, choice.tier_id)
    resolved = await resolve_choice(session, campaign, new_tier, choice, optioned=optioned)
    terms = price_pledge(campaign.currency, new_tier, choice, resolved, await weight_table(session, campaign))
    old_tier_id = pledge.tier_id
    moving = terms.tier_id != old_tier_id
    # The old choice's units go back and the new one's are taken (variants and add-ons before the tier's slot, as
    # a reservation takes them): sold out undoes the request's transaction, leaving the pledge as it was.
    await give_back_pledge_units(session, [pledge.id])
    await take_chosen_units(session, resolved)
    if moving and new_tier is not None:
        await reserve_tier_slot(session, new_tier)
    changed = await session.scalar(
        update(Pledge)
        .where(
            Pledge.id == pledge.id,
            Pledge.status.in_(OPEN_PLEDGE_STATUSES),
            Pledge.tier_id.is_(None) if old_tier_id is None else Pledge.tier_id == old_tier_id,
        )
        .values(
            tier_id=terms.tier_id,
            amount=terms.amount,
            bonus=terms.bonus,
            shipping_fee=terms.shipping_fee,
            shipping_country=terms.shipping_country,
        )
        .returning(Pledge.id)
    )
    if changed is None:
        next_status(pledge.status, PledgeAction.CHANGE)
        raise ChangedMeanwhile("The pledge changed while you were editing it; reload and try again.")
    await replace_items(session, pledge.id, terms)
    if moving:
        await release_tier_slots(session, old_tier_id)
    await session.refresh(pledge)
    if pledge.status == PledgeStatus.ACTIVE:
        await notify(session, backer, "pledge_changed", **await pledge_facts(session, pledge))
    return pledge


async def cancel_pledge(session: AsyncSession, pledge: Pledge, backer: User) -> Pledge:
    await act_on_own_pledge(session, pledge, backer)
    await live_campaign_for_pledging(session, pledge.campaign_id)
    was_active = pledge.status == PledgeStatus.ACTIVE
    cancelled = (
        await session.execute(
            update(Pledge)
            .where(Pledge.id == pledge.id, Pledge.status.in_(sources(PledgeAction.CANCEL)))
            .values(status=outcome(PledgeAction.CANCEL), cancelled_at=func.now())
            .returning(Pledge.tier_id)
        )
    ).one_or_none()
    if cancelled is None:
        next_status(pledge.status, PledgeAction.CANCEL)
    else:
        await give_back_pledge_units(session, [pledge.id])  # units before the slot, as the reservation takes them
        await release_tier_slots(session, cancelled.tier_id)
    await session.refresh(pledge)
    if was_active:
        await notify(session, backer, "pledge_cancelled", **await pledge_facts(session, pledge))
    return pledge


def pledge_path(pledge_id: uuid.UUID) -> str:
    return f"/me/pledges/{pledge_id}"


async def pledge_facts(session: AsyncSession, pledge: Pledge) -> dict[str, Any]:
    """What a mail about a pledge tells its backer (links are paths; the mailer puts the site's address before them)."""
    campaign = await session.get_one(Campaign, pledge.campaign_id)
    tier = await session.get(Tier, pledge.tier_id) if pledge.tier_id else None
    return {
        "pledge_id": str(pledge.id),
        "campaign_id": str(campaign.id),
        "campaign_title": campaign.title,
        "tier_title": tier.title if tier else None,
        VERSIONS_FACT: mail_versions(
            {
                "campaign_title": ("title", campaign.translations),
                "tier_title": ("title", tier.translations if tier else None),
            }
        ),
        "amount": pledge.amount,
        "currency": pledge.currency,
        "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else None,
        "path": pledge_path(pledge.id),
    }


async def give_back_unconfirmed_pledge(session: AsyncSession, pledge_id: uuid.UUID) -> None:
    """Undo a reservation whose card set-up never started (the payment service failed): the slot and the units are
    free again."""
    undone = (
        await session.execute(
            update(Pledge)
            .where(Pledge.id == pledge_id, Pledge.status == PledgeStatus.REQUIRES_PAYMENT_METHOD)
            .values(status=PledgeStatus.CANCELLED, cancelled_at=func.now())
            .returning(Pledge.tier_id)
        )
    ).one_or_none()
    if undone is not None:
        # Units before the slot, the order the reservation takes them in: a launch rush's reservations and the
        # undoing of one whose card set-up failed (a client that gave up waiting) never wait on each other.
        await give_back_pledge_units(session, [pledge_id])
        await release_tier_slots(session, undone.tier_id)


_EXPIRE_UNCONFIRMED = text(
    """
    UPDATE pledges SET status = 'cancelled', cancelled_at = now(), updated_at = now()
    WHERE status = 'requires_payment_method' AND NOT late AND created_at < now() - make_interval(secs => :hold)
    RETURNING id, tier_id
    """
)
_RELEASE_SLOTS = text(
    """
    UPDATE tiers SET remaining = tiers.remaining + freed.n
    FROM (SELECT tier_id, count(*) AS n FROM unnest(CAST(:tiers AS uuid[])) AS tier_id GROUP BY tier_id) AS freed
    WHERE tiers.id = freed.tier_id AND tiers.remaining IS NOT NULL
    """
)


async def expire_unconfirmed_pledges(session: AsyncSession, *, hold_seconds: int) -> int:
    """Cancel pledges whose card was never confirmed within the hold (one conditional UPDATE, so each once), then
    free the units of the variants and add-ons they held and their slots, in that order: the order the reservation
    takes them in, so that a sweep and a launch rush never wait on each other. Pre-orders are not theirs: their unit is
    a late reward's, and an unpaid one is given up by its buyer or the sweep's own step (payments/preorders.py)."""
    expired = (await session.execute(_EXPIRE_UNCONFIRMED, {"hold": hold_seconds})).all()
    await give_back_pledge_units(session, [row.id for row in expired])
    tiers = [row.tier_id for row in expired if row.tier_id is not None]
    if tiers:
        await session.execute(_RELEASE_SLOTS, {"tiers": tiers})
    return len(expired)
