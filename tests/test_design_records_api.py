"""The design log, published: a signed head, records with inclusion proofs anyone can check offline (also with
`kindling verify` and the README's script), and consistency proofs that catch a rewritten log."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.transparency import log, merkle
from campaigns.transparency.tree_head import TreeHead, log_signing_key, public_key_text, tree_head_is_signed
from campaigns.transparency.verify import verify_design_record
from service.settings import SettingsError, load_settings
from tests.factories import insert_campaign

KINDLING = str(Path(sys.executable).parent / "kindling")
A = "/api/v1/design-records"


async def record_files(sessions: async_sessionmaker[AsyncSession], contents: list[bytes]) -> list[int]:
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, status="draft")
        indices = []
        for i, content in enumerate(contents):
            record = await log.append_record(
                session,
                sha256=hashlib.sha256(content).hexdigest(),
                file_name=f"schematic-{i}.pdf",
                size_bytes=len(content),
                kind="schematic",
                maker_id=campaign.maker_id,
                campaign_id=campaign.id,
            )
            indices.append(record.id)
    return indices


def other_public_key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


async def test_the_empty_log_publishes_a_signed_head_of_size_zero(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{A}/tree-head")
    assert response.status_code == 200
    head = response.json()
    assert head["size"] == 0 and head["root_hash"] == hashlib.sha256(b"").hexdigest()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", head["timestamp"])
    assert tree_head_is_signed(TreeHead(**head), head["public_key"])
    assert not tree_head_is_signed(TreeHead(**head), other_public_key())
    assert not tree_head_is_signed(TreeHead(**(head | {"size": 1})), head["public_key"])


async def test_a_downloaded_record_proves_its_file_and_nothing_else(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    contents = [f"schematic revision {i}".encode() for i in range(11)]
    indices = await record_files(sessions, contents)
    for index in (0, 5, 10):
        response = await client.get(f"{A}/{index}")
        assert response.status_code == 200
        document = response.json()
        assert document["record"]["index"] == index and document["tree_head"]["size"] == 11
        verdict = verify_design_record(document, contents[index], public_key=document["tree_head"]["public_key"])
        assert verdict.ok, verdict.reason
        assert not verify_design_record(document, contents[index] + b" edited").ok
        assert not verify_design_record(document, contents[index], public_key=other_public_key()).ok
        backdated = json.loads(json.dumps(document))
        backdated["record"]["recorded_at"] = "2020-01-01T00:00:00Z"
        assert not verify_design_record(backdated, contents[index]).ok
    assert indices == list(range(11))


async def test_a_missing_record_is_404(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> None:
    await record_files(sessions, [b"one"])
    for ref in ("1", "abc", "-1", "9" * 30):
        response = await client.get(f"{A}/{ref}")
        assert response.status_code == 404 and response.json()["type"] == "not-found"


async def test_a_consistency_proof_shows_the_newer_log_extends_the_older_head(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await record_files(sessions, [b"a", b"b", b"c"])
    older = (await client.get(f"{A}/tree-head")).json()
    await record_files(sessions, [b"d", b"e", b"f", b"g"])
    response = await client.get(f"{A}/consistency", params={"first": 3, "second": 7})
    assert response.status_code == 200
    body = response.json()
    assert body["first_root_hash"] == older["root_hash"]
    proof = [bytes.fromhex(node) for node in body["consistency_proof"]]
    first_root, second_root = bytes.fromhex(older["root_hash"]), bytes.fromhex(body["tree_head"]["root_hash"])
    assert merkle.verify_consistency(3, 7, first_root, second_root, proof)
    rewritten = merkle.root_of([merkle.leaf_hash(b"forged"), *([merkle.leaf_hash(b"x")] * 2)])
    assert not merkle.verify_consistency(3, 7, rewritten, second_root, proof)


async def test_bad_consistency_sizes_are_refused_naming_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await record_files(sessions, [b"a", b"b", b"c"])
    for params, field in (
        ({"first": 3, "second": 2}, "first"),
        ({"first": 1, "second": 4}, "second"),
        ({"first": -1, "second": 2}, "first"),
        ({"first": "x", "second": 2}, "first"),
        ({"first": 1}, "second"),
    ):
        response = await client.get(f"{A}/consistency", params=params)
        assert response.status_code == 422, params
        assert [error["field"] for error in response.json()["errors"]] == [field], params


async def test_the_design_log_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert "security" not in paths[f"{A}/tree-head"]["get"]
    assert {"404"} <= set(paths[f"{A}/{{record_id}}"]["get"]["responses"])
    assert {"200", "422"} <= set(paths[f"{A}/consistency"]["get"]["responses"])


async def test_kindling_verify_passes_the_recorded_file_and_fails_another(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    content = uuid.uuid4().bytes * 100
    [index] = await record_files(sessions, [content])
    document = (await client.get(f"{A}/{index}")).json()
    (tmp_path / "record.json").write_text(json.dumps(document))
    (tmp_path / "board.kicad_sch").write_bytes(content)
    (tmp_path / "copy.kicad_sch").write_bytes(content[:-1] + b"!")

    def verify(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        command = [KINDLING, "verify", str(tmp_path / name), str(tmp_path / "record.json"), *extra]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    passed = verify("board.kicad_sch", "--public-key", document["tree_head"]["public_key"])
    assert passed.returncode == 0 and passed.stdout.startswith("VERIFIED: "), passed.stdout + passed.stderr
    failed = verify("copy.kicad_sch")
    assert failed.returncode == 1 and failed.stdout.startswith("NOT VERIFIED: ") and "SHA-256" in failed.stdout
    forged = verify("board.kicad_sch", "--public-key", other_public_key())
    assert forged.returncode == 1 and "signature" in forged.stdout


def readme_script() -> str:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    after = readme.split("<!-- design-record-script -->\n```python\n", 1)[1]
    return after.split("\n```", 1)[0]


async def test_the_readme_script_verifies_a_real_record_and_refuses_a_forged_one(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    script = readme_script()
    assert len(script.splitlines()) <= 32
    contents = [f"firmware build {i}".encode() for i in range(6)]
    await record_files(sessions, contents)
    document = (await client.get(f"{A}/4")).json()
    key = document["tree_head"]["public_key"]
    (tmp_path / "check_record.py").write_text(script)
    (tmp_path / "record.json").write_text(json.dumps(document))
    (tmp_path / "firmware.bin").write_bytes(contents[4])
    (tmp_path / "other.bin").write_bytes(contents[3])

    def check(name: str, public_key: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "check_record.py", name, "record.json", public_key]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)

    passed = check("firmware.bin", key)
    assert passed.returncode == 0 and passed.stdout.startswith("verified: record 4 of 6"), passed.stderr
    assert check("other.bin", key).returncode != 0
    assert "InvalidSignature" in check("firmware.bin", other_public_key()).stderr


def test_the_log_signing_key_setting_takes_32_raw_bytes_in_base64_and_signs_with_them() -> None:
    base = {
        "DATABASE_URL": "postgresql+asyncpg://u:p@localhost/db",
        "REDIS_URL": "redis://localhost:6379/0",
        "KINDLING_SECRET_KEY": "a-secret-key-long-enough",
        "STRIPE_SECRET_KEY": "sk_test_x",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(SettingsError, match="KINDLING_LOG_SIGNING_KEY"):
            load_settings(base | {"KINDLING_LOG_SIGNING_KEY": bad})
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    settings = load_settings(base | {"KINDLING_LOG_SIGNING_KEY": base64.b64encode(raw).decode()})
    configured = log_signing_key(settings.log_signing_key, secret_key=settings.secret_key)
    assert public_key_text(configured) == public_key_text(key)
    derived = log_signing_key(load_settings(base).log_signing_key, secret_key=settings.secret_key)
    assert public_key_text(derived) != public_key_text(key)
