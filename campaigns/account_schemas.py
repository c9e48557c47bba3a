"""Request and response models of an account's own security: passwords, addresses, sessions and tokens."""

from __future__ import annotations

import uuid

from pydantic import EmailStr, Field

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


class TokenInfoOut(ResponseModel):
    id: uuid.UUID
    name: str | None
    created_at: UtcDatetime
    expires_at: UtcDatetime
    last_used_at: UtcDatetime | None
    last_used_from: str | None
    user_agent: str | None
    current: bool


class SessionList(ResponseModel):
    items: list[SessionOut]
    next_cursor: str | None = None


class TokenList(ResponseModel):
    items: list[TokenInfoOut]
    next_cursor: str | None = None
