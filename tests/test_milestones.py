from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge, User
from payments import ledger
from payments.milestones import create_milestones
from tests.helpers import Actor, create_space, enrol_two_factor_by_api, make_admin, sign_up

PLATFORM_BPS = 500
SPONSOR_BPS = 300


@dataclass
class Books:
    campaign_id: uuid.UUID
    space_id: str
    maker: Actor
    operator: Actor
    admin: Actor
    stranger: Actor
    other_operator: Actor

    @property
    def base(self) -> str:
        return f"/api/v1/campaigns/{self.campaign_id}"


async def add_operator(client: httpx.AsyncClient, admin: Actor, space_id: str, operator: Actor) -> None:
    added = await client.post(
        f"/api/v1/spaces/{space_id}/operators", json={"email": operator.email}, headers=admin.headers
    )
    assert added.status_code == 201, added.text
    await enrol_two_factor_by_api(client, operator)


async def insert_campaign(
    sessions: async_sessionmaker[AsyncSession], maker: Actor, space_id: str, status: str
) -> uuid.UUID:
    async with sessions.begin() as session:
        campaign = Campaign(
            slug=f"desk-lamp-{uuid.uuid4().hex[:8]}",
            title="Desk lamp",
            summary="A lamp that glows.",
            currency="USD",
            goal=10_000,
            status=status,
            space_id=uuid.UUID(space_id),
            maker_id=uuid.UUID(maker.id),
            duration_days=30,
        )
        session.add(campaign)
        await session.flush()
        return campaign.id


async def collect(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID, *amounts: int) -> None:
    async with sessions.begin() as session:
        campaign = await session.get_one(Campaign, campaign_id)
        for amount in amounts:
            backer = User(email=f"backer-{uuid.uuid4().hex[:8]}@example.com", name="Backer", password_hash="x" * 40)
            session.add(backer)
            await session.flush()
            pledge = Pledge(
                campaign_id=campaign.id, backer_id=backer.id, amount=amount, currency="USD", status="collected"
            )
            session.add(pledge)
            await session.flush()
            await ledger.record_collection(
                session, campaign, pledge.id, amount, "USD", PLATFORM_BPS, SPONSOR_BPS, processor_fee=amount // 50
            )


async def set_campaign(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID, **values: Any) -> None:
    async with sessions.begin() as session:
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))


async def give_milestones(sessions: async_sessionmaker[AsyncSession], campaign_id: uuid.UUID) -> None:
    async with sessions.begin() as session:
        await create_milestones(session, await session.get_one(Campaign, campaign_id))


async def arrange(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], *, status: str = "funded"
) -> Books:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin, sponsor_fee_bps=SPONSOR_BPS)
    other_space = await create_space(client, admin)
    operator = await sign_up(client, "Operator")
    other_operator = await sign_up(client, "Otto")
    await add_operator(client, admin, space["id"], operator)
    await add_operator(client, admin, other_space["id"], other_operator)
    maker = await sign_up(client, "Maker")
    stranger = await sign_up(client, "Stranger")
    campaign_id = await insert_campaign(sessions, maker, space["id"], status)
    return Books(campaign_id, space["id"], maker, operator, admin, stranger, other_operator)


async def funded_books(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Books:
    books = await arrange(client, sessions)
    await collect(sessions, books.campaign_id, 10_000, 25_000, 4_999, 60_001)
    await give_milestones(sessions, books.campaign_id)
    return books


async def milestones_of(client: httpx.AsyncClient, books: Books, actor: Actor | None = None) -> list[dict[str, Any]]:
    response = await client.get(f"{books.base}/milestones", headers=(actor or books.maker).headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


async def books_of(client: httpx.AsyncClient, books: Books) -> dict[str, Any]:
    response = await client.get(f"{books.base}/ledger", headers=books.maker.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def request_and_release(client: httpx.AsyncClient, books: Books, milestone_id: str) -> dict[str, Any]:
    requested = await client.post(f"{books.base}/milestones/{milestone_id}/request", headers=books.maker.headers)
    assert requested.status_code == 200, requested.text
    assert requested.json()["status"] == "requested"
    released = await client.post(f"{books.base}/milestones/{milestone_id}/release", headers=books.operator.headers)
    assert released.status_code == 200, released.text
    body: dict[str, Any] = released.json()
    return body


def assert_problem(response: httpx.Response, status: int, problem_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if problem_type is not None:
        assert response.json()["type"] == problem_type


def assert_invariant(figures: dict[str, Any]) -> None:
    assert (
        figures["collected"]
        - figures["refunded"]
        - figures["platform_fee"]
        - figures["sponsor_fee"]
        - figures["processor_fee"]
        - figures["released"]
        == figures["escrow_held"]
    )


async def test_the_maker_asks_and_the_space_releases_the_whole_escrow_in_exact_milestones(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    figures = await books_of(client, books)
    escrow = figures["escrow_held"]
    assert figures["collected"] == figures["pledged"] == 100_000
    assert_invariant(figures)

    first, second, third = await milestones_of(client, books)
    assert [(m["name"], m["share_bps"], m["status"]) for m in (first, second, third)] == [
        ("Funding", 5000, "pending"),
        ("First batch confirmed", 3000, "pending"),
        ("Shipping done", 2000, "pending"),
    ]
    assert first["amount"] + second["amount"] + third["amount"] == escrow
    assert [m["requestable"] for m in (first, second, third)] == [True, False, False]

    released = await request_and_release(client, books, first["id"])
    assert released["status"] == "released"
    assert released["amount"] == first["amount"] == (escrow * 5000 + 5000) // 10000
    assert released["payout"]["status"] == "pending"
    assert (await books_of(client, books))["escrow_held"] == escrow - released["amount"]

    paid = await client.post(
        f"{books.base}/milestones/{first['id']}/payout",
        json={"bank_reference": "ICBC-2026-0001"},
        headers=books.operator.headers,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    assert paid.json()["bank_reference"] == "ICBC-2026-0001"
    assert paid.json()["amount"] == released["amount"]

    await set_campaign(sessions, books.campaign_id, first_batch_confirmed_at=func.now(), status="fulfilling")
    second_released = await request_and_release(client, books, second["id"])
    await set_campaign(sessions, books.campaign_id, status="fulfilled")
    third_released = await request_and_release(client, books, third["id"])

    assert released["amount"] + second_released["amount"] + third_released["amount"] == escrow
    assert abs(second_released["amount"] - escrow * 3000 / 10000) <= 1
    figures = await books_of(client, books)
    assert figures["escrow_held"] == 0
    assert figures["released"] == escrow
    assert_invariant(figures)
    assert [m["status"] for m in await milestones_of(client, books, books.admin)] == ["released"] * 3


async def test_money_collected_after_a_release_is_spread_over_the_milestones_still_to_come(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first, _, _ = await milestones_of(client, books)
    released = await request_and_release(client, books, first["id"])
    await collect(sessions, books.campaign_id, 7_777)  # a late pre-order
    escrow = (await books_of(client, books))["escrow_held"]
    _, second, third = await milestones_of(client, books)
    assert second["amount"] + third["amount"] == escrow
    assert abs(second["amount"] - escrow * 3 / 5) <= 1
    assert released["amount"] == (await milestones_of(client, books))[0]["amount"]


async def test_the_maker_can_never_release_their_own_escrow(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first = (await milestones_of(client, books))[0]
    await client.post(f"{books.base}/milestones/{first['id']}/request", headers=books.maker.headers)
    refused = await client.post(f"{books.base}/milestones/{first['id']}/release", headers=books.maker.headers)
    assert_problem(refused, 403)
    assert (await books_of(client, books))["released"] == 0


async def test_a_maker_who_operates_the_space_still_cannot_release(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    await add_operator(client, books.admin, books.space_id, books.maker)
    first = (await milestones_of(client, books))[0]
    await client.post(f"{books.base}/milestones/{first['id']}/request", headers=books.maker.headers)
    refused = await client.post(f"{books.base}/milestones/{first['id']}/release", headers=books.maker.headers)
    assert_problem(refused, 403)


async def test_only_an_operator_of_the_sponsoring_space_releases(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first = (await milestones_of(client, books))[0]
    await client.post(f"{books.base}/milestones/{first['id']}/request", headers=books.maker.headers)
    release = f"{books.base}/milestones/{first['id']}/release"
    assert_problem(await client.post(release, headers=books.other_operator.headers), 403)
    assert_problem(await client.post(release, headers=books.admin.headers), 403)
    assert_problem(await client.post(release), 401)
    assert (await books_of(client, books))["released"] == 0


async def test_only_the_maker_asks_for_a_release(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first = (await milestones_of(client, books))[0]
    ask = f"{books.base}/milestones/{first['id']}/request"
    assert_problem(await client.post(ask, headers=books.operator.headers), 403)
    assert_problem(await client.post(ask, headers=books.stranger.headers), 403)
    assert_problem(await client.post(ask), 401)


async def test_a_milestone_is_asked_for_only_once_the_campaign_has_reached_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first, second, third = await milestones_of(client, books)
    for milestone in (second, third):
        too_early = await client.post(f"{books.base}/milestones/{milestone['id']}/request", headers=books.maker.headers)
        assert_problem(too_early, 409, "milestone-not-due")
    await set_campaign(sessions, books.campaign_id, status="successful")
    not_funded = await client.post(f"{books.base}/milestones/{first['id']}/request", headers=books.maker.headers)
    assert_problem(not_funded, 409, "milestone-not-due")


async def test_a_release_needs_a_request_and_happens_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first = (await milestones_of(client, books))[0]
    release = f"{books.base}/milestones/{first['id']}/release"
    assert_problem(await client.post(release, headers=books.operator.headers), 409, "milestone-not-requested")
    ask = f"{books.base}/milestones/{first['id']}/request"
    assert (await client.post(ask, headers=books.maker.headers)).status_code == 200
    assert_problem(await client.post(ask, headers=books.maker.headers), 409, "milestone-not-pending")
    assert (await client.post(release, headers=books.operator.headers)).status_code == 200
    assert_problem(await client.post(release, headers=books.operator.headers), 409, "milestone-not-requested")
    figures = await books_of(client, books)
    assert figures["released"] == first["amount"]


async def test_a_retried_release_with_the_same_idempotency_key_moves_the_money_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first = (await milestones_of(client, books))[0]
    await client.post(f"{books.base}/milestones/{first['id']}/request", headers=books.maker.headers)
    headers = {**books.operator.headers, "Idempotency-Key": "release-first-milestone"}
    once = await client.post(f"{books.base}/milestones/{first['id']}/release", headers=headers)
    again = await client.post(f"{books.base}/milestones/{first['id']}/release", headers=headers)
    assert once.status_code == again.status_code == 200
    assert once.json() == again.json()
    assert (await books_of(client, books))["released"] == first["amount"]


async def test_two_releases_at_once_never_spend_the_same_escrow(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    await set_campaign(sessions, books.campaign_id, first_batch_confirmed_at=func.now())
    escrow = (await books_of(client, books))["escrow_held"]
    first, second, _ = await milestones_of(client, books)
    for milestone in (first, second):
        ask = await client.post(f"{books.base}/milestones/{milestone['id']}/request", headers=books.maker.headers)
        assert ask.status_code == 200, ask.text
    both = await asyncio.gather(
        *(
            client.post(f"{books.base}/milestones/{m['id']}/release", headers=books.operator.headers)
            for m in (first, second)
        )
    )
    assert [r.status_code for r in both] == [200, 200]
    figures = await books_of(client, books)
    assert figures["released"] == sum(r.json()["amount"] for r in both)
    _, _, third = await milestones_of(client, books)
    assert figures["released"] + third["amount"] == escrow
    assert abs(third["amount"] - escrow * 2 / 10) <= 1


async def test_a_suspended_campaign_releases_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first = (await milestones_of(client, books))[0]
    await client.post(f"{books.base}/milestones/{first['id']}/request", headers=books.maker.headers)
    await set_campaign(sessions, books.campaign_id, status="suspended")
    refused = await client.post(f"{books.base}/milestones/{first['id']}/release", headers=books.operator.headers)
    assert_problem(refused, 409, "campaign-not-funded")


async def test_an_unknown_milestone_or_campaign_is_404(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    nowhere = uuid.uuid4()
    assert_problem(await client.post(f"{books.base}/milestones/{nowhere}/request", headers=books.maker.headers), 404)
    assert_problem(await client.post(f"{books.base}/milestones/not-an-id/release", headers=books.operator.headers), 404)
    assert_problem(await client.get(f"/api/v1/campaigns/{nowhere}/milestones", headers=books.maker.headers), 404)
    assert_problem(await client.get(f"/api/v1/campaigns/{nowhere}/ledger", headers=books.admin.headers), 404)
    other = await arrange(client, sessions)
    await give_milestones(sessions, other.campaign_id)
    foreign = (await milestones_of(client, other, other.maker))[0]
    assert_problem(
        await client.post(f"{books.base}/milestones/{foreign['id']}/request", headers=books.maker.headers), 404
    )


async def test_payouts_are_marked_paid_by_the_space_or_an_admin_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first, second, _ = await milestones_of(client, books)
    payout = f"{books.base}/milestones/{first['id']}/payout"
    reference = {"bank_reference": "BOC-77"}
    assert_problem(await client.post(payout, json=reference, headers=books.operator.headers), 409, "no-payout")
    await request_and_release(client, books, first["id"])
    assert_problem(await client.post(payout, json=reference, headers=books.maker.headers), 403)
    assert_problem(await client.post(payout, json=reference, headers=books.other_operator.headers), 403)
    assert_problem(await client.post(payout, json=reference), 401)
    assert_problem(await client.post(payout, json={}, headers=books.admin.headers), 422)
    assert_problem(await client.post(payout, json={"bank_reference": ""}, headers=books.admin.headers), 422)
    assert_problem(await client.post(payout, json={**reference, "amount": 1}, headers=books.admin.headers), 422)
    paid = await client.post(payout, json=reference, headers=books.admin.headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["paid_at"].endswith("Z")
    assert_problem(
        await client.post(payout, json=reference, headers=books.operator.headers), 409, "payout-already-paid"
    )
    listed = (await milestones_of(client, books))[0]
    assert listed["payout"]["status"] == "paid"
    assert listed["payout"]["bank_reference"] == "BOC-77"
    assert (await milestones_of(client, books))[1]["payout"] is None
    assert second["payout"] is None


async def test_the_books_are_open_to_the_maker_the_space_and_admins_only(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    for actor in (books.maker, books.operator, books.admin):
        for path in ("ledger", "milestones"):
            response = await client.get(f"{books.base}/{path}", headers=actor.headers)
            assert response.status_code == 200, response.text
    for path in ("ledger", "milestones"):
        assert_problem(await client.get(f"{books.base}/{path}", headers=books.stranger.headers), 403)
        assert_problem(await client.get(f"{books.base}/{path}", headers=books.other_operator.headers), 403)
        assert_problem(await client.get(f"{books.base}/{path}"), 401)

    draft = await insert_campaign(sessions, books.maker, books.space_id, "draft")
    assert_problem(await client.get(f"/api/v1/campaigns/{draft}/ledger", headers=books.stranger.headers), 404)
    own = await client.get(f"/api/v1/campaigns/{draft}/ledger", headers=books.maker.headers)
    assert own.status_code == 200
    assert own.json() == {
        "currency": "USD",
        "pledged": 0,
        "collected": 0,
        "refunded": 0,
        "platform_fee": 0,
        "sponsor_fee": 0,
        "processor_fee": 0,
        "released": 0,
        "escrow_held": 0,
        "disputed": 0,
        "dispute_lost": 0,
        "fund_contributed": 0,
        "fund_topped_up": 0,
        "matched": 0,
    }


async def test_anyone_reads_the_public_ledger_of_a_successful_campaign_without_backer_data(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    first = (await milestones_of(client, books))[0]
    released = await request_and_release(client, books, first["id"])
    private = await books_of(client, books)

    public = await client.get(f"{books.base}/ledger/public")
    assert public.status_code == 200, public.text
    body = public.json()
    assert set(body) == {
        "currency",
        "collected",
        "fees",
        "released",
        "escrow_held",
        "refunded",
        "disputed",
        "dispute_lost",
        "milestones",
    }
    assert body["collected"] == private["collected"]
    assert body["fees"] == private["platform_fee"] + private["sponsor_fee"] + private["processor_fee"]
    assert body["released"] == released["amount"]
    assert body["collected"] - body["fees"] - body["released"] - body["refunded"] == body["escrow_held"]
    assert [m["status"] for m in body["milestones"]] == ["released", "pending", "pending"]
    assert "payout" not in body["milestones"][0]
    assert "backer" not in public.text and "pledge" not in public.text

    live = await insert_campaign(sessions, books.maker, books.space_id, "live")
    assert_problem(await client.get(f"/api/v1/campaigns/{live}/ledger/public"), 409, "ledger-not-public")
    draft = await insert_campaign(sessions, books.maker, books.space_id, "draft")
    assert_problem(await client.get(f"/api/v1/campaigns/{draft}/ledger/public"), 404)
    assert_problem(await client.get(f"/api/v1/campaigns/{uuid.uuid4()}/ledger/public"), 404)


async def test_a_space_sets_its_own_milestone_plan(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await arrange(client, sessions)
    plan_url = f"/api/v1/spaces/{books.space_id}/milestone-plan"
    default = await client.get(plan_url)
    assert default.status_code == 200
    assert default.json()["custom"] is False
    assert [m["share_bps"] for m in default.json()["milestones"]] == [5000, 3000, 2000]

    plan = {
        "milestones": [
            {"name": "Tooling paid", "share_bps": 4000, "unlocks_on": "funded"},
            {"name": "Golden sample", "share_bps": 3500, "unlocks_on": "first_batch_confirmed"},
            {"name": "Delivered", "share_bps": 2500, "unlocks_on": "shipping_done"},
        ]
    }
    assert_problem(await client.put(plan_url, json=plan), 401)
    assert_problem(await client.put(plan_url, json=plan, headers=books.maker.headers), 403)
    assert_problem(await client.put(plan_url, json=plan, headers=books.other_operator.headers), 403)
    uneven = {"milestones": [{**m, "share_bps": 3000} for m in plan["milestones"]]}
    response = await client.put(plan_url, json=uneven, headers=books.operator.headers)
    assert_problem(response, 422)
    assert response.json()["errors"][0]["field"] == "milestones"
    bad_condition = {"milestones": [{"name": "All", "share_bps": 10000, "unlocks_on": "someday"}]}
    response = await client.put(plan_url, json=bad_condition, headers=books.operator.headers)
    assert_problem(response, 422)
    assert response.json()["errors"][0]["field"].startswith("milestones.0.unlocks_on")
    assert_problem(await client.put(plan_url, json={"milestones": []}, headers=books.operator.headers), 422)
    assert_problem(
        await client.put(f"/api/v1/spaces/{uuid.uuid4()}/milestone-plan", json=plan, headers=books.admin.headers), 404
    )

    saved = await client.put(plan_url, json=plan, headers=books.operator.headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["custom"] is True

    await collect(sessions, books.campaign_id, 20_000)
    await give_milestones(sessions, books.campaign_id)
    await give_milestones(sessions, books.campaign_id)
    listed = await milestones_of(client, books)
    assert [(m["name"], m["share_bps"]) for m in listed] == [
        ("Tooling paid", 4000),
        ("Golden sample", 3500),
        ("Delivered", 2500),
    ]

    reset = await client.put(plan_url, json={"milestones": None}, headers=books.admin.headers)
    assert reset.status_code == 200
    assert reset.json()["custom"] is False
    assert [m["name"] for m in await milestones_of(client, books)] == ["Tooling paid", "Golden sample", "Delivered"]
