"""The life of a pledge: one table of (status, action) -> next status, and the named sets of statuses read from it.

The database keeps the same strings (`PledgeStatus` is a StrEnum); the conditional UPDATEs that move a pledge take
their `WHERE status IN (…)` from `sources(action)`, so the table is what PostgreSQL enforces. A backer's
request the table refuses is a 409 `pledge-closed`.
"""

from __future__ import annotations

from enum import StrEnum

from campaigns.errors import Conflict


class PledgeStatus(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    COLLECTED = "collected"
    ERRORED = "errored"
    DROPPED = "dropped"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class PledgeAction(StrEnum):
    CONFIRM = "confirm"  # the card is saved; on an errored pledge, the new card is taken and the charge retried
    CHANGE = "change"  # another tier, bonus or country while the campaign is live
    CANCEL = "cancel"  # by the backer, while the campaign is live
    CALL_OFF = "call_off"  # by Kindling: the campaign will not charge it (no card at the close, failed, suspended)
    EXPIRE = "expire"  # the card never came within the hold
    COLLECT = "collect"  # the charge succeeded
    PAY = "pay"  # a pre-order's buyer paid it at once, on-session (payments/preorders.py)
    FAIL_CHARGE = "fail_charge"
    DROP = "drop"  # the retry window passed
    REFUND_IN_PART = "refund_in_part"
    REFUND_IN_FULL = "refund_in_full"


S = PledgeStatus
A = PledgeAction

TRANSITIONS: dict[tuple[PledgeStatus, PledgeAction], PledgeStatus] = {
    (S.REQUIRES_PAYMENT_METHOD, A.CONFIRM): S.ACTIVE,
    (S.REQUIRES_PAYMENT_METHOD, A.CHANGE): S.REQUIRES_PAYMENT_METHOD,
    (S.REQUIRES_PAYMENT_METHOD, A.CANCEL): S.CANCELLED,
    (S.REQUIRES_PAYMENT_METHOD, A.EXPIRE): S.CANCELLED,
    (S.REQUIRES_PAYMENT_METHOD, A.CALL_OFF): S.CANCELLED,
    (S.REQUIRES_PAYMENT_METHOD, A.PAY): S.COLLECTED,
    (S.ACTIVE, A.CHANGE): S.ACTIVE,
    (S.ACTIVE, A.CANCEL): S.CANCELLED,
    (S.ACTIVE, A.CALL_OFF): S.CANCELLED,
    (S.ACTIVE, A.COLLECT): S.COLLECTED,
    (S.ACTIVE, A.FAIL_CHARGE): S.ERRORED,
    (S.ERRORED, A.CONFIRM): S.ERRORED,
    (S.ERRORED, A.COLLECT): S.COLLECTED,
    (S.ERRORED, A.CALL_OFF): S.CANCELLED,
    (S.ERRORED, A.DROP): S.DROPPED,
    (S.COLLECTED, A.REFUND_IN_PART): S.PARTIALLY_REFUNDED,
    (S.COLLECTED, A.REFUND_IN_FULL): S.REFUNDED,
    (S.PARTIALLY_REFUNDED, A.REFUND_IN_FULL): S.REFUNDED,
}


class PledgeClosed(Conflict):
    type = "pledge-closed"
    title = "This pledge can no longer be changed"


def sources(action: PledgeAction) -> frozenset[PledgeStatus]:
    """Every status `action` may be taken from: the `WHERE status IN (…)` of the UPDATE that takes it."""
    return frozenset(status for status, name in TRANSITIONS if name == action)


def outcome(action: PledgeAction) -> PledgeStatus:
    """The one status `action` leads to, from wherever it is taken."""
    (found,) = {status for (_from, name), status in TRANSITIONS.items() if name == action}
    return found


def next_status(status: str, action: PledgeAction) -> PledgeStatus:
    """Where `action` takes a pledge that is `status`; PledgeClosed (409) when it cannot be taken from there."""
    found = TRANSITIONS.get((PledgeStatus(status), action))
    if found is None:
        raise PledgeClosed(f"A pledge that is {status.replace('_', ' ')} cannot be {_DONE[action]}.")
    return found


_DONE = {
    A.CONFIRM: "confirmed",
    A.CHANGE: "changed",
    A.CANCEL: "cancelled",
    A.CALL_OFF: "called off",
    A.EXPIRE: "expired",
    A.COLLECT: "collected",
    A.PAY: "paid",
    A.FAIL_CHARGE: "failed",
    A.DROP: "dropped",
    A.REFUND_IN_PART: "refunded in part",
    A.REFUND_IN_FULL: "refunded in full",
}


# A backer may change or cancel these while the campaign is live; later states belong to the money flow.
OPEN_PLEDGE_STATUSES = sources(A.CHANGE)
# A card is being asked for: its backer is given the card set-up (the first card, or a new one after a failed charge).
CARD_SETUP_STATUSES = sources(A.CONFIRM)
# A successful campaign still waits on these: not yet charged, or charged and failed with the window still open.
WAITING_PLEDGE_STATUSES = sources(A.COLLECT)
# The money was taken (some of it may have gone back since).
CHARGED_PLEDGE_STATUSES = frozenset({S.COLLECTED, S.PARTIALLY_REFUNDED, S.REFUNDED})
# Paid for and not refunded in full: these ship.
SHIPPABLE_PLEDGE_STATUSES = frozenset({S.COLLECTED, S.PARTIALLY_REFUNDED})
# Count towards `pledged` and `backers`: a card is on file and the backer has not walked away.
COUNTED_PLEDGE_STATUSES = frozenset({S.ACTIVE, S.ERRORED}) | CHARGED_PLEDGE_STATUSES
# Walked away from or given up on: the pledge holds no slot, and the backer may pledge again.
ENDED_PLEDGE_STATUSES = frozenset({S.CANCELLED, S.DROPPED})
# Holds a slot of its tier.
HOLDING_PLEDGE_STATUSES = frozenset(PledgeStatus) - ENDED_PLEDGE_STATUSES
# May still be charged, refunded or shipped.
PLEDGES_IN_PLAY = HOLDING_PLEDGE_STATUSES - {S.REFUNDED}
# Over for good: nothing more happens to it (its address no longer matters).
CLOSED_PLEDGE_STATUSES = frozenset(PledgeStatus) - PLEDGES_IN_PLAY


def in_sql(statuses: frozenset[PledgeStatus]) -> str:
    """`'a', 'b'` in the enum's order, for the SQL text of index predicates and raw statements."""
    return ", ".join(f"'{status}'" for status in PledgeStatus if status in statuses)


assert frozenset(PledgeStatus) == {s for s, _a in TRANSITIONS} | set(TRANSITIONS.values())
assert frozenset(PledgeAction) == {a for _s, a in TRANSITIONS} == set(_DONE)
