"""The design log's use cases: append a file's record, prove a record's inclusion and the log's consistency.

A record's leaf is SHA-256(0x00 || its canonical JSON) (`leaf_data`); anyone holding the record, the proof and a signed
tree head can check it without us. Appends take the one-row counter's row lock, so indices are gapless and in order.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import FieldError, NotFound, ValidationFailed
from campaigns.transparency import merkle
from campaigns.transparency.models import DesignLog, DesignLogNode, DesignRecord
from campaigns.transparency.tree_head import TreeHead, sign_tree_head

_TAKE_NEXT_INDEX = text(
    "INSERT INTO design_log (id, size) VALUES (1, 1)"
    " ON CONFLICT (id) DO UPDATE SET size = design_log.size + 1"
    " RETURNING size - 1, date_trunc('second', clock_timestamp())"
)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_fields(record: DesignRecord) -> dict[str, object]:
    """What a leaf commits to, as published beside its proof."""
    return {
        "index": record.id,
        "sha256": record.sha256,
        "file_name": record.file_name,
        "size": record.size_bytes,
        "kind": record.kind,
        "maker_id": str(record.maker_id),
        "campaign_id": str(record.campaign_id),
        "recorded_at": timestamp(record.recorded_at),
    }


def leaf_data(fields: dict[str, object]) -> bytes:
    """The canonical bytes of a record: JSON, keys sorted, no spaces, ASCII (non-ASCII as \\u escapes)."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


async def append_record(
    session: AsyncSession,
    *,
    sha256: str,
    file_name: str,
    size_bytes: int,
    kind: str,
    maker_id: uuid.UUID,
    campaign_id: uuid.UUID,
) -> DesignRecord:
    index, recorded_at = (await session.execute(_TAKE_NEXT_INDEX)).one()
    record = DesignRecord(
        id=index,
        sha256=sha256,
        file_name=file_name,
        size_bytes=size_bytes,
        kind=kind,
        maker_id=maker_id,
        campaign_id=campaign_id,
        recorded_at=recorded_at,
    )
    record.leaf_hash = merkle.leaf_hash(leaf_data(record_fields(record)))
    session.add(record)
    await session.execute(
        insert(DesignLogNode), new_nodes(index, record.leaf_hash, await _left_siblings(session, index))
    )
    await session.flush()
    return record


async def _left_siblings(session: AsyncSession, index: int) -> list[bytes]:
    """The complete subtrees this leaf closes, lowest first: one per trailing 1 bit of its index."""
    wanted = []
    level, position = 0, index
    while position & 1:
        wanted.append((level, position - 1))
        level, position = level + 1, position >> 1
    found = await _nodes(session, wanted)
    return [found[key] for key in wanted]


def new_nodes(index: int, leaf: bytes, left_siblings: list[bytes]) -> list[dict[str, object]]:
    """The node rows one leaf adds: itself, then each subtree it completes."""
    rows: list[dict[str, object]] = [{"level": 0, "position": index, "hash": leaf}]
    node, position = leaf, index
    for level, sibling in enumerate(left_siblings, start=1):
        node, position = merkle.node_hash(sibling, node), position >> 1
        rows.append({"level": level, "position": position, "hash": node})
    return rows


# The stored subtrees a proof needs, in one statement whatever their number: its text never changes, so the driver
# prepares it once per connection and each proof is one round trip of index lookups (a row-value IN list would be a
# new statement, parsed and planned again, for every count of keys).
_NODES_BY_KEY = text(
    "SELECT n.level, n.position, n.hash"
    " FROM unnest(CAST(:levels AS smallint[]), CAST(:positions AS bigint[])) AS k(level, position)"
    " JOIN design_log_nodes AS n ON n.level = k.level AND n.position = k.position"
)


async def _nodes(session: AsyncSession, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not keys:
        return {}
    wanted = sorted(set(keys))
    rows = await session.execute(
        _NODES_BY_KEY, {"levels": [level for level, _ in wanted], "positions": [position for _, position in wanted]}
    )
    return {(level, position): node for level, position, node in rows}


async def log_size(session: AsyncSession) -> int:
    size = (await session.execute(text("SELECT size FROM design_log WHERE id = 1"))).scalar_one_or_none()
    return int(size or 0)


async def _subtree_hasher(session: AsyncSession, ranges: list[tuple[int, int]]) -> merkle.SubtreeHash:
    keys = [key for start, end in ranges for key in merkle.aligned_nodes(start, end)]
    nodes = await _nodes(session, keys)

    def subtree(start: int, end: int) -> bytes:
        return merkle.range_hash(start, end, nodes)

    return subtree


async def root_at(session: AsyncSession, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    subtree = await _subtree_hasher(session, [(0, size)])
    return subtree(0, size)


async def inclusion_proof(session: AsyncSession, index: int, size: int) -> list[bytes]:
    ranges = merkle.ranges_asked(lambda subtree: merkle.inclusion_proof(index, size, subtree))
    return merkle.inclusion_proof(index, size, await _subtree_hasher(session, ranges))


async def consistency_proof(session: AsyncSession, first: int, second: int) -> list[bytes]:
    ranges = merkle.ranges_asked(lambda subtree: merkle.consistency_proof(first, second, subtree))
    return merkle.consistency_proof(first, second, await _subtree_hasher(session, ranges))


@dataclass(frozen=True)
class TreeState:
    size: int
    root: bytes


async def current_tree(session: AsyncSession) -> TreeState:
    size = await log_size(session)
    return TreeState(size=size, root=await root_at(session, size))


async def record_by_index(session: AsyncSession, index: int) -> DesignRecord | None:
    return await session.get(DesignRecord, index)


async def campaign_records(session: AsyncSession, campaign_id: uuid.UUID) -> list[DesignRecord]:
    rows = await session.scalars(
        select(DesignRecord).where(DesignRecord.campaign_id == campaign_id).order_by(DesignRecord.id)
    )
    return list(rows)


async def signed_tree_head(session: AsyncSession, key: Ed25519PrivateKey, *, now: datetime) -> TreeHead:
    tree = await current_tree(session)
    return sign_tree_head(key, size=tree.size, root=tree.root, time=timestamp(now))


async def published_record(
    session: AsyncSession, index: int, key: Ed25519PrivateKey, *, now: datetime
) -> dict[str, object]:
    """A record, its inclusion proof and the signed head it leads to: all anyone needs to check it offline. Two
    round trips whatever the log's size."""
    # The record and the log's size in one round trip, then the stored subtrees in one more.
    found = (
        await session.execute(
            select(DesignRecord, DesignLog.size).join(DesignLog, DesignLog.id == 1).where(DesignRecord.id == index)
        )
    ).one_or_none()
    if found is None:
        raise NotFound(f"There is no design record {index}.")
    record, size = found
    # The root and the proof from one read of the stored subtrees.
    root_ranges = [(0, size)]
    proof_ranges = merkle.ranges_asked(lambda subtree: merkle.inclusion_proof(record.id, size, subtree))
    subtree = await _subtree_hasher(session, root_ranges + proof_ranges)
    proof = merkle.inclusion_proof(record.id, size, subtree)
    head = sign_tree_head(key, size=size, root=subtree(0, size), time=timestamp(now))
    return {
        "record": record_fields(record),
        "leaf_hash": record.leaf_hash.hex(),
        "inclusion_proof": [node.hex() for node in proof],
        "tree_head": head.as_json(),
    }


async def published_consistency(
    session: AsyncSession, first: int, second: int, key: Ed25519PrivateKey, *, now: datetime
) -> dict[str, object]:
    """The proof that the log at `second` leaves extends the log at `first`, with the head at `second` signed now."""
    size = await log_size(session)
    if second > size:
        raise ValidationFailed(
            "Some fields are invalid.", errors=[FieldError("second", f"must be at most the log's size, {size}")]
        )
    if first > second:
        raise ValidationFailed("Some fields are invalid.", errors=[FieldError("first", "must be at most second")])
    proof = await consistency_proof(session, first, second)
    return {
        "first": first,
        "second": second,
        "first_root_hash": (await root_at(session, first)).hex(),
        "second_root_hash": (await root_at(session, second)).hex(),
        "consistency_proof": [node.hex() for node in proof],
        "tree_head": (await signed_tree_head(session, key, now=now)).as_json(),
    }


async def first_campaign_record(session: AsyncSession, campaign_id: uuid.UUID) -> DesignRecord | None:
    record: DesignRecord | None = await session.scalar(
        select(DesignRecord).where(DesignRecord.campaign_id == campaign_id).order_by(DesignRecord.id).limit(1)
    )
    return record
