from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AuditEntry
from payments import ledger
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import Actor, create_space, make_admin, sign_up
from tests.pages import logged_in

CN_AND_US = ({"country": "CN", "fee": 0}, {"country": "US", "fee": 1500})


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def audited(
    sessions: async_sessionmaker[AsyncSession], campaign_id: Any
) -> list[tuple[str, str, dict[str, Any]]]:
    async with sessions() as session:
        found = await session.execute(
            select(AuditEntry.action, AuditEntry.actor_id, AuditEntry.details)
            .where(AuditEntry.object_id == str(campaign_id))
            .order_by(AuditEntry.created_at)
        )
        return [(action, str(actor), details) for action, actor, details in found]


async def test_the_maker_lists_filters_searches_pages_and_exports_the_backers_of_a_funded_campaign(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await sign_up(client, "Operator")
    added = await client.post(
        f"/api/v1/spaces/{space['id']}/operators", json={"email": operator.email}, headers=admin.headers
    )
    assert added.status_code == 201, added.text
    maker = await sign_up(client, "Maker")
    stranger = await sign_up(client, "Stranger")
    ada = await sign_up(client, "Ada Lovelace", "ada@example.com")
    bob = await sign_up(client, "Bob")
    mallory = await sign_up(client, '=HYPERLINK("http://evil")', "mallory@example.com")
    waiting = await sign_up(client, "Waiting")
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, space_id=space["id"], status="funded")
        await insert_product(session, campaign, "BOARD", batch_size=100)
        await insert_product(session, campaign, "CASE", batch_size=100)
        kit = await insert_tier(session, campaign, {"BOARD": 1, "CASE": 1}, shipping=CN_AND_US, title="Kit")
        board = await insert_tier(session, campaign, {"BOARD": 2}, shipping=CN_AND_US, title="Two boards", price=15_000)
        first = await insert_pledge(session, campaign, kit, backer_id=ada.id, given_address=address("CN"))
        await insert_pledge(session, campaign, board, backer_id=bob.id, shipping_country="US", status="errored")
        await insert_pledge(session, campaign, kit, backer_id=mallory.id, given_address=address("CN", line1="@SUM(1)"))
        await insert_pledge(session, campaign, kit, backer_id=waiting.id, status="requires_payment_method")
        await ledger.record_collection(session, campaign, first.id, first.amount, "CNY", 500, 300, 120)
    base = f"/api/v1/campaigns/{campaign.id}"

    listed = await client.get(f"{base}/backers", headers=maker.headers)
    assert listed.status_code == 200, listed.text
    backers = listed.json()["items"]
    # A pledge that never got its card is nobody's backer yet.
    assert [b["name"] for b in backers] == ["Ada Lovelace", "Bob", '=HYPERLINK("http://evil")']
    assert backers[0]["email"] == ada.email
    assert backers[0]["tier_title"] == "Kit" and backers[0]["items"] == {"BOARD": 1, "CASE": 1}
    assert backers[0]["status"] == "collected" and backers[0]["amount"] == 10_000 and backers[0]["currency"] == "CNY"
    assert backers[0]["pledged_at"].endswith("Z") and backers[0]["country"] == "CN"
    assert backers[0]["address"]["city"] == "深圳"
    assert backers[1]["items"] == {"BOARD": 2} and backers[1]["country"] == "US" and backers[1]["address"] is None

    async def names(query: str, who: Actor = maker) -> list[str]:
        response = await client.get(f"{base}/backers?{query}", headers=who.headers)
        assert response.status_code == 200, response.text
        return [b["name"] for b in response.json()["items"]]

    assert await names(f"tier={board.id}") == ["Bob"]
    assert await names("tier=none") == []
    assert await names("status=errored") == ["Bob"]
    assert await names("country=US") == ["Bob"]
    assert await names("q=LOVELACE") == ["Ada Lovelace"]
    assert await names(f"q={bob.email.split('@')[0]}") == ["Bob"]
    assert await names("q=%25") == []  # a LIKE wildcard is a character like any other
    first_page = await client.get(f"{base}/backers?limit=2", headers=maker.headers)
    assert [b["name"] for b in first_page.json()["items"]] == ["Ada Lovelace", "Bob"]
    cursor = first_page.json()["next_cursor"]
    assert await names(f"limit=2&cursor={cursor}") == ['=HYPERLINK("http://evil")']

    for query, field in (
        ("status=lost", "status"),
        ("country=XX", "country"),
        ("tier=kit", "tier"),
        ("limit=0", "limit"),
    ):
        refused = await client.get(f"{base}/backers?{query}", headers=maker.headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field

    # The sponsoring space's operator sees the addresses too; an admin sees the list without them; others nothing.
    assert (await client.get(f"{base}/backers", headers=operator.headers)).json()["items"][0]["address"] is not None
    as_admin = await client.get(f"{base}/backers", headers=admin.headers)
    assert [b["address"] for b in as_admin.json()["items"]] == [None, None, None]
    assert (await client.get(f"{base}/backers", headers=stranger.headers)).status_code == 403
    assert (await client.get(f"{base}/backers")).status_code == 401

    exported = rows_of(await client.get(f"{base}/backers.csv?country=CN", headers=maker.headers))
    assert [row["name"] for row in exported] == ["Ada Lovelace", '\'=HYPERLINK("http://evil")']
    assert exported[0]["items"] == "BOARD x1; CASE x1" and exported[0]["amount"] == "10000"
    addresses = rows_of(await client.get(f"{base}/addresses.csv", headers=operator.headers))
    assert [row["line1"] for row in addresses] == ["南山区科技园深南大道 9988 号", "'@SUM(1)"]
    assert (await client.get(f"{base}/addresses.csv", headers=admin.headers)).status_code == 403
    transactions = rows_of(await client.get(f"{base}/ledger/transactions.csv", headers=admin.headers))
    assert len(transactions) >= 2 and len({row["transaction_id"] for row in transactions}) >= 1
    assert all(row["pledge_id"] == str(first.id) for row in transactions)
    assert sum(int(row["amount"]) for row in transactions) == 0
    assert (await client.get(f"{base}/ledger/transactions.csv", headers=stranger.headers)).status_code == 403
    assert (await client.get(f"{base}/backers.csv?status=lost", headers=maker.headers)).status_code == 422

    # Each download is in the audit log, with who took it and the filters; refusals left no row.
    assert await audited(sessions, campaign.id) == [
        ("campaign.export_backers", maker.id, {"country": "CN"}),
        ("campaign.export_addresses", operator.id, {}),
        ("campaign.export_transactions", admin.id, {}),
    ]


async def test_before_funding_the_backer_list_shows_no_address_and_the_address_export_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, space_id=space["id"], status="live")
        await insert_product(session, campaign, "BOARD", batch_size=100)
        kit = await insert_tier(session, campaign, {"BOARD": 1})
        await insert_pledge(session, campaign, kit, status="active", given_address=address("CN"))
    base = f"/api/v1/campaigns/{campaign.id}"
    listed = await client.get(f"{base}/backers", headers=maker.headers)
    assert [b["address"] for b in listed.json()["items"]] == [None]
    refused = await client.get(f"{base}/addresses.csv", headers=maker.headers)
    assert refused.status_code == 403, refused.text
    assert await audited(sessions, campaign.id) == []


async def test_the_backers_page_lists_filters_and_refuses_a_bad_filter_in_english_and_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, space_id=space["id"], status="funded")
        await insert_product(session, campaign, "BOARD", batch_size=100)
        kit = await insert_tier(session, campaign, {"BOARD": 2}, title="Kit")
        await insert_pledge(session, campaign, kit, given_address=address("CN", line1="1 Maker Street"))
        await insert_pledge(session, campaign, kit, status="errored", shipping_country="US")
    path = f"/maker/campaigns/{campaign.slug}/backers"
    async with logged_in(client, maker) as browser:
        page = await browser.get(path)
        assert page.status_code == 200, page.text
        assert page.text.count('class="card card-padded backer-card') == 2
        assert "BOARD × 2" in page.text and "1 Maker Street" in page.text and "Payment failed" in page.text
        assert f"/api/v1/campaigns/{campaign.id}/addresses.csv" in page.text
        failed = await browser.get(f"{path}?status=errored")
        assert failed.text.count('class="card card-padded backer-card') == 1 and "1 Maker Street" not in failed.text
        assert "backers.csv?status=errored" in failed.text
        refused = await browser.get(f"{path}?country=Narnia")
        assert refused.status_code == 422
        assert "Type a two-letter country code" in refused.text and "backer-card" not in refused.text
        chinese = await browser.get(f"{path}?lang=zh_CN&country=Narnia")
        assert chinese.status_code == 422
        assert "支持者" in chinese.text and "两个字母的国家代码" in chinese.text
    async with logged_in(client, admin) as browser:
        as_admin = await browser.get(f"/operator/campaigns/{campaign.slug}/backers")
        assert as_admin.status_code == 200 and "1 Maker Street" not in as_admin.text
        assert "addresses.csv" not in as_admin.text
