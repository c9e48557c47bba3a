"""Shipping lists out, tracking numbers in: each batch's packages as CSV, the pledges held back for want of an
address, the maker's upload of what has shipped, and the campaign's end once every package has left.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, Uuid, and_, any_, bindparam, cast, exists, func, not_, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import move_campaign
from campaigns.errors import FieldError, InvalidInput, NotAllowed, NotFound, ValidationFailed
from campaigns.ids import parse_id
from campaigns.languages import VERSIONS_FACT, mail_versions
from campaigns.lifecycle import NotFulfilling
from campaigns.models import Campaign, Pledge, User
from campaigns.pledges.contents import contains_goods, contents_of_lines, goods_lines
from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES
from campaigns.pledges.models import GOODS_KINDS, PledgeItem
from campaigns.pledges.viewers import PledgeViewer, sees_address
from fulfillment.backer_mail import BackerMail, mail_backers
from fulfillment.models import AddressRequest, Allocation, Batch, Shipment
from fulfillment.planner import package_weight
from fulfillment.service import (
    batch_of,
    fulfillment_campaign,
    has_address,
    lock_campaign,
    product_specs_by_sku,
)
from fulfillment.shipping_csv import (
    ADDRESS_FIELDS,
    ShipmentRow,
    contents_cells,
    csv_chunks,
    package_row,
    parse_shipments_csv,
    tracking_problems,
)

SHIPPED = "shipped"
ROWS_PER_FETCH = 1000
# Campaigns that take tracking numbers: a batch has been confirmed; corrections keep coming after the last package.
SHIPPING_STATUSES = ("fulfilling", "fulfilled")


# Shipping lists


async def shipping_list_batch(
    session: AsyncSession, campaign_ref: uuid.UUID | str, batch_ref: uuid.UUID | str, viewer: User
) -> Batch:
    """The batch whose shipping list `viewer` may download: the list holds backers' addresses, so only those who
    ship the rewards (the maker, the space's operators) get it, and only while the campaign ships (not an admin, not
    once it is suspended)."""
    campaign, roles = await fulfillment_campaign(session, campaign_ref, viewer)
    if not sees_address(PledgeViewer(backer=False, roles=roles, campaign_status=campaign.status)):
        raise NotAllowed(
            "A shipping list holds backers' addresses: only the maker and the sponsoring space's operators get it, "
            "while the campaign is funded and ships."
        )
    return await batch_of(session, campaign, batch_ref)


async def shipping_list_csv(session: AsyncSession, batch_id: uuid.UUID) -> AsyncIterator[str]:
    """The batch's shipping list as CSV text, in parts: one package per addressed backer, grouped by country.

    Rows are fetched ROWS_PER_FETCH at a time and written as they come, so a list of 100,000 packages never sits in
    memory whole; `session` must stay open until the last part is taken. Each row brings its pledge's goods lines as
    one text (`goods_lines`, aggregated by PostgreSQL in the same query), and each distinct text is counted, weighed
    and made into cells once (`contents_of_lines`): a long list has a few dozen kinds of box.
    """
    batch = await session.get_one(Batch, batch_id)
    campaign = await session.get_one(Campaign, batch.campaign_id)
    products = await product_specs_by_sku(session, campaign.id)
    cells: dict[str | None, tuple[str, str]] = {}  # by goods-lines text
    by_contents: dict[frozenset[tuple[str, int]], tuple[str, str]] = {}

    async def count_boxes(texts: set[str | None]) -> None:
        for goods, units in (await contents_of_lines(session, texts)).items():
            kind = frozenset(units.items())
            made = by_contents.get(kind)
            if made is None:
                weight = package_weight(units, products, campaign.packaging_weight_grams)
                made = by_contents[kind] = contents_cells(units, weight)
            cells[goods] = made

    # The address's fields are taken out of its JSON by PostgreSQL: no document is decoded in Python.
    address = [Pledge.address[name].astext for name in ADDRESS_FIELDS]
    # Core rows, not the ORM's: plain columns, as many rows as the batch has packages. The goods lines are aggregated
    # in the rows' own GROUP BY, not in a subquery joined to them: whatever PostgreSQL believes of a freshly planned
    # batch's size (one row, say), no plan can compute that subquery again for each package.
    connection = await session.connection()
    result = await connection.stream(
        select(cast(Pledge.id, Text), *address, goods_lines())  # the id as text from PostgreSQL: no UUID made
        .join(Allocation, Allocation.pledge_id == Pledge.id)
        .outerjoin(PledgeItem, and_(PledgeItem.pledge_id == Pledge.id, PledgeItem.kind.in_(GOODS_KINDS)))
        .where(Allocation.list_batch_id == batch.id, Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES))
        .group_by(Pledge.id)
        .order_by(Pledge.address["country"].astext, Pledge.number)
        .execution_options(yield_per=ROWS_PER_FETCH)
    )
    header = True
    async for rows in result.partitions():
        new = {row[-1] for row in rows}.difference(cells)
        if new:
            await count_boxes(new)
        packages = [package_row(pledge_id, fields, cells[box]) for pledge_id, *fields, box in rows]
        for part in csv_chunks(packages, header=header):
            yield part
        header = False
    if header:
        for part in csv_chunks((), header=True):
            yield part


# A batch's packages, one by one


@dataclass(frozen=True)
class Package:
    """A package on a batch's shipping list, as the fulfillment page lists it for typing its tracking number."""

    pledge_id: uuid.UUID
    number: int
    recipient: str
    city: str
    country: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None


async def batch_packages(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    batch_ref: uuid.UUID | str,
    viewer: User,
    *,
    after: int | None,
    limit: int,
) -> tuple[Batch, list[Package], int | None]:
    """The batch's packages in pledge order, `limit` after pledge number `after`, and the number to go on from (None
    at the end); for whom may read its shipping list."""
    batch = await shipping_list_batch(session, campaign_ref, batch_ref, viewer)
    query = (
        select(
            Pledge.id,
            Pledge.number,
            Pledge.address["name"].astext,
            Pledge.address["city"].astext,
            Pledge.address["country"].astext,
            Shipment.carrier,
            Shipment.tracking_number,
            Shipment.shipped_at,
        )
        .join(Allocation, Allocation.pledge_id == Pledge.id)
        .outerjoin(Shipment, Shipment.pledge_id == Pledge.id)
        .where(Allocation.list_batch_id == batch.id, Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES))
        .order_by(Pledge.number)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Pledge.number > after)
    rows = (await session.execute(query)).all()
    packages = [Package(*row) for row in rows[:limit]]
    return batch, packages, packages[-1].number if len(rows) > limit else None


# Held back


@dataclass(frozen=True)
class HeldBack:
    """A pledge whose reward waits for an address: in which batch it is made, and when its backer was asked."""

    pledge_id: uuid.UUID
    backer_id: uuid.UUID
    backer_name: str
    tier_id: uuid.UUID | None
    shipping_country: str | None
    batch_id: uuid.UUID | None
    batch_number: int | None
    surveyed_at: datetime | None
    reminded_at: datetime | None


async def has_paid_pledges(session: AsyncSession, campaign_id: uuid.UUID) -> bool:
    """Whether any backer has paid yet: until then no reward is waiting for an address."""
    paid = exists().where(Pledge.campaign_id == campaign_id, Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES))
    return bool(await session.scalar(select(paid)))


async def unaddressed_pledges(
    session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User, *, limit: int, cursor: str | None
) -> tuple[list[HeldBack], str | None]:
    """The campaign's paid pledges with a reward to ship and no address yet, earliest first; a page of them."""
    campaign, _ = await fulfillment_campaign(session, campaign_ref, viewer)
    query = (
        select(
            Pledge.id,
            Pledge.backer_id,
            User.name,
            Pledge.tier_id,
            Pledge.shipping_country,
            Batch.id,
            Batch.number,
            AddressRequest.surveyed_at,
            AddressRequest.reminded_at,
            Pledge.number,
        )
        .join(User, User.id == Pledge.backer_id)
        .outerjoin(Allocation, Allocation.pledge_id == Pledge.id)
        .outerjoin(Batch, Batch.id == Allocation.batch_id)
        .outerjoin(AddressRequest, AddressRequest.pledge_id == Pledge.id)
        .where(
            Pledge.campaign_id == campaign.id,
            Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
            contains_goods(),
            not_(has_address()),
        )
        .order_by(Pledge.number)
        .limit(limit + 1)
    )
    after = _decode_cursor(cursor)
    if after is not None:
        query = query.where(Pledge.number > after)
    rows = (await session.execute(query)).all()
    next_cursor = _encode_cursor(rows[limit - 1][-1]) if len(rows) > limit else None
    held = [
        HeldBack(pledge_id, backer_id, name, tier_id, country, batch_id, batch_number, surveyed_at, reminded_at)
        for (pledge_id, backer_id, name, tier_id, country, batch_id, batch_number, surveyed_at, reminded_at, _) in rows
    ]
    return held[:limit], next_cursor


def _encode_cursor(number: int) -> str:
    return base64.urlsafe_b64encode(f"pledge:{number}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if kind == "pledge" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidInput("cursor", "is not a cursor this API gave out")


# Shipments


@dataclass(frozen=True)
class ShipmentsOutcome:
    """What an upload did: packages newly shipped, tracking numbers corrected, rows already known as they are."""

    received: int
    shipped: int
    corrected: int
    unchanged: int
    campaign_status: str


async def record_shipments(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, csv_text: str
) -> ShipmentsOutcome:
    """The maker's tracking upload (`pledge_id, carrier, tracking_number`): all of it or nothing.

    Every line is checked before anything is applied, and every bad one is reported by its line number (422): an
    unreadable row, a duplicate, an empty carrier or tracking number, an unknown pledge, a pledge of another
    campaign, a pledge with no package on a confirmed batch's list. Then each package is marked shipped with its
    tracking number and its backer is told, once; a row with another tracking number for a package already shipped
    corrects it (and tells the backer the new number); a row already known as it is changes nothing and mails nobody.
    Once every package has shipped, the campaign is fulfilled.
    """
    campaign = await _shipping_campaign(session, campaign_ref, maker)
    rows, errors = parse_shipments_csv(csv_text)
    errors += await _shipment_errors(session, campaign.id, rows)
    if errors:
        errors.sort(key=lambda error: int(error.field.removeprefix("line ")))
        raise ValidationFailed(f"{len(errors)} line(s) of the file need fixing; nothing was applied.", errors=errors)
    return await _ship(session, campaign, rows)


async def record_shipment(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    maker: User,
    pledge_ref: uuid.UUID | str,
    *,
    carrier: str,
    tracking_number: str,
    batch_ref: uuid.UUID | str | None = None,
) -> ShipmentsOutcome:
    """One package's tracking number, typed on the fulfillment page or sent to the API: checked and applied as a line
    of the upload would be (the backer told once, a new number a correction), errors naming the field. With
    `batch_ref`, the package must be on that batch's shipping list."""
    campaign = await _shipping_campaign(session, campaign_ref, maker)
    pledge_id = parse_id(pledge_ref)
    found = None
    if pledge_id is not None:
        query = select(Pledge.id).where(Pledge.id == pledge_id, Pledge.campaign_id == campaign.id)
        if batch_ref is not None:
            batch = await batch_of(session, campaign, batch_ref)
            query = query.join(Allocation, Allocation.pledge_id == Pledge.id).where(
                Allocation.list_batch_id == batch.id
            )
        found = await session.scalar(query)
    if pledge_id is None or found is None:
        raise NotFound("No such package on this batch's list." if batch_ref is not None else "No such pledge here.")
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    errors = [FieldError(column, problem) for column, problem in tracking_problems(carrier, tracking_number)]
    row = ShipmentRow(1, pledge_id, carrier, tracking_number)
    if not errors:
        errors = [
            FieldError("pledge_id", error.message) for error in await _shipment_errors(session, campaign.id, [row])
        ]
    if errors:
        raise ValidationFailed("The tracking number was not saved.", errors=errors)
    return await _ship(session, campaign, [row])


async def _shipping_campaign(session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User) -> Campaign:
    """The maker's campaign, locked, when it takes tracking numbers."""
    campaign, _ = await fulfillment_campaign(session, campaign_ref, maker, manage=True)
    await lock_campaign(session, campaign.id)
    if campaign.status not in SHIPPING_STATUSES:
        raise NotFulfilling(f"The campaign is {campaign.status}: confirm a batch with the factory before shipping.")
    return campaign


async def _ship(session: AsyncSession, campaign: Campaign, rows: Sequence[ShipmentRow]) -> ShipmentsOutcome:
    """Checked rows applied: new packages shipped, changed numbers corrected, each backer told once."""
    arrays = {
        "campaign_id": campaign.id,
        "ids": [row.pledge_id for row in rows],
        "carriers": [row.carrier for row in rows],
        "tracking": [row.tracking_number for row in rows],
    }
    shipped = list(await session.scalars(_SHIP_NEW, arrays))
    corrected = list(await session.scalars(_CORRECT_TRACKING, arrays))
    by_id = {row.pledge_id: row for row in rows}
    await _tell_backers(session, campaign, [by_id[i] for i in shipped], corrected=False)
    await _tell_backers(session, campaign, [by_id[i] for i in corrected], corrected=True)
    await _mark_batches_shipped(session, campaign.id)
    await finish_fulfilment_if_done(session, campaign)
    return ShipmentsOutcome(
        received=len(rows),
        shipped=len(shipped),
        corrected=len(corrected),
        unchanged=len(rows) - len(shipped) - len(corrected),
        campaign_status=campaign.status,
    )


_SHIP_NEW = text(
    """
    INSERT INTO shipments (pledge_id, campaign_id, carrier, tracking_number)
    SELECT u.pledge_id, :campaign_id, u.carrier, u.tracking_number
    FROM unnest(CAST(:ids AS uuid[]), CAST(:carriers AS text[]), CAST(:tracking AS text[]))
        AS u(pledge_id, carrier, tracking_number)
    ON CONFLICT (pledge_id) DO NOTHING
    RETURNING pledge_id
    """
)

# Runs after _SHIP_NEW in the same transaction: the rows it just inserted are equal, so only corrections change.
_CORRECT_TRACKING = text(
    """
    UPDATE shipments AS s SET carrier = u.carrier, tracking_number = u.tracking_number, updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:carriers AS text[]), CAST(:tracking AS text[]))
        AS u(pledge_id, carrier, tracking_number)
    WHERE s.pledge_id = u.pledge_id AND s.campaign_id = :campaign_id
      AND (s.carrier, s.tracking_number) IS DISTINCT FROM (u.carrier, u.tracking_number)
    RETURNING s.pledge_id
    """
)


async def _shipment_errors(
    session: AsyncSession, campaign_id: uuid.UUID, rows: Sequence[ShipmentRow]
) -> list[FieldError]:
    if not rows:
        return []
    ids = bindparam("ids", [row.pledge_id for row in rows], type_=ARRAY(Uuid()))
    found = {
        pledge_id: (pledge_campaign, status, list_batch_number, list_batch_status)
        for pledge_id, pledge_campaign, status, list_batch_number, list_batch_status in await session.execute(
            select(Pledge.id, Pledge.campaign_id, Pledge.status, Batch.number, Batch.status)
            .outerjoin(Allocation, Allocation.pledge_id == Pledge.id)
            .outerjoin(Batch, Batch.id == Allocation.list_batch_id)
            .where(Pledge.id == any_(ids))
        )
    }
    errors = []
    for row in rows:
        problem = None
        if row.pledge_id not in found:
            problem = f"no pledge has the id {row.pledge_id}"
        else:
            pledge_campaign, status, batch_number, batch_status = found[row.pledge_id]
            if pledge_campaign != campaign_id:
                problem = f"pledge {row.pledge_id} belongs to another campaign"
            elif status not in SHIPPABLE_PLEDGE_STATUSES:
                problem = f"pledge {row.pledge_id} is {status}: it ships nothing"
            elif batch_number is None:
                problem = f"pledge {row.pledge_id} is on no shipping list (it has no address yet, or no reward)"
            elif batch_status == "planned":
                problem = f"pledge {row.pledge_id} is on the list of batch {batch_number}, which is not confirmed yet"
        if problem is not None:
            errors.append(FieldError(f"line {row.line}", problem))
    return errors


async def _tell_backers(
    session: AsyncSession, campaign: Campaign, rows: Sequence[ShipmentRow], *, corrected: bool
) -> None:
    if not rows:
        return
    by_id = {row.pledge_id: row for row in rows}
    ids = bindparam("ids", list(by_id), type_=ARRAY(Uuid()))
    recipients = await session.execute(
        select(Pledge.id, User.id, User.email, User.locale, User.name)
        .join(User, User.id == Pledge.backer_id)
        .where(Pledge.id == any_(ids))
        .order_by(Pledge.number)
    )
    await mail_backers(
        session,
        SHIPPED,
        (
            BackerMail(
                user_id=user_id,
                email=email,
                locale=locale,
                facts={
                    "name": name,
                    "campaign_title": campaign.title,
                    VERSIONS_FACT: mail_versions({"campaign_title": ("title", campaign.translations)}),
                    "campaign_path": f"/campaigns/{campaign.slug}",
                    "pledge_id": str(pledge_id),
                    "carrier": by_id[pledge_id].carrier,
                    "tracking_number": by_id[pledge_id].tracking_number,
                    "corrected": corrected,
                },
            )
            for pledge_id, user_id, email, locale, name in recipients
        ),
    )


async def _mark_batches_shipped(session: AsyncSession, campaign_id: uuid.UUID) -> None:
    """A confirmed batch whose every listed package has shipped is shipped."""
    listed = (
        select(Allocation.pledge_id)
        .join(Pledge, Pledge.id == Allocation.pledge_id)
        .where(Allocation.list_batch_id == Batch.id, Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES))
    )
    unshipped = listed.where(~exists().where(Shipment.pledge_id == Allocation.pledge_id))
    await session.execute(
        update(Batch)
        .where(
            Batch.campaign_id == campaign_id,
            Batch.status.in_(("confirmed", "in_production")),
            exists(listed),
            ~exists(unshipped),
        )
        .values(status="shipped", shipped_at=func.now())
        .execution_options(synchronize_session=False)
    )


def _waiting_to_ship() -> Any:
    """SQL, correlated to `campaigns`: a paid pledge with a reward that has not shipped and still can, i.e. it has an
    address, or the address lock has not passed. After the lock, a pledge without an address ships nothing."""
    return select(Pledge.id).where(
        Pledge.campaign_id == Campaign.id,
        Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
        contains_goods(),
        ~exists().where(Shipment.pledge_id == Pledge.id),
        or_(has_address(), Campaign.address_lock_at.is_(None), Campaign.address_lock_at > func.now()),
    )


async def finish_fulfilment_if_done(session: AsyncSession, campaign: Campaign) -> bool:
    """fulfilling → fulfilled once nothing waits to ship (this unlocks the last escrow milestone)."""
    if campaign.status != "fulfilling":
        return False
    done = await session.scalar(select(~exists(_waiting_to_ship())).where(Campaign.id == campaign.id))
    if not done:
        return False
    await move_campaign(session, campaign, "finish_fulfilment", frozenset({"system"}), actor_id=None)
    return True


async def finish_fulfilled_campaigns(session: AsyncSession) -> int:
    """The sweep's step: campaigns whose last packages have shipped, or whose address lock has passed with only
    unaddressed pledges left, become fulfilled."""
    due = await session.scalars(select(Campaign.id).where(Campaign.status == "fulfilling", ~exists(_waiting_to_ship())))
    finished = 0
    for campaign_id in list(due):
        campaign = await lock_campaign(session, campaign_id)
        if campaign is not None and await finish_fulfilment_if_done(session, campaign):
            finished += 1
    return finished


async def shipment_of(session: AsyncSession, pledge_id: uuid.UUID) -> dict[str, Any] | None:
    """`{carrier, tracking_number, shipped_at}` once the pledge's package has shipped, else None (for PledgeOut)."""
    shipment = await session.get(Shipment, pledge_id)
    if shipment is None:
        return None
    return {
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "shipped_at": shipment.shipped_at,
    }
