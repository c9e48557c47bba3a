from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns import spaces
from campaigns.schemas import OperatorAdd, OperatorOut, PageQuery, SpaceCreate, SpaceOut
from campaigns.schemas_base import Page
from service.api import json_response
from service.routes import api
from service.web import current_user, require_admin, uow


@api.route(
    "POST",
    "/spaces",
    summary="Create a makerspace (admin)",
    body=SpaceCreate,
    response=SpaceOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=["spaces"],
)
async def create_space(request: Request, body: SpaceCreate) -> Response:
    async with uow(request) as session:
        require_admin(await current_user(request, session))
        space = await spaces.create_space(session, **body.model_dump())
    return json_response(SpaceOut.model_validate(space), 201)


@api.route(
    "POST",
    "/spaces/{space_id}/operators",
    summary="Name an existing user operator of a space (admin)",
    body=OperatorAdd,
    response=OperatorOut,
    status=201,
    errors=(403, 404, 409),
    idempotent=True,
    tags=["spaces"],
)
async def add_operator(request: Request, body: OperatorAdd) -> Response:
    async with uow(request) as session:
        require_admin(await current_user(request, session))
        space = await spaces.get_space(session, request.path_params["space_id"])
        user = await spaces.add_operator(session, space, body.email)
    return json_response(OperatorOut(space_id=space.id, user_id=user.id, email=user.email), 201)


@api.route(
    "GET", "/spaces", summary="All makerspaces", query=PageQuery, response=Page[SpaceOut], auth=False, tags=["spaces"]
)
async def list_spaces(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        rows, next_cursor = await spaces.list_spaces(session, limit=query.limit, cursor=query.cursor)
    return json_response(Page[SpaceOut](items=[SpaceOut.model_validate(s) for s in rows], next_cursor=next_cursor))


@api.route("GET", "/spaces/{space_id}", summary="One makerspace", response=SpaceOut, auth=False, tags=["spaces"])
async def get_space(request: Request) -> Response:
    async with uow(request) as session:
        space = await spaces.get_space(session, request.path_params["space_id"])
    return json_response(SpaceOut.model_validate(space))
