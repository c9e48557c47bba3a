"""Engine, sessions and the one place a unit of work commits, then sends the jobs it asked for."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from campaigns.jobs import Job, drop_pending_jobs, take_pending_jobs

log = logging.getLogger("kindling.db")


def create_engine(
    database_url: str, *, pool_size: int = 10, max_overflow: int = 10, pre_ping: bool = True
) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_timeout=10,
        # An error's text then names the statement but not the values sent: no hash, token or secret reaches a log.
        hide_parameters=True,
        connect_args={"command_timeout": 30},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


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
            drop_pending_jobs(session)
            raise
    jobs = take_pending_jobs(session)
    if jobs:
        sender.send(jobs)
