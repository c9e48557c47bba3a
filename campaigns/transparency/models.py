"""The design log's tables: the records (leaves), the complete subtrees' hashes, and the one-row counter of its size.

Append-only: PostgreSQL refuses UPDATE and DELETE on the records and the nodes (migration 0013_translog)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.models import Base

RECORD_KINDS = (
    "bom",
    "factory_quote",
    "certification_plan",
    "prototype_photo",
    "cad",
    "schematic",
    "firmware",
    "other",
)


class DesignLog(Base):
    """One row (id 1) holding the log's size; appending takes its row lock, so indices are gapless and in order."""

    __tablename__ = "design_log"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"), CheckConstraint("size >= 0", name="size_natural"))

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)


class DesignRecord(Base):
    """One file's SHA-256 as the maker submitted it: leaf number `id` of the log."""

    __tablename__ = "design_records"
    __table_args__ = (
        CheckConstraint("id >= 0", name="index_natural"),
        CheckConstraint("size_bytes >= 0", name="size_natural"),
        CheckConstraint(f"kind IN ({', '.join(repr(kind) for kind in RECORD_KINDS)})", name="known_kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(30))
    maker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), index=True)
    recorded_at: Mapped[datetime]
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class DesignLogNode(Base):
    """The hash of a complete subtree: leaves [position * 2**level, (position + 1) * 2**level), stored once it fills."""

    __tablename__ = "design_log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
