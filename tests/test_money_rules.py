from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.money import BPS, fee, milestone_amounts, pro_rata_refunds, split_collection

amounts = st.integers(min_value=0, max_value=10**12)
bps = st.integers(min_value=0, max_value=BPS)


@given(amounts, bps)
def test_a_fee_is_the_exact_share_rounded_half_up(amount: int, rate: int) -> None:
    exact = Fraction(amount * rate, BPS)
    charged = fee(amount, rate)
    assert 0 <= charged <= amount
    assert exact - Fraction(1, 2) < charged <= exact + Fraction(1, 2)
    if exact - int(exact) == Fraction(1, 2):
        assert charged == int(exact) + 1


def test_fee_rounding_examples() -> None:
    assert fee(250, 500) == 13  # 12.5 rounds up
    assert fee(249, 500) == 12  # 12.45 rounds down
    assert fee(10_000, 500) == 500
    assert fee(1, BPS) == 1
    assert fee(0, 500) == 0


def test_a_fee_refuses_what_makes_no_sense() -> None:
    with pytest.raises(ValueError):
        fee(-1, 500)
    with pytest.raises(ValueError):
        fee(100, BPS + 1)


@given(amounts, st.integers(0, 5000), st.integers(0, 2000), st.integers(0, 10**6))
def test_a_collection_splits_into_fees_and_escrow_exactly(
    amount: int, platform_bps: int, sponsor_bps: int, processor_fee: int
) -> None:
    split = split_collection(amount, platform_bps, sponsor_bps, processor_fee)
    assert split.platform_fee + split.sponsor_fee + split.processor_fee + split.escrow == amount
    assert min(split.platform_fee, split.sponsor_fee, split.processor_fee, split.escrow) >= 0
    if processor_fee + fee(amount, platform_bps) + fee(amount, sponsor_bps) <= amount:
        assert split.platform_fee == fee(amount, platform_bps)
        assert split.sponsor_fee == fee(amount, sponsor_bps)
        assert split.processor_fee == processor_fee


def test_fees_are_capped_so_escrow_never_goes_negative() -> None:
    split = split_collection(50, 5000, 2000, 30)
    assert (split.processor_fee, split.platform_fee, split.sponsor_fee, split.escrow) == (30, 20, 0, 0)


paid_maps = st.dictionaries(st.integers(1, 10_000), st.integers(0, 10**9), min_size=1, max_size=40)


@given(paid_maps, st.data())
def test_pro_rata_refunds_add_up_to_the_escrow_and_nobody_gets_more_than_they_paid(
    paid: dict[int, int], data: st.DataObject
) -> None:
    escrow = data.draw(st.integers(0, sum(paid.values())))
    refunds = pro_rata_refunds(escrow, paid)
    assert list(refunds) == list(paid)
    assert sum(refunds.values()) == escrow
    total = sum(paid.values())
    for key, amount in paid.items():
        assert 0 <= refunds[key] <= amount
        if total:
            assert abs(refunds[key] - Fraction(escrow * amount, total)) < 1


def test_equal_remainders_favour_whoever_comes_first() -> None:
    assert pro_rata_refunds(2, {"c": 100, "a": 100, "b": 100}) == {"c": 1, "a": 1, "b": 0}
    assert pro_rata_refunds(1, {"b": 100, "a": 100}) == {"b": 1, "a": 0}


def test_refunding_more_than_was_paid_is_refused() -> None:
    with pytest.raises(ValueError):
        pro_rata_refunds(301, {"a": 100, "b": 200})


shares = st.lists(st.integers(1, BPS), min_size=1, max_size=10)


@given(st.integers(0, 10**12), shares)
def test_milestone_amounts_add_up_exactly_and_follow_the_shares(total: int, plan: list[int]) -> None:
    parts = milestone_amounts(total, plan)
    assert sum(parts) == total
    whole = sum(plan)
    for part, share in zip(parts, plan, strict=True):
        assert abs(part - Fraction(total * share, whole)) < 1


def test_the_default_plan_releases_fifty_thirty_twenty() -> None:
    assert milestone_amounts(100_001, [5000, 3000, 2000]) == [50_001, 30_000, 20_000]


@given(st.integers(0, 10**10), st.lists(st.integers(1, 4000), min_size=1, max_size=8), st.data())
def test_releasing_milestones_one_by_one_pays_out_exactly_the_escrow(
    escrow: int, plan: list[int], data: st.DataObject
) -> None:
    """The release rule: each release takes its part of what is held now over the milestones still open."""
    held = escrow
    open_shares = list(plan)
    released = []
    while open_shares:
        index = data.draw(st.integers(0, len(open_shares) - 1))
        amount = milestone_amounts(held, open_shares)[index]
        assert 0 <= amount <= held
        released.append(amount)
        held -= amount
        open_shares.pop(index)
    assert held == 0
    assert sum(released) == escrow
