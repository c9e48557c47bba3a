"""What a space's operators may change of it: its name and description, the terms it sponsors campaigns on (its
sponsor fee and escrow milestone plan), and its risk-compensation fund (the share of the sponsor fee paid into it, the
most it tops up one campaign's refunds, and its currency; payments.risk_fund).

The fee and the plan reach only campaigns launched after the change: a campaign keeps the fee and the plan it launched
with (campaigns.service.launch_campaign copies both), because its backers pledged under them. The fund's share reaches
campaigns that close after the change (their charge terms fix it); its cap, the suspensions after it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.audit import record_audit
from campaigns.currencies import accepted_currency
from campaigns.errors import FieldError, NotAllowed, ValidationFailed
from campaigns.models import Space, User
from campaigns.spaces import get_space, operates
from campaigns.two_factor import require_two_factor
from payments.milestones import PlannedMilestone, check_milestone_plan
from payments.risk_fund import MAX_FUND_CAP, MAX_FUND_SHARE_BPS

MAX_SPONSOR_FEE_BPS = 2000
MAX_NAME = 200
MAX_DESCRIPTION = 5000


class Keep(enum.Enum):
    """A field left as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


async def edit_space(
    session: AsyncSession,
    user: User,
    space_id: uuid.UUID | str,
    *,
    name: str | Keep = KEEP,
    description: str | Keep = KEEP,
    sponsor_fee_bps: int | Keep = KEEP,
    milestones: Sequence[PlannedMilestone] | None | Keep = KEEP,
    fund_share_bps: int | Keep = KEEP,
    fund_cap: int | Keep = KEEP,
    fund_currency: str | Keep = KEEP,
    client_address: str | None,
) -> Space:
    """An operator of the space (or an admin) changes what is given; `milestones` None goes back to Kindling's
    default plan. Checked as a whole before anything changes; audited with what changed."""
    space = await get_space(session, space_id)
    if not (user.is_admin or await operates(session, user, space.id)):
        raise NotAllowed("Only an operator of the space or an admin edits it.")
    require_two_factor(user)
    _check(
        name=name,
        description=description,
        sponsor_fee_bps=sponsor_fee_bps,
        milestones=milestones,
        fund_errors=_fund_errors(fund_share_bps=fund_share_bps, fund_cap=fund_cap, fund_currency=fund_currency),
    )
    values: dict[str, Any] = {}
    if not isinstance(name, Keep):
        values["name"] = name.strip()
    if not isinstance(description, Keep):
        values["description"] = description
    if not isinstance(sponsor_fee_bps, Keep):
        values["sponsor_fee_bps"] = sponsor_fee_bps
    if not isinstance(milestones, Keep):
        values["milestone_plan"] = None if milestones is None else [asdict(planned) for planned in milestones]
    for key, value in (("fund_share_bps", fund_share_bps), ("fund_cap", fund_cap), ("fund_currency", fund_currency)):
        if not isinstance(value, Keep):
            values[key] = value
    if values:
        await session.execute(update(Space).where(Space.id == space.id).values(**values))
        await record_audit(
            session,
            user.id,
            "space.update",
            "space",
            space.id,
            space_id=space.id,
            client_address=client_address,
            details={("milestones" if key == "milestone_plan" else key): value for key, value in values.items()},
        )
        await session.refresh(space)
    return space


def _check(
    *,
    name: str | Keep,
    description: str | Keep,
    sponsor_fee_bps: int | Keep,
    milestones: Sequence[PlannedMilestone] | None | Keep,
    fund_errors: list[FieldError],
) -> None:
    errors: list[FieldError] = []
    if not isinstance(name, Keep) and not 1 <= len(name.strip()) <= MAX_NAME:
        errors.append(FieldError("name", f"must be 1 to {MAX_NAME} characters"))
    if not isinstance(description, Keep) and len(description) > MAX_DESCRIPTION:
        errors.append(FieldError("description", f"must be at most {MAX_DESCRIPTION} characters"))
    if not isinstance(sponsor_fee_bps, Keep) and not 0 <= sponsor_fee_bps <= MAX_SPONSOR_FEE_BPS:
        errors.append(FieldError("sponsor_fee_bps", f"must be from 0 to {MAX_SPONSOR_FEE_BPS} basis points"))
    if not isinstance(milestones, Keep) and milestones is not None:
        try:
            check_milestone_plan(milestones)
        except ValidationFailed as failed:
            errors.extend(failed.errors)
    errors.extend(fund_errors)
    if errors:
        raise ValidationFailed("The space's changes are invalid.", errors=errors)


def _fund_errors(*, fund_share_bps: int | Keep, fund_cap: int | Keep, fund_currency: str | Keep) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(fund_share_bps, Keep) and not 0 <= fund_share_bps <= MAX_FUND_SHARE_BPS:
        errors.append(FieldError("fund_share_bps", f"must be from 0 to {MAX_FUND_SHARE_BPS} basis points"))
    if not isinstance(fund_cap, Keep) and not 0 <= fund_cap <= MAX_FUND_CAP:
        errors.append(FieldError("fund_cap", f"must be from 0 to {MAX_FUND_CAP} minor units"))
    if not isinstance(fund_currency, Keep) and accepted_currency(fund_currency) is None:
        errors.append(FieldError("fund_currency", "must be a currency Kindling accepts (ISO 4217, upper case)"))
    return errors
