"""`kindling backup` and `kindling restore`: pg_dump and pg_restore on DATABASE_URL.

The tools come from pgserver when it is installed (the same PostgreSQL 16 that `kindling dev` runs), else from PATH.
The connection goes to them through libpq's environment (PGHOST, PGPASSWORD, ...), never on their command line,
where any user of the machine could read the password.

A backup is pg_dump's custom format (compressed, restorable table by table with pg_restore); it is written next to
its final name and renamed into place only once complete, so a failed backup never leaves a truncated file that looks
like a good one. A restore runs in one transaction: it replaces everything the backup holds, or, on any error, changes
nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

# The first bytes of every pg_dump custom-format archive.
ARCHIVE_MAGIC = b"PGDMP"
# asyncpg's `ssl` values that libpq spells differently.
_SSL_MODES = {"true": "require", "false": "disable"}


class BackupError(Exception):
    """One line saying what went wrong and what to do."""


@dataclass(frozen=True)
class Database:
    """Where DATABASE_URL points, as libpq's environment for the PostgreSQL command-line tools."""

    name: str
    environment: dict[str, str]


def database_of(database_url: str) -> Database:
    """`postgresql+asyncpg://user:pw@host:port/db?host=/socket/dir` as PGUSER, PGPASSWORD, PGHOST, PGPORT, PGDATABASE.

    asyncpg's own query parameters (`prepared_statement_cache_size`, ...) mean nothing to libpq and are left out.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise BackupError("DATABASE_URL is not a database URL") from None
    if url.get_backend_name() != "postgresql":
        raise BackupError(f"DATABASE_URL must be a PostgreSQL URL, not {url.get_backend_name()!r}")
    if not url.database:
        raise BackupError("DATABASE_URL names no database")
    query = {key: value if isinstance(value, str) else ",".join(value) for key, value in url.query.items()}
    environment = {"PGDATABASE": url.database}
    host = query.get("host") or url.host
    port = query.get("port") or (str(url.port) if url.port else None)
    ssl = query.get("sslmode") or query.get("ssl")
    for name, value in (
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGHOST", host),
        ("PGPORT", port),
        ("PGSSLMODE", _SSL_MODES.get(ssl.lower(), ssl) if ssl else None),
    ):
        if value:
            environment[name] = str(value)
    return Database(name=url.database, environment=environment)


def postgres_tool(name: str) -> Path:
    """pg_dump or pg_restore: pgserver's when it is installed, else the one on PATH."""
    try:
        from service.devservices import postgres_bin_dir

        shipped = postgres_bin_dir() / name
    except ImportError:
        pass
    else:
        if shipped.exists():
            return shipped
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} was not found: install the PostgreSQL client tools (or pgserver)")
    return Path(found)


def default_backup_path(now: datetime | None = None) -> Path:
    return Path(f"kindling-{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}.dump")


def back_up(database_url: str, output: Path) -> int:
    """Write a pg_dump custom-format archive of the database to `output`; returns its size in bytes."""
    database = database_of(database_url)
    output = output.expanduser()
    if output.is_dir():
        raise BackupError(f"{output} is a folder; give the backup file's name")
    if not output.parent.is_dir():
        raise BackupError(f"the folder {output.parent} does not exist")
    partial = output.with_name(f".{output.name}.partial")
    command = [str(postgres_tool("pg_dump")), "--format=custom", "--no-password", f"--file={partial}"]
    try:
        _run(command, database)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output.stat().st_size


async def tables_with_rows(database_url: str) -> list[str]:
    """The tables of the public schema that hold at least one row (Alembic's bookkeeping aside)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            tables = await connection.scalars(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' "
                    "ORDER BY tablename"
                )
            )
            filled = []
            for table in tables.all():
                quoted = '"' + table.replace('"', '""') + '"'
                if await connection.scalar(text(f"SELECT EXISTS (SELECT FROM public.{quoted})")):
                    filled.append(table)
            return filled
    finally:
        await engine.dispose()


def check_backup_file(path: Path) -> None:
    try:
        with path.open("rb") as archive:
            magic = archive.read(len(ARCHIVE_MAGIC))
    except FileNotFoundError:
        raise BackupError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise BackupError(f"{path} is a folder, not a backup file") from None
    if magic != ARCHIVE_MAGIC:
        raise BackupError(f"{path} is not a backup made by `kindling backup` (pg_dump's custom format)")


def restore(database_url: str, backup: Path) -> None:
    """Replace what the backup holds in the database, in one transaction: all of it, or nothing on any error.

    Objects in the database that the backup does not have (a table from a newer migration) are left alone; a
    backup from an older version is brought up to date with `kindling migrate` afterwards.
    """
    database = database_of(database_url)
    check_backup_file(backup)
    command = [
        str(postgres_tool("pg_restore")),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-acl",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={database.name}",
        str(backup),
    ]
    _run(command, database)


def _run(command: list[str], database: Database) -> None:
    environment = {**os.environ, **database.environment}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tool = Path(command[0]).name
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = "; ".join(lines[-3:]) or f"exit code {result.returncode}"
        raise BackupError(f"{tool} failed: {reason}")
