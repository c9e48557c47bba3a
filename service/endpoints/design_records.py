"""The design log, published: its signed head, any record with its inclusion proof, and consistency between sizes."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response

from campaigns.errors import NotFound
from campaigns.transparency import log
from campaigns.transparency.schemas import ConsistencyOut, ConsistencyQuery, DesignRecordOut, TreeHeadOut
from campaigns.transparency.tree_head import log_signing_key
from service.api import json_response
from service.routes import api
from service.web import settings_of, uow

TAGS = ["design-records"]


def signing_key_of(request: Request) -> Ed25519PrivateKey:
    settings = settings_of(request)
    return log_signing_key(settings.log_signing_key, secret_key=settings.secret_key)


@api.route(
    "GET",
    "/design-records/tree-head",
    summary="The design log's signed tree head: its size, root hash, time, signature and public key",
    response=TreeHeadOut,
    auth=False,
    tags=TAGS,
)
async def get_design_tree_head(request: Request) -> Response:
    async with uow(request) as session:
        head = await log.signed_tree_head(session, signing_key_of(request), now=datetime.now(UTC))
    return json_response(head.as_json())


@api.route(
    "GET",
    "/design-records/consistency",
    summary="Proof that the design log at `second` records extends the log at `first` (RFC 9162)",
    query=ConsistencyQuery,
    response=ConsistencyOut,
    auth=False,
    tags=TAGS,
)
async def get_design_consistency(request: Request, query: ConsistencyQuery) -> Response:
    async with uow(request) as session:
        proof = await log.published_consistency(
            session, query.first, query.second, signing_key_of(request), now=datetime.now(UTC)
        )
    return json_response(proof)


@api.route(
    "GET",
    "/design-records/{record_id}",
    summary="One design record with its inclusion proof against the current signed tree head",
    response=DesignRecordOut,
    auth=False,
    tags=TAGS,
)
async def get_design_record(request: Request) -> Response:
    raw = request.path_params["record_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"There is no design record {raw}.")
    async with uow(request) as session:
        document = await log.published_record(session, int(raw), signing_key_of(request), now=datetime.now(UTC))
    return json_response(document)
