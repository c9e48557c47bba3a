"""Evidence files: the maker attaches them to a draft, each is recorded in the design log on arrival, and only the
maker and the sponsoring space's operators may list or download them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.transparency.evidence import MAX_EVIDENCE_BYTES
from campaigns.transparency.verify import verify_design_record
from service.settings import Settings
from tests.helpers import approve_campaign, create_space, drafted_campaign, make_admin, make_operator, sign_up
from tests.pages import csrf_from, logged_in

BOM = b"part,quantity\nESP32-C3,1\nBME280,1\n"


async def attach(
    client: httpx.AsyncClient, who: object, campaign_id: str, content: bytes, kind: str = "bom", name: str = "bom.csv"
) -> httpx.Response:
    return await client.post(
        f"/api/v1/campaigns/{campaign_id}/evidence",
        files={"file": (name, content, "text/csv")},
        data={"kind": kind},
        headers=who.headers,  # type: ignore[attr-defined]
    )


async def test_an_attached_file_is_recorded_in_the_log_and_its_record_verifies_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    other_operator = await make_operator(client, admin, await create_space(client, admin), "Ngozi")
    maker, stranger = await sign_up(client, "Maker"), await sign_up(client, "Stranger")
    campaign = await drafted_campaign(client, maker, space)

    attached = await attach(client, maker, campaign["id"], BOM, name="../../bom.csv")
    assert attached.status_code == 201, attached.text
    record = attached.json()
    assert record["index"] == 0 and record["file_name"] == "bom.csv" and record["kind"] == "bom"
    assert record["sha256"] == hashlib.sha256(BOM).hexdigest() and record["maker_id"] == maker.id
    photo = await attach(client, maker, campaign["id"], b"\x89PNG prototype", "prototype_photo", "proto.png")
    assert photo.status_code == 201 and photo.json()["index"] == 1

    document = (await client.get(record["record_url"])).json()
    assert verify_design_record(document, BOM).ok

    for who in (maker, operator):
        listed = await client.get(f"/api/v1/campaigns/{campaign['id']}/evidence", headers=who.headers)
        assert [item["index"] for item in listed.json()["items"]] == [0, 1]
        download = await client.get(record["download_url"], headers=who.headers)
        assert download.status_code == 200 and download.content == BOM
        assert download.headers["cache-control"] == "private, no-store"
    for who in (stranger, other_operator):
        assert (await client.get(record["download_url"], headers=who.headers)).status_code == 404
    assert (await client.get(record["download_url"])).status_code == 401
    # Kept outside the public media folders: /media serves none of it.
    stored = settings.media_dir / "evidence" / campaign["id"] / "0"
    assert stored.read_bytes() == BOM
    assert (await client.get(f"/media/evidence/{campaign['id']}/0")).status_code == 404


async def test_only_the_maker_attaches_and_bad_files_are_refused_naming_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)

    assert (await attach(client, operator, campaign["id"], BOM)).status_code == 403
    for content, kind, field in (
        (BOM, "poem", "kind"),
        (b"", "bom", "file"),
        (b"x" * (MAX_EVIDENCE_BYTES + 1), "bom", "file"),
    ):
        refused = await attach(client, maker, campaign["id"], content, kind)
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == [field]
    async with sessions() as session:
        assert await session.scalar(text("SELECT count(*) FROM design_records")) == 0
    assert not (Path(settings.media_dir) / "evidence" / campaign["id"]).exists()

    submitted = await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    assert submitted.status_code == 200, submitted.text
    assert (await attach(client, maker, campaign["id"], BOM)).status_code == 409


async def test_the_campaign_page_says_when_the_design_was_recorded_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    plain = await drafted_campaign(client, maker, space, title="No evidence yet")
    record = (await attach(client, maker, campaign["id"], BOM)).json()
    for draft in (campaign, plain):
        assert (await client.post(f"/api/v1/campaigns/{draft['id']}/submit", headers=maker.headers)).status_code == 200
        await approve_campaign(client, operator, draft)
        assert (await client.post(f"/api/v1/campaigns/{draft['id']}/launch", headers=maker.headers)).status_code == 200

    english = await client.get(f"/campaigns/{campaign['slug']}", headers={"Accept-Language": "en-US"})
    assert english.status_code == 200
    assert "Design recorded on" in english.text and f'href="/api/v1/design-records/{record["index"]}"' in english.text
    chinese = await client.get(f"/campaigns/{campaign['slug']}", headers={"Accept-Language": "zh-CN"})
    assert "设计已于" in chinese.text and "存证记录及其证明" in chinese.text
    assert "Design recorded on" not in (await client.get(f"/campaigns/{plain['slug']}")).text
    assert (await client.get(f"/api/v1/design-records/{record['index']}")).json()["record"]["sha256"] == record[
        "sha256"
    ]


async def test_the_operators_review_lists_each_evidence_file_with_its_record_and_a_download(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    record = (await attach(client, maker, campaign["id"], BOM, "factory_quote", "quote-shenzhen.pdf")).json()
    assert (await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)).status_code == 200

    async with logged_in(client, operator) as browser:
        page = await browser.get(f"/operator/campaigns/{campaign['slug']}", headers={"Accept-Language": "en-US"})
        assert page.status_code == 200
        assert "Factory quote" in page.text and "quote-shenzhen.pdf" in page.text
        assert f'href="/api/v1/design-records/{record["index"]}"' in page.text
        assert f'href="{record["download_url"]}"' in page.text
        # Beside the checklist item it evidences, inside that item's fieldset.
        manufacturing = page.text.split('name="checklist-manufacturing_quote"', 1)[1].split("</fieldset>", 1)[0]
        assert "quote-shenzhen.pdf" in manufacturing
        prototype = page.text.split('name="checklist-prototype"', 1)[1].split("</fieldset>", 1)[0]
        assert "quote-shenzhen.pdf" not in prototype
        download = await browser.get(record["download_url"])
        assert download.status_code == 200 and download.content == BOM
        chinese = await browser.get(f"/operator/campaigns/{campaign['slug']}?lang=zh_CN")  # signed in: the switch
        assert "证明文件" in chinese.text and "工厂报价" in chinese.text


async def test_the_maker_uploads_evidence_on_the_campaign_page_after_confirming_it_is_for_good(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    manage = f"/maker/campaigns/{campaign['slug']}"
    upload = f"{manage}/evidence"
    files = {"file": ("firmware-v1.bin", b"\x7fELF firmware", "application/octet-stream")}

    async with logged_in(client, maker) as browser:
        token = await csrf_from(browser, manage)
        unconfirmed = await browser.post(upload, data={"csrf_token": token, "kind": "firmware"}, files=files)
        assert unconfirmed.status_code == 422 and "Confirm that this file is recorded for good." in unconfirmed.text
        wrong_kind = await browser.post(
            upload, data={"csrf_token": token, "kind": "poem", "confirm": "yes"}, files=files
        )
        assert wrong_kind.status_code == 422 and "Choose what kind of file this is." in wrong_kind.text
        async with sessions() as session:
            assert await session.scalar(text("SELECT count(*) FROM design_records")) == 0

        recorded = await browser.post(
            upload, data={"csrf_token": token, "kind": "firmware", "confirm": "yes"}, files=files
        )
        assert recorded.status_code == 303 and recorded.headers["location"].endswith("?done=evidence-added#evidence")
        await browser.get("/?lang=zh_CN")  # signed in, the switch sets the account's language
        page = await browser.get(recorded.headers["location"])
        assert "文件已记入设计存证日志。" in page.text and "firmware-v1.bin" in page.text and "固件" in page.text
        assert 'href="/api/v1/design-records/0"' in page.text
