"""Backers' shipping addresses: giving one (until the campaign's address lock), the survey that asks for it when the
campaign is funded, and the one reminder to those who have not answered.

An address is only ever given by the backer: the survey suggests their last one, but a pledge counts as addressed
(and its package goes on a shipping list) only once they have confirmed it (`address_change`, then `save_address`;
after the close a change that moves the shipping goes through payments/address_changes.py, which charges or refunds
the difference first).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, case, func, not_, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from campaigns.access import roles_on
from campaigns.errors import Conflict, NotAllowed, NotFound
from campaigns.languages import VERSIONS_FACT, mail_versions
from campaigns.lifecycle import INSIDERS
from campaigns.models import Campaign, Pledge, User
from campaigns.pledges.contents import contains_goods, contents_of
from campaigns.pledges.lifecycle import CLOSED_PLEDGE_STATUSES, SHIPPABLE_PLEDGE_STATUSES, PledgeClosed
from campaigns.pledges.manager import CLOSED_AND_KEPT, BatchOrdered, reship, shipping_to
from campaigns.pledges.service import get_pledge
from fulfillment.backer_mail import BackerMail, mail_backers
from fulfillment.models import AddressRequest, Allocation, Batch, Shipment
from fulfillment.service import PLANNING_STATUSES, has_address, request_plan

ADDRESS_SURVEY = "address_survey"
ADDRESS_REMINDER = "address_reminder"
# One reminder: this many campaign days after the survey, or sooner when the address lock is this close.
REMIND_AFTER_DAYS = 3
REMIND_BEFORE_LOCK_DAYS = 2

_NOT_SHIPPING_CAMPAIGN_STATUSES = ("rejected", "unsuccessful", "suspended")


class AddressLocked(Conflict):
    type = "address-locked"
    title = "The campaign's addresses are locked"


class NothingToShip(Conflict):
    type = "nothing-to-ship"
    title = "This pledge has no reward to ship"


class AlreadyShipped(Conflict):
    type = "already-shipped"
    title = "The package has already been shipped"


class NotShipping(Conflict):
    type = "not-shipping"
    title = "The campaign ships nothing"


@dataclass(frozen=True)
class AddressChange:
    """An address the backer asks their reward to ship to, checked, with what it does to the shipping: after the
    close, in another country than the pledge's, the pledge's contents are priced again for it (`fee`); before the
    close the fee stays (the pledge's country is changed with the pledge), and so it does for another street in the
    pledge's own country."""

    pledge: Pledge  # row-locked
    campaign: Campaign  # share-locked
    address: dict[str, str]
    fee: int  # the shipping to the new address
    repriced: bool  # after the close: the new country becomes the pledge's, at `fee`
    ordered: bool  # the batch that makes the pledge is confirmed with the factory

    @property
    def difference(self) -> int:
        """What the shipping grows by (less than zero: shrinks by)."""
        return self.fee - self.pledge.shipping_fee if self.repriced else 0


async def address_change(
    session: AsyncSession, pledge_ref: uuid.UUID | str, backer: User, address: Mapping[str, str]
) -> AddressChange:
    """The backer gives (or changes) the address their reward ships to: checked, not yet saved (`save_address`).

    Refused after the campaign's address lock (409 address-locked), once the package has shipped, and for a country
    the pledge's contents do not ship to (422 on `country`, by the pricing's one rule: `manager.shipping_to`). After
    the close (a kept pledge, not a pre-order) the shipping is priced again for the new country; a change that moves
    it is refused once the pledge's batch is confirmed with the factory (409 batch-confirmed).
    """
    pledge = await get_pledge(session, pledge_ref)
    if pledge.backer_id != backer.id:
        campaign = await session.get_one(Campaign, pledge.campaign_id)
        if await roles_on(session, campaign, backer) & INSIDERS:
            raise NotAllowed("Only the backer gives the address their reward ships to.")
        raise NotFound("No such pledge.")
    campaign, now = (
        await session.execute(
            select(Campaign, func.now())
            .where(Campaign.id == pledge.campaign_id)
            .with_for_update(read=True, of=Campaign)
            .execution_options(populate_existing=True)
        )
    ).one()
    pledge = await session.get_one(Pledge, pledge.id, with_for_update=True, populate_existing=True)
    if pledge.status in CLOSED_PLEDGE_STATUSES:
        raise PledgeClosed(f"A pledge that is {pledge.status} ships nothing.")
    if campaign.status in _NOT_SHIPPING_CAMPAIGN_STATUSES:
        raise NotShipping(f"The campaign is {campaign.status}; nothing will ship.")
    if not await contents_of(session, pledge.id):
        raise NothingToShip("This pledge has no reward to ship, so it needs no address.")
    if campaign.address_lock_at is not None and now >= campaign.address_lock_at:
        raise AddressLocked(f"Addresses were locked on {_moment(campaign.address_lock_at)}; ask the maker for help.")
    if await session.get(Shipment, pledge.id) is not None:
        raise AlreadyShipped("Your package has already left; ask the maker or the carrier to redirect it.")
    fee = await shipping_to(session, campaign, pledge, address["country"])
    # Another street in the pledge's own country keeps the shipping it paid for.
    repriced = campaign.status in CLOSED_AND_KEPT and not pledge.late and address["country"] != pledge.shipping_country
    batch_status = await session.scalar(
        select(Batch.status).join(Allocation, Allocation.batch_id == Batch.id).where(Allocation.pledge_id == pledge.id)
    )
    change = AddressChange(
        pledge, campaign, dict(address), fee, repriced, ordered=batch_status not in (None, "planned")
    )
    if change.difference != 0 and change.ordered:
        raise BatchOrdered(
            "The batch that makes your pledge is already ordered from the factory: its shipping can no longer be "
            "priced again. Ask the maker to send it to this address."
        )
    return change


async def save_address(session: AsyncSession, change: AddressChange) -> Pledge:
    """The address is the pledge's (after the close its country too, and its shipping moves to the change's fee:
    the caller has charged or refunded any difference). A pledge already allocated to a batch goes on a shipping
    list at once: its own batch's while that is open, else (a late address) the first open batch's."""
    pledge, campaign = change.pledge, change.campaign
    if change.repriced:
        await reship(session, pledge, change.address, change.fee)
    else:
        await session.execute(
            update(Pledge)
            .where(Pledge.id == pledge.id)
            .values(address=change.address)
            .execution_options(synchronize_session=False)
        )
    first_open = (
        select(Batch.id)
        .where(Batch.campaign_id == campaign.id, Batch.status == "planned")
        .order_by(Batch.number)
        .limit(1)
        .scalar_subquery()
    )
    own_batch_open = select(Batch.status == "planned").where(Batch.id == Allocation.batch_id).scalar_subquery()
    listed = await session.execute(
        update(Allocation)
        .where(Allocation.pledge_id == pledge.id, Allocation.list_batch_id.is_(None))
        .values(list_batch_id=case((own_batch_open, Allocation.batch_id), else_=first_open))
        .returning(Allocation.list_batch_id)
        .execution_options(synchronize_session=False)
    )
    if any(list_batch_id is None for (list_batch_id,) in listed):
        request_plan(session, campaign.id)  # no batch is open: planning opens one for late packages
    await session.refresh(pledge)
    return pledge


async def suggested_address(session: AsyncSession, pledge: Pledge) -> dict[str, Any] | None:
    """What the address form starts with: the pledge's own address, else the one the backer gave last elsewhere."""
    if isinstance(pledge.address, dict):
        return dict(pledge.address)
    found: dict[str, Any] | None = await session.scalar(
        select(Pledge.address)
        .where(Pledge.backer_id == pledge.backer_id, Pledge.id != pledge.id, has_address())
        .order_by(Pledge.updated_at.desc())
        .limit(1)
    )
    return found


def _last_address_elsewhere() -> Any:
    """SQL, correlated to `pledges`: the address its backer gave last on another pledge."""
    previous = aliased(Pledge)
    return (
        select(previous.address)
        .where(
            previous.backer_id == Pledge.backer_id,
            previous.id != Pledge.id,
            func.jsonb_typeof(previous.address) == "object",
        )
        .order_by(previous.updated_at.desc())
        .limit(1)
        .scalar_subquery()
    )


async def send_address_surveys(session: AsyncSession, campaign_id: uuid.UUID, *, survey_seconds: int) -> int:
    """Mail every backer of a shipped reward who has not been asked yet for the address to ship it to; once each.

    Called by the planning job, so backers whose pledge is collected late are asked too. An address lock the maker set
    before the survey went out moves later, to `survey_seconds` after the first survey: backers always have that long.
    """
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None or campaign.status not in PLANNING_STATUSES:
        return 0
    asked = (
        insert(AddressRequest)
        .from_select(
            ["pledge_id", "campaign_id"],
            select(Pledge.id, Pledge.campaign_id).where(
                Pledge.campaign_id == campaign.id,
                Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
                contains_goods(),
            ),
        )
        .on_conflict_do_nothing()
        .returning(AddressRequest.pledge_id)
        .cte("asked")
    )
    rows = (await session.execute(_recipients(asked))).all()
    if rows and survey_seconds:
        await _keep_survey_window(session, campaign, survey_seconds)
    return await mail_backers(session, ADDRESS_SURVEY, (_address_mail(campaign, row) for row in rows))


async def _keep_survey_window(session: AsyncSession, campaign: Campaign, survey_seconds: int) -> None:
    first_survey = (
        select(func.min(AddressRequest.surveyed_at)).where(AddressRequest.campaign_id == campaign.id).scalar_subquery()
    )
    window_ends = first_survey + func.make_interval(0, 0, 0, 0, 0, 0, survey_seconds)
    moved = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.address_lock_at < window_ends)
        .values(address_lock_at=window_ends)
        .returning(Campaign.address_lock_at)
    )
    lock = moved.scalar_one_or_none()
    if lock is not None:
        campaign.address_lock_at = lock


async def remind_missing_addresses(session: AsyncSession, *, day_seconds: int) -> int:
    """The sweep's step: one reminder to each backer still without an address, REMIND_AFTER_DAYS after the survey or
    REMIND_BEFORE_LOCK_DAYS before the address lock, whichever comes first; none once the lock has passed."""
    now = func.now()
    due = (
        update(AddressRequest)
        .where(
            AddressRequest.reminded_at.is_(None),
            AddressRequest.pledge_id == Pledge.id,
            Campaign.id == AddressRequest.campaign_id,
            not_(has_address()),
            Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
            Campaign.status.in_(PLANNING_STATUSES),
            or_(Campaign.address_lock_at.is_(None), Campaign.address_lock_at > now),
            or_(
                AddressRequest.surveyed_at < now - _seconds(REMIND_AFTER_DAYS * day_seconds),
                Campaign.address_lock_at < now + _seconds(REMIND_BEFORE_LOCK_DAYS * day_seconds),
            ),
        )
        .values(reminded_at=now)
        .returning(AddressRequest.pledge_id)
        .cte("due")
    )
    rows = (await session.execute(_recipients(due))).all()
    campaigns = {
        c.id: c
        for c in await session.scalars(select(Campaign).where(Campaign.id.in_({row.campaign_id for row in rows})))
    }
    return await mail_backers(
        session, ADDRESS_REMINDER, (_address_mail(campaigns[row.campaign_id], row) for row in rows)
    )


def _recipients(chosen: Any) -> Any:
    """The backers of the pledges whose ids `chosen` (a CTE) returns, with what their address mail shows."""
    return (
        select(
            Pledge.id.label("pledge_id"),
            Pledge.campaign_id,
            Pledge.address,
            _last_address_elsewhere().label("last_address"),
            User.id.label("user_id"),
            User.email,
            User.locale,
            User.name,
        )
        .join(chosen, chosen.c.pledge_id == Pledge.id)
        .join(User, User.id == Pledge.backer_id)
        .order_by(Pledge.number)
    )


def _address_mail(campaign: Campaign, row: Row[Any]) -> BackerMail:
    address = row.address if isinstance(row.address, dict) else row.last_address
    return BackerMail(
        user_id=row.user_id,
        email=row.email,
        locale=row.locale,
        facts={
            "name": row.name,
            "campaign_title": campaign.title,
            VERSIONS_FACT: mail_versions({"campaign_title": ("title", campaign.translations)}),
            "pledge_id": str(row.pledge_id),
            "address_path": f"/pledges/{row.pledge_id}/address",
            "address": address if isinstance(address, dict) else None,
            "address_given": isinstance(row.address, dict),
            # Written for the reader, on their clock, by the mailer.
            "address_lock": campaign.address_lock_at.isoformat() if campaign.address_lock_at else None,
        },
    )


def _seconds(seconds: int) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, 0, float(seconds))


def _moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


async def erase_delivered_addresses(session: AsyncSession, *, retention_days: int, limit: int) -> int:
    """The sweep's step: forget the address of every pledge whose package shipped more than `retention_days` ago
    (up to `limit` a sweep). The pledge, its shipment and its money records stay; only where it went is erased."""
    shipped_long_ago = (
        select(Shipment.pledge_id)
        .join(Pledge, Pledge.id == Shipment.pledge_id)
        .where(
            Shipment.shipped_at < func.now() - func.make_interval(0, 0, 0, retention_days),
            func.jsonb_typeof(Pledge.address) == "object",
        )
        .limit(limit)
        .scalar_subquery()
    )
    erased = await session.execute(
        update(Pledge).where(Pledge.id.in_(shipped_long_ago)).values(address=null()).returning(Pledge.id)
    )
    return len(erased.all())
