"""Deleting an account: personal fields are erased, while the money records the law keeps (pledges, charges,
refunds, the ledger) stay, pointing at the same user row, now anonymised."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, func, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict, InvalidInput
from campaigns.models import AccountLink, ApiToken, Campaign, Mail, Pledge, SpaceOperator, User, UserSession
from campaigns.passwords import password_matches
from campaigns.pledges.lifecycle import PLEDGES_IN_PLAY

CAMPAIGNS_IN_PLAY_FOR_BACKERS = ("live", "successful", "funded", "fulfilling")
# A maker answers for a campaign from its review until it is fulfilled (or ends unsuccessful, rejected, suspended).
CAMPAIGNS_IN_PLAY_FOR_MAKERS = ("in_review", "approved", "live", "successful", "funded", "fulfilling")
DELETED_NAME = "Deleted user"


class AccountInUse(Conflict):
    type = "account-in-use"
    title = "The account still has a pledge or a campaign under way"


async def reason_to_keep(session: AsyncSession, user: User) -> str | None:
    """Why the account cannot be deleted now, in words that say what to wait for; None when it can."""
    backed = await session.scalar(
        select(Campaign.title)
        .join(Pledge, Pledge.campaign_id == Campaign.id)
        .where(
            Pledge.backer_id == user.id,
            Pledge.status.in_(PLEDGES_IN_PLAY),
            Campaign.status.in_(CAMPAIGNS_IN_PLAY_FOR_BACKERS),
        )
        .limit(1)
    )
    if backed is not None:
        return (
            f"You back {backed!r}, which is not over yet: the account can be deleted once the campaign is fulfilled "
            "(or your pledge cancelled while it is live)."
        )
    made = await session.scalar(
        select(Campaign.title)
        .where(Campaign.maker_id == user.id, Campaign.status.in_(CAMPAIGNS_IN_PLAY_FOR_MAKERS))
        .limit(1)
    )
    if made is not None:
        return f"Your campaign {made!r} is under way: the account can be deleted once it is fulfilled or has ended."
    return None


async def delete_account(session: AsyncSession, user: User, *, password: str) -> None:
    """Erase the person from Kindling, given their password; refused while a pledge or campaign of theirs is under
    way. Their pledges keep their amounts and statuses (PostgreSQL refuses anything else), without an address."""
    if not password_matches(user, password):
        raise InvalidInput("password", "The password is wrong.")
    await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    reason = await reason_to_keep(session, user)
    if reason is not None:
        raise AccountInUse(reason)
    await session.execute(update(Pledge).where(Pledge.backer_id == user.id).values(address=null()))
    for table in (UserSession, ApiToken, AccountLink, Mail, SpaceOperator):
        await session.execute(delete(table).where(table.user_id == user.id))
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            email=f"deleted-{user.id}@deleted.invalid",
            name=DELETED_NAME,
            # Not an argon2 hash, so no password ever matches it.
            password_hash="deleted:" + secrets.token_hex(16),
            is_admin=False,
            email_verified_at=None,
            deleted_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    )
