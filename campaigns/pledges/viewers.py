"""Who sees what of a pledge. The card set-up's secret (with the publishable key it lets anyone put a card on the
pledge) is its backer's alone. The address goes to its backer, and to those who ship the reward (the campaign's maker
and the sponsoring space's operators) only once the campaign is funded and something will ship; to nobody else,
admins included, in any list or page.

Every response and page that shows a pledge asks these functions, given the viewer's relation to the pledge
(`PledgeOut.for_viewer` for the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaigns.lifecycle import Role
from campaigns.models import Pledge

# From funding to the last package. A suspended campaign ships nothing, so its addresses are nobody's business.
ADDRESS_VISIBLE_CAMPAIGN_STATUSES = ("funded", "fulfilling", "fulfilled")
SHIPPERS: frozenset[Role] = frozenset({"maker", "operator"})


@dataclass(frozen=True, slots=True)
class PledgeViewer:
    """Someone's relation to one pledge: whether they backed it, their roles on its campaign, where the campaign is."""

    backer: bool
    roles: frozenset[Role]
    campaign_status: str

    @classmethod
    def its_backer(cls) -> PledgeViewer:
        return cls(backer=True, roles=frozenset(), campaign_status="")


def sees_card_setup(viewer: PledgeViewer) -> bool:
    return viewer.backer


def sees_address(viewer: PledgeViewer) -> bool:
    return viewer.backer or (
        bool(viewer.roles & SHIPPERS) and viewer.campaign_status in ADDRESS_VISIBLE_CAMPAIGN_STATUSES
    )


def visible_address(pledge: Pledge, viewer: PledgeViewer) -> dict[str, Any] | None:
    """The pledge's address as `viewer` may see it: the whole of it, or None."""
    if not sees_address(viewer) or not isinstance(pledge.address, dict):
        return None
    return dict(pledge.address)
