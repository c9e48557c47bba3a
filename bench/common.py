"""What every benchmark shares: embedded services in a temporary folder, bulk data, the web app as a real subprocess,
N concurrent keep-alive HTTP clients, pgbench as the reference, and the printing of figures.

The machines are shared and noisy, so a benchmark never compares against a number written down earlier: it measures
its reference in the same run and prints the ratio.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.models import Campaign, Product, Space, Tier, User
from service.devservices import EmbeddedPostgres, EmbeddedRedis, EmbeddedStripe, free_port, postgres_bin_dir
from service.migrations import migrate
from service.settings import Settings, environment_of, load_settings

ROOT = Path(__file__).resolve().parent.parent
BENCH_PASSWORD = "kindling-bench-password"
# Bench users' ids are derived from their number, so SQL (pgbench) can name the same users as Python does.
BACKER_ID_SQL = "md5('kindling-bench-backer-' || {n})::uuid"


# The machine


def machine_description() -> str:
    """`2 × AMD EPYC (load 1.23)`: what the figures were measured on."""
    model = platform.processor() or platform.machine()
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} × {model}, load {load:.2f}, Python {platform.python_version()}"


# Figures


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0–100) with linear interpolation between the closest ranks; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latencies:
    """Percentiles of durations in seconds, printed in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latencies:
        return cls(
            len(seconds),
            percentile(seconds, 50),
            percentile(seconds, 95),
            percentile(seconds, 99),
            max(seconds, default=math.nan),
        )

    def __str__(self) -> str:
        return f"p50 {ms(self.p50)}  p95 {ms(self.p95)}  p99 {ms(self.p99)}  max {ms(self.max)}  (n={self.count})"


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def per_second(count: float, seconds: float) -> str:
    return "n/a" if seconds <= 0 else f"{count / seconds:,.0f}/s"


def ratio(ours: float, reference: float) -> str:
    return "n/a" if reference <= 0 or math.isnan(ours) else f"{ours / reference:.2f}×"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


@dataclass
class Report:
    """Figures printed as aligned sections of `label  value` lines."""

    title: str
    sections: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)

    def section(self, heading: str) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        self.sections.append((heading, rows))
        return rows

    def render(self) -> str:
        width = max((len(label) for _, rows in self.sections for label, _ in rows), default=0)
        lines = [self.title, "=" * len(self.title)]
        for heading, rows in self.sections:
            lines += ["", heading]
            lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
        return "\n".join(lines)


def say(message: str) -> None:
    """Progress, to stderr, so stdout holds only the figures."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# The services


@dataclass
class BenchServices:
    root: Path
    postgres: EmbeddedPostgres
    redis: EmbeddedRedis
    stripe: EmbeddedStripe
    database: str
    settings: Settings

    @property
    def dsn(self) -> str:
        """The libpq URL of the bench database (psql, pgbench)."""
        return self.postgres.dsn(self.database)

    def environment(self, **overrides: str) -> dict[str, str]:
        """The environment of a `kindling` process on these services, and no other Kindling variable."""
        return environment_of(self.settings, **overrides)


@contextmanager
def embedded_services(
    name: str, *, max_connections: int = 100, keep: bool = False, indexed_stripe: bool = False
) -> Iterator[BenchServices]:
    """PostgreSQL, Redis and localstripe in a new temporary folder, with a fresh migrated database `bench_<name>`.

    `max_connections` is raised (one restart) when pgbench's clients plus the server's pools need more than the default.
    `indexed_stripe`: localstripe with its store indexed by object type (`IndexedLocalStripe`).
    """
    root = Path(tempfile.mkdtemp(prefix=f"kindling-bench-{name}-"))
    postgres = EmbeddedPostgres(root / "pg", database="postgres")
    redis = EmbeddedRedis(root / "redis")
    stripe = (IndexedLocalStripe if indexed_stripe else EmbeddedStripe)(log_file=root / "localstripe.log")
    database = f"bench_{name}"
    try:
        say(f"starting PostgreSQL, Redis and localstripe in {root}")
        postgres.start()
        if int(psql(postgres.dsn("postgres"), "SHOW max_connections")) < max_connections:
            psql(postgres.dsn("postgres"), f"ALTER SYSTEM SET max_connections = {int(max_connections)}")
            postgres.stop()
            postgres.start()
        postgres.drop_database(database)
        postgres.create_database(database)
        migrate(postgres.database_url(database))
        redis.start()
        stripe.start()
        settings = load_settings(
            {
                "DATABASE_URL": postgres.database_url(database),
                "REDIS_URL": redis.url,
                "KINDLING_SECRET_KEY": secrets.token_urlsafe(32),
                "STRIPE_SECRET_KEY": stripe.secret_key,
                "STRIPE_PUBLISHABLE_KEY": stripe.publishable_key,
                "STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
                "STRIPE_API_BASE": stripe.api_base,
                "KINDLING_MEDIA_DIR": str(root / "media"),
                # Every client of a benchmark comes from this one machine's address: no per-address hold limit.
                "KINDLING_MAX_OPEN_HOLDS": "0",
            }
        )
        yield BenchServices(root, postgres, redis, stripe, database, settings)
    finally:
        stripe.stop()
        redis.stop()
        postgres.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# localstripe answers every list, and every Charge it exports (its `refunds` and `amount_refunded`), by scanning its
# whole store: a PaymentIntent costs time in proportion to everything created before it, so charging thousands of
# pledges slows down quadratically (10,000 would take about 20 minutes). This keeps, beside the store, the keys of
# each object type in insertion order, and lists from there: the same objects in the same order, without the scan.
_INDEXED_STORE_PATCH = """
_by_type = {}
def _index_set(self, key, value, _set=resources.Store.__setitem__):
    _set(self, key, value)
    _by_type.setdefault(key.split(":", 1)[0], {})[key] = None
def _index_del(self, key, _del=resources.Store.__delitem__):
    _del(self, key)
    _by_type.get(key.split(":", 1)[0], {}).pop(key, None)
def _index_clear(self, _clear=resources.Store.clear):
    _clear(self)
    _by_type.clear()
resources.Store.__setitem__, resources.Store.__delitem__, resources.Store.clear = _index_set, _index_del, _index_clear
def _list_all(cls, url, limit=None, starting_after=None, **kwargs):
    if kwargs:
        raise resources.UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    li = resources.List(url, limit=limit, starting_after=starting_after)
    store = resources.store
    li._list = [store[key] for key in _by_type.get(cls.object, ())]
    return li
resources.StripeObject._api_list_all = classmethod(_list_all)
"""


class IndexedLocalStripe(EmbeddedStripe):
    """localstripe without its store scans (`_INDEXED_STORE_PATCH`), in memory only."""

    def start(self) -> str:
        from service import devservices

        if self._process is None:
            marker = "web.run_app("
            if self.state_file is not None or devservices._LOCALSTRIPE_BOOTSTRAP.count(marker) != 1:
                raise RuntimeError("IndexedLocalStripe keeps its store in memory and patches the stock bootstrap")
            bootstrap = devservices._LOCALSTRIPE_BOOTSTRAP.replace(marker, _INDEXED_STORE_PATCH + marker)
            command = [sys.executable, "-c", bootstrap, str(self.port), ""]
            self._process = devservices._start_in_own_group(command, log_file=self.log_file)
            devservices._wait_until_ready(self._process, self._serves_stripe_js, "localstripe", self.log_file)
            say(f"localstripe (store indexed by object type) at {self.api_base}")
        return self.api_base


def psql(dsn: str, sql: str) -> str:
    """Run one SQL command with psql and return its unaligned output."""
    command = [str(postgres_bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


# Bulk data: plain INSERT ... SELECT over generate_series, thousands of rows per statement


@functools.cache
def bench_password_hash() -> str:
    """The one argon2 hash of BENCH_PASSWORD every bench user shares, made once a process (each takes a tenth of a
    second idle, half a second on a loaded machine)."""
    return PasswordHasher().hash(BENCH_PASSWORD)


@dataclass(frozen=True)
class Backers:
    """Users numbered first .. first+count-1, each with an API token `<token_prefix><n>`."""

    first: int
    count: int
    token_prefix: str

    def numbers(self) -> range:
        return range(self.first, self.first + self.count)

    def token(self, n: int) -> str:
        return f"{self.token_prefix}{n}"

    def headers(self, n: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(n)}"}


def backer_id(n: int) -> uuid.UUID:
    import hashlib

    return uuid.UUID(hashlib.md5(f"kindling-bench-backer-{n}".encode()).hexdigest())


async def insert_backers(connection: AsyncConnection, count: int, *, first: int = 1, tokens: bool = True) -> Backers:
    """`count` users in one statement (and their API tokens in another), all sharing one argon2 hash: hashing a
    password per user would take longer than the benchmark."""
    password_hash = bench_password_hash()
    token_prefix = f"kdl_bench_{secrets.token_hex(8)}_"
    await connection.execute(
        text(
            f"""
            INSERT INTO users (id, email, name, password_hash)
            SELECT {BACKER_ID_SQL.format(n="n")}, 'backer' || n || '@bench.example', 'Backer ' || n, :hash
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
            """
        ),
        {"hash": password_hash, "first": first, "last": first + count - 1},
    )
    if tokens:
        await connection.execute(
            text(
                f"""
                INSERT INTO api_tokens (id, user_id, token_hash)
                SELECT gen_random_uuid(), {BACKER_ID_SQL.format(n="n")},
                       encode(sha256(convert_to(:prefix || n, 'UTF8')), 'hex')
                FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
                """
            ),
            {"prefix": token_prefix, "first": first, "last": first + count - 1},
        )
    return Backers(first, count, token_prefix)


@dataclass(frozen=True)
class LiveCampaign:
    id: uuid.UUID
    tier_id: uuid.UUID
    maker_id: uuid.UUID
    slots: int
    shipping_country: str = "CN"


async def insert_live_campaign(connection: AsyncConnection, *, slots: int, label: str = "launch") -> LiveCampaign:
    """A space, its maker and a live campaign (30 days to go) with one limited tier of `slots` slots: one product,
    shipped anywhere."""
    password_hash = bench_password_hash()
    suffix = secrets.token_hex(4)
    space_id, maker_id, campaign_id, tier_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await connection.execute(
        insert(Space).values(
            id=space_id,
            name=f"Bench Makerspace {suffix}",
            slug=f"bench-{label}-{suffix}",
            city="Shenzhen",
            country="CN",
            sponsor_fee_bps=300,
        )
    )
    await connection.execute(
        insert(User).values(
            id=maker_id, email=f"maker-{label}-{suffix}@bench.example", name="Bench Maker", password_hash=password_hash
        )
    )
    await connection.execute(
        insert(Campaign).values(
            id=campaign_id,
            slug=f"bench-{label}-{suffix}",
            title=f"Bench campaign {label}",
            summary="A campaign made by the benchmark.",
            currency="CNY",
            goal=1_000_000,
            status="live",
            space_id=space_id,
            maker_id=maker_id,
            duration_days=30,
            launched_at=text("now()"),
            ends_at=text("now() + interval '30 days'"),
        )
    )
    await connection.execute(
        insert(Product).values(
            campaign_id=campaign_id, sku="SKU-A", name="Sensor", weight_grams=120, unit_cost=3_000, batch_size=500
        )
    )
    await connection.execute(
        insert(Tier).values(
            id=tier_id,
            campaign_id=campaign_id,
            title="Early bird",
            price=14_900,
            quantity_limit=slots,
            remaining=slots,
            items=[{"sku": "SKU-A", "quantity": 1}],
            shipping=[{"country": "*", "fee": 1_000}],
            estimated_delivery="2027-03",
        )
    )
    return LiveCampaign(campaign_id, tier_id, maker_id, slots)


async def oversold_slots(connection: AsyncConnection, tier_id: uuid.UUID) -> int:
    """How many more open pledges the tier holds than its limit allows (must be 0), also checking `remaining`."""
    row = (
        await connection.execute(
            text(
                """
                SELECT t.quantity_limit, t.remaining,
                       (SELECT count(*) FROM pledges p
                        WHERE p.tier_id = t.id AND p.status NOT IN ('cancelled', 'dropped')) AS taken
                FROM tiers t WHERE t.id = :tier
                """
            ),
            {"tier": tier_id},
        )
    ).one()
    if row.taken + row.remaining != row.quantity_limit:
        raise AssertionError(
            f"tier {tier_id}: {row.taken} pledges + {row.remaining} remaining != limit {row.quantity_limit}"
        )
    return max(0, int(row.taken) - int(row.quantity_limit))


# The web app, as `kindling serve` in its own process group


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    log: Path


@asynccontextmanager
async def served(
    services: BenchServices,
    *,
    workers: int,
    env: Mapping[str, str] | None = None,
    startup_seconds: float = 60.0,
    module: str | None = None,
) -> AsyncIterator[Server]:
    """`kindling serve --workers N` on a free loopback port until /healthz answers 200.

    `module`: instead, `python -m <module> --port P --workers N` (a bench's own ASGI app, served as `kindling serve`
    serves the product's). The server's log goes to `<root>/serve.log`; it is shown if the server does not come up.
    """
    port = free_port()
    log_path = services.root / "serve.log"
    process = _start_server(services, port, workers, log_path, env or {}, module)
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_for_health(process, base_url, log_path, startup_seconds)
        yield Server(base_url, process.pid, log_path)
    finally:
        _stop_group(process)


def _start_server(
    services: BenchServices, port: int, workers: int, log_path: Path, env: Mapping[str, str], module: str | None = None
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", *((module,) if module else ("service.cli", "serve"))]
    command += ["--port", str(port), "--workers", str(workers)]
    with log_path.open("ab") as log_file:
        # a process group of its own, so that stopping it stops uvicorn's worker processes too
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=services.environment(**env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )


async def _wait_for_health(
    process: subprocess.Popen[bytes], base_url: str, log_path: Path, startup_seconds: float
) -> None:
    deadline = time.monotonic() + startup_seconds
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"kindling serve exited with {process.returncode}:\n{_tail(log_path)}")
            with suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"kindling serve was not healthy within {startup_seconds:.0f}s:\n{_tail(log_path)}")
            await asyncio.sleep(0.1)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# Where the CPU went


class CpuMeter:
    """CPU seconds (user + system) that named process trees use between `start()` and `stop()`, to tell which part
    of the system a benchmark kept busy. Processes that appear in between (PostgreSQL backends) are counted whole;
    the trees named in `alone` count their root only (this process, whose children are the servers)."""

    def __init__(self, roots: Mapping[str, int | None], *, alone: Sequence[str] = ()) -> None:
        self.roots = {name: pid for name, pid in roots.items() if pid is not None}
        self.alone = set(alone)
        self._before: dict[int, float] = {}
        self.used: dict[str, float] = {}

    def _tree(self, name: str) -> list[Any]:
        import psutil  # type: ignore[import-untyped, unused-ignore]

        try:
            root = psutil.Process(self.roots[name])
            return [root] if name in self.alone else [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    @staticmethod
    def _seconds(process: Any) -> float:
        import psutil

        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(times.user + times.system)

    def start(self) -> None:
        self._before = {p.pid: self._seconds(p) for name in self.roots for p in self._tree(name)}

    def stop(self) -> dict[str, float]:
        for name in self.roots:
            self.used[name] = sum(self._seconds(p) - self._before.get(p.pid, 0.0) for p in self._tree(name))
        return self.used

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.used.items())


# Profiling, when asked for (py-spy is not a dependency: `pip install py-spy`)


@contextmanager
def profiled(pid: int | None, output: Path | None, *, rate: int = 200) -> Iterator[None]:
    """Sample process `pid` and its children with py-spy while the block runs; collapsed stacks go to `output`
    (one line per stack, `frame;frame;frame count`), ready for flamegraph.pl or speedscope.app."""
    if pid is None or output is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise RuntimeError("profiling needs py-spy: pip install py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    command += ["--rate", str(rate), "--output", str(output), "--nonblocking"]
    recorder = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        _, errors = recorder.communicate(timeout=60)
        if recorder.returncode not in (0, -signal.SIGINT) and not output.exists():
            say(f"py-spy failed: {errors.decode(errors='replace').strip()}")
        else:
            say(f"profile written to {output}")


# N concurrent HTTP clients


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass(frozen=True)
class Sample:
    client: int
    status: int
    started: float  # seconds since the rush began
    seconds: float
    body: bytes = b""


async def rush(
    base_url: str,
    plans: Sequence[Sequence[Call]],
    *,
    warm_up: Call | None = Call("GET", "/healthz"),
    keep_body: bool = False,
    request_seconds: float = 60.0,
    on_start: Callable[[], object] | None = None,
) -> tuple[list[Sample], float]:
    """One keep-alive httpx client per plan, all starting together, each making its calls one after another.

    Each client first opens its connection with `warm_up` (not measured), then waits for the others, so the rush
    measures requests and not TCP handshakes; `on_start` is called as they start. Returns the samples and the wall
    time of the rush.
    """
    ready = asyncio.Barrier(len(plans) + 1)
    samples: list[Sample] = []
    start = 0.0

    async def client(index: int, plan: Sequence[Call]) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=request_seconds) as http:
            if warm_up is not None:
                await http.request(warm_up.method, warm_up.path, headers=dict(warm_up.headers))
            await ready.wait()
            for position, call in enumerate(plan):
                began = time.perf_counter()
                status, body = await send(http, call, may_retry=position == 0)
                ended = time.perf_counter()
                samples.append(Sample(index, status, began - start, ended - began, body if keep_body else b""))

    async def send(http: httpx.AsyncClient, call: Call, *, may_retry: bool) -> tuple[int, bytes]:
        try:
            response = await http.request(call.method, call.path, headers=dict(call.headers), json=call.json)
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if not may_retry:
                return 0, repr(exc).encode()
            # The server closed the warmed-up connection while it waited for the others (uvicorn drops keep-alive
            # connections idle for 5 s), before this request reached it: connect again, as any HTTP client would.
            return await send(http, call, may_retry=False)
        except httpx.HTTPError as exc:
            return 0, repr(exc).encode()
        return response.status_code, response.content

    tasks = [asyncio.create_task(client(i, plan)) for i, plan in enumerate(plans)]
    await ready.wait()
    if on_start is not None:
        on_start()
    start = time.perf_counter()
    await asyncio.gather(*tasks)
    return samples, time.perf_counter() - start


# pgbench, the reference


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    transactions: int
    failed: int
    latency_ms: float

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.transactions > 0


def run_pgbench(
    dsn: str,
    script: str,
    *,
    clients: int,
    seconds: float | None = None,
    transactions_per_client: int | None = None,
    variables: Mapping[str, object] | None = None,
    threads: int | None = None,
    workdir: Path | None = None,
) -> PgbenchResult:
    """pgbench (from pgserver's PostgreSQL) running `script` with `clients` connections, prepared statements, for
    `seconds` or `transactions_per_client`; tps excludes the time spent connecting."""
    if (seconds is None) == (transactions_per_client is None):
        raise ValueError("give either seconds or transactions_per_client")
    folder = Path(tempfile.mkdtemp(prefix="pgbench-", dir=workdir))
    script_file = folder / "script.sql"
    script_file.write_text(script)
    command = [
        str(postgres_bin_dir() / "pgbench"),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={threads or min(clients, os.cpu_count() or 1)}",
        f"--file={script_file}",
    ]
    if seconds is not None:
        command.append(f"--time={max(1, round(seconds))}")
    else:
        command.append(f"--transactions={transactions_per_client}")
    for name, value in (variables or {}).items():
        command.append(f"--define={name}={value}")
    command.append(dsn)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed ({result.returncode}):\n{result.stderr.strip()}\n{result.stdout.strip()}")
    return parse_pgbench(result.stdout)


def parse_pgbench(output: str) -> PgbenchResult:
    def number(pattern: str, default: float | None = None) -> float:
        found = re.search(pattern, output)
        if found is None:
            if default is not None:
                return default
            raise RuntimeError(f"pgbench printed no {pattern!r}:\n{output}")
        return float(found.group(1))

    return PgbenchResult(
        tps=number(r"tps = ([\d.]+) \(without initial connection time\)"),
        transactions=int(number(r"number of transactions actually processed: (\d+)")),
        failed=int(number(r"number of failed transactions: (\d+)", 0)),
        latency_ms=number(r"latency average = ([\d.]+) ms"),
    )
