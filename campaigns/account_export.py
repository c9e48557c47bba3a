"""Everything Kindling holds about one person, in one JSON-able document (what GDPR and PIPL let them ask for)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.account_schemas import SessionOut, TokenInfoOut
from campaigns.models import Campaign, Mail, Pledge, User
from campaigns.schemas_base import ResponseModel, UtcDatetime
from campaigns.sessions import active_sessions, active_tokens


class ExportedAccount(ResponseModel):
    id: uuid.UUID
    email: str
    name: str
    locale: str
    time_zone: str
    email_verified: bool
    is_admin: bool
    created_at: UtcDatetime


class ExportedPledge(ResponseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    campaign_title: str
    status: str
    amount: int
    bonus: int
    shipping_fee: int
    currency: str
    shipping_country: str | None
    address: dict[str, Any] | None
    created_at: UtcDatetime


class ExportedCampaign(ResponseModel):
    id: uuid.UUID
    title: str
    status: str
    currency: str
    goal: int
    created_at: UtcDatetime


class ExportedMail(ResponseModel):
    kind: str
    to_address: str
    subject: str | None
    created_at: UtcDatetime
    sent_at: UtcDatetime | None


class AccountExport(ResponseModel):
    exported_at: UtcDatetime
    account: ExportedAccount
    pledges: list[ExportedPledge]
    campaigns: list[ExportedCampaign]
    mails: list[ExportedMail]
    sessions: list[SessionOut]
    tokens: list[TokenInfoOut]


async def export_account(session: AsyncSession, user: User, *, now: datetime) -> AccountExport:
    pledges = await session.execute(
        select(Pledge, Campaign.title)
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .where(Pledge.backer_id == user.id)
        .order_by(Pledge.created_at)
    )
    campaigns = await session.scalars(
        select(Campaign).where(Campaign.maker_id == user.id).order_by(Campaign.created_at)
    )
    mails = await session.scalars(select(Mail).where(Mail.user_id == user.id).order_by(Mail.created_at))
    return AccountExport(
        exported_at=now,
        account=ExportedAccount.model_validate(user),
        pledges=[
            ExportedPledge(
                id=pledge.id,
                campaign_id=pledge.campaign_id,
                campaign_title=title,
                status=pledge.status,
                amount=pledge.amount,
                bonus=pledge.bonus,
                shipping_fee=pledge.shipping_fee,
                currency=pledge.currency,
                shipping_country=pledge.shipping_country,
                address=pledge.address,
                created_at=pledge.created_at,
            )
            for pledge, title in pledges
        ],
        campaigns=[ExportedCampaign.model_validate(campaign) for campaign in campaigns],
        mails=[ExportedMail.model_validate(mail) for mail in mails],
        sessions=[SessionOut.of(row, current=False) for row in await active_sessions(session, user)],
        tokens=[TokenInfoOut.of(row, current=False) for row in await active_tokens(session, user)],
    )
