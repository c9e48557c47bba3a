"""Discovery beyond one city: campaigns by province and city in the API and on the discover page, counts per region,
the home page's campaigns from outside the busiest city, and each space's page with its campaigns and record."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers import Actor, create_space, launched_campaign, make_admin, make_operator, sign_up


async def space_in(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], admin: Actor, city: str, province: str
) -> tuple[dict[str, Any], Actor]:
    space = await create_space(client, admin, city=city, province=province, name=f"{city} makerspace")
    return space, await make_operator(client, admin, space, sessions=sessions)


def titles(page: dict[str, Any]) -> set[str]:
    return {item["title"] for item in page["items"]}


async def test_campaigns_are_found_by_province_and_city_and_the_home_page_looks_beyond_the_busiest_city(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    shenzhen, shenzhen_operator = await space_in(client, sessions, admin, "Shenzhen", "Guangdong")
    foshan, foshan_operator = await space_in(client, sessions, admin, "Foshan", "Guangdong")
    hangzhou, hangzhou_operator = await space_in(client, sessions, admin, "Hangzhou", "Zhejiang")
    assert shenzhen["province"] == "Guangdong"
    made = {}
    for title, space, operator in (
        ("Loam sensor", shenzhen, shenzhen_operator),
        ("Lumen lamp", shenzhen, shenzhen_operator),
        ("Glaze kiln controller", foshan, foshan_operator),
        ("Tea roaster", hangzhou, hangzhou_operator),
    ):
        made[title], _maker, _operator = await launched_campaign(
            client, sessions, space=space, operator=operator, title=title
        )

    async def listed(**query: str) -> set[str]:
        response = await client.get("/api/v1/campaigns", params={"status": "live", **query})
        assert response.status_code == 200, response.text
        return titles(response.json())

    assert await listed(province="guangdong") == {"Loam sensor", "Lumen lamp", "Glaze kiln controller"}
    assert await listed(city="Foshan") == {"Glaze kiln controller"}
    assert await listed(province="Zhejiang", city="Hangzhou") == {"Tea roaster"}
    assert await listed(province="Zhejiang", city="Foshan") == set()
    too_long = await client.get("/api/v1/campaigns", params={"province": "x" * 121})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "province"

    regions = (await client.get("/api/v1/regions")).json()
    counts = {(r["province"], r["city"]): (r["spaces"], r["live"]) for r in regions["items"]}
    assert counts == {
        ("Guangdong", "Shenzhen"): (1, 2),
        ("Guangdong", "Foshan"): (1, 1),
        ("Zhejiang", "Hangzhou"): (1, 1),
    }
    assert regions["busiest"]["city"] == "Shenzhen"

    page = (await client.get("/campaigns", params={"province": "Guangdong"}, headers={"Accept-Language": "en"})).text
    assert "Glaze kiln controller" in page and "Loam sensor" in page and "Tea roaster" not in page
    assert ">Guangdong (3)</option>" in page and ">Zhejiang (1)</option>" in page and ">Foshan (1)</option>" in page
    assert 'data-live="Shenzhen">2<' in page
    by_city = (await client.get("/campaigns", params={"city": "foshan"})).text
    assert "Glaze kiln controller" in by_city and "Loam sensor" not in by_city

    home = (await client.get("/", headers={"Accept-Language": "en"})).text
    beyond = home.split("data-beyond", 1)[1].split("</section>", 1)[0]
    assert "Beyond Shenzhen" in beyond
    assert "Glaze kiln controller" in beyond and "Tea roaster" in beyond and "Loam sensor" not in beyond
    chinese = (await client.get("/?lang=zh_CN")).text
    assert "Shenzhen 以外" in chinese

    foshan_page = (await client.get(f"/spaces/{foshan['slug']}?lang=en")).text
    assert "Foshan, Guangdong" in foshan_page and "Delivery record" in foshan_page
    assert "Glaze kiln controller" in foshan_page.split('data-list="sponsored"', 1)[1]
