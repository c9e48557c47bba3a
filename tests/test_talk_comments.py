"""Public comments on a campaign and its updates: one level of replies, the maker's and the space's marked, backers-only
threads on backers-only updates, hiding (kept, marked, audited), the story's sanitiser, and a per-person limit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AuditEntry, Mail, Pledge
from campaigns.talk.models import Comment
from service.app import create_app
from service.mail import mail_templates, render_mail
from service.settings import Settings, SettingsError, environment_of, load_settings
from tests.helpers import Actor, launched_campaign, many_backers, sign_up


async def comment(
    client: httpx.AsyncClient, actor: Actor, path: str, body: str, parent_id: str | None = None
) -> httpx.Response:
    payload: dict[str, Any] = {"body": body} | ({"parent_id": parent_id} if parent_id else {})
    return await client.post(path, json=payload, headers=actor.headers)


async def test_comments_thread_one_level_mark_the_maker_and_the_space_and_are_sanitised(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    reader = await sign_up(client, "Ren")
    path = f"/api/v1/campaigns/{campaign['id']}/comments"
    first = await comment(
        client, reader, path, "Is it **waterproof**? <script>alert(1)</script> [x](javascript:alert(1))"
    )
    assert first.status_code == 201, first.text
    top = first.json()
    assert "<strong>waterproof</strong>" in top["body_html"]
    assert "<script" not in top["body_html"] and "javascript:" not in top["body_html"]
    by_maker = await comment(client, maker, path, "Yes, to IP67.", top["id"])
    by_space = await comment(client, operator, path, "We tested it at the space.", top["id"])
    assert by_maker.status_code == 201 and by_space.status_code == 201, by_space.text
    assert (by_maker.json()["author_role"], by_space.json()["author_role"]) == ("maker", "space")
    deeper = await comment(client, reader, path, "A reply to a reply", by_maker.json()["id"])
    assert deeper.status_code == 409 and deeper.json()["type"] == "reply-to-reply"
    elsewhere = await comment(client, reader, path, "Wrong thread", str(uuid.uuid4()))
    assert elsewhere.status_code == 404

    # The maker is told of the new thread; its author of each reply (nobody of their own words).
    async with sessions() as session:
        mails = list(await session.scalars(select(Mail).where(Mail.kind == "comment_posted").order_by(Mail.created_at)))
    assert [(str(m.user_id), m.facts["reply"], m.facts["author_name"]) for m in mails] == [
        (maker.id, False, "Ren"),
        (reader.id, True, "Maker"),
        (reader.id, True, "Olu"),
    ]
    rendered = render_mail(mail_templates(dev=False), mails[0], base_url="http://kindling.test")
    assert f"/campaigns/{campaign['slug']}/comments#comment-{top['id']}" in rendered.text and "Ren" in rendered.subject

    listed = await client.get(path)
    assert listed.status_code == 200, listed.text
    [thread] = listed.json()["items"]
    assert thread["author_name"] == "Ren" and thread["author_role"] == "member"
    assert [r["author_role"] for r in thread["replies"]] == ["maker", "space"]

    for bad, field in (
        ({"body": ""}, "body"),
        ({"body": "x" * 5001}, "body"),
        ({"body": "x", "parent_id": "1"}, "parent_id"),
    ):
        refused = await client.post(path, json=bad, headers=reader.headers)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field
    assert (await client.post(path, json={"body": "anonymous"})).status_code == 401


async def test_backers_only_updates_have_backers_only_comments(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    backer, stranger = await many_backers(sessions, 2)
    tier = campaign["tiers"][1]
    async with sessions.begin() as session:
        session.add(
            Pledge(
                campaign_id=uuid.UUID(campaign["id"]),
                backer_id=uuid.UUID(backer.id),
                tier_id=uuid.UUID(tier["id"]),
                status="active",
                amount=tier["price"],
                currency="CNY",
            )
        )
    update = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/updates",
        json={"title": "Factory photos", "body": "For you.", "visibility": "backers"},
        headers=maker.headers,
    )
    assert update.status_code == 201, update.text
    path = f"/api/v1/campaigns/{campaign['id']}/updates/{update.json()['id']}/comments"
    posted = await comment(client, backer, path, "Lovely moulds.")
    assert posted.status_code == 201, posted.text
    assert posted.json()["update_id"] == update.json()["id"]
    assert (await comment(client, stranger, path, "Let me in")).status_code == 404
    assert (await client.get(path, headers=stranger.headers)).status_code == 404
    assert (await client.get(path)).status_code == 404
    assert [c["body"] for c in (await client.get(path, headers=backer.headers)).json()["items"]] == ["Lovely moulds."]
    # The update's thread is its own: the campaign's has nothing.
    assert (await client.get(f"/api/v1/campaigns/{campaign['id']}/comments")).json()["items"] == []


async def test_the_maker_and_the_space_hide_an_abusive_comment_kept_marked_and_audited(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    troll, bystander = await many_backers(sessions, 2, "Troll")
    path = f"/api/v1/campaigns/{campaign['id']}/comments"
    rude = (await comment(client, troll, path, "Scam!!! Buy my thing instead")).json()
    ruder = (await comment(client, troll, path, "Still a scam")).json()

    for outsider in (troll, bystander):
        refused = await client.post(f"/api/v1/comments/{rude['id']}/hide", headers=outsider.headers)
        assert refused.status_code == 403, refused.text
    hidden = await client.post(f"/api/v1/comments/{rude['id']}/hide", headers=maker.headers)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["hidden"] is True
    again = await client.post(f"/api/v1/comments/{rude['id']}/hide", headers=maker.headers)
    assert again.status_code == 200
    by_space = await client.post(f"/api/v1/comments/{ruder['id']}/hide", headers=operator.headers)
    assert by_space.status_code == 200, by_space.text

    public = {c["id"]: c for c in (await client.get(path)).json()["items"]}
    assert public[rude["id"]]["hidden"] and public[rude["id"]]["body"] == "" and public[rude["id"]]["body_html"] == ""
    moderated = {c["id"]: c for c in (await client.get(path, headers=maker.headers)).json()["items"]}
    assert moderated[rude["id"]]["body"] == "Scam!!! Buy my thing instead"
    async with sessions() as session:
        kept = await session.get_one(Comment, uuid.UUID(rude["id"]))
        assert kept.hidden_by == uuid.UUID(maker.id) and kept.body.startswith("Scam")
        audited = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "comment.hide")))
    # Hiding twice is recorded once.
    assert sorted((str(a.actor_id), a.object_id) for a in audited) == sorted(
        [(maker.id, rude["id"]), (operator.id, ruder["id"])]
    )
    assert {a.space_id for a in audited} == {uuid.UUID(campaign["space_id"])}


async def test_comments_are_limited_per_person_as_the_settings_say_even_when_sent_at_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert (settings.comments_per_window, settings.comment_window_seconds) == (10, 600)  # the defaults
    env = environment_of(settings, KINDLING_COMMENTS_PER_WINDOW="4", KINDLING_COMMENT_WINDOW_SECONDS="120")
    limited_settings = load_settings(env)
    assert (limited_settings.comments_per_window, limited_settings.comment_window_seconds) == (4, 120)
    with pytest.raises(SettingsError, match="KINDLING_COMMENTS_PER_WINDOW must be a whole number from 1"):
        load_settings(env | {"KINDLING_COMMENTS_PER_WINDOW": "0"})
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    chatty, other = await many_backers(sessions, 2, "Chatty")
    path = f"/api/v1/campaigns/{campaign['id']}/comments"
    app = create_app(limited_settings, engine_pool=5)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as limited,
    ):
        answers = await asyncio.gather(*(comment(limited, chatty, path, f"Comment {i}") for i in range(4 + 3)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] * 4 + [429] * 3
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert refused.json()["type"] == "too-many-requests"
        assert 1 <= int(refused.headers["Retry-After"]) <= 121  # the 2-minute window, not the default 10 minutes
        # Someone else still comments.
        assert (await comment(limited, other, path, "Hello")).status_code == 201
    async with sessions() as session:
        count = await session.scalar(select(func.count(Comment.id)).where(Comment.author_id == uuid.UUID(chatty.id)))
    assert count == 4


async def test_the_conversation_and_comment_routes_are_in_the_openapi_document_with_their_errors(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    expected = {
        ("post", "/api/v1/campaigns/{campaign_id}/conversations"): {"201", "401", "403", "404", "409", "422"},
        ("get", "/api/v1/me/conversations"): {"200", "401", "422"},
        ("get", "/api/v1/conversations/{conversation_id}"): {"200", "401", "403", "404"},
        ("post", "/api/v1/conversations/{conversation_id}/messages"): {"201", "401", "404", "422"},
        ("post", "/api/v1/conversations/{conversation_id}/space"): {"200", "401", "403", "404"},
        ("post", "/api/v1/campaigns/{campaign_id}/broadcasts"): {"202", "401", "403", "404", "409", "422"},
        ("get", "/api/v1/campaigns/{campaign_id}/comments"): {"200", "404", "422"},
        ("post", "/api/v1/campaigns/{campaign_id}/comments"): {"201", "401", "404", "409", "422", "429"},
        ("get", "/api/v1/campaigns/{campaign_id}/updates/{update_id}/comments"): {"200", "404"},
        ("post", "/api/v1/campaigns/{campaign_id}/updates/{update_id}/comments"): {"201", "401", "404", "429"},
        ("post", "/api/v1/comments/{comment_id}/hide"): {"200", "401", "403", "404"},
    }
    for (method, path), statuses in expected.items():
        responses = set(paths[path][method]["responses"])
        assert statuses <= responses, (method, path, statuses - responses)
