"""The backer list's query and answer in the API."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from campaigns.backers import Backer
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime


class BackerQuery(RequestModel):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500)
    tier: str | None = Field(default=None, max_length=40, description='a tier id, or "none" for pledges without one')
    status: str | None = Field(default=None, max_length=30)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    q: str | None = Field(default=None, max_length=200, description="words in the backer's name or email")


class ExportQuery(RequestModel):
    tier: str | None = Field(default=None, max_length=40)
    status: str | None = Field(default=None, max_length=30)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    q: str | None = Field(default=None, max_length=200)


class BackerOut(ResponseModel):
    pledge_id: uuid.UUID
    backer_id: uuid.UUID
    name: str
    email: str
    tier_id: uuid.UUID | None
    tier_title: str | None
    items: dict[str, int]
    status: str
    amount: int
    currency: str
    pledged_at: UtcDatetime
    charged_at: UtcDatetime | None
    country: str | None
    address: dict[str, Any] | None

    @classmethod
    def of(cls, backer: Backer) -> BackerOut:
        return cls(
            pledge_id=backer.pledge_id,
            backer_id=backer.backer_id,
            name=backer.name,
            email=backer.email,
            tier_id=backer.tier_id,
            tier_title=backer.tier_title,
            items=dict(backer.items),
            status=backer.status,
            amount=backer.amount,
            currency=backer.currency,
            pledged_at=backer.pledged_at,
            charged_at=backer.charged_at,
            country=backer.country,
            address=backer.address,
        )


class NotificationSettingsOut(ResponseModel):
    updates: bool
    comments: bool
    messages: bool


class NotificationSettingsPatch(RequestModel):
    updates: bool | None = None
    comments: bool | None = None
    messages: bool | None = None

    def changes(self) -> dict[str, bool]:
        return {name: value for name, value in self.model_dump().items() if value is not None}


class SuppressionIn(RequestModel):
    address: str = Field(min_length=3, max_length=320)
    reason: Literal["bounce", "complaint"]
    detail: str | None = Field(default=None, max_length=2000)


class SuppressionOut(ResponseModel):
    address: str
    reason: str
    added: bool
