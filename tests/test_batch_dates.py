"""Batch dates and the delivery queue: the maker plans and moves each batch's dates with a reason, every change is
kept, each waiting backer sees their place in line and estimated ship month, and a slip of more than 14 days mails
them once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, User
from fulfillment.batch_dates import BATCH_DELAYED
from fulfillment.models import BatchScheduleChange
from fulfillment.queue import delivery_queue
from service.mail import mail_templates, render_mail
from tests.test_fulfillment_api import Shop, batches_of, mails_of, open_shop, plan


async def put_dates(
    client: httpx.AsyncClient, shop: Shop, batch_id: str, production_on: str, ship_on: str, reason: str = "Tooling"
) -> httpx.Response:
    return await client.put(
        f"{shop.base}/batches/{batch_id}/dates",
        json={"production_on": production_on, "ship_on": ship_on, "reason": reason},
        headers=shop.maker.headers,
    )


async def queue_of(client: httpx.AsyncClient, shop: Shop, n: int) -> Any:
    response = await client.get(f"/api/v1/pledges/{shop.pledge_ids[n]}", headers=shop.backers[n].headers)
    assert response.status_code == 200, response.text
    return response.json()["queue"]


async def test_backers_see_their_place_and_ship_month_and_a_slip_past_two_weeks_mails_them_once_with_the_reason(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions)
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)
    assert batch["production_on"] is None and batch["ship_on"] is None and batch["date_history"] == []
    assert await queue_of(client, shop, 2) == {"position": 3, "batch": 1, "estimated_ship_month": None}

    planned = await put_dates(client, shop, batch["id"], "2027-02-01", "2027-03-10", "The factory's first free slot")
    assert planned.status_code == 200, planned.text
    assert planned.json()["ship_on"] == "2027-03-10" and planned.json()["production_on"] == "2027-02-01"
    for n in range(3):
        assert await queue_of(client, shop, n) == {"position": n + 1, "batch": 1, "estimated_ship_month": "2027-03"}

    # Two small slips: the first (10 days) is no news; the second takes it 20 days past what backers were told.
    assert (await put_dates(client, shop, batch["id"], "2027-02-01", "2027-03-20", "Late boards")).status_code == 200
    assert await mails_of(sessions, BATCH_DELAYED) == []
    slipped = await put_dates(client, shop, batch["id"], "2027-02-10", "2027-03-30", "The enclosure mould cracked")
    assert slipped.status_code == 200, slipped.text
    mails = await mails_of(sessions, BATCH_DELAYED)
    backers = {backer.email for backer in shop.backers}
    assert sorted(mail.to_address for mail in mails) == sorted(backers)
    assert {mail.facts["reason"] for mail in mails} == {"The enclosure mould cracked"}
    assert {(mail.facts["previous_month"], mail.facts["estimated_month"]) for mail in mails} == {("2027-03", "2027-03")}

    # Sent again, the same dates change nothing and mail nobody.
    again = await put_dates(client, shop, batch["id"], "2027-02-10", "2027-03-30", "The enclosure mould cracked")
    assert again.status_code == 200 and len(again.json()["date_history"]) == 3
    assert len(await mails_of(sessions, BATCH_DELAYED)) == 3

    history = again.json()["date_history"]
    assert [change["ship_on"] for change in history] == ["2027-03-30", "2027-03-20", "2027-03-10"]
    assert [change["backers_told"] for change in history] == [3, 0, 0]
    assert history[0]["previous_ship_on"] == "2027-03-20" and history[-1]["previous_ship_on"] is None
    assert history[0]["reason"] == "The enclosure mould cracked"
    seen = await client.get(f"{shop.base}/batches", headers=shop.operator.headers)
    assert seen.status_code == 200 and seen.json()[0]["date_history"] == history

    # The month moves: a slip into April is mailed, in the backer's own language.
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.id == shop.backers[0].id).values(locale="zh_CN"))
    into_april = await put_dates(client, shop, batch["id"], "2027-03-01", "2027-04-20", "模具返工")
    assert into_april.status_code == 200
    assert await queue_of(client, shop, 0) == {"position": 1, "batch": 1, "estimated_ship_month": "2027-04"}
    mails = [m for m in await mails_of(sessions, BATCH_DELAYED) if m.facts["estimated_month"] == "2027-04"]
    assert len(mails) == 3
    rendered = {mail.locale: render_mail(mail_templates(dev=False), mail, base_url="http://k") for mail in mails}
    assert "April 2027" in rendered["en"].subject and "模具返工" in rendered["en"].text
    assert "2027年4月" in rendered["zh_CN"].subject and "制造商" in rendered["zh_CN"].text
    assert f"http://k/me/pledges/{shop.pledge_ids[0]}" in rendered["zh_CN"].text

    async with sessions() as session:
        queue = await delivery_queue(session, shop.campaign_id)
    assert [str(place.pledge_id) for place in queue] == shop.pledge_ids
    assert [place.position for place in queue] == [1, 2, 3]

    # The history is kept as written: only who wrote it may be forgotten (their account deleted).
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as session:
            await session.execute(update(BatchScheduleChange).values(reason="Nothing happened"))
    async with sessions.begin() as session:
        await session.execute(update(BatchScheduleChange).values(changed_by=None))


async def test_batch_dates_refuse_bad_input_and_anyone_but_the_maker(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=1)
    await plan(sessions, shop.campaign_id)
    [batch] = await batches_of(client, shop)
    url = f"{shop.base}/batches/{batch['id']}/dates"

    backwards = await put_dates(client, shop, batch["id"], "2027-03-01", "2027-02-01")
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "ship_on"
    no_reason = await client.put(
        url, json={"production_on": "2027-02-01", "ship_on": "2027-03-01", "reason": "  "}, headers=shop.maker.headers
    )
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    not_a_date = await client.put(
        url, json={"production_on": "soon", "ship_on": "2027-03-01", "reason": "x"}, headers=shop.maker.headers
    )
    assert not_a_date.status_code == 422 and not_a_date.json()["errors"][0]["field"] == "production_on"
    body = {"production_on": "2027-02-01", "ship_on": "2027-03-01", "reason": "Planned"}
    for someone in (shop.operator, shop.stranger, shop.backers[0]):
        assert (await client.put(url, json=body, headers=someone.headers)).status_code == 403
    assert (await client.put(url, json=body)).status_code == 401
    [unchanged] = await batches_of(client, shop)
    assert unchanged["ship_on"] is None and unchanged["date_history"] == []
    async with sessions() as session:
        assert (await session.scalar(Mail.__table__.select().where(Mail.kind == BATCH_DELAYED))) is None
