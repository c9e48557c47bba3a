"""Request and response models of fulfillment: batches, held-back pledges, shipments, the campaign's settings."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, RootModel

from campaigns.schemas import SpaceOut
from campaigns.schemas_base import RequestModel, ResponseModel, Rfc3339Datetime, UtcDatetime
from fulfillment.batch_dates import REASON_MAX
from fulfillment.models import BatchSchedule, BatchScheduleChange
from fulfillment.service import BatchSummary
from fulfillment.shipments import HeldBack, ShipmentsOutcome

MAX_PACKAGING_GRAMS = 100_000


class BatchItemOut(ResponseModel):
    sku: str
    quantity: int


def _calendar_day(value: object) -> object:
    # Strict JSON reads no date from text; a day is written YYYY-MM-DD.
    if isinstance(value, str) and len(value) == 10 and value.isascii():
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, date):
        return value
    raise ValueError("must be a day written YYYY-MM-DD, such as 2027-03-15")


CalendarDay = Annotated[date, BeforeValidator(_calendar_day)]


class BatchDatesIn(RequestModel):
    """The batch's planned production start and ship date, and why they are set or moved (backers read it)."""

    production_on: CalendarDay
    ship_on: CalendarDay
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class BatchDateChangeOut(ResponseModel):
    production_on: date
    ship_on: date
    previous_production_on: date | None
    previous_ship_on: date | None
    reason: str
    changed_at: UtcDatetime
    backers_told: int


class BatchOut(ResponseModel):
    """`items` is what the factory makes (units for the pledges plus spares), SKU by SKU; `units` and `spares` are
    its two parts. `pledges` are the pledges whose rewards it makes; `packages` are on its shipping list."""

    id: uuid.UUID
    number: int
    status: str
    items: list[BatchItemOut]
    units: list[BatchItemOut]
    spares: list[BatchItemOut]
    pledges: int
    packages: int
    shipped: int
    created_at: UtcDatetime
    confirmed_at: UtcDatetime | None
    production_started_at: UtcDatetime | None
    shipped_at: UtcDatetime | None
    # The maker's plan (null until set) and every change to it, newest first.
    production_on: date | None = None
    ship_on: date | None = None
    date_history: list[BatchDateChangeOut] = []

    @classmethod
    def of(
        cls,
        summary: BatchSummary,
        schedule: BatchSchedule | None = None,
        history: Sequence[BatchScheduleChange] = (),
    ) -> BatchOut:
        batch = summary.batch
        made = {sku: int(units) + int(batch.spares.get(sku, 0)) for sku, units in batch.units.items()}
        return cls(
            id=batch.id,
            number=batch.number,
            status=batch.status,
            items=_items(made),
            units=_items(batch.units),
            spares=_items(batch.spares),
            pledges=summary.pledges,
            packages=summary.packages,
            shipped=summary.shipped,
            created_at=batch.created_at,
            confirmed_at=batch.confirmed_at,
            production_started_at=batch.production_started_at,
            shipped_at=batch.shipped_at,
            production_on=schedule.production_on if schedule else None,
            ship_on=schedule.ship_on if schedule else None,
            date_history=[BatchDateChangeOut.model_validate(change) for change in history],
        )


def _items(units: Mapping[str, Any]) -> list[BatchItemOut]:
    return [BatchItemOut(sku=sku, quantity=int(count)) for sku, count in sorted(units.items()) if int(count)]


class BatchList(RootModel[list[BatchOut]]):
    pass


class HeldBackOut(ResponseModel):
    pledge_id: uuid.UUID
    backer_id: uuid.UUID
    backer_name: str
    tier_id: uuid.UUID | None
    shipping_country: str | None
    batch_id: uuid.UUID | None
    batch_number: int | None
    surveyed_at: UtcDatetime | None
    reminded_at: UtcDatetime | None

    @classmethod
    def of(cls, held: HeldBack) -> HeldBackOut:
        return cls.model_validate(held)


class ShipmentsOut(ResponseModel):
    received: int
    shipped: int
    corrected: int
    unchanged: int
    campaign_status: str

    @classmethod
    def of(cls, outcome: ShipmentsOutcome) -> ShipmentsOut:
        return cls.model_validate(outcome)


class TrackingIn(RequestModel):
    """One package's carrier and tracking number, checked as a line of the CSV upload is."""

    carrier: str
    tracking_number: str


class FulfillmentSettingsIn(RequestModel):
    """Both fields, always (PUT): `address_lock_at` null means addresses never lock."""

    address_lock_at: Rfc3339Datetime | None
    packaging_weight_grams: int = Field(ge=0, le=MAX_PACKAGING_GRAMS)


class FulfillmentSettingsOut(ResponseModel):
    address_lock_at: UtcDatetime | None
    packaging_weight_grams: int


class DeliveryRecordOut(ResponseModel):
    """Funded campaigns by how they were delivered (fulfillment/delivery_record.py defines each word); `months_late`
    and `months_overdue` hold one entry per late or overdue campaign, smallest first."""

    campaigns_funded: int
    delivered_on_time: int
    delivered_late: int
    months_late: list[int]
    not_yet_due: int
    overdue: int
    months_overdue: list[int]
    never_delivered: int


class SpaceWithRecordOut(SpaceOut):
    delivery_record: DeliveryRecordOut


class MakerCampaignOut(ResponseModel):
    id: uuid.UUID
    slug: str
    title: str
    status: str


class MakerOut(ResponseModel):
    """A maker's public profile: no email, nothing private; `campaigns` are their public ones, newest first."""

    id: uuid.UUID
    name: str
    campaigns: list[MakerCampaignOut]
    delivery_record: DeliveryRecordOut
