"""Matching on the operator's campaign page: set up with a cap and a name, the card given on the card page, shown
on the campaign page in both languages, withdrawn after asking once more."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.devservices import EmbeddedStripe
from tests.helpers import launched_campaign
from tests.money_helpers import pledge_row, save_card
from tests.pages import logged_in, post_form

SPONSOR = "Guangzhou Makers Fund"


async def test_an_operator_matches_from_the_campaign_page_gives_the_card_and_withdraws_after_confirming(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = stripe_client
    campaign, _maker, operator = await launched_campaign(client, sessions)
    manage = f"/operator/campaigns/{campaign['slug']}"
    async with logged_in(client, operator) as browser:
        page = await browser.get(manage)
        assert "Match the backers" in page.text and 'name="sponsor_name"' in page.text

        refused = await post_form(
            browser, f"{manage}/match", {"cap": "12.345", "sponsor_name": SPONSOR}, form_page=manage
        )
        assert refused.status_code == 422 and "12.345" in refused.text and "decimal" in refused.text
        empty = await post_form(browser, f"{manage}/match", {"cap": "300", "sponsor_name": " "}, form_page=manage)
        assert empty.status_code == 422 and "Give the name the campaign page shows." in empty.text

        made = await post_form(browser, f"{manage}/match", {"cap": "300.00", "sponsor_name": SPONSOR}, form_page=manage)
        assert made.status_code == 303, made.text
        card_page = made.headers["location"]
        assert card_page.startswith("/me/pledges/") and card_page.endswith("/card")
        assert (await browser.get(card_page)).status_code == 200
        pledge_id = card_page.split("/")[3]
        pledge = await pledge_row(sessions, pledge_id)
        assert (pledge.is_match, pledge.amount, pledge.tier_id) == (True, 30_000, None)
        assert "The match counts once its card is saved." in (await browser.get(manage)).text
        assert "Matched 1:1" not in (await browser.get(f"/campaigns/{campaign['slug']}")).text, "no card, no match"
        assert pledge.setup_intent_client_secret is not None
        await save_card(stripe_server, pledge.setup_intent_client_secret)
        confirmed = await client.post(f"/api/v1/pledges/{pledge_id}/confirm", headers=operator.headers)
        assert confirmed.json()["status"] == "active"

        shown = (await browser.get(manage)).text
        assert f"Matched 1:1 by {SPONSOR} up to" in shown and "Withdraw the match" in shown
        chinese = (await browser.get(f"{manage}?lang=zh_CN")).text
        assert "为支持者配捐" in chinese and f"{SPONSOR} 按 1:1 配捐" in chinese and "撤回配捐" in chinese
        assert f"{SPONSOR} 按 1:1 配捐" in (await browser.get(f"/campaigns/{campaign['slug']}")).text

        asked = await post_form(browser, f"{manage}/match/withdraw", {}, form_page=f"{manage}?lang=en")
        assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
        assert (await pledge_row(sessions, pledge_id)).status == "active", "nothing happens before the answer"
        withdrawn = await post_form(browser, f"{manage}/match/withdraw", {"confirm": "yes"}, form_page=manage)
        assert withdrawn.status_code == 303
        assert "The match is withdrawn." in (await browser.get(withdrawn.headers["location"])).text
    assert (await pledge_row(sessions, pledge_id)).status == "cancelled"
    assert "Matched 1:1" not in (await client.get(f"/campaigns/{campaign['slug']}")).text
