"""The backer list and the campaign's CSV exports (backers, addresses, ledger transactions) for its maker and the
sponsoring space's operators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from campaigns import backers
from campaigns.backer_schemas import BackerOut, BackerQuery, ExportQuery
from campaigns.backers import ADDRESS_COLUMNS, BACKER_COLUMNS, BackerFilter
from campaigns.schemas_base import Page
from campaigns.spreadsheet import csv_parts
from payments.ledger_export import TRANSACTION_COLUMNS, transactions_csv
from service.api import json_response
from service.routes import api
from service.web import client_address, current_user, sessions_of, uow

TAGS = ["backers"]
CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}


def _campaign_ref(request: Request) -> str:
    return str(request.path_params["campaign_id"])


def backer_filter(query: BackerQuery | ExportQuery) -> BackerFilter:
    return BackerFilter(tier=query.tier, status=query.status, country=query.country, search=query.q)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/backers",
    summary="The campaign's backers, earliest first (maker, operators, admins): tier and contents, status, amount, "
    "dates, country; the address only to the maker and the space's operators once the campaign is funded. Filters "
    "tier (an id or none), status, country; q searches names and emails",
    query=BackerQuery,
    response=Page[BackerOut],
    errors=(403,),
    tags=TAGS,
)
async def list_backers(request: Request, query: BackerQuery) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        page = await backers.list_backers(
            session, _campaign_ref(request), user, backer_filter(query), limit=query.limit, cursor=query.cursor
        )
    return json_response(
        Page[BackerOut](items=[BackerOut.of(backer) for backer in page.backers], next_cursor=page.next_cursor)
    )


async def _download(
    request: Request,
    export: str,
    columns: Sequence[str],
    rows: Callable[[Any, Any], AsyncIterator[Sequence[str]]],
    narrowed: BackerFilter | None = None,
) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        campaign = await backers.start_export(
            session,
            _campaign_ref(request),
            user,
            export,
            client_address=client_address(request),
            narrowed=narrowed,
        )
        campaign_id, slug = campaign.id, campaign.slug
    sessions = sessions_of(request)

    async def parts() -> AsyncIterator[str]:
        # The request's transaction (and its audit row) has committed; the rows are read in a session of their own.
        async with sessions() as export_session:
            async for part in csv_parts(columns, rows(export_session, campaign_id)):
                yield part

    return StreamingResponse(
        parts(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{slug}-{export}.csv"'},
    )


@api.route(
    "GET",
    "/campaigns/{campaign_id}/backers.csv",
    summary="The backer list as CSV, with the list's filters (maker, operators, admins); recorded in the audit log",
    query=ExportQuery,
    errors=(403,),
    response_content=CSV_CONTENT,
    tags=TAGS,
)
async def download_backers(request: Request, query: ExportQuery) -> Response:
    narrowed = backer_filter(query)
    return await _download(
        request,
        "backers",
        BACKER_COLUMNS,
        lambda session, campaign_id: backers.backers_csv(session, campaign_id, narrowed),
        narrowed,
    )


@api.route(
    "GET",
    "/campaigns/{campaign_id}/addresses.csv",
    summary="The shipping addresses of the backers whose pledges ship, as CSV (maker, operators; only once the "
    "campaign is funded, never to an admin); recorded in the audit log",
    errors=(403,),
    response_content=CSV_CONTENT,
    tags=TAGS,
)
async def download_addresses(request: Request) -> Response:
    return await _download(request, "addresses", ADDRESS_COLUMNS, backers.addresses_csv)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/ledger/transactions.csv",
    summary="The campaign's ledger, one row per entry, as CSV (maker, operators, admins); recorded in the audit log",
    errors=(403,),
    response_content=CSV_CONTENT,
    tags=TAGS,
)
async def download_transactions(request: Request) -> Response:
    return await _download(request, "transactions", TRANSACTION_COLUMNS, transactions_csv)
