"""Campaigns: a maker drafts, submits and launches; anyone reads what they may see.

Products and tiers are in campaigns/catalog.py, the space's review in campaigns/review.py, images in
campaigns/images.py and updates in campaigns/updates.py. Every change of status goes through the table in
campaigns/lifecycle.py by `access.move_campaign`.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import UnaryExpression

from campaigns import lifecycle
from campaigns.access import campaign_for, move_campaign, operated_spaces, roles_from, visible_campaign, visible_to
from campaigns.accounts import require_verified_email
from campaigns.add_ons import OfferedAddOn, offered_add_ons
from campaigns.campaign_schemas import CampaignCreate, CampaignPatch
from campaigns.catalog import missing_skus
from campaigns.currencies import AmountRefused, check_price, check_whole_units
from campaigns.errors import Conflict, InvalidInput
from campaigns.ids import parse_id
from campaigns.languages import VERSIONS_FACT, language_of, mail_versions, stored_versions
from campaigns.lifecycle import Role
from campaigns.matching import pledged_and_backers
from campaigns.models import (
    AddOn,
    Campaign,
    CampaignImage,
    Pledge,
    Product,
    ProductVariant,
    Review,
    Space,
    Tier,
    User,
)
from campaigns.notifications import notify
from campaigns.pagination import Cursor, page_after
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES
from campaigns.regions import in_region
from campaigns.spaces import operators_of
from campaigns.story import render_story
from campaigns.variants import variants_of
from fulfillment.planner import ProductSpec, units_per_batch


class NoTiers(Conflict):
    type = "no-tiers"
    title = "The campaign has no reward tier"


class UnknownTierSku(Conflict):
    type = "unknown-sku"
    title = "A tier names a SKU the campaign has no product for"


class TierLargerThanBatch(Conflict):
    type = "tier-larger-than-batch"
    title = "A tier needs more of a product than one manufacturing batch makes"


@dataclass(frozen=True)
class CampaignDetail:
    """A campaign with everything its page shows, loaded in a fixed number of queries however many tiers it has."""

    campaign: Campaign
    tiers: list[Tier]
    products: list[Product]
    variants: list[ProductVariant]
    add_ons: list[OfferedAddOn]
    cover: CampaignImage | None
    gallery: list[CampaignImage]
    latest_review: Review | None
    pledged: int
    backers: int
    roles: frozenset[Role]
    actions: list[str]

    @property
    def sees_costs(self) -> bool:
        """Unit costs are the maker's business and their space's, not the public's."""
        return bool(self.roles & lifecycle.INSIDERS)


# Slugs

_SLUG_MAX = 60


def slug_base(title: str) -> str:
    """An ASCII slug from the title; empty when nothing ASCII is left (a Chinese title, say)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:_SLUG_MAX].rstrip("-")


def _slug_candidates(title: str) -> list[str]:
    base = slug_base(title)
    if not base or parse_id(base) is not None:  # a slug that reads as an id would be looked up as one
        base = "campaign"
    tail = [f"{base}-{secrets.token_hex(3)}" for _ in range(5)]
    return tail if base == "campaign" else [base, *tail]


async def _insert_with_free_slug(session: AsyncSession, title: str, values: dict[str, object]) -> uuid.UUID:
    for slug in _slug_candidates(title):
        inserted: uuid.UUID | None = await session.scalar(
            insert(Campaign)
            .values(slug=slug, title=title, **values)
            .on_conflict_do_nothing(index_elements=[Campaign.slug])
            .returning(Campaign.id)
        )
        if inserted is not None:
            return inserted
    raise Conflict("Could not find a free address for this campaign; try again.")


# Drafting


async def _require_space(session: AsyncSession, space_id: uuid.UUID) -> Space:
    space = await session.get(Space, space_id)
    if space is None:
        raise InvalidInput("space_id", "no makerspace has this id")
    return space


async def create_campaign(session: AsyncSession, maker: User, fields: CampaignCreate) -> Campaign:
    """A new draft by `maker`, sponsored by the space `fields.space_id` names."""
    await _require_space(session, fields.space_id)
    campaign_id = await _insert_with_free_slug(
        session,
        fields.title,
        {
            "summary": fields.summary,
            "description": fields.description,
            "description_html": render_story(fields.description),
            "language": fields.language or language_of(maker.locale),
            "translations": stored_versions(fields.model_dump()["translations"], story="description"),
            "currency": fields.currency,
            "goal": fields.goal,
            "space_id": fields.space_id,
            "maker_id": maker.id,
            "duration_days": fields.duration_days,
            "status": "draft",
        },
    )
    return await session.get_one(Campaign, campaign_id)


async def update_campaign(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, patch: CampaignPatch
) -> Campaign:
    """Change any of the draft's fields; the slug stays as it was first given."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    changes = patch.changes()
    if "space_id" in changes:
        await _require_space(session, changes["space_id"])
    if changes.get("currency", campaign.currency) != campaign.currency:
        await _tiers_fit_currency(session, campaign, changes["currency"])
    if "description" in changes:
        campaign.description_html = render_story(changes["description"])
    if "translations" in changes:
        changes["translations"] = stored_versions(changes["translations"], story="description")
    for name, value in changes.items():
        setattr(campaign, name, value)
    await session.flush()
    return campaign


async def _tiers_fit_currency(session: AsyncSession, campaign: Campaign, currency: str) -> None:
    """Amounts are minor units of the campaign's currency: a new currency must take every tier's as they are."""
    for tier in await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id)):
        try:
            check_price("price", tier.price, currency)
            for rate in tier.shipping:
                check_whole_units("shipping", int(rate["fee"]), currency)
        except AmountRefused as refused:
            raise InvalidInput("currency", f"the tier {tier.title!r} does not fit it: {refused.detail}") from None
    for add_on in await session.scalars(select(AddOn).where(AddOn.campaign_id == campaign.id)):
        try:
            check_price("price", add_on.price, currency)
            for rate in add_on.shipping:
                check_whole_units("shipping", int(rate["fee"]), currency)
        except AmountRefused as refused:
            raise InvalidInput("currency", f"an add-on does not fit it: {refused.detail}") from None
    try:
        for row in campaign.shipping_table:
            for bracket in row["brackets"]:
                check_whole_units("shipping", int(bracket["fee"]), currency)
    except AmountRefused as refused:
        raise InvalidInput("currency", f"the shipping weight table does not fit it: {refused.detail}") from None


# Moving it along


async def submit_campaign(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, *, base_url: str
) -> Campaign:
    """draft -> in_review, once it has a tier and every tier's SKUs are products; tells the space's operators."""
    # The row lock (every edit takes it too) keeps the tiers and products as checked until the status moves.
    campaign, roles = await campaign_for(session, campaign_ref, maker, "submit")
    require_verified_email(maker, "submitting a campaign for review")
    tiers = list(await session.scalars(select(Tier).where(Tier.campaign_id == campaign.id)))
    if not tiers:
        raise NoTiers("Add at least one reward tier before submitting the campaign.")
    products = {
        product.sku: product
        for product in await session.scalars(select(Product).where(Product.campaign_id == campaign.id))
    }
    for tier in tiers:
        missing = missing_skus(tier, products)
        if missing:
            raise UnknownTierSku(
                f"The tier {tier.title!r} names {', '.join(missing)}, which the campaign has no product for; "
                "add the product or change the tier."
            )
        for item in tier.items:
            product = products[item["sku"]]
            most = units_per_batch(
                ProductSpec(product.sku, product.batch_size, product.overage_bps, product.weight_grams)
            )
            if item["quantity"] > most:
                # A pledge is never split across batches, so such a reward could never be made.
                raise TierLargerThanBatch(
                    f"The tier {tier.title!r} needs {item['quantity']} × {product.sku}, but one batch makes at most "
                    f"{most} of it for backers (batch size {product.batch_size}, spares included); raise the batch "
                    "size or lower the tier's quantity."
                )
    await move_campaign(session, campaign, "submit", roles, actor_id=maker.id)
    space = await session.get_one(Space, campaign.space_id)
    facts = campaign_facts(campaign, base_url) | {"space_name": space.name, "maker_name": maker.name}
    for operator in await operators_of(session, space):
        if operator.id != maker.id:
            await notify(session, operator, "campaign_submitted", **facts)
    return campaign


async def launch_campaign(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, *, day_seconds: int, base_url: str
) -> Campaign:
    """approved -> live: it runs from now for duration_days campaign days (KINDLING_DAY_SECONDS each), under its
    space's milestone plan and sponsor fee of this moment."""
    campaign, roles = await visible_campaign(session, campaign_ref, maker)
    await move_campaign(
        session,
        campaign,
        "launch",
        roles,
        actor_id=maker.id,
        launched_at=func.now(),
        ends_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, Campaign.duration_days * day_seconds),
        # The space may change its plan later; the campaign keeps the one its backers pledged under.
        milestone_plan=select(Space.milestone_plan).where(Space.id == Campaign.space_id).scalar_subquery(),
        sponsor_fee_bps=select(Space.sponsor_fee_bps).where(Space.id == Campaign.space_id).scalar_subquery(),
    )
    await notify(
        session,
        maker,
        "campaign_launched",
        **campaign_facts(campaign, base_url),
        ends_at=campaign.ends_at.isoformat() if campaign.ends_at else None,
    )
    return campaign


def campaign_url(campaign: Campaign, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/campaigns/{campaign.slug}"


def campaign_facts(campaign: Campaign, base_url: str) -> dict[str, Any]:
    """What every mail about a campaign may mention, as JSON-able values (the title in each language the maker wrote
    it in, for the reader's)."""
    return {
        "campaign_id": str(campaign.id),
        "campaign_title": campaign.title,
        "campaign_url": campaign_url(campaign, base_url),
        VERSIONS_FACT: mail_versions({"campaign_title": ("title", campaign.translations)}),
    }


# Reading


async def get_campaign(session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User | None) -> Campaign:
    """The campaign by id or slug, if `viewer` may see it (drafts: its maker, its space's operators, admins)."""
    campaign, _roles = await visible_campaign(session, campaign_ref, viewer)
    return campaign


async def campaign_detail(session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User | None) -> CampaignDetail:
    """The campaign by id or slug with its tiers, products, images, latest review and totals, as `viewer` sees it."""
    campaign, roles = await visible_campaign(session, campaign_ref, viewer)
    return (await _details(session, [campaign], {campaign.id: roles}))[0]


async def list_campaigns(
    session: AsyncSession,
    viewer: User | None,
    *,
    status: str | None = None,
    space_id: uuid.UUID | None = None,
    maker_id: uuid.UUID | None = None,
    q: str | None = None,
    province: str | None = None,
    city: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[CampaignDetail], str | None]:
    """Newest first, only what `viewer` may see; `q` matches the title or the summary, in any language; `province`
    and `city` pick the campaigns of spaces there (either case)."""
    query = select(Campaign).where(visible_to(viewer))
    if status is not None:
        query = query.where(Campaign.status == status)
    if space_id is not None:
        query = query.where(Campaign.space_id == space_id)
    region = in_region(province=province, city=city)
    if region:
        query = query.where(Campaign.space_id.in_(select(Space.id).where(*region)))
    if maker_id is not None:
        query = query.where(Campaign.maker_id == maker_id)
    if q:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", q) + "%"
        query = query.where(
            or_(Campaign.title.ilike(pattern, escape="\\"), Campaign.summary.ilike(pattern, escape="\\"))
        )
    rows, next_cursor = await page_after(
        session, query, Campaign, limit=limit, cursor=Cursor.decode(cursor), newest_first=True
    )
    operated = await operated_spaces(session, viewer)
    roles = {campaign.id: roles_from(campaign, viewer, operated) for campaign in rows}
    return await _details(session, rows, roles), next_cursor


async def pledge_totals(session: AsyncSession, campaign_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """(pledged, backers) per campaign, over the pledges that count, in one query; a match adds what it is worth
    on the backers' pledges and is no backer (campaigns.matching)."""
    if not campaign_ids:
        return {}
    pledged, backers = pledged_and_backers()
    rows = await session.execute(
        select(Pledge.campaign_id, pledged, backers)
        .where(Pledge.campaign_id.in_(campaign_ids), Pledge.status.in_(COUNTED_PLEDGE_STATUSES))
        .group_by(Pledge.campaign_id)
    )
    return {campaign_id: (int(pledged), int(backers)) for campaign_id, pledged, backers in rows}


async def _details(
    session: AsyncSession, campaigns: list[Campaign], roles: dict[uuid.UUID, frozenset[Role]]
) -> list[CampaignDetail]:
    if not campaigns:
        return []
    ids = [campaign.id for campaign in campaigns]
    tiers = await session.scalars(
        select(Tier).where(Tier.campaign_id.in_(ids)).order_by(Tier.position, Tier.created_at, Tier.id)
    )
    products_list = list(
        await session.scalars(
            select(Product).where(Product.campaign_id.in_(ids)).order_by(Product.created_at, Product.id)
        )
    )
    images = await session.scalars(
        select(CampaignImage).where(CampaignImage.campaign_id.in_(ids)).order_by(CampaignImage.created_at)
    )
    reviews = await session.scalars(
        select(Review)
        .where(Review.campaign_id.in_(ids))
        .ext(distinct_on(Review.campaign_id))
        .order_by(Review.campaign_id, Review.created_at.desc(), Review.id)
    )
    totals = await pledge_totals(session, ids)
    variants = await variants_of(session, [product.id for product in products_list])
    add_ons_of = await offered_add_ons(session, ids)
    tiers_of: dict[uuid.UUID, list[Tier]] = {i: [] for i in ids}
    products_of: dict[uuid.UUID, list[Product]] = {i: [] for i in ids}
    images_of: dict[uuid.UUID, list[CampaignImage]] = {i: [] for i in ids}
    for tier in tiers:
        tiers_of[tier.campaign_id].append(tier)
    variants_of_campaign: dict[uuid.UUID, list[ProductVariant]] = {i: [] for i in ids}
    for product in products_list:
        products_of[product.campaign_id].append(product)
    for variant in variants:
        variants_of_campaign[variant.campaign_id].append(variant)
    for image in images:
        images_of[image.campaign_id].append(image)
    review_of = {review.campaign_id: review for review in reviews}
    details = []
    for campaign in campaigns:
        held = roles.get(campaign.id, frozenset())
        covers = [image for image in images_of[campaign.id] if image.role == "cover"]
        pledged, backers = totals.get(campaign.id, (0, 0))
        details.append(
            CampaignDetail(
                campaign=campaign,
                tiers=tiers_of[campaign.id],
                products=products_of[campaign.id],
                variants=variants_of_campaign[campaign.id],
                add_ons=add_ons_of[campaign.id],
                cover=covers[-1] if covers else None,
                gallery=[image for image in images_of[campaign.id] if image.role == "gallery"],
                latest_review=review_of.get(campaign.id),
                pledged=pledged,
                backers=backers,
                roles=held,
                actions=lifecycle.allowed_actions(campaign.status, held),
            )
        )
    return details


# Discover: which campaigns a tab shows and in what order.

DISCOVER_TABS = ("live", "funded", "recent")
DISCOVER_SORTS = ("newest", "ending", "backed")
# Campaigns that reached their goal and closed; "recently" is within this many days of their deadline.
SUCCEEDED_STATUSES = ("successful", "funded", "fulfilling", "fulfilled")
RECENTLY_SUCCESSFUL_DAYS = 60


async def discover_campaigns(
    session: AsyncSession,
    viewer: User | None,
    *,
    tab: str,
    sort: str,
    space_ids: Sequence[uuid.UUID] | None = None,
    q: str | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[CampaignDetail], bool]:
    """One page of a Discover tab, and whether more follow.

    Tabs: "live" (taking pledges), "funded" (live and already at their goal), "recent" (closed at their goal within
    RECENTLY_SUCCESSFUL_DAYS). Sorts: "newest" launched, "ending" soonest deadline (latest for closed ones), "backed"
    by most backers. `space_ids` None: every space.
    """
    pledged_sum, backers_count = pledged_and_backers()
    totals = (
        select(
            Pledge.campaign_id.label("campaign_id"),
            pledged_sum.label("pledged"),
            backers_count.label("backers"),
        )
        .where(Pledge.status.in_(COUNTED_PLEDGE_STATUSES))
        .group_by(Pledge.campaign_id)
        .subquery()
    )
    pledged, backers = func.coalesce(totals.c.pledged, 0), func.coalesce(totals.c.backers, 0)
    query = select(Campaign).outerjoin(totals, totals.c.campaign_id == Campaign.id).where(visible_to(viewer))
    if tab == "funded":
        query = query.where(Campaign.status == "live", pledged >= Campaign.goal)
    elif tab == "recent":
        since = func.now() - func.make_interval(0, 0, 0, RECENTLY_SUCCESSFUL_DAYS)
        query = query.where(Campaign.status.in_(SUCCEEDED_STATUSES), Campaign.ends_at >= since)
    else:
        query = query.where(Campaign.status == "live")
    if space_ids is not None:
        query = query.where(Campaign.space_id.in_(space_ids))
    if q:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", q) + "%"
        query = query.where(
            or_(Campaign.title.ilike(pattern, escape="\\"), Campaign.summary.ilike(pattern, escape="\\"))
        )
    order: list[UnaryExpression[Any]]
    if sort == "ending":
        deadline = Campaign.ends_at.desc() if tab == "recent" else Campaign.ends_at.asc()
        order = [deadline.nulls_last()]
    elif sort == "backed":
        order = [backers.desc()]
    else:
        order = [Campaign.launched_at.desc().nulls_last()]
    order += [Campaign.created_at.desc(), Campaign.id.desc()]
    rows = list((await session.scalars(query.order_by(*order).limit(limit + 1).offset(offset))).all())
    operated = await operated_spaces(session, viewer)
    shown = rows[:limit]
    roles = {campaign.id: roles_from(campaign, viewer, operated) for campaign in shown}
    return await _details(session, shown, roles), len(rows) > limit
