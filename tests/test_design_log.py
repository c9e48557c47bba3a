"""The design log in PostgreSQL: gapless leaves, stored subtrees, proofs that verify, and no way to rewrite a row."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.transparency import log, merkle
from campaigns.transparency.models import DesignLogNode, DesignRecord
from tests.factories import insert_campaign


async def append_files(sessions: async_sessionmaker[AsyncSession], count: int) -> list[DesignRecord]:
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, status="draft")
        records = []
        for i in range(count):
            content = f"bill of materials, revision {i}".encode()
            records.append(
                await log.append_record(
                    session,
                    sha256=hashlib.sha256(content).hexdigest(),
                    file_name=f"bom-r{i}.csv",
                    size_bytes=len(content),
                    kind="bom",
                    maker_id=campaign.maker_id,
                    campaign_id=campaign.id,
                )
            )
    return records


async def test_records_take_gapless_indices_and_their_leaf_commits_to_the_published_fields(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    records = await append_files(sessions, 5)
    assert [record.id for record in records] == [0, 1, 2, 3, 4]
    for record in records:
        assert record.leaf_hash == merkle.leaf_hash(log.leaf_data(log.record_fields(record)))
    async with sessions() as session:
        assert await log.log_size(session) == 5


async def test_concurrent_appends_never_share_or_skip_an_index(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await asyncio.gather(*(append_files(sessions, 3) for _ in range(6)))
    async with sessions() as session:
        indices = list(await session.scalars(text("SELECT id FROM design_records ORDER BY id")))
        assert indices == list(range(18))
        tree = await log.current_tree(session)
        leaves = list(await session.scalars(text("SELECT leaf_hash FROM design_records ORDER BY id")))
    assert tree.size == 18 and tree.root == merkle.root_of(leaves)


async def test_the_stored_subtrees_give_proofs_that_verify_at_every_size(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    records = await append_files(sessions, 23)
    leaves = [record.leaf_hash for record in records]
    async with sessions() as session:
        for size in (1, 2, 7, 16, 23):
            root = await log.root_at(session, size)
            assert root == merkle.root_of(leaves[:size])
            for index in range(size):
                proof = await log.inclusion_proof(session, index, size)
                assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
            for first in range(size + 1):
                proof = await log.consistency_proof(session, first, size)
                assert merkle.verify_consistency(first, size, merkle.root_of(leaves[:first]), root, proof)


async def test_postgresql_refuses_to_change_or_delete_a_design_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [record] = await append_files(sessions, 1)
    for statement in (
        update(DesignRecord).where(DesignRecord.id == record.id).values(sha256="0" * 64),
        update(DesignRecord).values(recorded_at=text("recorded_at - interval '1 year'")),
        delete(DesignRecord),
        update(DesignLogNode).values(hash=b"\x00" * 32),
        delete(DesignLogNode),
    ):
        async with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(statement)
    async with sessions() as session:
        assert await session.scalar(text("SELECT sha256 FROM design_records")) == record.sha256
