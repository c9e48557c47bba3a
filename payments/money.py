"""The arithmetic of money: fees, escrow releases and refunds, in integer minor units.

Pure functions with no session and no Stripe. Every rounding rule of Kindling lives here, each stated once in its
function's docstring, so that the ledger, the pages and the tests all round the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

BPS = 10_000

K = TypeVar("K", bound=Hashable)


def fee(amount: int, bps: int) -> int:
    """The fee of `bps` basis points on `amount` minor units.

    Rounding: half up to the whole minor unit (12.5 fen is 13 fen, 12.49 fen is 12 fen). With `bps` at most 10000
    the fee is never more than `amount` and never negative.
    """
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {amount}")
    if not 0 <= bps <= BPS:
        raise ValueError(f"bps must be from 0 to {BPS}, got {bps}")
    return (amount * bps + BPS // 2) // BPS


@dataclass(frozen=True)
class CollectionSplit:
    """Where one collected pledge goes: `amount == platform_fee + sponsor_fee + processor_fee + escrow`."""

    amount: int
    platform_fee: int
    sponsor_fee: int
    processor_fee: int
    escrow: int


def split_collection(amount: int, platform_bps: int, sponsor_bps: int, processor_fee: int) -> CollectionSplit:
    """Split a collected pledge into the three fees and what goes into escrow.

    The platform and sponsor fees are `fee()` of the gross amount. The processor fee is what Stripe actually kept.
    Escrow is never negative: should the fees come to more than the amount (a tiny pledge with a large fixed card fee),
    they are capped in this order: the processor fee first (Stripe has already kept it), then the platform fee, then
    the sponsor fee, each to what is left of the amount.
    """
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {amount}")
    if processor_fee < 0:
        raise ValueError(f"processor_fee must not be negative, got {processor_fee}")
    left = amount
    processor = min(processor_fee, left)
    left -= processor
    platform = min(fee(amount, platform_bps), left)
    left -= platform
    sponsor = min(fee(amount, sponsor_bps), left)
    left -= sponsor
    return CollectionSplit(amount, platform, sponsor, processor, left)


def _largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights`, each part rounded down, the units left over handed one each to the
    parts with the largest remainders; equal remainders go to the earlier part. The parts add up to exactly `total`."""
    if total < 0:
        raise ValueError(f"total must not be negative, got {total}")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    whole = sum(weights)
    if whole == 0:
        if total:
            raise ValueError(f"cannot split {total} over nothing")
        return [0 for _ in weights]
    parts = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def pro_rata_refunds(escrow: int, paid: Mapping[K, int]) -> dict[K, int]:
    """Refund `escrow` to the payers in proportion to what each paid.

    Rounding: largest remainder. Each refund is first rounded down; the minor units left over go one each to the
    payers with the largest remainders, and between equal remainders to the one that comes first in `paid` (pass
    pledges in arrival order and the earliest backer gets the extra cent). The refunds add up to exactly `escrow`,
    and nobody gets back more than they paid, so `escrow` may not exceed the total paid.
    """
    if any(amount < 0 for amount in paid.values()):
        raise ValueError("paid amounts must not be negative")
    total_paid = sum(paid.values())
    if escrow > total_paid:
        raise ValueError(f"cannot refund {escrow} when only {total_paid} was paid")
    keys = list(paid)
    return dict(zip(keys, _largest_remainder(escrow, [paid[k] for k in keys]), strict=True))


def refunds_with_match(escrow: int, topped_up: int, paid: Mapping[K, int], matches: Collection[K]) -> dict[K, int]:
    """What each payer of a matched campaign gets back when it is suspended: what escrow holds of the payers' own
    money (`escrow`) pro rata to everyone who paid, the match included; and what the space's fund added to it
    (`topped_up`) pro rata to what the backers alone still miss, since a space's fund does not refund its own match.

    Rounding: largest remainder, in each of the two shares (`pro_rata_refunds`). Nobody gets back more than they paid.
    """
    own = pro_rata_refunds(min(escrow, sum(paid.values())), paid)
    missing = {key: paid[key] - own[key] for key in paid if key not in matches}
    added = pro_rata_refunds(min(topped_up, sum(missing.values())), missing)
    return {key: own[key] + added.get(key, 0) for key in paid}


def backers_shortfall(escrow: int, paid: Mapping[K, int], matches: Collection[K]) -> int:
    """What the backers of a suspended campaign (not a match in `matches`) would lose were `escrow` refunded pro rata
    to everyone who paid: the most its space's fund tops up for them."""
    own = pro_rata_refunds(min(escrow, sum(paid.values())), paid)
    return sum(paid[key] - own[key] for key in paid if key not in matches)


def milestone_amounts(total: int, shares_bps: Sequence[int]) -> list[int]:
    """Split `total` over milestones in proportion to their shares, by largest remainder (ties to the earlier
    milestone); the amounts add up to exactly `total`.

    The release rule uses it with the escrow held at release time and the shares of the milestones not yet released:
    a milestone gets its part of what is held now, and the last one gets all that is left, so the releases always add
    up to the escrow collected (net of fees and refunds), even when money arrives or leaves between two releases.
    """
    if any(share <= 0 for share in shares_bps):
        raise ValueError("milestone shares must be positive")
    return _largest_remainder(total, shares_bps)


def fund_contribution(sponsor_fee: int, share_bps: int) -> int:
    """What of a collected pledge's sponsor fee goes into the space's risk-compensation fund: `fee()` of the sponsor
    fee at the fund's share (half up to the whole minor unit), never more than the sponsor fee itself."""
    return fee(sponsor_fee, share_bps)


def fund_top_up(shortfall: int, fund_balance: int, cap: int) -> int:
    """What a space's fund adds to a suspended campaign's refunds: the backers' shortfall (what they paid and escrow
    cannot give back), at most the space's per-campaign cap, and at most what the fund holds (a fund that runs short
    pays what it has). Never negative."""
    return max(0, min(shortfall, fund_balance, cap))
