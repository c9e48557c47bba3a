"""Evidence and design files a maker attaches to a campaign: each one is recorded in the design log as it arrives,
and kept privately (never under /media): only the maker and the sponsoring space's operators may download it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import campaign_for, visible_campaign
from campaigns.errors import InvalidInput, NotAllowed, NotFound
from campaigns.images import MAX_IMAGE_BYTES, MAX_IMAGE_MB
from campaigns.models import User
from campaigns.schemas_base import has_control_characters
from campaigns.transparency import log
from campaigns.transparency.models import RECORD_KINDS, DesignRecord

MAX_EVIDENCE_MB = MAX_IMAGE_MB
MAX_EVIDENCE_BYTES = MAX_IMAGE_BYTES
MAX_FILE_NAME = 200


def evidence_path(media_dir: Path, campaign_id: uuid.UUID, record_id: int) -> Path:
    # A sibling of the campaigns' public image folders whose name is no campaign id, so /media never serves it.
    return media_dir / "evidence" / str(campaign_id) / str(record_id)


def clean_file_name(raw: str) -> str:
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in {".", ".."}:
        raise InvalidInput("file", "needs a file name")
    if len(name) > MAX_FILE_NAME or has_control_characters(name):
        raise InvalidInput("file", f"its name must be at most {MAX_FILE_NAME} characters, without control characters")
    return name


def _write_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(content)
    os.replace(partial, path)


async def attach_evidence(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    maker: User,
    *,
    data: bytes,
    file_name: str,
    kind: str,
    media_dir: Path,
) -> DesignRecord:
    """Record the file in the design log and keep it; while the campaign is a draft, by its maker only."""
    if kind not in RECORD_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(RECORD_KINDS)}")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InvalidInput("file", f"is larger than {MAX_EVIDENCE_MB} MB")
    if not data:
        raise InvalidInput("file", "is empty")
    name = clean_file_name(file_name)
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    record = await log.append_record(
        session,
        sha256=hashlib.sha256(data).hexdigest(),
        file_name=name,
        size_bytes=len(data),
        kind=kind,
        maker_id=maker.id,
        campaign_id=campaign.id,
    )
    # Written once the record is flushed. Should the transaction still fail, the counter rolls back with it and the
    # next record, taking the same index, replaces the file.
    await asyncio.to_thread(_write_file, evidence_path(media_dir, campaign.id, record.id), data)
    return record


async def evidence_for_download(
    session: AsyncSession, campaign_ref: uuid.UUID | str, record_id: int, viewer: User, *, media_dir: Path
) -> tuple[DesignRecord, Path]:
    campaign, roles = await visible_campaign(session, campaign_ref, viewer)
    if not roles & {"maker", "operator"}:
        raise NotAllowed("Only the maker and the sponsoring space's operators may download evidence files.")
    record = await log.record_by_index(session, record_id)
    path = evidence_path(media_dir, campaign.id, record_id)
    if record is None or record.campaign_id != campaign.id or not await asyncio.to_thread(path.is_file):
        raise NotFound("No such evidence file.")
    return record, path


async def campaign_evidence(session: AsyncSession, campaign_id: uuid.UUID) -> list[DesignRecord]:
    return await log.campaign_records(session, campaign_id)
