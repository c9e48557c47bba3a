"""The life of a campaign: one table of (status, action) -> (next status, who may act), and nothing else decides it.

Actions that keep the status (`edit`, `add_image`, `post_update`) are in the table too, so that "only the maker, only
while draft" is read from the same place as "only an operator, only while in review".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from campaigns.errors import Conflict, NotAllowed
from campaigns.models import CAMPAIGN_STATUSES

Role = Literal["maker", "operator", "admin", "system"]
ROLES: tuple[Role, ...] = ("maker", "operator", "admin", "system")

# Who sees what a stranger may not: a campaign's maker, the operators of its space, a platform admin.
INSIDERS: frozenset[Role] = frozenset({"maker", "operator", "admin"})
# Statuses anybody may see; the others only insiders.
PUBLIC_STATUSES = frozenset({"live", "successful", "unsuccessful", "funded", "fulfilling", "fulfilled", "suspended"})


@dataclass(frozen=True)
class Transition:
    next_status: str
    who: frozenset[Role]


MAKER: frozenset[Role] = frozenset({"maker"})
OPERATOR: frozenset[Role] = frozenset({"operator"})
SYSTEM: frozenset[Role] = frozenset({"system"})
MAKER_OR_SYSTEM: frozenset[Role] = frozenset({"maker", "system"})
OPERATOR_OR_ADMIN: frozenset[Role] = frozenset({"operator", "admin"})

_LAUNCHED = ("live", "successful", "unsuccessful", "funded", "fulfilling", "fulfilled", "suspended")
_IMAGES_OPEN = ("draft", "approved", "live", "successful", "funded", "fulfilling", "fulfilled")
_SUSPENDABLE = ("live", "successful", "funded", "fulfilling")

TRANSITIONS: dict[tuple[str, str], Transition] = {
    ("draft", "edit"): Transition("draft", MAKER),
    ("draft", "submit"): Transition("in_review", MAKER),
    ("in_review", "approve"): Transition("approved", OPERATOR),
    ("in_review", "request_changes"): Transition("draft", OPERATOR),
    ("in_review", "reject"): Transition("rejected", OPERATOR),
    ("approved", "launch"): Transition("live", MAKER),
    ("live", "succeed"): Transition("successful", SYSTEM),
    ("live", "fail"): Transition("unsuccessful", SYSTEM),
    ("successful", "fund"): Transition("funded", SYSTEM),
    ("funded", "start_fulfilment"): Transition("fulfilling", MAKER_OR_SYSTEM),
    ("fulfilling", "finish_fulfilment"): Transition("fulfilled", MAKER_OR_SYSTEM),
    **{(status, "suspend"): Transition("suspended", OPERATOR_OR_ADMIN) for status in _SUSPENDABLE},
    **{(status, "add_image"): Transition(status, MAKER) for status in _IMAGES_OPEN},
    **{(status, "post_update"): Transition(status, MAKER) for status in _LAUNCHED},
}

ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(action for _status, action in TRANSITIONS))
REVIEW_DECISIONS: tuple[str, ...] = ("approve", "request_changes", "reject")

_WHO = {
    "maker": "the campaign's maker",
    "operator": "an operator of the campaign's space who is not its maker",
    "admin": "a platform admin",
    "system": "Kindling itself",
}


class StatusConflict(Conflict):
    """The action exists, but not from the campaign's current status."""

    type = "invalid-transition"
    title = "The campaign's status does not allow this"


class NotDraft(StatusConflict):
    type = "not-draft"
    title = "The campaign is no longer a draft"


class NotInReview(StatusConflict):
    type = "not-in-review"
    title = "The campaign is not in review"


class NotApproved(StatusConflict):
    type = "not-approved"
    title = "The campaign has not been approved"


class NotLive(StatusConflict):
    type = "not-live"
    title = "The campaign is not live"


class NotSuccessful(StatusConflict):
    type = "not-successful"
    title = "The campaign has not succeeded"


class NotFunded(StatusConflict):
    type = "not-funded"
    title = "The campaign is not funded"


class NotFulfilling(StatusConflict):
    type = "not-fulfilling"
    title = "The campaign is not being fulfilled"


class NotSuspendable(StatusConflict):
    type = "not-suspendable"
    title = "The campaign cannot be suspended now"


class NotLaunched(StatusConflict):
    type = "not-launched"
    title = "The campaign has not been launched"


class ImagesClosed(StatusConflict):
    type = "images-closed"
    title = "The campaign's images cannot be changed now"


class ActionNotPermitted(NotAllowed):
    type = "forbidden"
    title = "You may not do this to this campaign"


_CONFLICTS: dict[str, type[StatusConflict]] = {
    "edit": NotDraft,
    "submit": NotDraft,
    "approve": NotInReview,
    "request_changes": NotInReview,
    "reject": NotInReview,
    "launch": NotApproved,
    "succeed": NotLive,
    "fail": NotLive,
    "fund": NotSuccessful,
    "start_fulfilment": NotFunded,
    "finish_fulfilment": NotFulfilling,
    "suspend": NotSuspendable,
    "add_image": ImagesClosed,
    "post_update": NotLaunched,
}


def who_may(action: str) -> frozenset[Role]:
    """Every role that may take `action` from some status."""
    roles: set[Role] = set()
    for (_status, name), transition in TRANSITIONS.items():
        if name == action:
            roles |= transition.who
    if not roles:
        raise ValueError(f"unknown campaign action {action!r}")
    return frozenset(roles)


def check(status: str, action: str, roles: Iterable[Role]) -> Transition:
    """The transition `action` takes from `status` for someone holding `roles`.

    Who you are is checked before what state the campaign is in: a stranger learns nothing about the status.
    Raises ActionNotPermitted (403) or the StatusConflict (409) that names what the action needs.
    """
    held = frozenset(roles)
    allowed = who_may(action)
    if not held & allowed:
        names = " or ".join(_WHO[role] for role in ROLES if role in allowed)
        raise ActionNotPermitted(f"Only {names} may {action.replace('_', ' ')} this campaign.")
    transition = TRANSITIONS.get((status, action))
    if transition is None:
        raise _CONFLICTS[action](f"A campaign that is {status.replace('_', ' ')} cannot {action.replace('_', ' ')}.")
    if not held & transition.who:
        names = " or ".join(_WHO[role] for role in ROLES if role in transition.who)
        raise ActionNotPermitted(f"Only {names} may {action.replace('_', ' ')} this campaign now.")
    return transition


def apply(status: str, action: str, roles: Iterable[Role]) -> str:
    """The status a campaign moves to when someone holding `roles` takes `action` from `status`."""
    return check(status, action, roles).next_status


def allowed_actions(status: str, roles: Iterable[Role]) -> list[str]:
    """What someone holding `roles` may do now, in the table's order (for showing the right buttons)."""
    held = frozenset(roles)
    return [action for (from_status, action), t in TRANSITIONS.items() if from_status == status and held & t.who]


def is_visible(status: str, roles: Iterable[Role]) -> bool:
    return status in PUBLIC_STATUSES or bool(frozenset(roles) & INSIDERS)


assert {status for status, _action in TRANSITIONS} <= set(CAMPAIGN_STATUSES)
assert {t.next_status for t in TRANSITIONS.values()} <= set(CAMPAIGN_STATUSES)
assert set(_CONFLICTS) == set(ACTIONS)
