"""The tables of people, spaces, campaigns and pledges. Rules live in the service and lifecycle modules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from campaigns.pledges.lifecycle import ENDED_PLEDGE_STATUSES, PledgeStatus, in_sql

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB, list[Any]: JSONB}


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def _created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


# The languages people's texts are written in (campaigns.languages says how pages choose between versions).
TEXT_LANGUAGES = ("en", "zh_CN")


def _language() -> Mapped[str]:
    """The language a row's texts are written in."""
    return mapped_column(String(10), server_default="en")


def _language_known() -> CheckConstraint:
    return CheckConstraint(f"language IN ({', '.join(repr(code) for code in TEXT_LANGUAGES)})", name="language_known")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lower"),
        CheckConstraint("locale IN ('en', 'zh_CN')", name="language"),
    )

    id: Mapped[uuid.UUID] = _id()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The account's language (campaigns/preferences.py) and the IANA zone its pages and mail show times in.
    locale: Mapped[str] = mapped_column(String(10), server_default="en")
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    created_at: Mapped[datetime] = _created_at()
    # Set when the user followed a link mailed to `email`; some steps (submitting a campaign, operating a space,
    # asking for a payout) wait for it.
    email_verified_at: Mapped[datetime | None]
    # Set when the person deleted their account: the row stays, anonymised, for the money records that point at it.
    deleted_at: Mapped[datetime | None]

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    # Two-factor (campaigns/two_factor.py): the TOTP secret is kept from set-up on and counts once confirmed
    # (`two_factor_enabled_at`); `totp_last_step` is the last step a code was accepted for: no code is used twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    two_factor_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Which mails the account wants (campaigns/notification_settings.py); mail it must get (receipts, account
    # safety, money) is sent whatever these say.
    notify_updates: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    notify_comments: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    notify_messages: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class RecoveryCode(Base):
    """A one-time way past the second factor when the phone is lost; only its hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()


class AuditEntry(Base):
    """One operator or admin action: who did what to which object, in which space, when and from where.

    Append-only: PostgreSQL refuses UPDATE and DELETE (migration 0008_accounts_b)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_created", "created_at", "id"),
        Index("ix_audit_log_space_created", "space_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = _id()
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(80))
    space_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("spaces.id"))
    client_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    created_at: Mapped[datetime] = _created_at()


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(server_default=text("now() + interval '90 days'"))
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_from: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class UserSession(Base):
    """A signed-in browser. Its cookie holds only a random key, kept here as a hash; ending the row ends the
    session for good, whatever the cookie says."""

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created_at()
    last_used_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_from: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class AccountLink(Base):
    """A single-use link mailed to a user (reset the password, verify the address, confirm a new address). Only the
    hash of its token is kept; using it is one conditional UPDATE of `used_at`."""

    __tablename__ = "account_links"
    __table_args__ = (
        CheckConstraint("purpose IN ('reset_password', 'verify_email', 'change_email')", name="purpose_known"),
        CheckConstraint("(purpose = 'change_email') = (new_email IS NOT NULL)", name="new_email_for_change"),
    )

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    new_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Mail(Base):
    """The outbox: a use case writes the message's kind and facts here in its own transaction; the worker renders
    it in the recipient's language and delivers it (SMTP, or kept for /dev/mail in development)."""

    __tablename__ = "mails"
    __table_args__ = (
        Index(
            "uq_mails_one_per_update_and_user",
            "campaign_update_id",
            "user_id",
            unique=True,
            postgresql_where=text("campaign_update_id IS NOT NULL"),
        ),
        # The send job's next chunk (service.mail.send_update_mails): only the update's mails not yet sent.
        Index(
            "ix_mails_unsent_update",
            "campaign_update_id",
            "id",
            postgresql_where=text("sent_at IS NULL AND campaign_update_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _id()
    kind: Mapped[str] = mapped_column(String(60))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    to_address: Mapped[str] = mapped_column(String(320), index=True)
    locale: Mapped[str] = mapped_column(String(10))
    facts: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    subject: Mapped[str | None] = mapped_column(String(300))
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # The update this mail carries: each backer gets each update once, however often its fan-out job runs.
    campaign_update_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaign_updates.id", ondelete="SET NULL"))


class MailSuppression(Base):
    """An address that bounced or complained: no more mail goes to it (campaigns/notification_settings.py)."""

    __tablename__ = "mail_suppressions"
    __table_args__ = (
        CheckConstraint("address = lower(address)", name="address_lower"),
        CheckConstraint("reason IN ('bounce', 'complaint')", name="reason_known"),
    )

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class Space(Base):
    __tablename__ = "spaces"
    __table_args__ = (
        CheckConstraint("sponsor_fee_bps BETWEEN 0 AND 2000", name="sponsor_fee_range"),
        CheckConstraint("fund_share_bps BETWEEN 0 AND 10000", name="fund_share_range"),
        CheckConstraint("fund_cap >= 0", name="fund_cap_not_negative"),
        CheckConstraint("fund_currency ~ '^[A-Z]{3}$'", name="fund_currency_iso"),
    )

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    city: Mapped[str] = mapped_column(String(120))
    # The province (or state) the city is in, for discovery by region; '' where nobody said.
    province: Mapped[str] = mapped_column(String(120), server_default="")
    country: Mapped[str] = mapped_column(String(2))
    sponsor_fee_bps: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, server_default="")
    # The space's own escrow release plan, [{name, share_bps, unlocks_on}] with shares adding to 10000;
    # null means Kindling's default (payments.milestones.DEFAULT_MILESTONE_PLAN).
    milestone_plan: Mapped[list[Any] | None] = mapped_column(JSONB)
    # The risk-compensation fund (payments.risk_fund): the share of the sponsor fee paid into it at each collection,
    # and the most it tops up the refunds of one suspended campaign, in minor units of its currency.
    fund_share_bps: Mapped[int] = mapped_column(Integer, server_default="0")
    fund_cap: Mapped[int] = mapped_column(BigInteger, server_default="0")
    fund_currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    created_at: Mapped[datetime] = _created_at()


class SpaceOperator(Base):
    __tablename__ = "space_operators"

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = _created_at()


CAMPAIGN_STATUSES = (
    "draft",
    "in_review",
    "approved",
    "rejected",
    "live",
    "successful",
    "unsuccessful",
    "funded",
    "fulfilling",
    "fulfilled",
    "suspended",
)


# How a campaign prices shipping: each item's own fee, or a weight table per country.
SHIPPING_MODES = ("per_item", "weight")


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("goal > 0", name="goal_positive"),
        CheckConstraint("duration_days BETWEEN 1 AND 60", name="duration_range"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in CAMPAIGN_STATUSES)})", name="status_known"),
        Index("ix_campaigns_status_ends_at", "status", "ends_at"),
        CheckConstraint("packaging_weight_grams >= 0", name="packaging_weight_nonnegative"),
        CheckConstraint("sponsor_fee_bps BETWEEN 0 AND 2000", name="sponsor_fee_range"),
        CheckConstraint(f"shipping_mode IN ({', '.join(repr(m) for m in SHIPPING_MODES)})", name="shipping_mode_known"),
        _language_known(),
    )

    id: Mapped[uuid.UUID] = _id()
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, server_default="")
    description_html: Mapped[str] = mapped_column(Text, server_default="")
    # The language title, summary and story are written in, and the maker's versions in the other language:
    # {"zh_CN": {"title", "summary", "description", "description_html"}}, any of them left out.
    language: Mapped[str] = _language()
    translations: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    currency: Mapped[str] = mapped_column(String(3))
    goal: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), server_default="draft")
    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    maker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    duration_days: Mapped[int] = mapped_column(Integer)
    launched_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    # The space's milestone plan as it was at launch (null: Kindling's default), the one the campaign keeps.
    milestone_plan: Mapped[list[Any] | None] = mapped_column(JSONB)
    # The space's sponsor fee at launch (null before it): the fee its charges are taken with.
    sponsor_fee_bps: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None]
    # Set when the first manufacturing batch is confirmed; it unlocks the second escrow milestone.
    first_batch_confirmed_at: Mapped[datetime | None]
    # Fulfillment (fulfillment/): after this moment backers can no longer give or change their address.
    address_lock_at: Mapped[datetime | None]
    # Added to every package's weight in the shipping lists: the box and the filling.
    packaging_weight_grams: Mapped[int] = mapped_column(Integer, server_default="0")
    # How a pledge's shipping is priced (campaigns/pledges/shipping.py): "per_item", each tier's and shipped add-on's
    # own fee; "weight", the bracket of the contents' total weight in `shipping_table`
    # ([{"country": "DE" or "*", "brackets": [{"up_to_grams", "fee"}, ...]}]). Chosen while a draft.
    shipping_mode: Mapped[str] = mapped_column(String(10), server_default="per_item")
    shipping_table: Mapped[list[Any]] = mapped_column(server_default="[]")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CampaignEvent(Base):
    """The campaign's timeline: every change of status, who made it and why."""

    __tablename__ = "campaign_events"
    __table_args__ = (_language_known(),)

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, server_default="")
    # The note's language (a review's notes, a suspension's reason).
    language: Mapped[str] = _language()
    created_at: Mapped[datetime] = _created_at()


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("campaign_id", "sku", name="uq_products_campaign_sku"),
        CheckConstraint("weight_grams >= 0", name="weight_nonnegative"),
        CheckConstraint("batch_size > 0", name="batch_size_positive"),
        CheckConstraint("overage_bps BETWEEN 0 AND 10000", name="overage_range"),
        CheckConstraint("unit_cost IS NULL OR unit_cost >= 0", name="unit_cost_nonnegative"),
        _language_known(),
    )

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = _language()
    # The maker's name for it in the other language: {"zh_CN": {"name": ...}}.
    translations: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    weight_grams: Mapped[int] = mapped_column(Integer)
    unit_cost: Mapped[int | None] = mapped_column(BigInteger)
    batch_size: Mapped[int] = mapped_column(Integer)
    overage_bps: Mapped[int] = mapped_column(Integer, server_default="0")
    # The choices a backer makes, in order: [{"name": "colour", "values": ["black", "white"]}]; each combination of
    # values is a ProductVariant with its own SKU. Empty: the product comes one way, under its own SKU.
    options: Mapped[list[Any]] = mapped_column(server_default="[]")
    created_at: Mapped[datetime] = _created_at()


class ProductVariant(Base):
    """One combination of a product's option values, made and counted under its own SKU."""

    __tablename__ = "product_variants"
    __table_args__ = (
        # SKUs of variants are unique in the campaign like products'; the campaign's row lock (every catalog edit
        # holds it) keeps a variant's SKU apart from the products' too.
        UniqueConstraint("campaign_id", "sku", name="uq_product_variants_campaign_sku"),
        UniqueConstraint("product_id", "choice", name="uq_product_variants_product_choice"),
        CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name="quantity_limit_positive"),
        CheckConstraint("remaining >= 0", name="remaining_nonnegative"),
        CheckConstraint("(quantity_limit IS NULL) = (remaining IS NULL)", name="remaining_iff_limited"),
        CheckConstraint("remaining <= quantity_limit", name="remaining_within_limit"),
    )

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    # {option name: value}, one entry per option of the product.
    choice: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sku: Mapped[str] = mapped_column(String(64))
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    # Units still free; kept by conditional UPDATEs only (campaigns/variants.py), like a tier's slots.
    remaining: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _created_at()


class Tier(Base):
    __tablename__ = "tiers"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name="quantity_limit_positive"),
        CheckConstraint("remaining >= 0", name="remaining_nonnegative"),
        CheckConstraint("(quantity_limit IS NULL) = (remaining IS NULL)", name="remaining_iff_limited"),
        CheckConstraint("remaining <= quantity_limit", name="remaining_within_limit"),
        _language_known(),
    )

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    language: Mapped[str] = _language()
    # The maker's version in the other language: {"zh_CN": {"title", "description"}}, either left out.
    translations: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    price: Mapped[int] = mapped_column(BigInteger)
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    # Slots still free; kept by the same conditional UPDATE that reserves or frees one, so it never drifts.
    remaining: Mapped[int | None] = mapped_column(Integer)
    items: Mapped[list[Any]] = mapped_column(server_default="[]")
    shipping: Mapped[list[Any]] = mapped_column(server_default="[]")
    estimated_delivery: Mapped[str] = mapped_column(String(7))
    position: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _created_at()


class AddOn(Base):
    """A product (or one fixed variant of it) offered on its own at a price, beside the tiers."""

    __tablename__ = "add_ons"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name="quantity_limit_positive"),
        CheckConstraint("remaining >= 0", name="remaining_nonnegative"),
        CheckConstraint("(quantity_limit IS NULL) = (remaining IS NULL)", name="remaining_iff_limited"),
        CheckConstraint("remaining <= quantity_limit", name="remaining_within_limit"),
    )

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("product_variants.id", ondelete="CASCADE"))
    price: Mapped[int] = mapped_column(BigInteger)
    quantity_limit: Mapped[int | None] = mapped_column(Integer)
    remaining: Mapped[int | None] = mapped_column(Integer)
    # False: only in a pledge whose tier ships, never in a package of its own.
    ships_alone: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    shipping: Mapped[list[Any]] = mapped_column(server_default="[]")
    position: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _created_at()


class AddOnTier(Base):
    """The tiers an add-on may join; an add-on with no rows here goes with any tier (or none)."""

    __tablename__ = "add_on_tiers"

    add_on_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("add_ons.id", ondelete="CASCADE"), primary_key=True)
    tier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"), primary_key=True, index=True)


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (_language_known(),)

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(Text, server_default="")
    language: Mapped[str] = _language()
    checklist: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    created_at: Mapped[datetime] = _created_at()


class CampaignImage(Base):
    __tablename__ = "campaign_images"
    __table_args__ = (CheckConstraint("role IN ('cover', 'gallery')", name="role_known"),)

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()


class CampaignUpdate(Base):
    __tablename__ = "campaign_updates"
    __table_args__ = (
        CheckConstraint("visibility IN ('public', 'backers')", name="visibility_known"),
        _language_known(),
        Index("ix_campaign_updates_unmailed", "created_at", postgresql_where=text("mailed_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = _id()
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # As a campaign's: {"zh_CN": {"title", "body", "body_html"}}.
    language: Mapped[str] = _language()
    translations: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    visibility: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = _created_at()
    # When its maker last changed it (null: never); it stays posted when edited.
    edited_at: Mapped[datetime | None]
    # When the fan-out job wrote its mails to the outbox (null: not yet; the sweep re-finds it).
    mailed_at: Mapped[datetime | None]


class Pledge(Base):
    """Never deleted, and its campaign, backer and currency never change: PostgreSQL refuses both (migration 0006).
    Everything a pledge goes through (confirmed, changed, cancelled, charged, refunded) is an update of its status."""

    __tablename__ = "pledges"
    __table_args__ = (
        CheckConstraint(f"status IN ({in_sql(frozenset(PledgeStatus))})", name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("bonus >= 0", name="bonus_nonnegative"),
        CheckConstraint("shipping_fee >= 0", name="shipping_fee_nonnegative"),
        CheckConstraint("payment_intent_id IS NULL OR late", name="payment_intent_only_late"),
        # One pledge per backer per campaign; a cancelled one frees the place for a new one.
        Index(
            "uq_pledges_one_per_backer",
            "campaign_id",
            "backer_id",
            unique=True,
            postgresql_where=text(f"status NOT IN ({in_sql(ENDED_PLEDGE_STATUSES)})"),
        ),
        Index("ix_pledges_campaign_status", "campaign_id", "status"),
        # One match per campaign (campaigns/matching.py); a withdrawn one frees the place for a new one.
        Index(
            "uq_pledges_one_match_per_campaign",
            "campaign_id",
            unique=True,
            postgresql_where=text(f"is_match AND status NOT IN ({in_sql(ENDED_PLEDGE_STATUSES)})"),
        ),
        Index("ix_pledges_errored_retry_until", "retry_until", postgresql_where=text("status = 'errored'")),
        # One client address holds at most so many waiting pledges: each takes one of its numbered slots.
        Index(
            "uq_pledges_open_hold_slot",
            "client_address",
            "hold_slot",
            unique=True,
            postgresql_where=text("status = 'requires_payment_method' AND hold_slot IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _id()
    # Arrival order, for "earliest backers first"; timestamps can tie.
    number: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    backer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id"), index=True)
    # A sponsor's match of the other pledges (campaigns/matching.py): no reward, its amount the cap until the close.
    is_match: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(30), server_default=PledgeStatus.REQUIRES_PAYMENT_METHOD.value)
    amount: Mapped[int] = mapped_column(BigInteger)
    bonus: Mapped[int] = mapped_column(BigInteger, server_default="0")
    shipping_fee: Mapped[int] = mapped_column(BigInteger, server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    shipping_country: Mapped[str | None] = mapped_column(String(2))
    setup_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    setup_intent_client_secret: Mapped[str | None] = mapped_column(String(255))
    # The SetupIntent of a card change on a live pledge, until Stripe saves the new card (payments.cards).
    card_change_setup_intent_id: Mapped[str | None] = mapped_column(String(255))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Where the pledge was made from: one address holds at most KINDLING_MAX_OPEN_HOLDS unconfirmed pledges.
    client_address: Mapped[str | None] = mapped_column(String(64))
    hold_slot: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    confirmed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    charged_at: Mapped[datetime | None]
    # Money (payments/charging.py): an errored pledge may be given a new card until `retry_until`, and is reminded
    # once; `payment_job_requested_at` is when a charge or card-removal job was last asked for, so the sweep asks
    # again only for one whose message seems lost.
    retry_until: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    payment_job_requested_at: Mapped[datetime | None]
    # A pre-order (payments/preorders.py): bought from a late reward after the campaign was funded, and paid at once,
    # on-session, through the PaymentIntent the server made for it.
    late: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_client_secret: Mapped[str | None] = mapped_column(String(255))
