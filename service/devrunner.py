"""`kindling dev`: the whole system on one machine, for a new user, from one command.

Whatever of PostgreSQL, Redis and Stripe the environment does not name is started embedded, on loopback, with its data
in .kindling/ of the working folder (kept across restarts). Then: migrate, load the demo the first time, and run
`kindling serve` and `kindling worker` as children. Ctrl-C (or SIGTERM) stops the children, then the embedded
services, and exits 0. A lock file keeps a second `kindling dev` off the same folder.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import httpx

from service.broker import DramatiqSender, create_broker
from service.database import create_engine, create_sessionmaker, unit_of_work
from service.demo import ADMIN_EMAIL, DEMO_PASSWORD, DEMO_TOTP_SECRET, load_demo
from service.devservices import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe
from service.migrations import migrate
from service.processes import start_child, stop_children
from service.settings import Settings, SettingsError, load_settings

log = logging.getLogger("kindling.devrunner")

DATA_DIR = ".kindling"
WEBHOOK_PATH = "/api/v1/webhooks/stripe"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
WORKER_ARGS = ("--processes", "1", "--threads", "4")


class AlreadyRunning(Exception):
    """Another `kindling dev` holds this folder's lock."""


def run_dev(*, host: str, port: int, workdir: Path | None = None) -> int:
    """The process's exit code: 0 after Ctrl-C, 1 when something failed, 2 for a bad setting."""
    data_dir = (workdir or Path.cwd()).resolve() / DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    ignore = data_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# kindling dev's data: never committed\n*\n")
    try:
        lock = _lock(data_dir)
    except AlreadyRunning as exc:
        _say_error(str(exc))
        return 1
    try:
        if not _port_is_free(host, port):
            _say_error(f"{host}:{port} is in use; stop what listens there or pass --port")
            return 2
        logging.getLogger("kindling.dev").setLevel(logging.WARNING)  # we say which service is where ourselves
        return DevRunner(data_dir, host=host, port=port).run()
    finally:
        lock.close()


class DevRunner:
    def __init__(self, data_dir: Path, *, host: str, port: int) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.loopback = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        self.stopping = threading.Event()
        self.ready = False
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._on_signal) for signum in _STOP_SIGNALS}
        stack = ExitStack()
        try:
            return self._run(stack)
        except KeyboardInterrupt:
            return 0
        finally:
            for signum in _STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)  # nothing cuts the shutdown short
            _say("Stopping...")
            stack.close()
            _say("Stopped.")
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping.set()
        if not self.ready:
            raise KeyboardInterrupt

    def _run(self, stack: ExitStack) -> int:
        env = dict(os.environ)
        try:
            stripe = self._start_services(env, stack)
        except (RuntimeError, TimeoutError, OSError) as exc:
            _say_error(f"an embedded service did not start: {exc}")
            return 1
        try:
            settings = load_settings(env)
        except SettingsError as exc:
            _say_error(str(exc))
            return 2
        if settings.smtp_url:
            _say(f"Mail over SMTP at {_masked(settings.smtp_url)} (SMTP_URL)")
        else:
            _say(f"Mail (kept in the database) readable at {settings.base_url}/dev/mail")
        try:
            migrate(settings.database_url)
        except Exception as exc:
            _say_error(f"migrating the database failed: {exc}")
            return 1

        command = [sys.executable, "-m", "service.cli"]
        self.children = {
            "the web server": start_child([*command, "serve", "--host", self.host, "--port", str(self.port)], env=env),
            "the worker": start_child([*command, "worker", *WORKER_ARGS], env=env),
        }
        stack.callback(stop_children, list(self.children.values()), timeout=STOP_TIMEOUT)
        try:
            self._load_demo_once(settings)  # while the children start
        except Exception:
            log.exception("loading the demo data failed")
            return 1
        if stripe is not None:
            stripe.register_webhook(f"http://{self.loopback}:{self.port}{WEBHOOK_PATH}")
        if not self._wait_until_serving():
            return 1 if not self.stopping.is_set() else 0
        self.ready = True
        _say(f"Kindling is running at {settings.base_url} (admin: {ADMIN_EMAIL} / {DEMO_PASSWORD}); Ctrl-C stops it.")
        while not self.stopping.wait(0.5):
            for name, child in self.children.items():
                if child.poll() is not None:
                    _say_error(f"{name} exited with code {child.returncode}; stopping everything")
                    return 1
        return 0

    def _start_services(self, env: MutableMapping[str, str], stack: ExitStack) -> EmbeddedStripe | None:
        if _unset(env, "DATABASE_URL"):
            postgres = EmbeddedPostgres(self.data_dir / "postgres", database="kindling")
            stack.callback(postgres.stop)
            env["DATABASE_URL"] = postgres.start()
            _say(f"PostgreSQL (embedded) at {env['DATABASE_URL']}")
        else:
            _say(f"PostgreSQL at {_masked(env['DATABASE_URL'])} (DATABASE_URL)")
        if _unset(env, "REDIS_URL"):
            redis = EmbeddedRedis(self.data_dir / "redis")
            stack.callback(redis.stop)
            env["REDIS_URL"] = redis.start()
            _say(f"Redis (embedded) at {env['REDIS_URL']}")
        else:
            _say(f"Redis at {_masked(env['REDIS_URL'])} (REDIS_URL)")
        stripe: EmbeddedStripe | None = None
        if _unset(env, "STRIPE_SECRET_KEY"):
            stripe = EmbeddedStripe(
                state_file=self.data_dir / "localstripe.pickle", log_file=self.data_dir / "localstripe.log"
            )
            stack.callback(stripe.stop)
            env["STRIPE_API_BASE"] = stripe.start()
            env["STRIPE_SECRET_KEY"] = stripe.secret_key
            env["STRIPE_PUBLISHABLE_KEY"] = stripe.publishable_key
            env["STRIPE_WEBHOOK_SECRET"] = stripe.webhook_secret
            env["KINDLING_STRIPE_JS_URL"] = stripe.js_url
            _say(f"Stripe stand-in (localstripe, embedded) at {stripe.api_base}")
        else:
            _say(f"Stripe at {env.get('STRIPE_API_BASE') or 'https://api.stripe.com'} (STRIPE_SECRET_KEY)")
        if _unset(env, "KINDLING_SECRET_KEY"):
            env["KINDLING_SECRET_KEY"] = _kept_secret_key(self.data_dir / "secret_key")
        if _unset(env, "KINDLING_LOG_SIGNING_KEY"):
            env["KINDLING_LOG_SIGNING_KEY"] = _kept_log_signing_key(self.data_dir / "log_signing_key")
        if _unset(env, "KINDLING_BASE_URL"):
            env["KINDLING_BASE_URL"] = f"http://{self.loopback}:{self.port}"
        if _unset(env, "KINDLING_MEDIA_DIR"):
            env["KINDLING_MEDIA_DIR"] = str(self.data_dir / "media")
        env["KINDLING_DEV"] = "1"
        return stripe

    def _load_demo_once(self, settings: Settings) -> None:
        marker = self.data_dir / "demo-loaded"
        if marker.exists():
            return
        asyncio.run(_load_demo(settings))
        marker.write_text(datetime.now(UTC).isoformat() + "\n")
        _say(
            f"Demo data loaded: every demo account's password is {DEMO_PASSWORD}; the admin and the operator log in "
            f"with two-factor, authenticator key {DEMO_TOTP_SECRET}"
        )

    def _wait_until_serving(self) -> bool:
        url = f"http://{self.loopback}:{self.port}/healthz"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self.stopping.is_set():
            if any(child.poll() is not None for child in self.children.values()):
                _say_error("the web server or the worker exited during start-up")
                return False
            try:
                if httpx.get(url, timeout=2.0).status_code == httpx.codes.OK:
                    return True
            except httpx.TransportError:
                pass
            self.stopping.wait(0.2)
        if not self.stopping.is_set():
            _say_error(f"{url} did not answer 200 within {READY_TIMEOUT:.0f}s")
        return False


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


async def _load_demo(settings: Settings) -> None:
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    broker = create_broker(settings.redis_url)
    try:
        async with unit_of_work(create_sessionmaker(engine), DramatiqSender(broker)) as session:
            await load_demo(session, settings)
    finally:
        await engine.dispose()
        broker.close()


def _lock(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on .kindling/dev.lock for as long as this process lives."""
    lock = (data_dir / "dev.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise AlreadyRunning(
            f"kindling dev is already running in {data_dir.parent} (pid {holder}); stop it first (Ctrl-C)"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _kept_secret_key(path: Path) -> str:
    if path.exists() and len(key := path.read_text().strip()) >= 16:
        return key
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def _kept_log_signing_key(path: Path) -> str:
    if path.exists() and (key := path.read_text().strip()):
        return key
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def _unset(env: MutableMapping[str, str], name: str) -> bool:
    return not env.get(name, "").strip()


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _say(line: str) -> None:
    print(line, flush=True)


def _say_error(line: str) -> None:
    print(f"kindling: {line}", file=sys.stderr, flush=True)
