"""`kindling backup` and `kindling restore`: the demo goes out to a file and comes back the same, or nothing changes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from service.backup import BackupError, database_of, default_backup_path
from service.cli import main
from service.demo import CROWD_SIZE
from service.devservices import EmbeddedPostgres
from service.migrations import migrate
from service.settings import Settings, environment_of

Fingerprint = dict[str, tuple[int, str]]
ROWS_DIGEST = "md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), ''))"


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


@pytest.fixture
def scratch_databases(postgres: EmbeddedPostgres) -> Iterator[list[str]]:
    """Names of databases a test may create on the session's PostgreSQL; dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        postgres.drop_database(name)


async def new_database(postgres: EmbeddedPostgres, names: list[str], name: str, *, migrated: bool) -> str:
    postgres.drop_database(name)
    postgres.create_database(name)
    names.append(name)
    url = postgres.database_url(name)
    if migrated:
        await asyncio.to_thread(migrate, url)  # Alembic runs its own event loop
    return url


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def connect(url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def fingerprint(url: str) -> Fingerprint:
    """Every table's row count and a digest of all its rows, every sequence's position, and the triggers."""
    async for connection in connect(url):
        tables = (
            await connection.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
        ).all()
        found: Fingerprint = {}
        for table in tables:
            row = (await connection.execute(text(f'SELECT count(*), {ROWS_DIGEST} FROM "{table}" t'))).one()
            found[table] = (row[0], row[1])
        sequences = await connection.execute(
            text("SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences WHERE schemaname = 'public'")
        )
        for name, position in sequences:
            found[f"sequence {name}"] = (int(position), "")
        triggers = await connection.scalars(
            text("SELECT tgrelid::regclass || '.' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
        )
        found["triggers"] = (0, ",".join(triggers))
    return found


async def test_the_demo_is_backed_up_and_restored_into_an_empty_database_as_it_was(
    postgres: EmbeddedPostgres,
    settings: Settings,
    scratch_databases: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = replace(
        settings, database_url=await new_database(postgres, scratch_databases, "kindling_backup_source", migrated=True)
    )
    target = replace(
        settings, database_url=await new_database(postgres, scratch_databases, "kindling_backup_target", migrated=False)
    )
    assert await kindling(source, "demo") == 0
    original = await fingerprint(source.database_url)
    assert (
        original["users"][0] == 4 + CROWD_SIZE and original["campaigns"][0] >= 2 and original["alembic_version"][0] >= 1
    )

    dump = tmp_path / "demo.dump"
    assert await kindling(source, "backup", "--output", str(dump)) == 0
    assert dump.read_bytes().startswith(b"PGDMP")
    assert files_in(tmp_path) == ["demo.dump"]
    assert await kindling(target, "restore", str(dump)) == 0

    assert await fingerprint(target.database_url) == original
    out = capsys.readouterr().out
    assert f"Backed up the database to {dump} (" in out and f"Restored {dump}." in out
    # The restored database is up to date: migrating changes nothing.
    assert await kindling(target, "migrate") == 0
    assert await fingerprint(target.database_url) == original


async def test_restoring_over_data_needs_yes_then_puts_the_backup_back(
    postgres: EmbeddedPostgres,
    settings: Settings,
    scratch_databases: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = replace(
        settings, database_url=await new_database(postgres, scratch_databases, "kindling_backup_live", migrated=True)
    )
    assert await kindling(live, "demo") == 0
    dump = tmp_path / "before.dump"
    assert await kindling(live, "backup", "-o", str(dump)) == 0
    backed_up = await fingerprint(live.database_url)

    async for connection in connect(live.database_url):
        await connection.execute(text("UPDATE campaigns SET title = 'Renamed after the backup'"))
        await connection.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash) "
                "VALUES (gen_random_uuid(), 'new@example.com', 'New', 'not a hash')"
            )
        )
        await connection.commit()
    changed = await fingerprint(live.database_url)
    assert changed != backed_up
    capsys.readouterr()

    assert await kindling(live, "restore", str(dump)) == 1
    refusal = capsys.readouterr().err
    assert refusal.startswith("kindling: the database already holds data (") and "--yes" in refusal
    assert len(refusal.splitlines()) == 1
    assert await fingerprint(live.database_url) == changed

    assert await kindling(live, "restore", "--yes", str(dump)) == 0
    assert await fingerprint(live.database_url) == backed_up


async def test_a_file_that_is_not_a_whole_backup_changes_nothing(
    postgres: EmbeddedPostgres,
    settings: Settings,
    scratch_databases: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = replace(
        settings, database_url=await new_database(postgres, scratch_databases, "kindling_backup_cut", migrated=True)
    )
    assert await kindling(live, "demo") == 0
    whole = tmp_path / "whole.dump"
    assert await kindling(live, "backup", "-o", str(whole)) == 0
    before = await fingerprint(live.database_url)
    capsys.readouterr()

    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("SELECT 1;")
    assert await kindling(live, "restore", "--yes", str(not_a_backup)) == 1
    assert await kindling(live, "restore", "--yes", str(tmp_path / "missing.dump")) == 1
    cut = tmp_path / "cut.dump"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    assert await kindling(live, "restore", "--yes", str(cut)) == 1

    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == f"kindling: {not_a_backup} is not a backup made by `kindling backup` (pg_dump's custom format)"
    assert errors[1] == f"kindling: {tmp_path / 'missing.dump'} does not exist"
    assert errors[2].startswith("kindling: pg_restore failed: ")
    assert len(errors) == 3 and "Traceback" not in "".join(errors)
    assert await fingerprint(live.database_url) == before


async def test_a_backup_that_cannot_reach_the_database_says_so_and_leaves_no_file(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = replace(settings, database_url=f"postgresql+asyncpg://postgres@/kindling?host={tmp_path / 'no-server'}")
    output = tmp_path / "backup.dump"
    assert await kindling(nowhere, "backup", "-o", str(output)) == 1
    error = capsys.readouterr().err
    assert error.startswith("kindling: pg_dump failed: ") and len(error.splitlines()) == 1
    assert files_in(tmp_path) == []

    assert await kindling(nowhere, "restore", str(output)) == 1
    assert capsys.readouterr().err == f"kindling: {output} does not exist\n"


async def test_restore_into_an_unreachable_database_says_so_in_one_line(
    postgres: EmbeddedPostgres,
    settings: Settings,
    scratch_databases: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = replace(
        settings, database_url=await new_database(postgres, scratch_databases, "kindling_backup_small", migrated=True)
    )
    dump = tmp_path / "small.dump"
    assert await kindling(source, "backup", "-o", str(dump)) == 0
    nowhere = replace(settings, database_url=f"postgresql+asyncpg://postgres@/kindling?host={tmp_path / 'no-server'}")
    capsys.readouterr()
    assert await kindling(nowhere, "restore", str(dump)) == 1
    error = capsys.readouterr().err
    assert error.startswith("kindling: cannot reach the database or Redis: ") and len(error.splitlines()) == 1


def test_the_connection_reaches_pg_dump_through_libpq_variables_not_the_command_line() -> None:
    database = database_of(
        "postgresql+asyncpg://kindling:s%40cret@db.internal:6543/kindling_prod?ssl=require&prepared_statement_cache_size=0"
    )
    assert database.name == "kindling_prod"
    assert database.environment == {
        "PGDATABASE": "kindling_prod",
        "PGUSER": "kindling",
        "PGPASSWORD": "s@cret",
        "PGHOST": "db.internal",
        "PGPORT": "6543",
        "PGSSLMODE": "require",
    }
    embedded = database_of("postgresql+asyncpg://postgres@/kindling?host=/tmp/pg/data&port=5433")
    assert embedded.environment == {
        "PGDATABASE": "kindling",
        "PGUSER": "postgres",
        "PGHOST": "/tmp/pg/data",
        "PGPORT": "5433",
    }


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("sqlite:///kindling.db", "DATABASE_URL must be a PostgreSQL URL, not 'sqlite'"),
        ("postgresql+asyncpg://postgres@localhost", "DATABASE_URL names no database"),
        ("not a url", "DATABASE_URL is not a database URL"),
    ],
)
def test_only_a_postgresql_database_can_be_backed_up(url: str, reason: str) -> None:
    with pytest.raises(BackupError) as refused:
        database_of(url)
    assert str(refused.value) == reason


def test_a_backup_is_named_after_when_it_was_taken() -> None:
    assert default_backup_path(datetime(2026, 11, 26, 9, 5, 7, tzinfo=UTC)) == Path("kindling-20261126-090507.dump")
