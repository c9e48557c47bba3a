"""Addresses in the order their country writes them: China (and Taiwan, Hong Kong, Macau) from the country down to the
name; everywhere else as before. One function (`fulfillment.postal.address_lines`) writes them for pages and mail."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fulfillment.addresses import send_address_surveys
from fulfillment.postal import address_lines
from service.mail import mail_templates, render_mail
from tests.factories import address
from tests.pages import logged_in
from tests.test_fulfillment_api import give_address, mails_of, open_shop, plan

CHINESE_ORDER = ["China 518057", "广东省 深圳", "南山区科技园深南大道 9988 号", "柴火创客空间 3 楼", "李雷"]
US = address(
    "US", name="Ada Lovelace", line1="1 Main St", line2="", city="Boston", region="MA", postal_code="02108", phone=""
)


def test_a_chinese_address_is_written_from_the_country_down_to_the_name() -> None:
    assert address_lines(address("CN"), "中国") == [
        "中国 518057",
        "广东省 深圳",
        "南山区科技园深南大道 9988 号",
        "柴火创客空间 3 楼",
        "李雷",
        "+86 755 1234 5678",
    ]
    for country in ("TW", "HK", "MO"):
        assert address_lines(address(country), country)[0].startswith(country)
        assert address_lines(address(country), country)[-2] == "李雷"


def test_other_addresses_keep_the_name_first_and_the_country_last() -> None:
    assert address_lines(US, "United States") == ["Ada Lovelace", "1 Main St", "02108 Boston, MA", "United States"]
    assert address_lines({**US, "region": "", "postal_code": ""}, "US")[2] == "Boston"


def lines_of(html: str) -> list[str]:
    match = re.search(r'<address class="postal-address">(.*?)</address>', html, re.S)
    assert match, html
    return [line.strip() for line in match.group(1).split("<br>")]


async def test_the_pledge_page_shows_a_chinese_address_in_chinese_order_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=2)
    assert (await give_address(client, shop, 0)).status_code == 200
    assert (await give_address(client, shop, 1, **US)).status_code == 200

    async with logged_in(client, shop.backers[0]) as browser:
        english = await browser.get(f"/me/pledges/{shop.pledge_ids[0]}?lang=en")
        chinese = await browser.get(f"/me/pledges/{shop.pledge_ids[0]}?lang=zh_CN")
    async with logged_in(client, shop.backers[1]) as browser:
        american = await browser.get(f"/me/pledges/{shop.pledge_ids[1]}?lang=en")

    assert english.status_code == chinese.status_code == american.status_code == 200
    assert lines_of(english.text)[:5] == CHINESE_ORDER
    assert lines_of(chinese.text)[0] == "中国 518057" and lines_of(chinese.text)[4] == "李雷"
    assert lines_of(american.text) == ["Ada Lovelace", "1 Main St", "02108 Boston, MA", "United States"]


async def test_the_address_survey_mail_writes_each_address_in_its_countrys_order(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, backers=2)
    assert (await give_address(client, shop, 0)).status_code == 200
    assert (await give_address(client, shop, 1, **US)).status_code == 200
    await plan(sessions, shop.campaign_id)
    async with sessions.begin() as session:
        assert await send_address_surveys(session, shop.campaign_id, survey_seconds=86400) == 2

    mails = {mail.to_address: mail for mail in await mails_of(sessions, "address_survey")}
    chinese = render_mail(mail_templates(dev=False), mails[shop.backers[0].email], base_url="http://x")
    american = render_mail(mail_templates(dev=False), mails[shop.backers[1].email], base_url="http://x")

    text = [line.strip() for line in chinese.text.splitlines() if line.strip()]
    start = text.index("China 518057")
    assert text[start : start + 5] == CHINESE_ORDER
    assert chinese.html.index("广东省 深圳") < chinese.html.index("李雷")
    text = [line.strip() for line in american.text.splitlines() if line.strip()]
    start = text.index("Ada Lovelace")
    assert text[start : start + 4] == ["Ada Lovelace", "1 Main St", "02108 Boston, MA", "United States"]
