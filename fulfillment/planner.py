"""Manufacturing batches from collected pledges: plain code, no database.

The rules, each one tested as a property in tests/test_planner.py:
- a batch never makes more of a SKU than the product's batch size, spares included;
- spares are counted per batch and per SKU: ``ceil(units × overage_bps / 10000)``;
- every pledge with items is in exactly one batch (a frozen batch or a new one), never split across batches;
- pledges go into batches earliest first: among the newly planned pledges, an earlier one is never in a later batch;
- a pledge without items (a no-reward pledge) is in no batch;
- the same input gives the same batches, whatever order the pledges arrive in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from campaigns.errors import Conflict

BPS = 10_000


@dataclass(frozen=True, slots=True)
class ProductSpec:
    sku: str
    batch_size: int
    overage_bps: int
    weight_grams: int


@dataclass(frozen=True, slots=True)
class PledgeDemand:
    """What one collected pledge (or paid pre-order) needs made: units per SKU, its tier's items times their quantities.

    `number` is the pledge's place in arrival order; ties are broken by `pledge_id` so that the plan is deterministic.
    """

    pledge_id: uuid.UUID
    number: int
    items: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class FrozenBatch:
    """A batch already confirmed with the factory: it never changes, and its pledges are never planned again."""

    number: int
    pledge_ids: Sequence[uuid.UUID]


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    number: int
    units: dict[str, int]
    spares: dict[str, int]
    pledge_ids: list[uuid.UUID]

    @property
    def made(self) -> dict[str, int]:
        """Units plus spares per SKU: what the factory makes for this batch."""
        return {sku: units + self.spares[sku] for sku, units in self.units.items()}


class PledgeLargerThanBatch(Conflict):
    type = "pledge-larger-than-batch"
    title = "A pledge needs more of a product than one batch makes"

    def __init__(self, pledge_id: uuid.UUID, sku: str, quantity: int, largest: int) -> None:
        self.pledge_id = pledge_id
        self.sku = sku
        super().__init__(
            f"Pledge {pledge_id} needs {quantity} × {sku}, but one batch of {sku} makes at most {largest} units "
            "besides its spares. Raise the product's batch size (or lower its overage) and plan again."
        )


def spares_for(units: int, overage_bps: int) -> int:
    """Spares for defects: the overage rounded up, so any overage above zero gives at least one spare."""
    return -(-units * overage_bps // BPS)


def units_per_batch(product: ProductSpec) -> int:
    """The most units of `product` one batch can make for pledges once its spares are counted within the batch size.

    A tier (or add-on) that needs more than this of one SKU can never be made without splitting a pledge, so product and
    tier validation should refuse it; 0 means the product cannot be made at all (e.g. batch size 1 with any overage).
    """
    low, high = 0, product.batch_size
    while low < high:
        middle = (low + high + 1) // 2
        if middle + spares_for(middle, product.overage_bps) <= product.batch_size:
            low = middle
        else:
            high = middle - 1
    return low


def plan_batches(
    pledges: Iterable[PledgeDemand], products: Iterable[ProductSpec], frozen: Sequence[FrozenBatch] = ()
) -> list[PlannedBatch]:
    """New batches for every pledge with items that no frozen batch already holds, numbered after the frozen batches.

    Pledges are taken earliest first (by `number`, then `pledge_id`) and added to the open batch; the open batch closes
    when adding the next pledge would make units + spares of any of its SKUs exceed that SKU's batch size, so SKUs
    with different batch sizes close the batch at whichever overflows first. Later, smaller pledges never fill the room
    left in an earlier batch: that would ship them before earlier backers.

    Frozen batches are neither changed nor returned: a pledge collected late (after a charge retry, say) whose turn has
    passed goes into the first new batch, after the frozen ones.

    Raises `PledgeLargerThanBatch` when one pledge alone needs more of a SKU than one batch can make (see
    `units_per_batch`): the rule that no batch makes more than its batch size admits no exception, and a pledge is never
    split. Raises ValueError for a SKU without a product, a negative quantity, or a pledge given twice.
    """
    specs = list(products)
    capacity = {product.sku: units_per_batch(product) for product in specs}
    overage = {product.sku: product.overage_bps for product in specs}
    planned = {pledge_id for batch in frozen for pledge_id in batch.pledge_ids}
    number = max((batch.number for batch in frozen), default=0)

    batches: list[PlannedBatch] = []
    units: dict[str, int] = {}
    pledge_ids: list[uuid.UUID] = []

    def close_batch() -> None:
        nonlocal number, units, pledge_ids
        number += 1
        spares = {sku: spares_for(count, overage[sku]) for sku, count in units.items()}
        batches.append(PlannedBatch(number=number, units=units, spares=spares, pledge_ids=pledge_ids))
        units, pledge_ids = {}, []

    seen: set[uuid.UUID] = set()
    for pledge in sorted(pledges, key=_arrival):
        if pledge.pledge_id in seen:
            raise ValueError(f"Pledge {pledge.pledge_id} is given twice.")
        seen.add(pledge.pledge_id)
        if pledge.pledge_id in planned:
            continue
        overflows = needs_anything = False
        for sku, quantity in pledge.items.items():
            if quantity <= 0:
                if quantity < 0:
                    raise ValueError(f"Pledge {pledge.pledge_id} has a negative quantity of {sku}.")
                continue
            largest = capacity.get(sku)
            if largest is None:
                raise ValueError(f"Pledge {pledge.pledge_id} needs {sku}, which is no product of the campaign.")
            if quantity > largest:
                raise PledgeLargerThanBatch(pledge.pledge_id, sku, quantity, largest)
            needs_anything = True
            if units.get(sku, 0) + quantity > largest:
                overflows = True
        if not needs_anything:
            continue
        if overflows:
            close_batch()
        for sku, quantity in pledge.items.items():
            if quantity:
                units[sku] = units.get(sku, 0) + quantity
        pledge_ids.append(pledge.pledge_id)
    if pledge_ids:
        close_batch()
    return batches


def package_weight(items: Mapping[str, int], products: Mapping[str, ProductSpec], packaging_grams: int = 0) -> int:
    """One backer's package: the products' weights times their quantities, plus the campaign's packaging weight."""
    return packaging_grams + sum(products[sku].weight_grams * quantity for sku, quantity in items.items())


def _arrival(pledge: PledgeDemand) -> tuple[int, int]:
    return pledge.number, pledge.pledge_id.int
