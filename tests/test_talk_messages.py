"""Makers and backers talk in private: a question from the campaign page, the maker's reply, unread counts, mail
with a link to reply, the maker writing to one backer or to many (by a job in batches), and the space stepping in."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.jobs import take_pending_jobs
from campaigns.models import Mail, Pledge, User
from campaigns.notification_settings import set_notification_settings
from campaigns.talk.messages import SEND_BROADCAST, send_broadcast_batch
from campaigns.talk.models import Broadcast, Message
from service.broker import ListSender
from service.mail import mail_templates, render_mail
from service.settings import Settings
from service.talk_sweeps import STALLED_SECONDS, resume_broadcasts
from tests.helpers import Actor, launched_campaign, many_backers, sign_up


async def back(
    sessions: async_sessionmaker[AsyncSession],
    campaign: dict[str, Any],
    backer: Actor,
    *,
    status: str = "active",
    tier: int = 1,
    address: dict[str, str] | None = None,
) -> None:
    chosen = campaign["tiers"][tier]
    async with sessions.begin() as session:
        session.add(
            Pledge(
                campaign_id=uuid.UUID(campaign["id"]),
                backer_id=uuid.UUID(backer.id),
                tier_id=uuid.UUID(chosen["id"]),
                status=status,
                amount=chosen["price"],
                currency=campaign["currency"],
                address=address,
            )
        )


async def mails_to(sessions: async_sessionmaker[AsyncSession], actor: Actor, kind: str) -> list[Mail]:
    async with sessions() as session:
        found = await session.scalars(
            select(Mail).where(Mail.user_id == uuid.UUID(actor.id), Mail.kind == kind).order_by(Mail.created_at)
        )
        return list(found)


async def inbox(client: httpx.AsyncClient, actor: Actor) -> dict[str, Any]:
    response = await client.get("/api/v1/me/conversations", headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_question_is_answered_with_unread_counts_and_mail_both_ways(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    backer = await sign_up(client, "Bao")
    asked = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/conversations",
        json={"body": "Does it work in a pot of 10 cm?"},
        headers=backer.headers,
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["author_role"] == "member"

    maker_inbox = await inbox(client, maker)
    assert maker_inbox["unread"] == 1
    [conversation] = maker_inbox["items"]
    assert conversation["member_name"] == "Bao" and conversation["unread"] == 1
    assert (await inbox(client, backer))["unread"] == 0

    # The maker is told by mail, with the text and the link that opens the conversation to reply.
    [mail] = await mails_to(sessions, maker, "message_received")
    rendered = render_mail(mail_templates(dev=False), mail, base_url="http://kindling.test")
    assert "Does it work in a pot of 10 cm?" in rendered.text
    assert f"/messages/{conversation['id']}" in rendered.text and "Bao" in rendered.subject

    read = await client.get(f"/api/v1/conversations/{conversation['id']}", headers=maker.headers)
    assert read.status_code == 200, read.text
    assert [m["body"] for m in read.json()["messages"]] == ["Does it work in a pot of 10 cm?"]
    assert (await inbox(client, maker))["unread"] == 0

    answered = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "Yes: the probe is 6 cm long."},
        headers=maker.headers,
    )
    assert answered.status_code == 201, answered.text
    assert answered.json()["author_role"] == "maker"
    assert (await inbox(client, backer))["unread"] == 1
    [told] = await mails_to(sessions, backer, "message_received")
    assert told.facts["body"] == "Yes: the probe is 6 cm long." and told.facts["author_role"] == "maker"

    # Asking again adds to the same conversation.
    again = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/conversations", json={"body": "Thanks!"}, headers=backer.headers
    )
    assert again.status_code == 201, again.text
    assert len((await inbox(client, maker))["items"]) == 1

    # Nobody else reads it: a stranger, the maker's own question, the space before it is asked in.
    stranger = await sign_up(client, "Stranger")
    for outsider in (stranger, operator):
        refused = await client.get(f"/api/v1/conversations/{conversation['id']}", headers=outsider.headers)
        assert refused.status_code == 404, refused.text
    own = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/conversations", json={"body": "Hello me"}, headers=maker.headers
    )
    assert own.status_code == 403, own.text

    # The backer asks the space to step in: its operator is told, reads it and writes in it, marked as the space.
    by_maker = await client.post(f"/api/v1/conversations/{conversation['id']}/space", headers=maker.headers)
    assert by_maker.status_code == 403, by_maker.text
    invited = await client.post(f"/api/v1/conversations/{conversation['id']}/space", headers=backer.headers)
    assert invited.status_code == 200, invited.text
    assert invited.json()["space_invited_at"] is not None
    assert len(await mails_to(sessions, operator, "conversation_space_invited")) == 1
    listed = await inbox(client, operator)
    assert [c["id"] for c in listed["items"]] == [conversation["id"]] and listed["unread"] == 0
    seen = await client.get(f"/api/v1/conversations/{conversation['id']}", headers=operator.headers)
    assert seen.status_code == 200, seen.text
    assert len(seen.json()["messages"]) == 3
    stepped_in = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "The space has checked the probe length."},
        headers=operator.headers,
    )
    assert stepped_in.status_code == 201 and stepped_in.json()["author_role"] == "space"
    assert (
        await client.get(f"/api/v1/conversations/{conversation['id']}", headers=stranger.headers)
    ).status_code == 404
    # The space's words are new to both the member and the maker (who has not read the "Thanks!" either).
    assert (await inbox(client, backer))["unread"] == 1 and (await inbox(client, maker))["unread"] == 2
    assert (await inbox(client, stranger))["items"] == []


async def test_bad_messages_are_refused_naming_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    backer = await sign_up(client, "Bao")
    path = f"/api/v1/campaigns/{campaign['id']}/conversations"
    for body, field in (
        ({"body": ""}, "body"),
        ({"body": "x" * 5001}, "body"),
        ({"body": "hi\x00"}, "body"),
        ({"body": "hi", "member_id": "nobody"}, "member_id"),
    ):
        refused = await client.post(path, json=body, headers=backer.headers)
        assert refused.status_code == 422, refused.text
        assert field in [e["field"] for e in refused.json()["errors"]]
    # The maker writes only to people with a pledge on the campaign (or who asked).
    stranger = await sign_up(client, "Stranger")
    refused = await client.post(path, json={"body": "Hi", "member_id": stranger.id}, headers=maker.headers)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "member_id"
    assert (await client.post(path, json={"body": "Hi"})).status_code == 401
    async with sessions() as session:
        assert await session.scalar(select(func.count(Message.id))) == 0


async def test_the_maker_writes_to_a_filter_of_backers_through_a_job_in_batches(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], jobs: ListSender
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    pair_backers = await many_backers(sessions, 5, "Pair")
    early, failed = await many_backers(sessions, 2, "Other")
    for backer in pair_backers:
        await back(sessions, campaign, backer)
    await back(sessions, campaign, early, tier=0, address={"name": "E", "country": "CN"})
    await back(sessions, campaign, failed, status="errored", tier=0, address={"name": "F", "country": "CN"})
    # One of the pair's backers already asked something: the message joins that conversation.
    asked = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/conversations", json={"body": "When?"}, headers=pair_backers[0].headers
    )
    assert asked.status_code == 201

    # One of them turned message mail off: the message reaches their inbox, no mail.
    quiet = pair_backers[4]
    async with sessions.begin() as session:
        await set_notification_settings(session, await session.get_one(User, uuid.UUID(quiet.id)), {"messages": False})

    path = f"/api/v1/campaigns/{campaign['id']}/broadcasts"
    wrong_tier = await client.post(
        path, json={"body": "Hi", "audience": "tier", "tier_id": str(uuid.uuid4())}, headers=maker.headers
    )
    assert wrong_tier.status_code == 422 and wrong_tier.json()["errors"][0]["field"] == "tier_id"
    not_maker = await client.post(path, json={"body": "Hi", "audience": "all"}, headers=early.headers)
    assert not_maker.status_code == 403

    sent = await client.post(
        path,
        json={"body": "The pair ships in March.", "audience": "tier", "tier_id": campaign["tiers"][1]["id"]},
        headers=maker.headers,
    )
    assert sent.status_code == 202, sent.text
    broadcast = sent.json()
    # The request only records it and asks for the job: no message and no mail yet.
    assert [job.args for job in jobs.jobs if job.actor_name == SEND_BROADCAST] == [(broadcast["id"],)]
    async with sessions() as session:
        assert await session.scalar(select(func.count(Message.id)).where(Message.broadcast_id.isnot(None))) == 0

    # Batches of two: three batches reach the five backers; the last finds fewer and finishes it.
    sizes = []
    for _ in range(4):
        async with sessions.begin() as session:
            sizes.append(await send_broadcast_batch(session, broadcast["id"], base_url="http://x", batch_size=2))
    assert sizes == [2, 2, 1, 0]
    async with sessions() as session:
        done = await session.get_one(Broadcast, uuid.UUID(broadcast["id"]))
        assert done.recipients == 5 and done.finished_at is not None
    for backer in pair_backers:
        listed = await inbox(client, backer)
        assert listed["unread"] == 1, backer
        assert len(await mails_to(sessions, backer, "message_received")) == (0 if backer is quiet else 1)
    assert (await inbox(client, early))["unread"] == 0
    assert len((await inbox(client, maker))["items"]) == 5

    # Those whose charge failed, and those without an address.
    for audience, reached in (("charge_failed", [failed]), ("no_address", pair_backers)):
        sent = await client.post(path, json={"body": f"For {audience}", "audience": audience}, headers=maker.headers)
        assert sent.status_code == 202, sent.text
        async with sessions.begin() as session:
            await send_broadcast_batch(session, sent.json()["id"], base_url="http://x")
        async with sessions() as session:
            got = await session.scalar(
                select(func.count(Message.id)).where(Message.broadcast_id == uuid.UUID(sent.json()["id"]))
            )
        assert got == len(reached), audience

    # To one backer.
    one = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/conversations",
        json={"body": "Your card failed; please give a new one.", "member_id": failed.id},
        headers=maker.headers,
    )
    assert one.status_code == 201, one.text
    assert (await inbox(client, failed))["unread"] == 2


async def test_the_sweep_resumes_a_broadcast_whose_next_batch_was_lost(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    sent = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/broadcasts",
        json={"body": "Hello", "audience": "all"},
        headers=maker.headers,
    )
    assert sent.status_code == 202, sent.text
    async with sessions.begin() as session:
        # Just written: its job is on its way, the sweep leaves it alone.
        assert await resume_broadcasts(session, settings) == 0
        await session.execute(update(Broadcast).values(batch_at=func.now() - timedelta(seconds=STALLED_SECONDS + 1)))
        found = await resume_broadcasts(session, settings)
        assert found == 1
        assert [(job.actor_name, job.args) for job in take_pending_jobs(session)] == [
            (SEND_BROADCAST, (sent.json()["id"],))
        ]
        # A finished one is never resumed.
        await send_broadcast_batch(session, sent.json()["id"], base_url="http://x")
        assert await resume_broadcasts(session, settings) == 0
