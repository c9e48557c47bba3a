"""`kindling worker`: Dramatiq's worker processes run the actors; this process runs the periodic sweep beside them."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import subprocess
import sys
from contextlib import suppress

import dramatiq

from service.broker import DramatiqSender, create_broker
from service.database import create_engine, create_sessionmaker
from service.logs import configure_logging
from service.processes import start_child, stop_child
from service.settings import Settings, load_settings
from service.sweep import sweep_every

log = logging.getLogger("kindling.worker")

# Modules whose import declares Dramatiq actors; imported in each worker process once the broker is set.
ACTOR_MODULES = ("service.tasks",)
# How long a worker process may take to finish the messages in hand once asked to stop.
SHUTDOWN_TIMEOUT_MS = 10_000
SWEEP_GRACE_SECONDS = 5.0


def setup_broker() -> None:
    """Dramatiq's entry point in every worker process (`dramatiq service.worker:setup_broker`).

    The broker must be current before any actor module is imported, because `@dramatiq.actor` binds to it.
    """
    settings = load_settings()
    configure_logging()
    dramatiq.set_broker(create_broker(settings.redis_url))
    for name in ACTOR_MODULES:
        importlib.import_module(name)


def dramatiq_command(*, processes: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "dramatiq",
        "--processes", str(processes),
        "--threads", str(threads),
        "--worker-shutdown-timeout", str(SHUTDOWN_TIMEOUT_MS),
        "--skip-logging",  # setup_broker configures logging our way
        "service.worker:setup_broker",
    ]  # fmt: skip


def run_worker(settings: Settings, *, processes: int, threads: int) -> int:
    """Run until SIGINT or SIGTERM (exit code 0), or until Dramatiq's processes die (their exit code)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    log.info("worker: %d process(es) x %d thread(s); sweeping every %gs", processes, threads, settings.sweep_seconds)
    dramatiq_process = start_child(dramatiq_command(processes=processes, threads=threads))
    code = 0
    try:
        code = asyncio.run(_sweep_while_running(settings, dramatiq_process))
    except KeyboardInterrupt:
        code = 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        stop_child(dramatiq_process, timeout=SHUTDOWN_TIMEOUT_MS / 1000 + 5)
    log.info("worker stopped")
    return code


async def _sweep_while_running(settings: Settings, dramatiq_process: subprocess.Popen[bytes]) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = create_engine(settings.database_url, pool_size=2, max_overflow=2)
    broker = create_broker(settings.redis_url)
    sweeper = asyncio.create_task(sweep_every(create_sessionmaker(engine), DramatiqSender(broker), settings, stop))
    code = 0
    try:
        while not stop.is_set():
            if dramatiq_process.poll() is not None:
                log.error("Dramatiq's worker exited with code %s; stopping", dramatiq_process.returncode)
                code = dramatiq_process.returncode or 1
                break
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(sweeper, timeout=SWEEP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("the sweep did not finish in %gs; abandoned (its transaction rolls back)", SWEEP_GRACE_SECONDS)
        await engine.dispose()
        broker.close()
    return code
