from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fulfillment.planner import (
    FrozenBatch,
    PlannedBatch,
    PledgeDemand,
    PledgeLargerThanBatch,
    ProductSpec,
    package_weight,
    plan_batches,
    spares_for,
    units_per_batch,
)


def pledge(n: int, **items: int) -> PledgeDemand:
    return PledgeDemand(pledge_id=uuid.UUID(int=n), number=n, items=items)


def ids(*numbers: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=n) for n in numbers]


BOARD = ProductSpec(sku="BOARD", batch_size=100, overage_bps=500, weight_grams=120)
CASE = ProductSpec(sku="CASE", batch_size=1000, overage_bps=0, weight_grams=80)


# Worked examples


def test_spares_are_the_overage_rounded_up_and_counted_within_the_batch() -> None:
    assert spares_for(90, 500) == 5  # 4.5 rounds up
    assert spares_for(1, 1) == 1
    assert spares_for(0, 500) == 0
    assert spares_for(200, 0) == 0
    assert units_per_batch(BOARD) == 95  # 95 + 5 spares = 100; 96 + 5 = 101 would not fit
    assert units_per_batch(ProductSpec("X", 1, 1, 0)) == 0
    assert units_per_batch(ProductSpec("X", 7, 0, 0)) == 7


def test_a_batch_closes_when_the_next_pledge_would_overflow_it_with_its_spares() -> None:
    batches = plan_batches([pledge(n, BOARD=10) for n in range(1, 21)], [BOARD])

    assert [b.number for b in batches] == [1, 2, 3]
    assert batches[0] == PlannedBatch(number=1, units={"BOARD": 90}, spares={"BOARD": 5}, pledge_ids=ids(*range(1, 10)))
    assert batches[0].made == {"BOARD": 95}
    assert batches[1].pledge_ids == ids(*range(10, 19))
    assert batches[2] == PlannedBatch(number=3, units={"BOARD": 20}, spares={"BOARD": 1}, pledge_ids=ids(19, 20))


def test_the_sku_with_the_smallest_batch_closes_the_batch_for_all() -> None:
    small = ProductSpec(sku="BOARD", batch_size=3, overage_bps=0, weight_grams=120)
    batches = plan_batches([pledge(n, BOARD=1, CASE=1) for n in range(1, 8)], [small, CASE])

    assert [b.pledge_ids for b in batches] == [ids(1, 2, 3), ids(4, 5, 6), ids(7)]
    assert [b.units for b in batches] == [{"BOARD": 3, "CASE": 3}, {"BOARD": 3, "CASE": 3}, {"BOARD": 1, "CASE": 1}]


def test_a_later_small_pledge_never_jumps_ahead_into_an_earlier_batch() -> None:
    batches = plan_batches([pledge(1, BOARD=90), pledge(2, BOARD=10), pledge(3, BOARD=1)], [BOARD])

    assert [b.pledge_ids for b in batches] == [ids(1), ids(2, 3)]


def test_pledges_without_items_are_in_no_batch() -> None:
    batches = plan_batches([pledge(1), pledge(2, BOARD=1), pledge(3, BOARD=0)], [BOARD])

    assert [b.pledge_ids for b in batches] == [ids(2)]
    assert plan_batches([pledge(1), pledge(3, BOARD=0)], [BOARD]) == []
    assert plan_batches([], [BOARD]) == []


def test_a_pledge_larger_than_one_batch_is_refused_naming_the_pledge_and_the_sku() -> None:
    with pytest.raises(PledgeLargerThanBatch) as raised:
        plan_batches([pledge(1, BOARD=1), pledge(7, BOARD=96, CASE=1)], [BOARD, CASE])

    assert raised.value.pledge_id == uuid.UUID(int=7)
    assert raised.value.sku == "BOARD"
    assert raised.value.status == 409
    assert str(uuid.UUID(int=7)) in str(raised.value) and "BOARD" in str(raised.value)


def test_frozen_batches_keep_their_pledges_and_new_batches_come_after_them() -> None:
    frozen = [FrozenBatch(number=1, pledge_ids=ids(1, 2)), FrozenBatch(number=2, pledge_ids=ids(4))]
    late = pledge(3, BOARD=10)  # collected after its turn had passed (a retried charge)
    pledges = [pledge(1, BOARD=10), pledge(2, BOARD=10), late, pledge(4, BOARD=80), pledge(5, BOARD=10)]

    batches = plan_batches(pledges, [BOARD], frozen)

    assert [(b.number, b.pledge_ids) for b in batches] == [(3, ids(3, 5))]
    assert plan_batches(pledges[:2], [BOARD], frozen[:1]) == []


def test_the_plan_does_not_depend_on_the_order_pledges_are_given_in() -> None:
    pledges = [pledge(n, BOARD=n % 7 + 1, CASE=n % 3) for n in range(1, 200)]
    shuffled = pledges[:]
    random.Random(4).shuffle(shuffled)

    assert plan_batches(shuffled, [BOARD, CASE]) == plan_batches(pledges, [BOARD, CASE])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no product"):
        plan_batches([pledge(1, GHOST=1)], [BOARD])
    with pytest.raises(ValueError, match="negative"):
        plan_batches([pledge(1, BOARD=-1)], [BOARD])
    with pytest.raises(ValueError, match="twice"):
        plan_batches([pledge(1, BOARD=1), pledge(1, BOARD=2)], [BOARD])


def test_a_package_weighs_its_products_and_the_packaging() -> None:
    products = {"BOARD": BOARD, "CASE": CASE}

    assert package_weight({"BOARD": 2, "CASE": 1}, products, 150) == 470
    assert package_weight({"CASE": 3}, products) == 240


def test_a_campaign_of_100000_backers_is_planned_whole() -> None:
    rng = random.Random(1)
    tiers = [{"BOARD": 1}, {"BOARD": 1, "CASE": 1}, {"BOARD": 2, "CASE": 2}, {}]
    products = [ProductSpec("BOARD", 5000, 300, 120), ProductSpec("CASE", 8000, 200, 80)]
    pledges = [PledgeDemand(uuid.uuid4(), n, rng.choice(tiers)) for n in range(100_000)]

    batches = plan_batches(pledges, products)

    assert sum(len(b.pledge_ids) for b in batches) == sum(1 for p in pledges if p.items)


# Properties


@dataclass
class Case:
    products: list[ProductSpec]
    pledges: list[PledgeDemand]
    frozen: list[FrozenBatch]


@st.composite
def cases(draw: st.DrawFn, *, with_frozen: bool = True) -> Case:
    skus = draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, max_size=4, unique=True))
    products = []
    for sku in skus:
        batch_size = draw(st.integers(1, 40))
        overage = draw(st.sampled_from([0, 1, 250, 500, 3333, 10000]) | st.integers(0, 10000))
        products.append(ProductSpec(sku, batch_size, overage, draw(st.integers(0, 500))))
    makeable = {p.sku: units_per_batch(p) for p in products if units_per_batch(p) > 0}
    item = st.sampled_from(sorted(makeable)).flatmap(lambda sku: st.tuples(st.just(sku), st.integers(0, makeable[sku])))
    items = st.lists(item, max_size=3).map(dict) if makeable else st.just({})
    count = draw(st.integers(0, 60))
    numbers = draw(st.lists(st.integers(0, 30), min_size=count, max_size=count))  # ties on purpose
    pledges = [PledgeDemand(uuid.UUID(int=i + 1), n, draw(items)) for i, n in enumerate(numbers)]
    frozen: list[FrozenBatch] = []
    if with_frozen and pledges:
        chosen = draw(st.lists(st.sampled_from(pledges), unique_by=lambda p: p.pledge_id, max_size=10))
        sizes = draw(st.lists(st.integers(1, 4), min_size=len(chosen), max_size=len(chosen)))
        start = 0
        for number, size in enumerate(sizes, start=draw(st.integers(1, 5))):
            if start < len(chosen):
                frozen.append(FrozenBatch(number, [p.pledge_id for p in chosen[start : start + size]]))
            start += size
    return Case(products, pledges, frozen)


def batch_of(batches: list[PlannedBatch]) -> dict[uuid.UUID, int]:
    return {pledge_id: batch.number for batch in batches for pledge_id in batch.pledge_ids}


def has_items(p: PledgeDemand) -> bool:
    return any(q > 0 for q in p.items.values())


@settings(deadline=None)
@given(cases())
def test_no_batch_makes_more_of_a_sku_than_its_batch_size_spares_included(case: Case) -> None:
    products = {p.sku: p for p in case.products}
    for batch in plan_batches(case.pledges, case.products, case.frozen):
        assert set(batch.units) == set(batch.spares)
        for sku, units in batch.units.items():
            assert units > 0
            assert batch.spares[sku] == spares_for(units, products[sku].overage_bps)
            assert units + batch.spares[sku] <= products[sku].batch_size


@settings(deadline=None)
@given(cases())
def test_every_collected_pledge_with_items_is_in_exactly_one_batch(case: Case) -> None:
    batches = plan_batches(case.pledges, case.products, case.frozen)

    frozen_ids = [pledge_id for b in case.frozen for pledge_id in b.pledge_ids]
    new_ids = [pledge_id for b in batches for pledge_id in b.pledge_ids]
    counts = Counter(frozen_ids + new_ids)
    assert all(count == 1 for count in counts.values())
    assert set(new_ids) == {p.pledge_id for p in case.pledges if has_items(p)} - set(frozen_ids)
    assert all(b.pledge_ids for b in batches)


@settings(deadline=None)
@given(cases())
def test_a_pledge_is_never_split_a_batch_makes_exactly_its_pledges_items(case: Case) -> None:
    demand = {p.pledge_id: p.items for p in case.pledges}
    for batch in plan_batches(case.pledges, case.products, case.frozen):
        summed: Counter[str] = Counter()
        for pledge_id in batch.pledge_ids:
            summed.update({sku: q for sku, q in demand[pledge_id].items() if q})
        assert batch.units == dict(summed)


@settings(deadline=None)
@given(cases())
def test_an_earlier_pledge_is_never_in_a_later_batch_than_a_later_one(case: Case) -> None:
    batches = plan_batches(case.pledges, case.products, case.frozen)
    where = batch_of(batches)
    planned = sorted((p for p in case.pledges if p.pledge_id in where), key=lambda p: p.number)

    for earlier, later in zip(planned, planned[1:], strict=False):
        if earlier.number < later.number:
            assert where[earlier.pledge_id] <= where[later.pledge_id]
    first_new = max((b.number for b in case.frozen), default=0) + 1
    assert [b.number for b in batches] == list(range(first_new, first_new + len(batches)))


@settings(deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_planning_twice_or_in_another_order_gives_the_same_batches(case: Case, rng: random.Random) -> None:
    shuffled = case.pledges[:]
    rng.shuffle(shuffled)

    first = plan_batches(case.pledges, case.products, case.frozen)
    assert plan_batches(shuffled, list(reversed(case.products)), case.frozen) == first
    assert plan_batches(case.pledges, case.products, case.frozen) == first


@settings(deadline=None)
@given(cases(with_frozen=False))
def test_a_batch_closes_only_when_the_next_pledge_would_not_fit(case: Case) -> None:
    products = {p.sku: p for p in case.products}
    demand = {p.pledge_id: p.items for p in case.pledges}
    batches = plan_batches(case.pledges, case.products)

    for batch, following in zip(batches, batches[1:], strict=False):
        next_items = demand[following.pledge_ids[0]]
        assert any(
            q
            and batch.units.get(sku, 0) + q + spares_for(batch.units.get(sku, 0) + q, products[sku].overage_bps)
            > products[sku].batch_size
            for sku, q in next_items.items()
        )


@settings(deadline=None)
@given(
    st.integers(1, 200),
    st.integers(0, 10000),
    st.integers(1, 400),
)
def test_a_pledge_fits_a_batch_exactly_when_its_units_and_their_spares_do(
    batch_size: int, overage_bps: int, quantity: int
) -> None:
    product = ProductSpec("A", batch_size, overage_bps, 1)
    fits = quantity + spares_for(quantity, overage_bps) <= batch_size
    if fits:
        [batch] = plan_batches([pledge(1, A=quantity)], [product])
        assert batch.made == {"A": quantity + spares_for(quantity, overage_bps)}
    else:
        with pytest.raises(PledgeLargerThanBatch):
            plan_batches([pledge(1, A=quantity)], [product])
    assert (quantity <= units_per_batch(product)) == fits
