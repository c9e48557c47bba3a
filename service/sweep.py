"""The periodic sweep: re-finds, from the database alone, work that is due or whose message was lost.

A step is `async def step(session, settings) -> int` (how many things it found), registered with `@sweep_step(name)`
in one of SWEEP_MODULES. All steps of one sweep share one transaction, which holds a PostgreSQL advisory lock: however
many workers run on however many machines, exactly one sweep runs at a time. A step asks for work with
`enqueue_job(session, ...)`; the jobs are sent once the sweep has committed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.jobs import drop_pending_jobs, enqueue_job, take_pending_jobs
from service.database import JobSender, unit_of_work
from service.settings import Settings

log = logging.getLogger("kindling.sweep")

SweepStep = Callable[[AsyncSession, Settings], Awaitable[int]]

# "kindling" in ASCII: the one advisory lock key that the sweep takes.
SWEEP_LOCK = int.from_bytes(b"kindling", "big")
# Modules whose import registers sweep steps.
SWEEP_MODULES = (
    "service.mail",
    "service.payment_sweeps",
    "service.fulfillment_sweeps",
    "service.retention_sweeps",
    "service.talk_sweeps",
)

_steps: dict[str, SweepStep] = {}


def sweep_step(name: str) -> Callable[[SweepStep], SweepStep]:
    def register(step: SweepStep) -> SweepStep:
        _steps[name] = step
        return step

    return register


def sweep_steps() -> dict[str, SweepStep]:
    for module in SWEEP_MODULES:
        importlib.import_module(module)
    return dict(_steps)


async def run_sweep(
    session: AsyncSession, settings: Settings, *, steps: Mapping[str, SweepStep] | None = None
) -> dict[str, int] | None:
    """Run every step in `session`'s transaction; None when another sweep holds the lock.

    Each step runs in a savepoint: one that fails is logged and undone (with the jobs it asked for), the others go on.
    """
    locked = await session.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK)))
    if not locked:
        return None
    kept = take_pending_jobs(session)
    found: dict[str, int] = {}
    for name, step in (sweep_steps() if steps is None else steps).items():
        try:
            async with session.begin_nested():
                found[name] = await step(session, settings)
        except Exception:
            log.exception("sweep step %s failed; the next sweep tries again", name)
            drop_pending_jobs(session)
            continue
        kept.extend(take_pending_jobs(session))
    for job in kept:
        enqueue_job(session, job.actor_name, *job.args, delay_ms=job.delay_ms)
    return found


async def sweep_once(
    sessions: async_sessionmaker[AsyncSession],
    sender: JobSender,
    settings: Settings,
    *,
    steps: Mapping[str, SweepStep] | None = None,
) -> dict[str, int] | None:
    async with unit_of_work(sessions, sender) as session:
        return await run_sweep(session, settings, steps=steps)


async def sweep_every(
    sessions: async_sessionmaker[AsyncSession], sender: JobSender, settings: Settings, stop: asyncio.Event
) -> None:
    """Sweep now and then every `settings.sweep_seconds` until `stop` is set; a failed sweep is logged, not fatal."""
    while not stop.is_set():
        try:
            found = await sweep_once(sessions, sender, settings)
        except Exception as exc:
            log.warning("sweep failed: %s", exc)
        else:
            if found is None:
                log.debug("another sweep is running")
            elif any(found.values()):
                log.info("sweep: %s", ", ".join(f"{name}={count}" for name, count in found.items() if count))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.sweep_seconds)
