"""In a real browser, at phone width: a visitor follows the campaign page's design record, downloads it, and checks
the maker's file against it with the documented command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page
from tests.helpers import approve_campaign, create_space, drafted_campaign, make_admin, make_operator, sign_up

KINDLING = str(Path(sys.executable).parent / "kindling")
SCHEMATIC = b"(kicad_sch (version 20231120) (generator eeschema))\n"


def kindling_verify(folder: Path, public_key: str) -> subprocess.CompletedProcess[str]:
    command = [KINDLING, "verify", "board.kicad_sch", "record.json", "--public-key", public_key]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_visitor_downloads_the_design_record_and_verifies_the_file_with_kindling_verify(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    base = live_server.url
    async with httpx.AsyncClient(base_url=base) as api:
        admin = await make_admin(sessions, await sign_up(api, "Admin", sessions=sessions))
        space = await create_space(api, admin)
        operator = await make_operator(api, admin, space, sessions=sessions)
        maker = await sign_up(api, "Maker", sessions=sessions)
        campaign = await drafted_campaign(api, maker, space)
        attached = await api.post(
            f"/api/v1/campaigns/{campaign['id']}/evidence",
            files={"file": ("board.kicad_sch", SCHEMATIC, "application/octet-stream")},
            data={"kind": "schematic"},
            headers=maker.headers,
        )
        assert attached.status_code == 201, attached.text
        assert (await api.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)).status_code == 200
        await approve_campaign(api, operator, campaign)
        assert (await api.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=maker.headers)).status_code == 200
        public_key = (await api.get("/api/v1/design-records/tree-head")).json()["public_key"]

    async with launch_browser() as browser, new_page(browser, width=390, height=844) as page:
        errors = console_errors(page)
        await page.goto(f"{base}/campaigns/{campaign['slug']}")
        line = page.locator("#design-record")
        await expect(line).to_contain_text("Design recorded on")
        # Checked before leaving: Chromium's own view of the JSON asks for a /favicon.ico the site does not have.
        assert errors == []
        async with page.expect_response(lambda response: "/api/v1/design-records/" in response.url) as answer:
            await line.get_by_role("link", name="the record and its proof").click()
        record = await (await answer.value).body()

    (tmp_path / "record.json").write_bytes(record)
    (tmp_path / "board.kicad_sch").write_bytes(SCHEMATIC)
    verified = kindling_verify(tmp_path, public_key)
    assert verified.returncode == 0 and verified.stdout.startswith("VERIFIED: "), verified.stdout + verified.stderr
    (tmp_path / "board.kicad_sch").write_bytes(SCHEMATIC.replace(b"20231120", b"20240101"))
    refused = kindling_verify(tmp_path, public_key)
    assert refused.returncode == 1 and refused.stdout.startswith("NOT VERIFIED: ")
