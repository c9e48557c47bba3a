"""Messages and comments as pages, without JavaScript, in English and Chinese: the question form on the campaign's
page, the inbox and its badge, replying, asking the space in, the maker's form to write to backers, and comments with
the hide button that asks once more. Bad input shows the form again with the message; nothing changes."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from campaigns.talk.models import Broadcast, Comment, Message
from tests.helpers import launched_campaign, sign_up
from tests.pages import logged_in, post_form

BADGE = re.compile(r'class="nav-badge"[^>]*>(\d+)<')


def badge(html: str) -> int:
    found = BADGE.search(html)
    return int(found.group(1)) if found else 0


async def test_a_question_asked_from_the_campaign_page_is_answered_from_the_inbox(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    backer = await sign_up(client, "Bao")
    slug = campaign["slug"]
    async with logged_in(client, backer) as browser:
        page = await browser.get(f"/campaigns/{slug}")
        assert f'href="/campaigns/{slug}/ask"' in page.text
        empty = await post_form(browser, f"/campaigns/{slug}/ask", {"body": "  "}, form_page=f"/campaigns/{slug}/ask")
        assert empty.status_code == 422 and "This field is required." in empty.text
        asked = await post_form(
            browser,
            f"/campaigns/{slug}/ask",
            {"body": "Is the case <b>recyclable</b>?"},
            form_page=f"/campaigns/{slug}/ask",
        )
        assert asked.status_code == 303, asked.text
        conversation_path = asked.headers["location"].split("?")[0]
        shown = await browser.get(conversation_path)
        assert "Is the case &lt;b&gt;recyclable&lt;/b&gt;?" in shown.text
        assert "Ask the space to step in" in shown.text

    async with logged_in(client, maker) as browser:
        home = await browser.get("/")
        assert badge(home.text) == 1
        inbox = await browser.get("/messages")
        assert "Bao" in inbox.text and conversation_path in inbox.text
        opened = await browser.get(conversation_path)
        assert badge(opened.text) == 0 and "Ask the space to step in" not in opened.text
        blank = await post_form(browser, conversation_path, {"body": ""}, form_page=conversation_path)
        assert blank.status_code == 422 and "This field is required." in blank.text
        answered = await post_form(browser, conversation_path, {"body": "Yes, it is PLA."}, form_page=conversation_path)
        assert answered.status_code == 303

    async with logged_in(client, backer) as browser:
        browser.headers["accept-language"] = "zh-CN"
        await browser.get("/?lang=zh_CN")
        home = await browser.get("/")
        assert badge(home.text) == 1 and "消息" in home.text
        shown = await browser.get(conversation_path)
        assert "Yes, it is PLA." in shown.text and "你与创客的对话" in shown.text
        # Asking the space in asks once more first.
        asked_first = await post_form(browser, f"{conversation_path}/space", {}, form_page=conversation_path)
        assert asked_first.status_code == 200 and 'name="confirm"' in asked_first.text
        confirmed = await post_form(
            browser, f"{conversation_path}/space", {"confirm": "yes"}, form_page=conversation_path
        )
        assert confirmed.status_code == 303
    async with logged_in(client, operator) as browser:
        assert (await browser.get(conversation_path)).status_code == 200
    async with sessions() as session:
        assert await session.scalar(select(func.count(Message.id))) == 2


async def test_the_maker_writes_to_backers_from_a_form_that_refuses_bad_input(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    early = await sign_up(client, "Early")
    async with sessions.begin() as session:
        tier = campaign["tiers"][0]
        session.add(
            Pledge(
                campaign_id=uuid.UUID(campaign["id"]),
                backer_id=uuid.UUID(early.id),
                tier_id=uuid.UUID(tier["id"]),
                status="active",
                amount=tier["price"],
                currency="CNY",
            )
        )
    form_page = f"/maker/campaigns/{campaign['slug']}/messages"
    async with logged_in(client, maker) as browser:
        page = await browser.get(form_page)
        assert page.status_code == 200 and "Backers of “Early bird”" in page.text
        for data, message in (
            ({"audience": "all", "body": ""}, "This field is required."),
            ({"audience": "tier:nope", "body": "Hi"}, "Choose whom to write to."),
            ({"audience": "everyone", "body": "Hi"}, "Choose whom to write to."),
            ({"audience": "one", "email": "nobody@example.com", "body": "Hi"}, "Nobody with this email"),
        ):
            refused = await post_form(browser, form_page, data, form_page=form_page)
            assert refused.status_code == 422, data
            assert message in refused.text, data
        early_birds = {"audience": f"tier:{campaign['tiers'][0]['id']}", "body": "Early birds ship first."}
        asked = await post_form(browser, form_page, early_birds, form_page=form_page)
        assert asked.status_code == 200 and "It goes to 1 backer now" in asked.text
        async with sessions() as session:
            assert await session.scalar(select(func.count(Broadcast.id))) == 0
        sent = await post_form(browser, form_page, early_birds | {"confirm": "yes"}, form_page=form_page)
        assert sent.status_code == 303 and sent.headers["location"].endswith("?done=queued")
        chinese = await browser.get(form_page + "?lang=zh_CN")
        assert "写信给支持者" in chinese.text
    async with sessions() as session:
        assert await session.scalar(select(func.count(Broadcast.id))) == 1


async def test_comments_are_posted_replied_to_and_hidden_after_asking_once_more(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    troll = await sign_up(client, "Troll")
    path = f"/campaigns/{campaign['slug']}/comments"
    async with logged_in(client, None) as anonymous:
        page = await anonymous.get(path)
        assert page.status_code == 200 and "Log in to comment" in page.text
    async with logged_in(client, troll) as browser:
        too_long = await post_form(browser, path, {"body": "x" * 5001}, form_page=path)
        assert too_long.status_code == 422 and "Use at most 5000 characters." in too_long.text
        posted = await post_form(browser, path, {"body": "This is a **scam**"}, form_page=path)
        assert posted.status_code == 303
        page = await browser.get(path)
        assert "<strong>scam</strong>" in page.text and ">Hide<" not in page.text
    async with sessions() as session:
        comment = await session.scalar(select(Comment))
    assert comment is not None
    async with logged_in(client, maker) as browser:
        replied = await post_form(browser, path, {"body": "It is not.", "parent_id": str(comment.id)}, form_page=path)
        assert replied.status_code == 303
        page = await browser.get(path)
        assert "comment-replies" in page.text and ">Maker<" in page.text
        asked = await post_form(browser, f"/comments/{comment.id}/hide", {}, form_page=path)
        assert asked.status_code == 200 and "Hide this comment?" in asked.text
        hidden = await post_form(browser, f"/comments/{comment.id}/hide", {"confirm": "yes"}, form_page=path)
        assert hidden.status_code == 303
    async with logged_in(client, None) as anonymous:
        page = await anonymous.get(path)
        assert "This comment was hidden" in page.text and "scam" not in page.text
        chinese = await anonymous.get(path + "?lang=zh_CN")
        assert "评论" in chinese.text
    async with logged_in(client, troll) as browser:
        refused = await post_form(browser, f"/comments/{comment.id}/hide", {"confirm": "yes"}, form_page=path)
        assert refused.status_code == 403
