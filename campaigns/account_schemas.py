"""Request and response models of an account's own security: passwords, addresses, sessions and tokens."""

from __future__ import annotations

import uuid

from pydantic import EmailStr, Field

from campaigns.models import ApiToken, UserSession
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime

# The rule a new password follows everywhere (sign-up, reset, change).
NewPassword = Field(min_length=10, max_length=1000)
GivenPassword = Field(min_length=1, max_length=1000)


class PasswordResetCreate(RequestModel):
    email: EmailStr


class PasswordResetUse(RequestModel):
    password: str = NewPassword


class PasswordChange(RequestModel):
    current_password: str = GivenPassword
    password: str = NewPassword


class EmailChangeCreate(RequestModel):
    email: EmailStr
    password: str = GivenPassword


class AccountDeletion(RequestModel):
    password: str = GivenPassword


class AcceptedOut(ResponseModel):
    detail: str


class SessionOut(ResponseModel):
    id: uuid.UUID
    created_at: UtcDatetime
    last_used_at: UtcDatetime
    last_used_from: str | None
    user_agent: str | None
    expires_at: UtcDatetime
    current: bool

    @classmethod
    def of(cls, row: UserSession, *, current: bool) -> SessionOut:
        return cls(
            id=row.id,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            last_used_from=row.last_used_from,
            user_agent=row.user_agent,
            expires_at=row.expires_at,
            current=current,
        )


class TokenInfoOut(ResponseModel):
    id: uuid.UUID
    name: str | None
    created_at: UtcDatetime
    expires_at: UtcDatetime
    last_used_at: UtcDatetime | None
    last_used_from: str | None
    user_agent: str | None
    current: bool

    @classmethod
    def of(cls, row: ApiToken, *, current: bool) -> TokenInfoOut:
        return cls(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            last_used_from=row.last_used_from,
            user_agent=row.user_agent,
            current=current,
        )


class SessionList(ResponseModel):
    items: list[SessionOut]
    next_cursor: str | None = None


class TokenList(ResponseModel):
    items: list[TokenInfoOut]
    next_cursor: str | None = None
