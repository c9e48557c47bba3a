from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from campaigns import add_ons, catalog, review, service, updates, variants
from campaigns.add_ons import OfferedAddOn
from campaigns.campaign_schemas import (
    MAX_VARIANTS,
    AddOnCreate,
    AddOnOut,
    AddOnPatch,
    CampaignCreate,
    CampaignListQuery,
    CampaignOut,
    CampaignPatch,
    ImageOut,
    ProductCreate,
    ProductOptions,
    ProductOut,
    ProductPatch,
    ReviewCreate,
    ReviewOut,
    TierCreate,
    TierOut,
    TierPatch,
    UpdateCreate,
    UpdateOut,
    UpdatePatch,
    VariantOut,
    VariantPatch,
)
from campaigns.currencies import accepted_currency, minor_exponent
from campaigns.images import image_url
from campaigns.models import CampaignImage, Product, ProductVariant, Review, User
from campaigns.schemas import PageQuery
from campaigns.schemas_base import Page
from service.api import json_response
from service.routes import api
from service.web import client_address, current_user, optional_user, settings_of, uow

TAGS = ["campaigns"]


def image_out(image: CampaignImage) -> ImageOut:
    return ImageOut(id=image.id, role=image.role, url=image_url(image), width=image.width, height=image.height)


def review_out(row: Review) -> ReviewOut:
    return ReviewOut.model_validate(row)


def variant_out(variant: ProductVariant) -> VariantOut:
    return VariantOut(
        id=variant.id,
        choice=variant.choice,
        sku=variant.sku,
        limit=variant.quantity_limit,
        remaining=variant.remaining,
    )


def product_out(product: Product, variants: list[ProductVariant]) -> ProductOut:
    out = ProductOut.model_validate(product)
    return out.model_copy(
        update={"variants": [variant_out(variant) for variant in variants if variant.product_id == product.id]}
    )


def add_on_out(offered: OfferedAddOn) -> AddOnOut:
    add_on = offered.add_on
    name = variants.variant_name(offered.product, offered.variant) if offered.variant else offered.product.name
    return AddOnOut(
        id=add_on.id,
        product_id=add_on.product_id,
        variant_id=add_on.variant_id,
        sku=offered.sku,
        name=name,
        price=add_on.price,
        limit=add_on.quantity_limit,
        remaining=add_on.remaining,
        tier_ids=offered.tier_ids,
        ships_alone=add_on.ships_alone,
        shipping=add_on.shipping,
        position=add_on.position,
    )


def campaign_out(detail: service.CampaignDetail) -> CampaignOut:
    campaign = detail.campaign
    rules = accepted_currency(campaign.currency)
    products = [product_out(product, detail.variants) for product in detail.products]
    if not detail.sees_costs:
        products = [product.model_copy(update={"unit_cost": None}) for product in products]
    return CampaignOut(
        id=campaign.id,
        slug=campaign.slug,
        title=campaign.title,
        summary=campaign.summary,
        description=campaign.description,
        description_html=campaign.description_html,
        language=campaign.language,
        translations=campaign.translations,
        currency=campaign.currency,
        currency_digits=minor_exponent(campaign.currency),
        pledge_minimum=rules.minimum if rules else None,
        pledge_maximum=rules.pledge_cap if rules else None,
        goal=campaign.goal,
        status=campaign.status,
        space_id=campaign.space_id,
        maker_id=campaign.maker_id,
        duration_days=campaign.duration_days,
        launched_at=campaign.launched_at,
        ends_at=campaign.ends_at,
        closed_at=campaign.closed_at,
        created_at=campaign.created_at,
        pledged=detail.pledged,
        backers=detail.backers,
        tiers=[TierOut.model_validate(tier) for tier in detail.tiers],
        products=products,
        add_ons=[add_on_out(offered) for offered in detail.add_ons],
        review=review_out(detail.latest_review) if detail.latest_review else None,
        cover=image_out(detail.cover) if detail.cover else None,
        images=[image_out(image) for image in detail.gallery],
        actions=detail.actions,
    )


async def _campaign_response(session: AsyncSession, campaign_id: uuid.UUID, user: User, status: int) -> Response:
    detail = await service.campaign_detail(session, campaign_id, user)
    return json_response(campaign_out(detail), status)


def _campaign_ref(request: Request) -> str:
    return str(request.path_params["campaign_id"])


# Campaigns


@api.route(
    "POST",
    "/campaigns",
    summary="Draft a campaign (the caller becomes its maker)",
    body=CampaignCreate,
    response=CampaignOut,
    status=201,
    idempotent=True,
    tags=TAGS,
)
async def create_campaign(request: Request, body: CampaignCreate) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign = await service.create_campaign(session, maker, body)
        return await _campaign_response(session, campaign.id, maker, 201)


@api.route(
    "GET",
    "/campaigns",
    summary="Campaigns the caller may see, newest first",
    query=CampaignListQuery,
    response=Page[CampaignOut],
    auth=False,
    tags=TAGS,
)
async def list_campaigns(request: Request, query: CampaignListQuery) -> Response:
    async with uow(request) as session:
        viewer = await optional_user(request, session)
        details, next_cursor = await service.list_campaigns(
            session,
            viewer,
            status=query.status,
            space_id=query.space_id,
            maker_id=query.maker_id,
            q=query.q,
            limit=query.limit,
            cursor=query.cursor,
        )
    return json_response(Page[CampaignOut](items=[campaign_out(d) for d in details], next_cursor=next_cursor))


@api.route(
    "GET",
    "/campaigns/{campaign_id}",
    summary="One campaign, by id or slug (drafts: its maker, its space's operators, admins)",
    response=CampaignOut,
    auth=False,
    tags=TAGS,
)
async def get_campaign(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await optional_user(request, session)
        detail = await service.campaign_detail(session, _campaign_ref(request), viewer)
    return json_response(campaign_out(detail))


@api.route(
    "PATCH",
    "/campaigns/{campaign_id}",
    summary="Change a draft (its maker)",
    body=CampaignPatch,
    response=CampaignOut,
    errors=(403, 409),
    tags=TAGS,
)
async def update_campaign(request: Request, body: CampaignPatch) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign = await service.update_campaign(session, _campaign_ref(request), maker, body)
        return await _campaign_response(session, campaign.id, maker, 200)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/submit",
    summary="Submit a draft to its space for review (its maker)",
    response=CampaignOut,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def submit_campaign(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign = await service.submit_campaign(
            session, _campaign_ref(request), maker, base_url=settings_of(request).base_url
        )
        return await _campaign_response(session, campaign.id, maker, 200)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/review",
    summary="Approve, ask for changes or reject (an operator of the space who is not the maker)",
    body=ReviewCreate,
    response=CampaignOut,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def review_campaign(request: Request, body: ReviewCreate) -> Response:
    async with uow(request) as session:
        reviewer = await current_user(request, session)
        campaign = await review.review_campaign(
            session,
            _campaign_ref(request),
            reviewer,
            body,
            base_url=settings_of(request).base_url,
            client_address=client_address(request),
        )
        return await _campaign_response(session, campaign.id, reviewer, 200)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/reviews",
    summary="Every review of the campaign, oldest first (maker, operators, admins)",
    response=Page[ReviewOut],
    errors=(403,),
    tags=TAGS,
)
async def list_reviews(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await current_user(request, session)
        rows = await review.reviews_of(session, _campaign_ref(request), viewer)
    return json_response(Page[ReviewOut](items=[review_out(row) for row in rows], next_cursor=None))


@api.route(
    "POST",
    "/campaigns/{campaign_id}/launch",
    summary="Launch an approved campaign (its maker): live from now for duration_days",
    response=CampaignOut,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def launch_campaign(request: Request) -> Response:
    settings = settings_of(request)
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign = await service.launch_campaign(
            session, _campaign_ref(request), maker, day_seconds=settings.day_seconds, base_url=settings.base_url
        )
        return await _campaign_response(session, campaign.id, maker, 200)


# Products


@api.route(
    "POST",
    "/campaigns/{campaign_id}/products",
    summary="Add a product to a draft (its maker)",
    body=ProductCreate,
    response=ProductOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def add_product(request: Request, body: ProductCreate) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        product = await catalog.add_product(session, _campaign_ref(request), maker, body)
        return json_response(ProductOut.model_validate(product), 201)


@api.route(
    "PATCH",
    "/campaigns/{campaign_id}/products/{product_id}",
    summary="Change a draft's product (its maker)",
    body=ProductPatch,
    response=ProductOut,
    errors=(403, 409),
    tags=TAGS,
)
async def update_product(request: Request, body: ProductPatch) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        product = await catalog.update_product(
            session, _campaign_ref(request), request.path_params["product_id"], maker, body
        )
        return json_response(product_out(product, await variants.variants_of(session, [product.id])))


@api.route(
    "PUT",
    "/campaigns/{campaign_id}/products/{product_id}/options",
    summary=(
        "Set a draft's product's options (its maker): each combination of values becomes a variant with its own SKU "
        f"(at most {MAX_VARIANTS}); variants still possible keep their SKU and limit"
    ),
    body=ProductOptions,
    response=ProductOut,
    errors=(403, 409),
    tags=TAGS,
)
async def set_product_options(request: Request, body: ProductOptions) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        product, product_variants = await variants.set_options(
            session, _campaign_ref(request), request.path_params["product_id"], maker, body.options
        )
        return json_response(product_out(product, product_variants))


@api.route(
    "PATCH",
    "/campaigns/{campaign_id}/products/{product_id}/variants/{variant_id}",
    summary="Change a draft's variant's SKU (unique in the campaign) or limit (its maker)",
    body=VariantPatch,
    response=VariantOut,
    errors=(403, 409),
    tags=TAGS,
)
async def update_variant(request: Request, body: VariantPatch) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        variant = await variants.update_variant(
            session,
            _campaign_ref(request),
            request.path_params["product_id"],
            request.path_params["variant_id"],
            maker,
            body,
        )
        return json_response(variant_out(variant))


@api.route(
    "DELETE",
    "/campaigns/{campaign_id}/products/{product_id}",
    summary="Remove a draft's product (its maker)",
    status=204,
    errors=(403, 409),
    tags=TAGS,
)
async def remove_product(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        await catalog.remove_product(session, _campaign_ref(request), request.path_params["product_id"], maker)
    return Response(status_code=204)


# Tiers


@api.route(
    "POST",
    "/campaigns/{campaign_id}/tiers",
    summary="Add a reward tier to a draft (its maker)",
    body=TierCreate,
    response=TierOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def add_tier(request: Request, body: TierCreate) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        tier = await catalog.add_tier(session, _campaign_ref(request), maker, body)
        return json_response(TierOut.model_validate(tier), 201)


@api.route(
    "PATCH",
    "/campaigns/{campaign_id}/tiers/{tier_id}",
    summary="Change a draft's tier (its maker)",
    body=TierPatch,
    response=TierOut,
    errors=(403, 409),
    tags=TAGS,
)
async def update_tier(request: Request, body: TierPatch) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        tier = await catalog.update_tier(session, _campaign_ref(request), request.path_params["tier_id"], maker, body)
        return json_response(TierOut.model_validate(tier))


@api.route(
    "DELETE",
    "/campaigns/{campaign_id}/tiers/{tier_id}",
    summary="Remove a draft's tier (its maker)",
    status=204,
    errors=(403, 409),
    tags=TAGS,
)
async def remove_tier(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        await catalog.remove_tier(session, _campaign_ref(request), request.path_params["tier_id"], maker)
    return Response(status_code=204)


# Add-ons


@api.route(
    "POST",
    "/campaigns/{campaign_id}/add-ons",
    summary="Offer a product (or one variant) alone at a price on a draft (its maker)",
    body=AddOnCreate,
    response=AddOnOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def add_add_on(request: Request, body: AddOnCreate) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        add_on = await add_ons.add_add_on(session, _campaign_ref(request), maker, body)
        return json_response(add_on_out(await add_ons.offered_add_on(session, add_on)), 201)


@api.route(
    "PATCH",
    "/campaigns/{campaign_id}/add-ons/{add_on_id}",
    summary="Change a draft's add-on (its maker)",
    body=AddOnPatch,
    response=AddOnOut,
    errors=(403, 409),
    tags=TAGS,
)
async def update_add_on(request: Request, body: AddOnPatch) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        add_on = await add_ons.update_add_on(
            session, _campaign_ref(request), request.path_params["add_on_id"], maker, body
        )
        return json_response(add_on_out(await add_ons.offered_add_on(session, add_on)))


@api.route(
    "DELETE",
    "/campaigns/{campaign_id}/add-ons/{add_on_id}",
    summary="Remove a draft's add-on (its maker)",
    status=204,
    errors=(403, 409),
    tags=TAGS,
)
async def remove_add_on(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        await add_ons.remove_add_on(session, _campaign_ref(request), request.path_params["add_on_id"], maker)
    return Response(status_code=204)


# Updates


@api.route(
    "POST",
    "/campaigns/{campaign_id}/updates",
    summary="Post an update on a live or later campaign (its maker); every backer gets it by mail",
    body=UpdateCreate,
    response=UpdateOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=TAGS,
)
async def post_update(request: Request, body: UpdateCreate) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        posted = await updates.post_update(session, _campaign_ref(request), maker, body)
        return json_response(UpdateOut.model_validate(posted), 201)


@api.route(
    "PATCH",
    "/campaigns/{campaign_id}/updates/{update_id}",
    summary="Change a posted update (its campaign's maker); it stays posted and is not mailed again",
    body=UpdatePatch,
    response=UpdateOut,
    errors=(403, 409),
    tags=TAGS,
)
async def edit_update(request: Request, body: UpdatePatch) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        edited = await updates.edit_update(
            session, _campaign_ref(request), maker, request.path_params["update_id"], body
        )
        return json_response(UpdateOut.model_validate(edited))


@api.route(
    "DELETE",
    "/campaigns/{campaign_id}/updates/{update_id}",
    summary="Take a posted update down (its campaign's maker): it leaves the campaign's page and list of updates",
    status=204,
    errors=(403, 409),
    tags=TAGS,
)
async def delete_update(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        await updates.delete_update(session, _campaign_ref(request), maker, request.path_params["update_id"])
    return Response(status_code=204)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/updates",
    summary="A campaign's updates, newest first: public ones, and backers-only ones for its backers",
    query=PageQuery,
    response=Page[UpdateOut],
    auth=False,
    tags=TAGS,
)
async def list_updates(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        viewer = await optional_user(request, session)
        rows, next_cursor = await updates.list_updates(
            session, _campaign_ref(request), viewer, limit=query.limit, cursor=query.cursor
        )
    return json_response(Page[UpdateOut](items=[UpdateOut.model_validate(r) for r in rows], next_cursor=next_cursor))
