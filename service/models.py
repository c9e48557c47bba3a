"""Tables the web service keeps for itself: idempotency records and throttles."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.models import Base, new_id


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_records_user_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # Null while the first request is still running.
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class Throttle(Base):
    """A counter per bucket (`login:ip:…`, `login:email-ip:…`, `signup:ip:…`); see service/throttle.py."""

    __tablename__ = "throttles"

    bucket: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    hits: Mapped[int] = mapped_column(Integer, server_default="0")
    # No attempt is let through before this moment.
    blocked_until: Mapped[datetime | None]
    # After this moment the row counts nothing, and the sweep deletes it.
    expires_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
