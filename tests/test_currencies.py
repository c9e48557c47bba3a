"""The currency table: which currencies a campaign may be priced in, amounts in Stripe's minor units, Stripe's
minimum charge and the cap on one pledge, from the typed figure on a form to the PaymentIntent at localstripe."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.currencies import CURRENCIES, STRIPE_MAX_CHARGE, format_amount
from campaigns.models import Campaign, Pledge, Tier
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger
from payments.models import LedgerEntry
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.i18n import use_locale
from service.pages.money_input import NumberInputError, major_units, minor_units
from service.settings import Settings
from tests.helpers import (
    DELIVERY,
    Actor,
    add_product,
    add_tier,
    approve_campaign,
    create_campaign,
    create_space,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
)
from tests.money_helpers import pass_deadline, payment_intents, run_jobs, save_card, stripe_work, sweep
from tests.pages import csrf_from, logged_in, post_form

# The table


def test_every_currency_can_charge_its_minimum_and_its_cap_and_takes_whole_typed_units() -> None:
    for code, currency in CURRENCIES.items():
        assert currency.code == code and len(code) == 3 and code.isupper()
        assert 0 < currency.minimum < currency.pledge_cap <= STRIPE_MAX_CHARGE, code
        assert currency.minimum % currency.step == 0 and currency.pledge_cap % currency.step == 0, code
        assert currency.display_exponent <= currency.stripe_exponent, code


def test_stripe_decides_the_minor_unit_where_babel_disagrees() -> None:
    huf, jpy, usd, twd = CURRENCIES["HUF"], CURRENCIES["JPY"], CURRENCIES["USD"], CURRENCIES["TWD"]
    assert (huf.stripe_exponent, huf.display_exponent, huf.step, huf.minimum) == (2, 0, 100, 17_500)
    assert (twd.stripe_exponent, twd.display_exponent, twd.step) == (2, 0, 100)
    assert (jpy.stripe_exponent, jpy.step, jpy.minimum, jpy.pledge_cap) == (0, 1, 50, 1_500_000)
    assert (usd.minimum, usd.pledge_cap) == (50, 1_000_000)
    assert (CURRENCIES["GBP"].minimum, CURRENCIES["EUR"].minimum, CURRENCIES["HKD"].minimum) == (30, 50, 400)
    assert CURRENCIES["CNY"].pledge_cap == 7_000_000
    # Stripe charges these only in whole units sent as hundredths, or caps them too low: not accepted.
    assert not {"ISK", "UGX", "IDR", "COP", "XAF"} & set(CURRENCIES)


def test_typed_money_becomes_stripes_minor_units_and_comes_back_as_typed() -> None:
    with use_locale("en"):
        assert minor_units("1500", "HUF") == 150_000
        assert minor_units("1 500", "HUF") == 150_000
        assert minor_units("1500", "JPY") == 1_500
        assert minor_units("1500", "TWD") == 150_000
        assert minor_units("14.99", "USD") == 1_499
        with pytest.raises(NumberInputError, match="HUF amounts are whole numbers"):
            minor_units("1500.50", "HUF")
        assert major_units(150_000, "HUF") == "1500"
        assert major_units(150_050, "HUF") == "1500.50"  # never rounded away
        assert major_units(1_500, "JPY") == "1500"


def test_amounts_are_shown_in_the_digits_people_use() -> None:
    assert format_amount(150_000, "HUF") == "HUF1,500"
    assert format_amount(150_050, "HUF") == "HUF1,500.50"
    assert format_amount(1_500, "JPY") == "¥1,500"
    assert format_amount(1_000_000, "USD") == "$10,000.00"
    assert format_amount(1_000_000, "USD", "zh_CN") == "US$10,000.00"


# Arrangements


def field_of(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    return str(response.json()["errors"][0]["field"])


async def pledge(
    client: httpx.AsyncClient, backer: Actor, campaign: dict[str, Any], tier: int | None, bonus: int
) -> httpx.Response:
    body: dict[str, Any] = {"tier_id": campaign["tiers"][tier]["id"] if tier is not None else None, "bonus": bonus}
    if tier is not None:
        body["shipping_country"] = "CN"
    return await client.post(f"/api/v1/campaigns/{campaign['id']}/pledges", json=body, headers=backer.headers)


async def pledge_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Pledge)) or 0)


# Currencies a campaign may be priced in


async def test_a_campaign_is_priced_only_in_a_currency_of_the_table(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    body = {"title": "Kettle", "summary": "Hot.", "goal": 100_000, "space_id": space["id"], "duration_days": 30}
    for code in ("ISK", "UGX", "XAF", "ZZZ"):
        refused = await client.post("/api/v1/campaigns", json=body | {"currency": code}, headers=maker.headers)
        assert field_of(refused) == "currency", code
        assert "HUF" in refused.json()["errors"][0]["message"]
    made = await client.post("/api/v1/campaigns", json=body | {"currency": "huf"}, headers=maker.headers)
    assert made.status_code == 201 and made.json()["currency"] == "HUF"
    assert made.json()["currency_digits"] == 2
    assert (made.json()["pledge_minimum"], made.json()["pledge_maximum"]) == (17_500, 99_999_900)

    async with logged_in(client, maker) as browser:
        form = {k: str(v) for k, v in body.items()} | {"currency": "ISK", "goal": "1000"}
        page = await post_form(browser, "/maker/new", form, form_page="/maker/new")
        assert page.status_code == 422 and 'id="field-currency-error"' in page.text
        offered = (await browser.get("/maker/new")).text
        assert '<option value="HUF"' in offered and '<option value="ISK"' not in offered
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 1


async def test_a_tier_stripe_could_not_charge_is_refused_naming_price(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    cny = await create_campaign(client, maker, space)
    huf = await create_campaign(client, maker, space, currency="HUF", goal=10_000_000)
    await add_product(client, maker, cny)
    tiers = f"/api/v1/campaigns/{cny['id']}/tiers"
    tier = {
        "title": "Sticker",
        "price": 399,
        "items": [{"sku": "SKU-A", "quantity": 1}],
        "estimated_delivery": DELIVERY,
    }

    cheap = await client.post(tiers, json=tier, headers=maker.headers)
    assert field_of(cheap) == "price" and "at least CN¥4.00" in cheap.json()["errors"][0]["message"]
    dear = await client.post(tiers, json=tier | {"price": 7_000_001}, headers=maker.headers)
    assert field_of(dear) == "price" and "at most CN¥70,000.00" in dear.json()["errors"][0]["message"]
    fractional = await client.post(
        f"/api/v1/campaigns/{huf['id']}/tiers", json=tier | {"price": 150_050}, headers=maker.headers
    )
    assert field_of(fractional) == "price" and "whole number of HUF" in fractional.json()["errors"][0]["message"]
    shipping = [{"country": "CN", "fee": 50_001}]
    odd_fee = await client.post(
        f"/api/v1/campaigns/{huf['id']}/tiers",
        json=tier | {"price": 150_000, "shipping": shipping},
        headers=maker.headers,
    )
    assert field_of(odd_fee) == "shipping"

    made = await add_tier(client, maker, cny, price=400)
    lowered = await client.patch(f"{tiers}/{made['id']}", json={"price": 399}, headers=maker.headers)
    assert field_of(lowered) == "price"
    # The tier priced CNY 4.00 is 400 minor units: 4 forints, below Stripe's 175.
    moved = await client.patch(f"/api/v1/campaigns/{cny['id']}", json={"currency": "HUF"}, headers=maker.headers)
    assert field_of(moved) == "currency"

    async with logged_in(client, maker) as browser:
        form = {"title": "Sticker", "price": "3.99", "limit": "unlimited", "estimated_delivery": DELIVERY}
        page = await post_form(
            browser,
            f"/maker/campaigns/{cny['slug']}/tiers/new",
            form,
            form_page=f"/maker/campaigns/{cny['slug']}/tiers/new",
        )
        assert page.status_code == 422
        assert "Enter at least CN¥4.00, the least a card can be charged in CNY." in page.text
    async with sessions() as session:
        prices = list(await session.scalars(select(Tier.price)))
    assert prices == [400]


# What one pledge may come to


async def test_a_pledge_below_stripes_minimum_charge_is_refused_naming_bonus(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Ivy")
    one_fen = await pledge(stripe_client, backer, campaign, None, bonus=1)
    assert field_of(one_fen) == "bonus"
    assert "at least CN¥4.00" in one_fen.json()["errors"][0]["message"]
    assert await pledge_count(sessions) == 0
    assert (await pledge(stripe_client, backer, campaign, None, bonus=400)).status_code == 201


async def test_no_single_pledge_may_come_to_more_than_the_cap_on_create_or_change(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, currency="USD")
    backer = await sign_up(stripe_client, "Ivy")
    # The "Early bird" tier is 149.00, shipped to CN for 10.00: a bonus of 9,841.00 makes exactly 10,000.00.
    greedy = await pledge(stripe_client, backer, campaign, 0, bonus=10**12)
    assert field_of(greedy) == "bonus"
    assert "at most $10,000.00" in greedy.json()["errors"][0]["message"]
    over = await pledge(stripe_client, backer, campaign, 0, bonus=984_101)
    assert field_of(over) == "bonus"
    assert await pledge_count(sessions) == 0

    made = await pledge(stripe_client, backer, campaign, 0, bonus=984_100)
    assert made.status_code == 201, made.text
    assert made.json()["amount"] == 1_000_000
    changed = await stripe_client.patch(
        f"/api/v1/pledges/{made.json()['id']}",
        json={"tier_id": campaign["tiers"][1]["id"], "bonus": 984_100, "shipping_country": "CN"},
        headers=backer.headers,
    )
    assert field_of(changed) == "bonus" and "at most $10,000.00" in changed.json()["errors"][0]["message"]
    async with sessions() as session:
        kept = await session.scalar(select(Pledge))
    assert kept is not None and (kept.amount, str(kept.tier_id)) == (1_000_000, campaign["tiers"][0]["id"])


async def test_the_checkout_form_says_the_cap_in_the_readers_language(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, currency="USD")
    path = f"/campaigns/{campaign['slug']}/back"
    async with logged_in(stripe_client, await sign_up(stripe_client, "Bea")) as browser:
        choice = {"tier": campaign["tiers"][0]["id"], "bonus": "9841.01", "shipping_country": "CN", "action": "pledge"}
        english = await post_form(browser, path, choice, form_page=path)
        assert english.status_code == 422
        assert "One pledge may come to at most $10,000.00. Lower the bonus." in english.text
        token = await csrf_from(browser, path)
        # Signed in, pages speak the account's language; the language switch changes it.
        chinese = await browser.post(f"{path}?lang=zh_CN", data={"csrf_token": token, **choice})
        assert chinese.status_code == 422 and "单笔支持最多为 US$10,000.00" in chinese.text
        below = await post_form(
            browser,
            f"{path}?lang=en",
            choice | {"tier": "none", "bonus": "0.49", "shipping_country": ""},
            form_page=path,
        )
        assert below.status_code == 422
        assert "A pledge must come to at least $0.50, the least a card can be charged in USD." in below.text
    assert await pledge_count(sessions) == 0


# End to end: typed on the forms, shown on the page, charged at localstripe, booked in the ledger


@pytest.mark.parametrize(
    ("code", "minor", "price_shown", "total_shown"),
    [("HUF", 100, "HUF1,500", "HUF2,200"), ("JPY", 1, "¥1,500", "¥2,200")],
)
async def test_a_campaign_is_typed_shown_charged_and_booked_in_its_currencys_real_minor_units(
    code: str,
    minor: int,
    price_shown: str,
    total_shown: str,
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    admin = await make_admin(sessions, await sign_up(stripe_client, "Admin"))
    space = await create_space(stripe_client, admin)
    operator = await make_operator(stripe_client, admin, space)
    maker = await sign_up(stripe_client, "Maker")
    backer = await sign_up(stripe_client, "Bea")

    async with logged_in(stripe_client, maker) as maker_browser:
        campaign_form = {
            "title": f"Kettle {code}",
            "summary": "Boils water.",
            "currency": code,
            "goal": "2000",
            "space_id": space["id"],
            "duration_days": "30",
        }
        created = await post_form(maker_browser, "/maker/new", campaign_form, form_page="/maker/new")
        assert created.status_code == 303, created.text
        slug = created.headers["location"].split("/")[3].split("?")[0]
        campaign = (await stripe_client.get(f"/api/v1/campaigns/{slug}", headers=maker.headers)).json()
        await add_product(stripe_client, maker, campaign, unit_cost=None)
        tier_form = {
            "title": "Kettle",
            "price": "1500",
            "limit": "unlimited",
            "estimated_delivery": DELIVERY,
            "items-0-sku": "SKU-A",
            "items-0-quantity": "1",
            "shipping-0-country": "CN",
            "shipping-0-fee": "500",
        }
        saved = await post_form(
            maker_browser,
            f"/maker/campaigns/{slug}/tiers/new",
            tier_form,
            form_page=f"/maker/campaigns/{slug}/tiers/new",
        )
        assert saved.status_code == 303, saved.text

    campaign = (await stripe_client.get(f"/api/v1/campaigns/{slug}", headers=maker.headers)).json()
    assert campaign["goal"] == 2_000 * minor
    [tier] = campaign["tiers"]
    assert (tier["price"], tier["shipping"][0]["fee"]) == (1_500 * minor, 500 * minor)
    assert (
        await stripe_client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    ).status_code == 200
    await approve_campaign(stripe_client, operator, campaign)
    assert (
        await stripe_client.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=maker.headers)
    ).status_code == 200

    page = await stripe_client.get(f"/campaigns/{slug}")
    assert page.status_code == 200 and price_shown in page.text

    async with logged_in(stripe_client, backer) as backer_browser:
        choice = {"tier": tier["id"], "bonus": "200", "shipping_country": "CN", "action": "pledge"}
        answer = await post_form(backer_browser, f"/campaigns/{slug}/back", choice, form_page=f"/campaigns/{slug}/back")
        assert answer.status_code == 303, answer.text
        pledge_id = answer.headers["location"].split("/")[3]
        mine = (await stripe_client.get(f"/api/v1/pledges/{pledge_id}", headers=backer.headers)).json()
        assert (mine["amount"], mine["bonus"], mine["currency"]) == (2_200 * minor, 200 * minor, code)
        await save_card(stripe_server, mine["payment"]["client_secret"])
        confirmed = await stripe_client.post(f"/api/v1/pledges/{pledge_id}/confirm", headers=backer.headers)
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "active"
        shown = await backer_browser.get(f"/me/pledges/{pledge_id}")
        assert total_shown in shown.text

    await pass_deadline(sessions, campaign["id"])
    assert (await sweep(sessions, stripe_settings, jobs))["close-campaigns"] == 1
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    [intent] = await payment_intents(stripe_server, pledge_id=pledge_id)
    assert (intent["amount"], intent["currency"], intent["status"]) == (2_200 * minor, code.lower(), "succeeded")
    async with sessions() as session:
        charged = await session.get_one(Pledge, uuid.UUID(pledge_id))
        books = await campaign_ledger(session, charged.campaign_id)
        total = await session.scalar(select(func.sum(LedgerEntry.amount)))
    assert charged.status == "collected"
    assert (books.currency, books.collected, books.pledged) == (code, 2_200 * minor, 2_200 * minor)
    assert books.fees + books.escrow_held == books.collected and total == 0
