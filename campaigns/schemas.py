"""Request and response models of accounts and spaces."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, EmailStr, Field

from campaigns.countries import is_country
from campaigns.preferences import TIME_ZONE_MESSAGE, is_time_zone
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime


def _country(code: str) -> str:
    code = code.upper()
    if not is_country(code):
        raise ValueError("must be an ISO 3166 alpha-2 country code, such as CN or US")
    return code


def _time_zone(name: str) -> str:
    if not is_time_zone(name):
        raise ValueError(TIME_ZONE_MESSAGE)
    return name


Country = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
Language = Literal["en", "zh_CN"]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_time_zone)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Slug = Annotated[str, Field(min_length=2, max_length=80, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]


class UserCreate(RequestModel):
    email: EmailStr
    password: str = Field(min_length=10, max_length=1000)
    name: Name
    # Unless given, the language is the request's (Accept-Language, the page's) and the time zone UTC.
    language: Language | None = None
    time_zone: TimeZone | None = None


class TokenCreate(RequestModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1000)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    # The authenticator app's code, or a recovery code: needed once two-factor is on.
    otp: str | None = Field(default=None, max_length=40)


class UserOut(ResponseModel):
    id: uuid.UUID
    email: str
    name: str


class AccountOut(UserOut):
    email_verified: bool


class RolesOut(ResponseModel):
    admin: bool
    operator_of: list[uuid.UUID]


class MeOut(AccountOut):
    roles: RolesOut
    two_factor: bool
    language: Language
    time_zone: str


class PreferencesUpdate(RequestModel):
    """PATCH /me: the account's language and time zone; a field left out (or null) stays as it is."""

    language: Language | None = None
    time_zone: TimeZone | None = None


class TokenOut(ResponseModel):
    token: str
    user: UserOut


class SpaceCreate(RequestModel):
    name: Name
    slug: Slug
    city: Annotated[str, Field(min_length=1, max_length=120)]
    province: str = Field(default="", max_length=120)
    country: Country
    sponsor_fee_bps: int = Field(ge=0, le=2000)
    description: str = Field(default="", max_length=5000)


class SpaceUpdate(RequestModel):
    """What an admin may change of a space; its slug, in every link to it, stays."""

    name: Name
    city: Annotated[str, Field(min_length=1, max_length=120)]
    province: str = Field(default="", max_length=120)
    country: Country
    sponsor_fee_bps: int = Field(ge=0, le=2000)
    description: str = Field(default="", max_length=5000)


class OperatorAdd(RequestModel):
    email: str = Field(min_length=3, max_length=320)


class SpaceOut(ResponseModel):
    id: uuid.UUID
    name: str
    slug: str
    city: str
    province: str
    country: str
    sponsor_fee_bps: int
    description: str
    # The risk-compensation fund's terms (payments.risk_fund): the share of the sponsor fee paid into it, the most it
    # tops up one suspended campaign's refunds, in minor units of its currency.
    fund_share_bps: int
    fund_cap: int
    fund_currency: str


class OperatorOut(ResponseModel):
    space_id: uuid.UUID
    user_id: uuid.UUID
    email: str


class PageQuery(RequestModel):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500)


class TwoFactorStarted(ResponseModel):
    secret: str
    otpauth_uri: str


class TwoFactorConfirm(RequestModel):
    code: str = Field(min_length=1, max_length=40)


class RecoveryCodesOut(ResponseModel):
    recovery_codes: list[str]


class AuditQuery(PageQuery):
    space_id: uuid.UUID | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = Field(default=None, max_length=60)
    object: str | None = Field(default=None, max_length=80)


class AuditEntryOut(ResponseModel):
    id: uuid.UUID
    actor_id: uuid.UUID | None
    action: str
    object_type: str
    object_id: str
    space_id: uuid.UUID | None
    client_address: str | None
    details: dict[str, Any]
    created_at: UtcDatetime
