from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Space, SpaceOperator, User
from service.cli import main
from service.demo import ADMIN_EMAIL, CROWD_SIZE, DEMO_PASSWORD, DEMO_TOTP_SECRET, OPERATOR_EMAIL
from service.devservices import free_port
from service.settings import Settings, environment_of, load_settings
from tests.helpers import PASSWORD, sign_up

KINDLING = str(Path(sys.executable).parent / "kindling")
COMMANDS = [[], ["dev"], ["migrate"], ["serve"], ["worker"], ["users"], ["users", "create-admin"], ["demo"]]


def unconfigured_environment() -> dict[str, str]:
    ours = ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "STRIPE_", "KINDLING_")
    return {name: value for name, value in os.environ.items() if not name.startswith(ours)}


async def kindling(settings: Settings, *args: str) -> int:
    """`kindling ARGS` in-process (in a thread: the command runs its own event loop), with `settings`' environment."""

    def run() -> int:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environment_of(settings))
        try:
            return main(list(args))
        finally:
            os.environ.clear()
            os.environ.update(saved)

    return await asyncio.to_thread(run)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "kindling")
def test_kindling_and_each_command_explain_themselves(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: kindling {' '.join(command)}".rstrip())


def test_the_installed_command_lists_every_command() -> None:
    result = subprocess.run([KINDLING, "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0
    for command in ("dev", "migrate", "serve", "worker", "users", "demo"):
        assert f"    {command} " in result.stdout


def test_a_missing_setting_stops_start_up_with_one_line_and_no_traceback() -> None:
    result = subprocess.run(
        [KINDLING, "worker"], env=unconfigured_environment(), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("kindling: DATABASE_URL is required")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_malformed_setting_is_named_with_what_is_expected(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in environment_of(settings, KINDLING_SWEEP_SECONDS="soon").items():
        monkeypatch.setenv(name, value)
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == "kindling: KINDLING_SWEEP_SECONDS must be a number from 0.1 to 3600, not 'soon'\n"


def test_the_environment_of_some_settings_reads_back_as_the_same_settings(stripe_settings: Settings) -> None:
    assert load_settings(environment_of(stripe_settings)) == stripe_settings


async def test_create_admin_creates_then_promotes_and_is_idempotent(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_admin = ("users", "create-admin", "--email")
    assert await kindling(settings, *create_admin, "Root@Example.com", "--password", "a-long-pass") == 0
    assert await kindling(settings, *create_admin, "root@example.com", "--password", "other-pass") == 0
    ada = await sign_up(client, "Ada")
    assert await kindling(settings, *create_admin, ada.email, "--password", "ignored-pass") == 0

    assert capsys.readouterr().out.splitlines() == [
        "Created platform admin root@example.com",
        "Promoted platform admin root@example.com",
        f"Promoted platform admin {ada.email}",
    ]
    async with sessions() as session:
        admins = (await session.scalars(select(User.email).where(User.is_admin).order_by(User.email))).all()
        assert sorted(admins) == sorted(["root@example.com", ada.email])
        assert await session.scalar(select(func.count()).select_from(User)) == 2
    root = await client.post("/api/v1/tokens", json={"email": "root@example.com", "password": "a-long-pass"})
    assert root.status_code == 201
    ada_again = await client.post("/api/v1/tokens", json={"email": ada.email, "password": PASSWORD})
    assert ada_again.status_code == 201  # promoting left the password alone
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {ada_again.json()['token']}"})
    assert me.json()["roles"]["admin"] is True


async def test_create_admin_refuses_a_short_password_or_a_bad_email(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await kindling(settings, "users", "create-admin", "--email", "root@example.com", "--password", "short") == 2
    assert await kindling(settings, "users", "create-admin", "--email", "root", "--password", "long-enough!") == 2
    assert capsys.readouterr().err.splitlines() == [
        "kindling: --password must be at least 10 characters long",
        "kindling: --email must be an email address, not 'root'",
    ]


async def test_migrate_and_demo_can_run_again_and_again(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await kindling(settings, "migrate") == 0
    assert await kindling(settings, "demo") == 0
    assert await kindling(settings, "demo") == 0

    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 4 + CROWD_SIZE
        assert (
            await session.scalar(select(func.count()).select_from(Space)) == 4
        )  # Shenzhen, and three spaces beyond it
        assert await session.scalar(select(func.count()).select_from(SpaceOperator)) == 4  # the demo operator runs each
    out = capsys.readouterr().out
    assert f"Accounts (password {DEMO_PASSWORD})" in out and f"authenticator key {DEMO_TOTP_SECRET}" in out
    code = pyotp.TOTP(DEMO_TOTP_SECRET).now()  # each account takes it once
    token = await client.post("/api/v1/tokens", json={"email": OPERATOR_EMAIL, "password": DEMO_PASSWORD, "otp": code})
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.json()['token']}"})
    space = (await client.get(f"/api/v1/spaces/{me.json()['roles']['operator_of'][0]}")).json()
    assert space["name"] == "Chaihuo x.factory" and space["city"] == "Shenzhen" and space["country"] == "CN"
    admin = await client.post("/api/v1/tokens", json={"email": ADMIN_EMAIL, "password": DEMO_PASSWORD, "otp": code})
    assert admin.json()["user"]["email"] == ADMIN_EMAIL


def wait_until_running(dev: subprocess.Popen[bytes], port: int, log: Path, within: float = 90.0) -> None:
    """Until the runner says it is ready, which it says once its /healthz answers."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert dev.poll() is None, log.read_text()
        if f"Kindling is running at http://127.0.0.1:{port}" in log.read_text():
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
            return
        time.sleep(0.2)
    raise AssertionError(f"kindling dev was not running within {within}s:\n{log.read_text()}")


def postmaster_of(data_dir: Path) -> psutil.Process:
    return psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))


def start_dev(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [KINDLING, "dev", "--port", str(port)],
            cwd=folder,
            env=unconfigured_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own terminal, as it were: the test presses Ctrl-C there
        )


def press_ctrl_c_and_check_nothing_is_left(dev: subprocess.Popen[bytes], pg_data: Path, log: Path) -> None:
    postmaster = postmaster_of(pg_data)
    everything = [
        psutil.Process(dev.pid),
        *psutil.Process(dev.pid).children(recursive=True),
        postmaster,
        *postmaster.children(recursive=True),
    ]
    assert len(everything) > 8  # runner, web, worker, dramatiq, redis, localstripe, postgres and its helpers
    os.killpg(dev.pid, signal.SIGINT)

    assert dev.wait(timeout=60) == 0, log.read_text()
    _gone, alive = psutil.wait_procs(everything, timeout=10)
    assert [process for process in alive if process.status() != psutil.STATUS_ZOMBIE] == []
    assert not (pg_data / "postmaster.pid").exists()


def log_in_as_demo_admin(port: int, *, steps_ahead: int = 0) -> httpx.Response:
    """With the demo's published two-factor key; a later log-in takes a later code (no code is taken twice)."""
    otp = pyotp.TOTP(DEMO_TOTP_SECRET).at(time.time() + 30 * steps_ahead)
    body = {"email": ADMIN_EMAIL, "password": DEMO_PASSWORD, "otp": otp}
    return httpx.post(f"http://127.0.0.1:{port}/api/v1/tokens", json=body, timeout=10)


@pytest.mark.slow
def test_kindling_dev_runs_everything_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    port = free_port()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    pg_data = tmp_path / ".kindling" / "postgres"
    dev = start_dev(tmp_path, port, first_log)
    try:
        wait_until_running(dev, port, first_log)
        printed = first_log.read_text()
        assert "PostgreSQL (embedded) at postgresql+asyncpg://" in printed
        assert "Redis (embedded) at redis://127.0.0.1:" in printed
        assert "Stripe stand-in (localstripe, embedded) at http://127.0.0.1:" in printed
        assert "Demo data loaded" in printed
        assert httpx.get(f"http://127.0.0.1:{port}/dev/mail").status_code == 200
        assert log_in_as_demo_admin(port).status_code == 201
        assert (tmp_path / ".kindling" / ".gitignore").read_text().endswith("*\n")

        second = subprocess.run(
            [KINDLING, "dev", "--port", str(free_port())],
            cwd=tmp_path,
            env=unconfigured_environment(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert second.returncode != 0
        assert "kindling dev is already running" in second.stderr

        press_ctrl_c_and_check_nothing_is_left(dev, pg_data, first_log)

        # Started again, it finds its data where it left it, and does not load the demo twice.
        dev = start_dev(tmp_path, port, second_log)
        wait_until_running(dev, port, second_log)
        assert log_in_as_demo_admin(port, steps_ahead=1).status_code == 201
        assert "Demo data loaded" not in second_log.read_text()
        press_ctrl_c_and_check_nothing_is_left(dev, pg_data, second_log)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        if (pg_data / "postmaster.pid").exists():
            postmaster_of(pg_data).kill()
