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
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate

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
    planned = {pledge_id for batch in frozen for pledge_id in batch.pledge_ids}
    number = max((batch.number for batch in frozen), default=0)

    seen: set[uuid.UUID] = set()
    boxes: list[Mapping[str, int]] = []
    pledge_ids: list[uuid.UUID] = []
    for pledge in sorted(pledges, key=_arrival):
        if pledge.pledge_id in seen:
            raise ValueError(f"Pledge {pledge.pledge_id} is given twice.")
        seen.add(pledge.pledge_id)
        if pledge.pledge_id in planned:
            continue
        error = box_error(pledge.items, capacity)
        if error is not None:
            raise error(pledge.pledge_id)
        if needs_anything(pledge.items):
            boxes.append(pledge.items)
            pledge_ids.append(pledge.pledge_id)
    runs = place_in_runs(boxes, range(len(boxes)), specs)
    return [
        PlannedBatch(number=number + n, units=run.units, spares=run.spares, pledge_ids=pledge_ids[run.start : run.stop])
        for n, run in enumerate(runs, 1)
    ]


@dataclass(frozen=True, slots=True)
class Run:
    """A new batch as a run of consecutive pledges in arrival order: positions `start` to `stop` (excluded)."""

    start: int
    stop: int
    units: dict[str, int]
    spares: dict[str, int]


def needs_anything(items: Mapping[str, int]) -> bool:
    """Whether a pledge with these units per SKU has anything to be made (a no-reward pledge has not)."""
    return any(quantity > 0 for quantity in items.values())


def box_error(items: Mapping[str, int], capacity: Mapping[str, int]) -> Callable[[uuid.UUID], Exception] | None:
    """What a pledge with these units per SKU raises, given its id (None: it can be planned). `capacity` is
    `units_per_batch` per SKU. The items are looked at in their order, the first wrong one answering."""
    for sku, quantity in items.items():
        if quantity < 0:
            return partial(_negative_quantity, sku)
        if quantity == 0:
            continue
        largest = capacity.get(sku)
        if largest is None:
            return partial(_unknown_sku, sku)
        if quantity > largest:
            return partial(_larger_than_batch, sku, quantity, largest)
    return None


def place_in_runs(
    boxes: Sequence[Mapping[str, int]], order: Sequence[int], products: Iterable[ProductSpec]
) -> list[Run]:
    """The new batches' runs, for pledges in arrival order: `order[i]` is the index in `boxes` of what the i-th pledge
    needs made. Every box needs something and has no `box_error`; pledges with the same contents share one box (a
    campaign of 100,000 backers has a few dozen kinds).

    The rule of `plan_batches` as running sums: per SKU, the units of the pledges before each position; a batch
    starting at a position ends before the first pledge that would take any of its SKUs past the SKU's capacity,
    found by bisection. Python walks the pledges once per SKU in C (`map`, `accumulate`), never one by one."""
    specs = {product.sku: product for product in products}
    capacity = {sku: units_per_batch(spec) for sku, spec in specs.items()}
    skus = sorted({sku for box in boxes for sku, quantity in box.items() if quantity > 0})
    sums: dict[str, list[int]] = {}
    for sku in skus:
        table = [max(box.get(sku, 0), 0) for box in boxes]
        sums[sku] = list(accumulate(map(table.__getitem__, order), initial=0))
    runs: list[Run] = []
    start, end = 0, len(order)
    while start < end:
        stop = min(bisect_right(before, before[start] + capacity[sku], start + 1) - 1 for sku, before in sums.items())
        units = {sku: before[stop] - before[start] for sku, before in sums.items() if before[stop] != before[start]}
        spares = {sku: spares_for(count, specs[sku].overage_bps) for sku, count in units.items()}
        runs.append(Run(start=start, stop=stop, units=units, spares=spares))
        start = stop
    return runs


def _negative_quantity(sku: str, pledge_id: uuid.UUID) -> Exception:
    return ValueError(f"Pledge {pledge_id} has a negative quantity of {sku}.")


def _unknown_sku(sku: str, pledge_id: uuid.UUID) -> Exception:
    return ValueError(f"Pledge {pledge_id} needs {sku}, which is no product of the campaign.")


def _larger_than_batch(sku: str, quantity: int, largest: int, pledge_id: uuid.UUID) -> Exception:
    return PledgeLargerThanBatch(pledge_id, sku, quantity, largest)


def package_weight(items: Mapping[str, int], products: Mapping[str, ProductSpec], packaging_grams: int = 0) -> int:
    """One backer's package: the products' weights times their quantities, plus the campaign's packaging weight."""
    return packaging_grams + sum(products[sku].weight_grams * quantity for sku, quantity in items.items())


def _arrival(pledge: PledgeDemand) -> tuple[int, int]:
    return pledge.number, pledge.pledge_id.int
