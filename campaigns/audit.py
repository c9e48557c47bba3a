"""The audit log: one append-only row for every operator and admin action, written in the action's own transaction.

Who reads it: a platform admin all of it, a space's operators the rows of their spaces. PostgreSQL refuses to change
or delete a row (migration 0008_accounts_b), so what an operator did stays said.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import NotAllowed
from campaigns.models import AuditEntry, Space, SpaceOperator, User
from campaigns.pagination import Cursor, page_after
from campaigns.two_factor import require_two_factor

# What is recorded, by name; the page says each in the reader's language.
ACTIONS = (
    "campaign.approve",
    "campaign.request_changes",
    "campaign.reject",
    "campaign.suspend",
    "campaign.export_backers",
    "campaign.export_addresses",
    "campaign.export_transactions",
    "campaign.match",
    "campaign.match_withdraw",
    "comment.hide",
    "late_add_on.end",
    "late_reward.end",
    "mail.suppress",
    "milestone.release",
    "payout.mark_paid",
    "pledge.refund",
    "space.create",
    "space.update",
    "space.operator_add",
    "space.operator_remove",
    "space.milestone_plan_change",
    "user.promote",
)


async def record_audit(
    session: AsyncSession,
    actor_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: uuid.UUID | str,
    *,
    space_id: uuid.UUID | None,
    client_address: str | None,
    details: Mapping[str, object] | None = None,
) -> None:
    """Add the row for `action` to the caller's transaction: it is kept exactly when the action is.

    `actor_id` None is Kindling's own command line (`kindling users create-admin`)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to campaigns.audit.ACTIONS")
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            space_id=space_id,
            client_address=client_address,
            details=dict(details or {}),
        )
    )
    await session.flush()


async def audit_entries(
    session: AsyncSession,
    viewer: User,
    *,
    space_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
    object_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[AuditEntry], str | None]:
    """The rows `viewer` may read, newest first, narrowed by the filters given. 403 for who is neither an admin nor
    an operator of some space."""
    query = select(AuditEntry)
    if not viewer.is_admin:
        operated = list(await session.scalars(select(SpaceOperator.space_id).where(SpaceOperator.user_id == viewer.id)))
        if not operated:
            raise NotAllowed("Only platform admins and the operators of a space read the audit log.")
        query = query.where(AuditEntry.space_id.in_(operated))
    require_two_factor(viewer)
    if space_id is not None:
        query = query.where(AuditEntry.space_id == space_id)
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    return await page_after(session, query, AuditEntry, limit=limit, cursor=Cursor.decode(cursor), newest_first=True)


async def names_for(
    session: AsyncSession, entries: list[AuditEntry]
) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    """For showing the rows: each actor as "name <email>", and each space's name."""
    actor_ids = {entry.actor_id for entry in entries if entry.actor_id is not None}
    space_ids = {entry.space_id for entry in entries if entry.space_id is not None}
    actors = await session.execute(select(User.id, User.name, User.email).where(User.id.in_(actor_ids)))
    spaces = await session.execute(select(Space.id, Space.name).where(Space.id.in_(space_ids)))
    return {row.id: f"{row.name} <{row.email}>" for row in actors}, {row.id: row.name for row in spaces}
