"""Fulfillment's use cases: planning a funded campaign into manufacturing batches, the batches' life, the settings.

Addresses are in fulfillment/addresses.py, shipping lists and shipments in fulfillment/shipments.py; the rules of
planning itself are plain code in fulfillment/planner.py.

Every use case that changes a campaign's plan, lists or shipments locks the campaign row first (`lock_campaign`), the
same order the escrow code takes (campaign, then milestone, then escrow), so two planners never interleave and an
address given during planning waits for the plan to be written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Uuid,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import move_campaign, visible_campaign
from campaigns.errors import Conflict, InvalidInput, NotAllowed, NotFound
from campaigns.ids import parse_id
from campaigns.jobs import enqueue_job
from campaigns.late_pledges import end_late_add_ons, end_late_rewards
from campaigns.lifecycle import INSIDERS, NotFunded, Role
from campaigns.models import Campaign, Pledge, Product, ProductVariant, User, new_id
from campaigns.pledges.contents import Contents, contents_of_lines, goods_lines
from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES
from campaigns.pledges.models import GOODS_KINDS, PledgeItem
from fulfillment.models import AddressRequest, Allocation, Batch, PlanRequest, Shipment
from fulfillment.planner import ProductSpec, box_error, needs_anything, place_in_runs, units_per_batch
from payments.models import IN_DOUBT_ATTEMPT_STATUSES, AddOnCharge

PLAN_CAMPAIGN = "fulfillment.plan"

# Campaigns whose plan follows their pledges; a fulfilled or suspended campaign's plan stays as it was.
PLANNING_STATUSES = ("funded", "fulfilling")
# Memory for the sorts and hashes of planning's transaction (PostgreSQL's work_mem, set for it alone).
PLANNING_WORK_MEM = "64MB"
# Campaigns whose batches there is something to see of.
BATCH_VIEW_STATUSES = ("funded", "fulfilling", "fulfilled", "suspended")
# Pledges whose rewards are made and shipped: paid for, and not refunded in full.


class BatchNotPlanned(Conflict):
    type = "batch-not-planned"
    title = "The batch is already confirmed"


class BatchOutOfOrder(Conflict):
    type = "batch-out-of-order"
    title = "An earlier batch is not confirmed yet"


class PlanChanged(Conflict):
    type = "plan-changed"
    title = "The plan changed since you read it"


class AddOnBeingCharged(Conflict):
    type = "add-on-being-charged"
    title = "A backer of the batch is paying for an add-on"


class BatchNotConfirmed(Conflict):
    type = "batch-not-confirmed"
    title = "Only a confirmed batch goes into production"


class FulfillmentClosed(Conflict):
    type = "fulfillment-closed"
    title = "The campaign's fulfillment settings can no longer change"


def has_address() -> ColumnElement[bool]:
    """SQL: the pledge has an address (a JSON object, not SQL NULL and not JSON null)."""
    return func.coalesce(func.jsonb_typeof(Pledge.address) == "object", False)


def request_plan(session: AsyncSession, campaign_id: uuid.UUID) -> None:
    """Ask the worker to plan the campaign (and mail the address survey) once this transaction commits.

    Call it when a campaign becomes funded; the sweep also finds any campaign whose plan is stale.
    """
    enqueue_job(session, PLAN_CAMPAIGN, campaign_id)


async def replan_after_change(session: AsyncSession, campaign_id: uuid.UUID) -> None:
    """A pledge's contents changed: a funded campaign's unconfirmed batches follow. The campaign is listed in
    `plan_requests` until it is planned (the sweep asks again while it is, should the job be lost) and the plan is
    asked for after commit, once: while the campaign is listed a plan is already on its way."""
    status = await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    if status not in PLANNING_STATUSES:
        return
    listed = await session.scalar(
        pg_insert(PlanRequest)
        .values(campaign_id=campaign_id)
        .on_conflict_do_nothing()
        .returning(PlanRequest.campaign_id)
    )
    if listed is not None:
        request_plan(session, campaign_id)


# Who may see and act


async def fulfillment_campaign(
    session: AsyncSession, ref: uuid.UUID | str, user: User, *, manage: bool = False
) -> tuple[Campaign, frozenset[Role]]:
    """The campaign whose fulfillment `user` may see (its maker, its space's operators, admins) or, with `manage`,
    run (its maker). Someone else learns that a public campaign exists (403) but not that a draft does (404)."""
    campaign, roles = await visible_campaign(session, ref, user)
    if manage and "maker" not in roles:
        raise NotAllowed("Only the campaign's maker runs its fulfillment.")
    if not roles & INSIDERS:
        raise NotAllowed("Only the maker, the sponsoring space's operators and admins see the campaign's fulfillment.")
    return campaign, roles


async def lock_campaign(session: AsyncSession, campaign_id: uuid.UUID, *, share: bool = False) -> Campaign | None:
    """The campaign row, locked until the transaction ends (`share`: against planning only, not one another)."""
    campaign: Campaign | None = await session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update(read=share)
        .execution_options(populate_existing=True)
    )
    return campaign


async def batch_of(session: AsyncSession, campaign: Campaign, batch_ref: uuid.UUID | str) -> Batch:
    ident = parse_id(batch_ref)
    batch = await session.get(Batch, ident, populate_existing=True) if ident else None
    if batch is None or batch.campaign_id != campaign.id:
        raise NotFound("No such batch.")
    return batch


# Planning


@dataclass(frozen=True)
class PlanOutcome:
    """What one planning run did: batches written anew, batches kept as they were, late packages given a list."""

    written: int
    kept: int
    listed_late: int


async def plan_campaign(session: AsyncSession, campaign_id: uuid.UUID) -> PlanOutcome | None:
    """Bring the campaign's unconfirmed batches in line with its paid pledges; None when it is not being planned.

    Re-runnable: the same pledges give the same batches, and a batch that comes out as it is stored is kept with its
    id. Confirmed batches are never touched. Each pledge's package goes on its own batch's shipping list once it has
    an address; a pledge whose batch was confirmed without its address (a late address) goes on the list of the
    first batch still open, and when no batch is open a batch with nothing to make is opened for such packages.
    Raises PledgeLargerThanBatch when one pledge needs more of a SKU than one batch can make.

    Set-based: PostgreSQL gives the pledges to plan as their pledge numbers grouped by contents (a few dozen kinds for
    100,000 backers), Python finds where each new batch starts and ends (`place_in_runs`), and PostgreSQL writes the
    allocations from the numbers in one `INSERT ... SELECT`: no pledge id travels either way.
    """
    campaign = await lock_campaign(session, campaign_id)
    if campaign is None or campaign.status not in PLANNING_STATUSES:
        return None
    await session.execute(delete(PlanRequest).where(PlanRequest.campaign_id == campaign.id))
    # The read groups every paid pledge's lines: at 100,000 backers its sort spills to disk under the default 4 MB.
    await session.execute(text(f"SET LOCAL work_mem = '{PLANNING_WORK_MEM}'"))
    batches = list(await session.scalars(select(Batch).where(Batch.campaign_id == campaign.id).order_by(Batch.number)))
    open_batches = {batch.number: batch for batch in batches if batch.status == "planned"}
    after = max((batch.number for batch in batches if batch.status != "planned"), default=0)
    specs = await _product_specs(session, campaign.id)
    paid = await _paid_pledges(session, campaign.id, specs)
    runs = place_in_runs(paid.boxes, paid.kinds, specs)
    planned = [
        _NewBatch(after + n, run.units, run.spares, paid.numbers[run.start : run.stop]) for n, run in enumerate(runs, 1)
    ]
    if not planned and paid.waiting_late:
        # Late packages need a list to go on, though nothing is left to make.
        planned = [_NewBatch(number=after + 1, units={}, spares={}, pledges=[])]

    members = await _stored_members(session, [batch.id for batch in open_batches.values()])
    kept = {
        batch.number: stored
        for batch in planned
        if (stored := open_batches.get(batch.number)) is not None
        and stored.units == batch.units
        and stored.spares == batch.spares
        and members.get(stored.id, []) == batch.pledges
    }
    dropped = [stored.id for number, stored in open_batches.items() if number not in kept]
    if dropped:
        # Their allocations go with them; late packages listed on them are listed again below.
        await session.execute(delete(Batch).where(Batch.id.in_(dropped)))
    written = [batch for batch in planned if batch.number not in kept]
    ids = await _write_batches(session, campaign.id, written)

    listed_late = 0
    if planned:
        first = planned[0].number
        listed_late = await _list_late_packages(session, campaign.id, ids[first] if first in ids else kept[first].id)
    return PlanOutcome(written=len(written), kept=len(kept), listed_late=listed_late)


@dataclass(frozen=True)
class _NewBatch:
    """A batch as planned now: what it makes and the numbers of its pledges, earliest first."""

    number: int
    units: dict[str, int]
    spares: dict[str, int]
    pledges: Sequence[int]


@dataclass(frozen=True)
class _PaidPledges:
    """The pledges to plan in arrival order (`numbers`), what each needs made (`boxes[kinds[i]]`), and whether a
    pledge of a confirmed batch with an address waits for a list (a late address)."""

    numbers: list[int]
    kinds: list[int]
    boxes: list[Contents]
    waiting_late: bool


async def _paid_pledges(session: AsyncSession, campaign_id: uuid.UUID, specs: Sequence[ProductSpec]) -> _PaidPledges:
    """The paid pledges with something to make that no confirmed batch holds, in arrival order, and whether a late
    package waits for a list.

    PostgreSQL groups the pledges by their goods lines (`goods_lines`, one text a pledge) and gives each group's
    pledge numbers as one array; each distinct text is counted once (`contents_of_lines`). Raises what `box_error`
    says of the earliest pledge whose contents cannot be planned."""
    open_batch = select(Batch.id).where(Batch.campaign_id == campaign_id, Batch.status == "planned")
    frozen = (
        select(Allocation.pledge_id, Allocation.list_batch_id)
        .join(Batch, Batch.id == Allocation.batch_id)
        .where(Allocation.campaign_id == campaign_id, Batch.status != "planned")
        .subquery()
    )
    waits_for_list = and_(has_address(), or_(frozen.c.list_batch_id.is_(None), frozen.c.list_batch_id.in_(open_batch)))
    state = case((frozen.c.pledge_id.is_(None), _TO_PLAN), (waits_for_list, _WAITING_LATE), else_=_LISTED)
    per_pledge = (
        select(Pledge.number, goods_lines().label("lines"), state.label("state"))
        .join(PledgeItem, and_(PledgeItem.pledge_id == Pledge.id, PledgeItem.kind.in_(GOODS_KINDS)))
        .outerjoin(frozen, frozen.c.pledge_id == Pledge.id)
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
            # A pre-order its buyer cancelled is not made, though its refund may still be on its way.
            Pledge.cancelled_at.is_(None),
        )
        .group_by(Pledge.id, frozen.c.pledge_id, frozen.c.list_batch_id)
        .subquery()
    )
    connection = await session.connection()  # Core rows: one per kind of contents, a few dozen
    rows = (
        await connection.execute(
            select(per_pledge.c.lines, per_pledge.c.state, func.array_agg(per_pledge.c.number))
            .where(per_pledge.c.state != _LISTED)
            .group_by(per_pledge.c.lines, per_pledge.c.state)
        )
    ).all()
    contents = await contents_of_lines(session, {lines for lines, *_ in rows})
    capacity = {spec.sku: units_per_batch(spec) for spec in specs}
    waiting_late = False
    boxes: list[Contents] = []
    numbers: list[int] = []
    kinds: list[int] = []
    errors: list[tuple[int, Callable[[uuid.UUID], Exception]]] = []
    for lines, pledge_state, pledged in rows:
        items = contents[lines]
        if not items:
            continue
        if pledge_state == _WAITING_LATE:
            waiting_late = True
            continue
        error = box_error(items, capacity)
        if error is not None:
            errors.append((min(pledged), error))
        elif needs_anything(items):
            numbers.extend(pledged)
            kinds.extend([len(boxes)] * len(pledged))
            boxes.append(items)
    if errors:
        number, error = min(errors, key=lambda found: found[0])
        raise error((await session.execute(select(Pledge.id).where(Pledge.number == number))).scalar_one())
    order = sorted(range(len(numbers)), key=numbers.__getitem__)
    return _PaidPledges(
        numbers=[numbers[i] for i in order], kinds=[kinds[i] for i in order], boxes=boxes, waiting_late=waiting_late
    )


# A paid pledge's state as planning sees it: to plan; in a confirmed batch, with an address but on no open list; in a
# confirmed batch otherwise.
_TO_PLAN, _WAITING_LATE, _LISTED = 0, 1, 2


async def _stored_members(session: AsyncSession, batch_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    """The numbers of each stored batch's pledges, earliest first: one array a batch."""
    if not batch_ids:
        return {}
    rows = await session.execute(
        select(Allocation.batch_id, func.array_agg(Pledge.number))
        .join(Pledge, Pledge.id == Allocation.pledge_id)
        .where(Allocation.batch_id.in_(batch_ids))
        .group_by(Allocation.batch_id)
    )
    return {batch_id: sorted(numbers) for batch_id, numbers in rows}


async def _write_batches(
    session: AsyncSession, campaign_id: uuid.UUID, batches: Sequence[_NewBatch]
) -> dict[int, uuid.UUID]:
    """Insert new batches and their allocations in bulk; a package with an address goes on its batch's list.
    Returns the new batches' ids by number."""
    ids = {batch.number: new_id() for batch in batches}
    if not batches:
        return ids
    await session.execute(
        insert(Batch),
        [
            {"id": ids[b.number], "campaign_id": campaign_id, "number": b.number, "units": b.units, "spares": b.spares}
            for b in batches
        ],
    )
    numbers = [number for batch in batches for number in batch.pledges]
    if numbers:
        # One statement over two arrays of integers: the pledges by their numbers, and each one's batch as a position
        # in the third array, the new batches' ids (bench/fulfillment.py: 100,000 rows).
        await session.execute(
            _NEW_ALLOCATIONS,
            {
                "campaign_id": campaign_id,
                "numbers": numbers,
                "batches": [n for n, batch in enumerate(batches, 1) for _ in range(len(batch.pledges))],
                "batch_ids": [ids[batch.number] for batch in batches],
            },
        )
    return ids


_NEW_ALLOCATIONS = text(
    """
    INSERT INTO allocations (pledge_id, campaign_id, batch_id, list_batch_id)
    SELECT p.id, p.campaign_id, made.batch_id, CASE WHEN jsonb_typeof(p.address) = 'object' THEN made.batch_id END
    FROM unnest(CAST(:numbers AS bigint[]), CAST(:batches AS integer[])) AS new (number, batch)
    CROSS JOIN LATERAL (SELECT (CAST(:batch_ids AS uuid[]))[new.batch] AS batch_id) AS made
    JOIN pledges p ON p.number = new.number
    WHERE p.campaign_id = :campaign_id
    """
).bindparams(
    bindparam("campaign_id", type_=Uuid()),
    bindparam("numbers", type_=ARRAY(BigInteger())),
    bindparam("batches", type_=ARRAY(Integer())),
    bindparam("batch_ids", type_=ARRAY(Uuid())),
)


async def _list_late_packages(session: AsyncSession, campaign_id: uuid.UUID, first_open: uuid.UUID) -> int:
    """Put the packages of confirmed batches' pledges that have an address but no list on the first open list."""
    confirmed_batch = select(Batch.id).where(Batch.campaign_id == campaign_id, Batch.status != "planned")
    addressed_pledge = select(Pledge.id).where(
        Pledge.campaign_id == campaign_id, Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES), has_address()
    )
    listed = await session.execute(
        update(Allocation)
        .where(
            Allocation.campaign_id == campaign_id,
            Allocation.list_batch_id.is_(None),
            Allocation.batch_id.in_(confirmed_batch),
            Allocation.pledge_id.in_(addressed_pledge),
        )
        .values(list_batch_id=first_open)
        .returning(Allocation.pledge_id)
    )
    return len(listed.all())


async def _product_specs(session: AsyncSession, campaign_id: uuid.UUID) -> list[ProductSpec]:
    """Every SKU a pledge of the campaign may contain: each product's, and each of its variants' (made in the
    product's batches, weighing what it weighs)."""
    products = list(await session.scalars(select(Product).where(Product.campaign_id == campaign_id)))
    by_id = {product.id: product for product in products}
    variants = await session.execute(
        select(ProductVariant.product_id, ProductVariant.sku).where(ProductVariant.campaign_id == campaign_id)
    )
    skus = [(product.sku, product) for product in products]
    skus += [(sku, by_id[product_id]) for product_id, sku in variants if product_id in by_id]
    return [
        ProductSpec(sku=sku, batch_size=p.batch_size, overage_bps=p.overage_bps, weight_grams=p.weight_grams)
        for sku, p in skus
    ]


async def product_specs_by_sku(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, ProductSpec]:
    return {spec.sku: spec for spec in await _product_specs(session, campaign_id)}


# Batches


@dataclass(frozen=True)
class BatchSummary:
    """A batch with its counts: pledges it makes, packages on its shipping list, and how many of those shipped."""

    batch: Batch
    pledges: int
    packages: int
    shipped: int


async def batches_of(session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User) -> list[BatchSummary]:
    campaign, _ = await fulfillment_campaign(session, campaign_ref, viewer)
    if campaign.status not in BATCH_VIEW_STATUSES:
        raise NotFunded(f"The campaign is {campaign.status}; its batches are planned once it is funded.")
    return await batch_summaries(session, campaign.id)


async def batch_summaries(
    session: AsyncSession, campaign_id: uuid.UUID, *, batch_id: uuid.UUID | None = None
) -> list[BatchSummary]:
    query = select(Batch).where(Batch.campaign_id == campaign_id).order_by(Batch.number)
    if batch_id is not None:
        query = query.where(Batch.id == batch_id)
    batches = list(await session.scalars(query.execution_options(populate_existing=True)))
    counted = await session.execute(
        select(Allocation.batch_id, func.count())
        .where(Allocation.campaign_id == campaign_id)
        .group_by(Allocation.batch_id)
    )
    pledges = {batch_id: count for batch_id, count in counted}
    packages: dict[uuid.UUID | None, tuple[int, int]] = {}
    rows = await session.execute(
        select(Allocation.list_batch_id, func.count(), func.count(Shipment.pledge_id))
        .join(Pledge, Pledge.id == Allocation.pledge_id)
        .outerjoin(Shipment, Shipment.pledge_id == Allocation.pledge_id)
        .where(
            Allocation.campaign_id == campaign_id,
            Allocation.list_batch_id.is_not(None),
            Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
        )
        .group_by(Allocation.list_batch_id)
    )
    for list_batch_id, listed, shipped in rows:
        packages[list_batch_id] = (listed, shipped)
    return [BatchSummary(batch, pledges.get(batch.id, 0), *packages.get(batch.id, (0, 0))) for batch in batches]


async def confirm_batch(
    session: AsyncSession, campaign_ref: uuid.UUID | str, batch_ref: uuid.UUID | str, maker: User
) -> BatchSummary:
    """The maker has ordered the batch from the factory: from now on it never changes.

    The plan is brought up to date first, so what is confirmed is exactly what the pledges ask for now; if that
    changes the batch the maker was looking at, nothing is confirmed (409 plan-changed). Batches are confirmed in
    order, earliest backers first. The first confirmation makes the campaign `fulfilling` and unlocks the escrow
    milestone that waits for the first batch; confirming the last open batch ends late pledges for the rewards in it.
    While an add-on of one of the batch's pledges is being charged (or its charge is in doubt), 409
    `add-on-being-charged`: the line joins the pledge only once paid, and the batch must make it.
    """
    campaign, roles = await fulfillment_campaign(session, campaign_ref, maker, manage=True)
    await lock_campaign(session, campaign.id)  # refreshes `campaign`: the session holds one object per row
    if campaign.status not in PLANNING_STATUSES:
        raise NotFunded(f"The campaign is {campaign.status}; batches are confirmed while it is funded or fulfilling.")
    batch = await batch_of(session, campaign, batch_ref)
    if batch.status != "planned":
        raise BatchNotPlanned(f"Batch {batch.number} is already {batch.status}.")
    ident, number = batch.id, batch.number
    await plan_campaign(session, campaign.id)
    if await session.scalar(select(Batch.id).where(Batch.id == ident)) is None:
        raise PlanChanged("Pledges changed since you read the batches and the plan with them; reload the batches.")
    # An add-on paid after the close joins its pledge once its charge succeeds: the batch waits for it, or would be
    # ordered without it.
    charging = await session.scalar(
        select(AddOnCharge.id)
        .join(Allocation, Allocation.pledge_id == AddOnCharge.pledge_id)
        .where(Allocation.batch_id == ident, AddOnCharge.status.in_(IN_DOUBT_ATTEMPT_STATUSES))
        .limit(1)
    )
    if charging is not None:
        raise AddOnBeingCharged(
            f"A backer of batch {number} is paying for an add-on right now; confirm again once the charge is settled."
        )
    earlier = await session.scalar(
        select(Batch.number)
        .where(Batch.campaign_id == campaign.id, Batch.status == "planned", Batch.number < number)
        .order_by(Batch.number)
        .limit(1)
    )
    if earlier is not None:
        raise BatchOutOfOrder(f"Confirm batch {earlier} first: batches are made in order, earliest backers first.")
    await session.execute(
        update(Batch)
        .where(Batch.id == ident, Batch.status == "planned")
        .values(status="confirmed", confirmed_at=func.now())
    )
    await _end_late_rewards_of_last_batch(session, campaign, ident, number, maker)
    first_confirmed = func.coalesce(Campaign.first_batch_confirmed_at, func.now())
    if campaign.status == "funded":
        await move_campaign(
            session, campaign, "start_fulfilment", roles, actor_id=maker.id, first_batch_confirmed_at=first_confirmed
        )
    else:
        await session.execute(
            update(Campaign).where(Campaign.id == campaign.id).values(first_batch_confirmed_at=first_confirmed)
        )
    return (await batch_summaries(session, campaign.id, batch_id=ident))[0]


async def _end_late_rewards_of_last_batch(
    session: AsyncSession, campaign: Campaign, batch_id: uuid.UUID, number: int, maker: User
) -> None:
    """The batch just confirmed was the campaign's last open one: late pledges for the rewards it makes end, as if the
    maker had ended them (there is no open batch left for them to join), and so do the late add-ons it makes."""
    still_open = await session.scalar(
        select(Batch.id).where(Batch.campaign_id == campaign.id, Batch.status == "planned").limit(1)
    )
    if still_open is not None:
        return
    tiers = await session.scalars(
        select(Pledge.tier_id)
        .distinct()
        .join(Allocation, Allocation.pledge_id == Pledge.id)
        .where(Allocation.batch_id == batch_id, Pledge.tier_id.is_not(None))
    )
    await end_late_rewards(session, campaign, [tier for tier in tiers if tier is not None], maker.id, last_batch=number)
    add_ons = await session.scalars(
        select(PledgeItem.add_on_id)
        .distinct()
        .join(Allocation, Allocation.pledge_id == PledgeItem.pledge_id)
        .where(Allocation.batch_id == batch_id, PledgeItem.add_on_id.is_not(None))
    )
    await end_late_add_ons(session, campaign, [one for one in add_ons if one is not None], maker.id, last_batch=number)


async def start_batch_production(
    session: AsyncSession, campaign_ref: uuid.UUID | str, batch_ref: uuid.UUID | str, maker: User
) -> BatchSummary:
    """The factory has started making a confirmed batch."""
    campaign, _ = await fulfillment_campaign(session, campaign_ref, maker, manage=True)
    batch = await batch_of(session, campaign, batch_ref)
    started = await session.scalar(
        update(Batch)
        .where(Batch.id == batch.id, Batch.status == "confirmed")
        .values(status="in_production", production_started_at=func.now())
        .returning(Batch.id)
    )
    if started is None:
        await session.refresh(batch)
        raise BatchNotConfirmed(f"Batch {batch.number} is {batch.status.replace('_', ' ')}, not confirmed.")
    return (await batch_summaries(session, campaign.id, batch_id=batch.id))[0]


# Settings

_SETTINGS_CLOSED = ("rejected", "unsuccessful", "fulfilled", "suspended")


async def fulfillment_settings(session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User) -> Campaign:
    campaign, _ = await fulfillment_campaign(session, campaign_ref, viewer)
    return campaign


class LockTooEarly(InvalidInput):
    """The address lock asked for comes before the earliest one allowed (`earliest`)."""

    def __init__(self, earliest: datetime, *, was_set: bool) -> None:
        self.earliest = earliest
        self.was_set = was_set
        whole_second = earliest.replace(microsecond=0) + timedelta(seconds=1 if earliest.microsecond else 0)
        moment = whole_second.astimezone(UTC).isoformat().replace("+00:00", "Z")
        super().__init__(
            "address_lock_at",
            f"the earliest allowed is {moment}: backers have the days after the address survey to answer"
            + (", and a lock once set only moves later" if was_set else ""),
        )


def earliest_address_lock(campaign: Any, *, survey_seconds: int) -> Any:
    """SQL: the earliest address lock `campaign` (its table or row, in SQL) may be given: `survey_seconds` after its
    address survey first went out (after now while none has), and never before the lock already set."""
    first_survey = (
        select(func.min(AddressRequest.surveyed_at)).where(AddressRequest.campaign_id == campaign.id).scalar_subquery()
    )
    after_survey = func.coalesce(first_survey, func.now()) + func.make_interval(0, 0, 0, 0, 0, 0, survey_seconds)
    return func.greatest(after_survey, campaign.address_lock_at)  # greatest() passes over a NULL lock


async def set_fulfillment_settings(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    maker: User,
    *,
    address_lock_at: datetime | None,
    packaging_weight_grams: int,
    survey_seconds: int,
) -> Campaign:
    """The moment after which addresses can no longer change (None: never), and the packaging's weight in grams.

    Backers keep `survey_seconds` after the address survey to answer it: an earlier lock is refused (422 naming
    `address_lock_at`, with the earliest allowed), and a lock once set moves only later (it is not taken away
    either: backers were told it). The lock as it is may always be sent again.
    """
    campaign, _ = await fulfillment_campaign(session, campaign_ref, maker, manage=True)
    lock_allowed: ColumnElement[bool]
    if address_lock_at is None:
        lock_allowed = Campaign.address_lock_at.is_(None)
    else:
        lock_allowed = or_(
            Campaign.address_lock_at == address_lock_at,
            earliest_address_lock(Campaign, survey_seconds=survey_seconds) <= address_lock_at,
        )
    changed = await session.scalar(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.not_in(_SETTINGS_CLOSED), lock_allowed)
        .values(address_lock_at=address_lock_at, packaging_weight_grams=packaging_weight_grams)
        .returning(Campaign.id)
    )
    await session.refresh(campaign)
    if changed is None:
        if campaign.status in _SETTINGS_CLOSED:
            raise FulfillmentClosed(f"The campaign is {campaign.status}; its fulfillment settings are final.")
        earliest: datetime = (
            await session.execute(
                select(earliest_address_lock(Campaign, survey_seconds=survey_seconds)).where(Campaign.id == campaign.id)
            )
        ).scalar_one()
        raise LockTooEarly(earliest, was_set=campaign.address_lock_at is not None)
    return campaign
