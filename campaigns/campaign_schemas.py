"""Request and response models of campaigns, products, tiers, reviews, images and updates.

The request models are the one check of a campaign's shape: the JSON API validates bodies with them and the pages
validate forms with them, then both hand the validated model to the same service function.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from campaigns.countries import is_country
from campaigns.currencies import CURRENCIES
from campaigns.languages import known_translations
from campaigns.lifecycle import REVIEW_DECISIONS
from campaigns.models import CAMPAIGN_STATUSES, TEXT_LANGUAGES
from campaigns.schemas import Name, PageQuery
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime

# Large enough for any campaign, small enough that sums over many pledges stay far inside BIGINT.
MAX_AMOUNT = 10**12
MAX_UNITS = 10_000_000


def _currency(code: str) -> str:
    code = code.upper()
    if code not in CURRENCIES:
        raise ValueError(f"must be one of the currencies Kindling accepts: {', '.join(sorted(CURRENCIES))}")
    return code


def _shipping_country(code: str) -> str:
    code = code.upper()
    if code != "*" and not is_country(code):
        raise ValueError('must be an ISO 3166 alpha-2 country code such as CN, or "*" for the rest of the world')
    return code


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month(value: str) -> str:
    match = _MONTH.match(value)
    if match is None or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2199:
        raise ValueError("must be a month written YYYY-MM, such as 2026-11")
    return value


Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
ShippingCountry = Annotated[str, Field(min_length=1, max_length=2), AfterValidator(_shipping_country)]
Month = Annotated[str, Field(min_length=7, max_length=7, examples=["2026-11"]), AfterValidator(_month)]
# Money in minor units: JSON integers only (no 25.0, no "25"), whatever the currency's number of decimals.
PositiveAmount = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT)]
Fee = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]
Count = Annotated[int, Field(strict=True, gt=0, le=MAX_UNITS)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Summary = Annotated[str, Field(min_length=1, max_length=500)]
Markdown = Annotated[str, Field(max_length=50_000)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
DurationDays = Annotated[int, Field(strict=True, ge=1, le=60)]
Bps = Annotated[int, Field(strict=True, ge=0, le=10_000)]
Grams = Annotated[int, Field(strict=True, ge=0, le=MAX_UNITS)]

# The language a text is written in; left out, the campaign's (for its tiers, products and updates) or the writer's
# account language.
Language = Literal["en", "zh_CN"]
assert get_args(Language) == TEXT_LANGUAGES


class CampaignRequest(RequestModel):
    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold U+0000; refusing it here keeps it a 422 instead of a database error.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class PatchModel(CampaignRequest):
    """A PATCH body: any subset of the fields. `null` is refused except for the fields listed as nullable."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls.NULLABLE:
            raise ValueError("may be left out but not set to null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# Campaigns

CampaignStatus = Literal[
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
]
assert set(get_args(CampaignStatus)) == set(CAMPAIGN_STATUSES)


class CampaignTranslation(CampaignRequest):
    """The maker's version of the campaign's texts in another language; a text left out is shown as written."""

    title: Title | None = None
    summary: Summary | None = None
    description: Markdown | None = None


CampaignTranslations = Annotated[dict[str, CampaignTranslation], AfterValidator(known_translations)]


class CampaignCreate(CampaignRequest):
    title: Title
    summary: Summary
    description: Markdown = ""
    language: Language | None = None
    translations: CampaignTranslations = {}
    currency: Currency
    goal: PositiveAmount
    space_id: uuid.UUID
    duration_days: DurationDays


class CampaignPatch(PatchModel):
    title: Title | None = None
    summary: Summary | None = None
    description: Markdown | None = None
    language: Language | None = None
    # Replaces the versions in other languages as a whole.
    translations: CampaignTranslations | None = None
    currency: Currency | None = None
    goal: PositiveAmount | None = None
    space_id: uuid.UUID | None = None
    duration_days: DurationDays | None = None


class CampaignListQuery(PageQuery):
    status: CampaignStatus | None = None
    space_id: uuid.UUID | None = None
    maker_id: uuid.UUID | None = None
    q: str | None = Field(default=None, max_length=200)
    # The campaigns of spaces in this province and city (either case).
    province: str | None = Field(default=None, max_length=120)
    city: str | None = Field(default=None, max_length=120)

    @field_validator("q", "province", "city")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


# Products


class ProductTranslation(CampaignRequest):
    """The maker's name for the product in another language; left out, it is shown as written."""

    name: Name | None = None


ProductTranslations = Annotated[dict[str, ProductTranslation], AfterValidator(known_translations)]


class ProductCreate(CampaignRequest):
    sku: Sku
    name: Name
    language: Language | None = None
    translations: ProductTranslations = {}
    weight_grams: Grams
    unit_cost: Fee | None = None
    batch_size: Count
    overage_bps: Bps = 0


class ProductPatch(PatchModel):
    NULLABLE = frozenset({"unit_cost"})

    sku: Sku | None = None
    name: Name | None = None
    language: Language | None = None
    # Replaces the versions in other languages as a whole.
    translations: ProductTranslations | None = None
    weight_grams: Grams | None = None
    unit_cost: Fee | None = None
    batch_size: Count | None = None
    overage_bps: Bps | None = None


# Options and variants: each combination of a product's option values is a variant with its own SKU.

MAX_OPTIONS = 4
MAX_OPTION_VALUES = 20
# More combinations than this is a catalogue no backer can choose from on a phone, and no factory quotes for.
MAX_VARIANTS = 100


def _trimmed(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _distinct_values(values: list[str]) -> list[str]:
    folded = [value.casefold() for value in values]
    if len(set(folded)) != len(folded):
        raise ValueError("names a value twice; give each value once")
    return values


OptionText = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_trimmed)]


class ProductOption(CampaignRequest):
    name: OptionText
    values: Annotated[
        list[OptionText], Field(min_length=1, max_length=MAX_OPTION_VALUES), AfterValidator(_distinct_values)
    ]


def variant_count(options: list[ProductOption]) -> int:
    count = 1
    for option in options:
        count *= len(option.values)
    return count if options else 0


def _sane_options(options: list[ProductOption]) -> list[ProductOption]:
    names = [option.name.casefold() for option in options]
    if len(set(names)) != len(names):
        raise ValueError("names an option twice; give each option once with all its values")
    if variant_count(options) > MAX_VARIANTS:
        raise ValueError(
            f"make {variant_count(options)} combinations; a product may have at most {MAX_VARIANTS} variants"
        )
    return options


class ProductOptions(CampaignRequest):
    """A product's options as a whole; an empty list makes it one product under its own SKU again."""

    options: Annotated[list[ProductOption], Field(max_length=MAX_OPTIONS), AfterValidator(_sane_options)]


class VariantPatch(PatchModel):
    NULLABLE = frozenset({"limit"})

    sku: Sku | None = None
    # Units available in this variant; null for no limit.
    limit: Count | None = None


class ProductOptionOut(ResponseModel):
    name: str
    values: list[str]


class VariantOut(ResponseModel):
    id: uuid.UUID
    choice: dict[str, str]
    sku: str
    limit: int | None
    remaining: int | None


class ProductOut(ResponseModel):
    id: uuid.UUID
    sku: str
    name: str
    language: str
    # {"zh_CN": {"name"}}: the maker's name for it in another language.
    translations: dict[str, dict[str, str]] = {}
    weight_grams: int
    unit_cost: int | None
    batch_size: int
    overage_bps: int
    options: list[ProductOptionOut] = []
    variants: list[VariantOut] = []


# Tiers


class TierItem(CampaignRequest):
    sku: Sku
    quantity: Annotated[int, Field(strict=True, gt=0, le=10_000)]


class ShippingRate(CampaignRequest):
    country: ShippingCountry
    fee: Fee


def _distinct_items(items: list[TierItem]) -> list[TierItem]:
    skus = [item.sku for item in items]
    if len(set(skus)) != len(skus):
        raise ValueError("names a SKU twice; give each SKU once with its quantity")
    return items


def _distinct_countries(rates: list[ShippingRate]) -> list[ShippingRate]:
    countries = [rate.country for rate in rates]
    if len(set(countries)) != len(countries):
        raise ValueError("names a country twice")
    return rates


# A tier is a bundle of the campaign's products: one at least, or a backer would pay for an empty box.
TierItems = Annotated[list[TierItem], Field(min_length=1, max_length=50), AfterValidator(_distinct_items)]
ShippingTable = Annotated[list[ShippingRate], Field(max_length=300), AfterValidator(_distinct_countries)]


class TierTranslation(CampaignRequest):
    """The maker's version of a tier's texts in another language; a text left out is shown as written."""

    title: Title | None = None
    description: Markdown | None = None


TierTranslations = Annotated[dict[str, TierTranslation], AfterValidator(known_translations)]


class TierCreate(CampaignRequest):
    title: Title
    description: Markdown = ""
    language: Language | None = None
    translations: TierTranslations = {}
    price: PositiveAmount
    quantity_limit: Count | None = None
    items: TierItems
    shipping: ShippingTable = []
    estimated_delivery: Month


class TierPatch(PatchModel):
    NULLABLE = frozenset({"quantity_limit"})

    title: Title | None = None
    description: Markdown | None = None
    language: Language | None = None
    # Replaces the versions in other languages as a whole.
    translations: TierTranslations | None = None
    price: PositiveAmount | None = None
    quantity_limit: Count | None = None
    items: TierItems | None = None
    shipping: ShippingTable | None = None
    estimated_delivery: Month | None = None


class TierItemOut(ResponseModel):
    sku: str
    quantity: int


class ShippingRateOut(ResponseModel):
    country: str
    fee: int


class TierOut(ResponseModel):
    id: uuid.UUID
    title: str
    description: str
    language: str
    # {"zh_CN": {"title", "description"}}: the maker's version in another language.
    translations: dict[str, dict[str, str]] = {}
    price: int
    quantity_limit: int | None
    remaining: int | None
    items: list[TierItemOut]
    shipping: list[ShippingRateOut]
    estimated_delivery: str
    position: int


# Reviews

CHECKLIST_ITEMS = ("prototype", "bill_of_materials", "manufacturing_quote", "certifications")
StrictBool = Annotated[bool, Field(strict=True)]
Decision = Literal["approve", "request_changes", "reject"]
assert get_args(Decision) == REVIEW_DECISIONS


class Checklist(CampaignRequest):
    prototype: StrictBool | None = None
    bill_of_materials: StrictBool | None = None
    manufacturing_quote: StrictBool | None = None
    certifications: StrictBool | None = None


class ReviewCreate(CampaignRequest):
    decision: Decision
    notes: str = Field(default="", max_length=10_000)
    language: Language | None = None
    checklist: Checklist = Checklist()


class ReviewOut(ResponseModel):
    id: uuid.UUID
    decision: str
    notes: str
    language: str
    checklist: dict[str, bool | None]
    reviewer_id: uuid.UUID
    created_at: UtcDatetime


# Images


class ImageOut(ResponseModel):
    id: uuid.UUID
    role: str
    url: str
    width: int
    height: int


# Updates


UpdateBody = Annotated[str, Field(min_length=1, max_length=50_000)]


class UpdateTranslation(CampaignRequest):
    title: Title | None = None
    body: UpdateBody | None = None


class UpdateCreate(CampaignRequest):
    title: Title
    body: UpdateBody
    visibility: Literal["public", "backers"] = "public"
    language: Language | None = None
    translations: Annotated[dict[str, UpdateTranslation], AfterValidator(known_translations)] = {}


class UpdatePatch(PatchModel):
    """What a maker changes of a posted update; it stays posted, and is not mailed again."""

    title: Title | None = None
    body: Annotated[str, Field(min_length=1, max_length=50_000)] | None = None
    visibility: Literal["public", "backers"] | None = None


class UpdateOut(ResponseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    body: str
    body_html: str
    visibility: str
    language: str
    # {"zh_CN": {"title", "body", "body_html"}}: the maker's version in another language.
    translations: dict[str, dict[str, str]]
    created_at: UtcDatetime
    edited_at: UtcDatetime | None = None


# Add-ons


def _distinct_tiers(tier_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(tier_ids)) != len(tier_ids):
        raise ValueError("names a tier twice")
    return tier_ids


TierIds = Annotated[list[uuid.UUID], Field(max_length=50), AfterValidator(_distinct_tiers)]


class AddOnCreate(CampaignRequest):
    product_id: uuid.UUID
    # One fixed variant of the product; null lets the backer choose among its variants.
    variant_id: uuid.UUID | None = None
    price: PositiveAmount
    limit: Count | None = None
    # Only with these tiers; empty: with any tier, or alone.
    tier_ids: TierIds = []
    # False: only in a pledge whose tier ships, never in a package of its own.
    ships_alone: StrictBool = True
    shipping: ShippingTable = []


class AddOnPatch(PatchModel):
    NULLABLE = frozenset({"variant_id", "limit"})

    product_id: uuid.UUID | None = None
    variant_id: uuid.UUID | None = None
    price: PositiveAmount | None = None
    limit: Count | None = None
    tier_ids: TierIds | None = None
    ships_alone: StrictBool | None = None
    shipping: ShippingTable | None = None


class AddOnOut(ResponseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    # What the backer gets: the variant's SKU when one is fixed, else the product's.
    sku: str
    name: str
    price: int
    limit: int | None
    remaining: int | None
    tier_ids: list[uuid.UUID]
    ships_alone: bool
    shipping: list[ShippingRateOut]
    position: int


# The campaign


class CampaignOut(ResponseModel):
    id: uuid.UUID
    slug: str
    title: str
    summary: str
    description: str
    description_html: str
    # The language title, summary and description are written in, and the maker's versions in other languages:
    # {"zh_CN": {"title", "summary", "description", "description_html"}}, each text only when given.
    language: str
    translations: dict[str, dict[str, str]]
    currency: str
    # Digits after the decimal point in the currency's minor unit, the unit of every amount: 2 for CNY (fen) and for
    # HUF (Stripe's), 0 for JPY.
    currency_digits: int
    # The least and the most one pledge may come to, in minor units (null for a currency Kindling no longer accepts).
    pledge_minimum: int | None = None
    pledge_maximum: int | None = None
    goal: int
    status: str
    space_id: uuid.UUID
    maker_id: uuid.UUID
    duration_days: int
    launched_at: UtcDatetime | None
    ends_at: UtcDatetime | None
    closed_at: UtcDatetime | None
    created_at: UtcDatetime
    pledged: int
    backers: int
    tiers: list[TierOut]
    products: list[ProductOut]
    add_ons: list[AddOnOut] = []
    review: ReviewOut | None
    cover: ImageOut | None
    images: list[ImageOut]
    # What the caller may do to the campaign now (submit, launch, approve, ...), for showing the right buttons.
    actions: list[str]
