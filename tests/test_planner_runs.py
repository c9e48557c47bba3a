"""Planning by runs over shared boxes (what `plan_campaign` does) gives the batches `plan_batches` gives pledge by
pledge."""

from __future__ import annotations

import random
import uuid

from fulfillment.planner import PledgeDemand, ProductSpec, place_in_runs, plan_batches, units_per_batch

PRODUCTS = [ProductSpec("BOARD", 500, 300, 120), ProductSpec("CASE", 300, 0, 80), ProductSpec("CABLE", 90, 1000, 10)]
BOXES = [{"BOARD": 1}, {"BOARD": 1, "CASE": 1}, {"BOARD": 2, "CABLE": 3}, {"CABLE": 1}, {"CASE": 4, "CABLE": 0}]


def test_pledges_sharing_a_few_kinds_of_box_are_cut_into_the_batches_planned_pledge_by_pledge() -> None:
    rng = random.Random(7)
    for _ in range(20):
        kinds = [rng.randrange(len(BOXES)) for _ in range(rng.randrange(1, 3_000))]
        pledges = [PledgeDemand(uuid.UUID(int=n + 1), n, BOXES[kind]) for n, kind in enumerate(kinds)]

        runs = place_in_runs(BOXES, kinds, PRODUCTS)
        batches = plan_batches(pledges, PRODUCTS)

        assert [(run.units, run.spares) for run in runs] == [(batch.units, batch.spares) for batch in batches]
        assert [[pledges[n].pledge_id for n in range(run.start, run.stop)] for run in runs] == [
            batch.pledge_ids for batch in batches
        ]
        assert runs[-1].stop == len(kinds)
        assert [(run.start, run.stop) for run in runs] == one_by_one(kinds)


def one_by_one(kinds: list[int]) -> list[tuple[int, int]]:
    """The rule walked pledge by pledge: a batch closes before the first pledge that would overflow a SKU."""
    capacity = {product.sku: units_per_batch(product) for product in PRODUCTS}
    runs: list[tuple[int, int]] = []
    start, units = 0, dict.fromkeys(capacity, 0)
    for position, kind in enumerate(kinds):
        box = BOXES[kind]
        if any(units[sku] + quantity > capacity[sku] for sku, quantity in box.items()):
            runs.append((start, position))
            start, units = position, dict.fromkeys(capacity, 0)
        for sku, quantity in box.items():
            units[sku] += quantity
    return [*runs, (start, len(kinds))]
