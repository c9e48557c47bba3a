"""Engine, sessions and the one place a unit of work commits, then sends the jobs it asked for."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger("kindling.db")

_JOBS = "kindling.jobs"


def create_engine(database_url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"command_timeout": 30},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True)
class Job:
    actor_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    delay_ms: int | None = None


def enqueue_job(session: AsyncSession, actor_name: str, *args: Any, delay_ms: int | None = None) -> None:
    """Ask for a job to run once this session's transaction has committed; a rollback drops it.

    Arguments must be plain ids (strings): the actor reloads whatever it needs.
    """
    session.info.setdefault(_JOBS, []).append(Job(actor_name, tuple(str(a) for a in args), delay_ms=delay_ms))


def pending_jobs(session: AsyncSession) -> list[Job]:
    jobs: list[Job] = session.info.pop(_JOBS, [])
    return jobs


class JobSender:
    """Where committed jobs go: Dramatiq in the app and worker; a list in some unit tests."""

    def send(self, jobs: list[Job]) -> None:
        raise NotImplementedError


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession], sender: JobSender) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            session.info.pop(_JOBS, None)
            raise
    jobs = pending_jobs(session)
    if jobs:
        sender.send(jobs)
