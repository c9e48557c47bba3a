"""Deleting an account: personal fields erased, money records kept (pointing at the anonymised user), and refused
with a reason while a pledge or campaign of the person is under way."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AccountLink, ApiToken, Mail, Pledge, User, UserSession
from tests.account_helpers import log_in_form, new_browser, post_form
from tests.factories import address, insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import PASSWORD, Actor, sign_up


async def pledge_of(
    sessions: async_sessionmaker[AsyncSession], backer: Actor, campaign_status: str, pledge_status: str
) -> uuid.UUID:
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, status=campaign_status)
        await insert_product(session, campaign, "SKU-A", batch_size=100)
        tier = await insert_tier(session, campaign, {"SKU-A": 1})
        pledge = await insert_pledge(
            session, campaign, tier, backer_id=backer.id, status=pledge_status, given_address=address()
        )
        return pledge.id


async def count_of(sessions: async_sessionmaker[AsyncSession], model: type, user_id: str) -> int:
    async with sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(model).where(model.user_id == uuid.UUID(user_id))  # type: ignore[attr-defined]
        )
    return int(found or 0)


async def test_a_deleted_account_is_erased_while_its_money_records_stay_with_an_anonymous_user(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, "Ada")
    delivered = await pledge_of(sessions, ada, "fulfilled", "collected")
    cancelled = await pledge_of(sessions, ada, "live", "cancelled")
    async with new_browser(client) as browser:
        await log_in_form(browser, ada.email)
        wrong = await client.post("/api/v1/me/deletion", json={"password": "not it at all"}, headers=ada.headers)
        assert wrong.status_code == 422 and [e["field"] for e in wrong.json()["errors"]] == ["password"]

        deleted = await client.post("/api/v1/me/deletion", json={"password": PASSWORD}, headers=ada.headers)
        assert deleted.status_code == 204, deleted.text
        assert (await browser.get("/account")).status_code == 303
    assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 401
    again = await client.post("/api/v1/tokens", json={"email": ada.email, "password": PASSWORD})
    assert again.status_code == 401

    async with sessions() as session:
        user = await session.get_one(User, uuid.UUID(ada.id))
        pledges = {p.id: p for p in await session.scalars(select(Pledge).where(Pledge.backer_id == user.id))}
    assert user.deleted_at is not None and user.name == "Deleted user"
    assert ada.email not in user.email and user.email.endswith("@deleted.invalid")
    assert set(pledges) == {delivered, cancelled}
    assert pledges[delivered].status == "collected" and pledges[delivered].amount > 0
    assert all(p.address is None for p in pledges.values())
    for model in (UserSession, ApiToken, AccountLink, Mail):
        assert await count_of(sessions, model, ada.id) == 0, model.__name__
    # The address is free for a new account.
    assert (await sign_up(client, "Ada", email=ada.email)).email == ada.email


async def test_deletion_is_refused_with_a_reason_while_a_pledge_or_a_campaign_is_under_way(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ben = await sign_up(client, "Ben")
    await pledge_of(sessions, ben, "live", "active")
    refused = await client.post("/api/v1/me/deletion", json={"password": PASSWORD}, headers=ben.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "account-in-use"
    assert "Grove sensor kit" in refused.json()["detail"]
    assert (await client.get("/api/v1/me", headers=ben.headers)).status_code == 200

    mia = await sign_up(client, "Mia")
    async with sessions.begin() as session:
        await insert_campaign(session, maker_id=mia.id, status="in_review", title="Mia's lamp")
    made = await client.post("/api/v1/me/deletion", json={"password": PASSWORD}, headers=mia.headers)
    assert made.status_code == 409 and "Mia's lamp" in made.json()["detail"]

    async with new_browser(client) as browser:
        await log_in_form(browser, ben.email)
        page = await post_form(browser, "/account/delete", {"delete_password": PASSWORD}, form_page="/account")
        assert page.status_code == 409 and "cannot be deleted yet" in page.text
        assert (await browser.get("/account")).status_code == 200


async def test_the_account_page_deletes_the_account_after_asking_for_the_password(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    cy = await sign_up(client, "Cy")
    async with new_browser(client) as browser:
        await log_in_form(browser, cy.email)
        wrong = await post_form(browser, "/account/delete", {"delete_password": "nope nope"}, form_page="/account")
        assert wrong.status_code == 422 and "This is not your current password." in wrong.text
        done = await post_form(browser, "/account/delete", {"delete_password": PASSWORD}, form_page="/account")
        assert done.status_code == 303 and done.headers["location"] == "/login?done=deleted"
        assert "Your account is deleted." in (await browser.get(done.headers["location"])).text
    async with sessions() as session:
        assert await session.scalar(select(User.deleted_at).where(User.id == uuid.UUID(cy.id))) is not None
