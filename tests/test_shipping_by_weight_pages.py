"""Shipping by weight on the pages: the maker's form (both languages, refusals beside their fields, closed once the
campaign is submitted) and the reward page's review showing the bracket of what the backer chose before paying."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers import Actor, make_admin, make_operator, many_backers, sign_up
from tests.pages import logged_in, post_form
from tests.pledge_manager_helpers import A, launched_shop

SHIPPING_FEE = re.compile(r'data-summary="shipping">([^<]*)<')


async def test_the_maker_sets_a_weight_table_on_a_form_and_the_reward_page_shows_its_bracket_before_paying(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def by_the_form(url: str, maker: Actor) -> None:
        slug = (await client.get(url, headers=maker.headers)).json()["slug"]
        page = f"/maker/campaigns/{slug}/shipping"
        async with logged_in(client, maker) as browser:
            shown = await browser.get(page)
            assert shown.status_code == 200 and "Desk lamp (LAMP): 120 g" in shown.text
            chinese = await browser.get(page + "?lang=zh_CN")
            assert chinese.status_code == 200 and "按重量" in chinese.text
            await browser.get(page + "?lang=en")
            typed_wrong = {"mode": "weight", "country_0": "CN", "grams_0_0": "-5", "fee_0_0": "-1"}
            wrong = await post_form(browser, page, typed_wrong, form_page=page)
            assert wrong.status_code == 422 and "whole grams, above zero" in wrong.text
            unsorted = {"mode": "weight", "country_0": "CN", "grams_0_0": "200", "fee_0_0": "8"}
            unsorted |= {"grams_0_1": "160", "fee_0_1": "12"}
            refused = await post_form(browser, page, unsorted, form_page=page)
            assert refused.status_code == 422 and "from the lightest to the heaviest" in refused.text
            assert 'name="grams_0_1" type="text" value="160"' in refused.text  # shown again as typed
            table = {"mode": "weight", "country_0": "cn", "grams_0_0": "160", "fee_0_0": "8.00"}
            table |= {"grams_0_1": "200", "fee_0_1": "12.00", "grams_0_2": "300", "fee_0_2": "20"}
            saved = await post_form(browser, page, table, form_page=page)
            assert saved.status_code == 303, saved.text
            again = await browser.get(page)
            assert 'name="fee_0_1" type="text" value="12.00"' in again.text
        chosen = (await client.get(f"{url}/shipping", headers=maker.headers)).json()
        assert chosen["mode"] == "weight"
        assert chosen["table"][0]["country"] == "CN"
        assert [(b["up_to_grams"], b["fee"]) for b in chosen["table"][0]["brackets"]] == [
            (160, 800),
            (200, 1_200),
            (300, 2_000),
        ]

    shop = await launched_shop(client, sessions, before_submit=by_the_form)
    slug = shop.campaign["slug"]
    [backer] = await many_backers(sessions, 1)
    reward = f"/campaigns/{slug}/back"
    chosen = {"tier": shop.tier_id, "shipping_country": "CN", f"variant.{shop.lamp['id']}.colour": "black"}
    async with logged_in(client, backer) as browser:
        # The lamp alone (120 g): China's first bracket, in the country menu and the summary.
        alone = await browser.get(f"{reward}?tier={shop.tier_id}")
        assert alone.status_code == 200 and re.search(r"China · \+[^<\d]*8\.00<", alone.text), alone.text
        review = await post_form(browser, reward, chosen | {"action": "update"}, form_page=reward)
        assert review.status_code == 200 and "8.00" in SHIPPING_FEE.findall(review.text)[0]
        # With a shade (180 g), the second bracket; with five cables more, over the top: the country is refused.
        shade = {f"addon.{shop.shade['id']}": "1", f"addon.{shop.shade['id']}.colour": "white"}
        heavier = await post_form(browser, reward, chosen | shade | {"action": "update"}, form_page=reward)
        assert heavier.status_code == 200 and "12.00" in SHIPPING_FEE.findall(heavier.text)[0]
        chinese = await post_form(
            browser, reward + "?lang=zh_CN", chosen | shade | {"action": "update"}, form_page=reward + "?lang=zh_CN"
        )
        assert chinese.status_code == 200 and "12.00" in SHIPPING_FEE.findall(chinese.text)[0]
        too_heavy = chosen | shade | {f"addon.{shop.cable['id']}": "5", "action": "update"}
        refused = await post_form(browser, reward, too_heavy, form_page=reward)
        assert refused.status_code == 422, refused.text

    # The space's review page shows the table it approves.
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    reviewer = await make_operator(client, admin, {"id": shop.campaign["space_id"]}, sessions=sessions)
    async with logged_in(client, reviewer) as browser:
        review = await browser.get(f"/operator/campaigns/{slug}")
        assert review.status_code == 200, review.text
        shipping = review.text.split('id="shipping"')[1].split("</section>")[0]
        assert "China" in shipping and re.search(r"up to 200 g: [^<\d]*12\.00", shipping), shipping

    # Submitted, the form is closed: what the space reviewed is what sells.
    async with logged_in(client, shop.maker) as browser:
        page = f"/maker/campaigns/{slug}/shipping"
        late = await post_form(browser, page, {"mode": "per_item"}, form_page=page)
        assert late.status_code == 409 and "no longer a draft" in late.text
    assert (await client.get(f"{A}/campaigns/{shop.campaign['id']}/shipping")).json()["mode"] == "weight"
