"""Jobs a use case asks for: buffered on the session and sent only after its transaction commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_JOBS = "kindling.jobs"


@dataclass(frozen=True)
class Job:
    actor_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    delay_ms: int | None = None


def enqueue_job(session: AsyncSession, actor_name: str, *args: Any, delay_ms: int | None = None) -> None:
    """Ask for a job to run once this session's transaction has committed; a rollback drops it.

    Arguments are ids (sent as strings): the actor reloads whatever it needs, and does nothing if the work is done.
    """
    session.info.setdefault(_JOBS, []).append(Job(actor_name, tuple(str(a) for a in args), delay_ms=delay_ms))


def take_pending_jobs(session: AsyncSession) -> list[Job]:
    jobs: list[Job] = session.info.pop(_JOBS, [])
    return jobs


def drop_pending_jobs(session: AsyncSession) -> None:
    session.info.pop(_JOBS, None)
