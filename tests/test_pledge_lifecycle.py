from __future__ import annotations

import pytest

from campaigns.pledges.lifecycle import (
    CARD_SETUP_STATUSES,
    OPEN_PLEDGE_STATUSES,
    TRANSITIONS,
    WAITING_PLEDGE_STATUSES,
    PledgeAction,
    PledgeClosed,
    PledgeStatus,
    next_status,
    outcome,
    sources,
)


def test_a_backer_cancels_only_a_pledge_that_is_still_open() -> None:
    assert next_status("active", PledgeAction.CANCEL) == PledgeStatus.CANCELLED
    assert next_status("requires_payment_method", PledgeAction.CANCEL) == PledgeStatus.CANCELLED
    for status in ("collected", "errored", "dropped", "refunded", "partially_refunded", "cancelled"):
        with pytest.raises(PledgeClosed, match="cannot be cancelled"):
            next_status(status, PledgeAction.CANCEL)


def test_a_collected_pledge_is_never_charged_again_nor_goes_back_to_waiting() -> None:
    for action in (PledgeAction.COLLECT, PledgeAction.CONFIRM, PledgeAction.CHANGE, PledgeAction.FAIL_CHARGE):
        with pytest.raises(PledgeClosed):
            next_status(PledgeStatus.COLLECTED, action)


def test_a_refunded_pledge_is_the_end_of_the_road() -> None:
    for action in PledgeAction:
        with pytest.raises(PledgeClosed):
            next_status(PledgeStatus.REFUNDED, action)


def test_a_partial_refund_only_follows_a_collection_and_a_full_one_follows_either() -> None:
    assert sources(PledgeAction.REFUND_IN_PART) == {PledgeStatus.COLLECTED}
    assert sources(PledgeAction.REFUND_IN_FULL) == {PledgeStatus.COLLECTED, PledgeStatus.PARTIALLY_REFUNDED}
    assert outcome(PledgeAction.REFUND_IN_FULL) == PledgeStatus.REFUNDED


def test_the_named_sets_are_read_from_the_table() -> None:
    assert {PledgeStatus.REQUIRES_PAYMENT_METHOD, PledgeStatus.ACTIVE} == OPEN_PLEDGE_STATUSES
    assert {PledgeStatus.REQUIRES_PAYMENT_METHOD, PledgeStatus.ERRORED} == CARD_SETUP_STATUSES
    assert {PledgeStatus.ACTIVE, PledgeStatus.ERRORED} == WAITING_PLEDGE_STATUSES


def test_the_database_keeps_the_same_strings_as_before() -> None:
    assert [status.value for status in PledgeStatus] == [
        "requires_payment_method",
        "active",
        "cancelled",
        "collected",
        "errored",
        "dropped",
        "refunded",
        "partially_refunded",
    ]
    assert all(isinstance(status, str) for status, _action in TRANSITIONS)


def test_an_unknown_status_is_refused_loudly() -> None:
    with pytest.raises(ValueError):
        next_status("shipped", PledgeAction.CANCEL)
