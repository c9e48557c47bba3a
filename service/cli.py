"""The `kindling` command."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from service.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CommandError(Exception):
    """A one-line reason to stop, printed as `kindling: <reason>`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except SettingsError as exc:
        return _fail(str(exc), 2)
    except CommandError as exc:
        return _fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kindling",
        description="Kindling: crowdfunding and pre-orders for hardware makers, vetted by makerspaces.",
        epilog="Settings come from the environment (DATABASE_URL, REDIS_URL, STRIPE_*, KINDLING_*, SMTP_URL).",
    )
    parser.set_defaults(command=lambda args: _help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    dev = commands.add_parser(
        "dev",
        help="run everything on this machine: embedded services, migrations, demo data, web server and worker",
        description=(
            "Starts whatever of PostgreSQL, Redis and the Stripe stand-in the environment does not configure "
            "(embedded, on loopback, data in ./.kindling/), migrates, loads the demo data once, then serves the site "
            "and runs the worker and the sweep. Ctrl-C stops it all."
        ),
    )
    dev.add_argument("--host", default=DEFAULT_HOST, help=f"address to serve on (default {DEFAULT_HOST})")
    dev.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    dev.set_defaults(command=_dev)

    migrate = commands.add_parser(
        "migrate",
        help="bring the database up to date (alembic upgrade heads)",
        description="Runs every migration not yet applied to DATABASE_URL.",
    )
    migrate.set_defaults(command=_migrate)

    serve = commands.add_parser("serve", help="the web app under uvicorn", description="Serves the site and the API.")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    serve.add_argument("--workers", type=_positive, default=1, help="uvicorn worker processes (default 1)")
    serve.set_defaults(command=_serve)

    worker = commands.add_parser(
        "worker",
        help="the Dramatiq worker and the periodic sweep",
        description=(
            "Runs the background jobs (mail, charges, fulfillment) and, every KINDLING_SWEEP_SECONDS, the sweep that "
            "closes campaigns at their deadline, retries charges and re-sends lost work. Start as many as you like: "
            "only one sweep runs at a time."
        ),
    )
    worker.add_argument("--processes", type=_positive, default=2, help="worker processes (default 2)")
    worker.add_argument("--threads", type=_positive, default=8, help="threads per worker process (default 8)")
    worker.set_defaults(command=_worker)

    users = commands.add_parser("users", help="manage accounts", description="Manage accounts.")
    users.set_defaults(command=lambda args: _help(users))
    user_commands = users.add_subparsers(title="commands", metavar="COMMAND")
    create_admin = user_commands.add_parser(
        "create-admin",
        help="create a platform admin, or promote an existing account (idempotent)",
        description="Creates a platform admin with this email and password, or makes the existing account with this "
        "email an admin (its password is left as it is).",
    )
    create_admin.add_argument("--email", required=True, help="the admin's email")
    create_admin.add_argument(
        "--password", required=True, help=f"the password of a new account (at least {MIN_PASSWORD_LENGTH} characters)"
    )
    create_admin.set_defaults(command=_create_admin)

    demo = commands.add_parser(
        "demo",
        help="load the demo data (idempotent)",
        description="Loads a makerspace, its operator, a maker, a backer and an admin, a live campaign with rewards, "
        "pictures and a story, and a campaign waiting for review; loading twice changes nothing. It loads only into "
        "an empty database or one it made (its admin@kindling.localhost is an admin), unless given --yes.",
    )
    demo.add_argument(
        "--yes",
        action="store_true",
        help="load into a database that holds accounts and was not made by `kindling demo` (no demo admin)",
    )
    demo.set_defaults(command=_demo)

    backup = commands.add_parser(
        "backup",
        help="write a backup of the database (pg_dump's custom format)",
        description=(
            "Writes everything in DATABASE_URL's database to one file with pg_dump (custom format, compressed). "
            "The file appears only once the backup is complete."
        ),
    )
    backup.add_argument(
        "-o", "--output", type=Path, help="the file to write (default kindling-YYYYMMDD-HHMMSS.dump, UTC, here)"
    )
    backup.set_defaults(command=_backup)

    restore = commands.add_parser(
        "restore",
        help="replace the database's contents with a backup",
        description=(
            "Restores a file from `kindling backup` into DATABASE_URL's database with pg_restore, in one transaction: "
            "everything the backup holds replaces what is there, or, on any error, nothing changes. A database that "
            "already holds data is replaced only with --yes. Run `kindling migrate` afterwards when the backup comes "
            "from an older version."
        ),
    )
    restore.add_argument("file", type=Path, help="a file written by `kindling backup`")
    restore.add_argument("--yes", action="store_true", help="replace a database that already holds data")
    restore.set_defaults(command=_restore)

    verify = commands.add_parser(
        "verify",
        help="check a file against a design record downloaded from the design log, offline",
        description=(
            "Hashes FILE, checks the SHA-256 equals the record's, that the record's inclusion proof leads to the "
            "tree head's root, and that the tree head's Ed25519 signature verifies. Exit status 0 when all hold, 1 "
            "otherwise. Needs no settings and no network."
        ),
    )
    verify.add_argument("file", type=Path, help="the file the record is about")
    verify.add_argument("record", type=Path, help="the JSON of GET /api/v1/design-records/{id}")
    verify.add_argument(
        "--public-key",
        help="the log's public key you trust (base64, as GET /api/v1/design-records/tree-head gives it); "
        "default: the one in the record's tree head",
    )
    verify.set_defaults(command=_verify)
    return parser


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _dev(args: argparse.Namespace) -> int:
    from service.devrunner import run_dev
    from service.logs import configure_logging

    configure_logging()
    return run_dev(host=args.host, port=args.port)


def _migrate(args: argparse.Namespace) -> int:
    from service.logs import configure_logging
    from service.migrations import migrate

    settings = load_settings()
    configure_logging()
    _reachable(lambda: migrate(settings.database_url))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.logs import configure_logging

    load_settings()  # refuse to start on a bad setting, in one line, before uvicorn imports the app
    configure_logging()
    uvicorn.run(
        "service.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,  # service.asgi configures logging
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from service.logs import configure_logging
    from service.worker import run_worker

    settings = load_settings()
    configure_logging()
    return run_worker(settings, processes=args.processes, threads=args.threads)


def _create_admin(args: argparse.Namespace) -> int:
    from campaigns.accounts import create_admin

    email = args.email.strip()
    if not _EMAIL.match(email):
        raise CommandError(f"--email must be an email address, not {email!r}", 2)
    if len(args.password) < MIN_PASSWORD_LENGTH:
        raise CommandError(f"--password must be at least {MIN_PASSWORD_LENGTH} characters long", 2)
    settings = load_settings()

    async def create() -> bool:
        async with _unit_of_work(settings) as session:
            _user, created = await create_admin(session, email=email, password=args.password)
        return created

    created = _reachable(lambda: asyncio.run(create()))
    print(f"{'Created' if created else 'Promoted'} platform admin {email.lower()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET, load_demo, not_the_demos

    settings = load_settings()

    async def load() -> list[str]:
        async with _unit_of_work(settings) as session:
            refusal = None if args.yes else await not_the_demos(session)
            if refusal is not None:
                raise CommandError(refusal)
            demo = await load_demo(session, settings)
        return [
            f"admin:    {demo.admin.email}",
            f"operator: {demo.operator.email} (operates {demo.space.name})",
            f"maker:    {demo.maker.email}",
            f"backer:   {demo.backer.email}",
        ]

    accounts = _reachable(lambda: asyncio.run(load()))
    print(f"Demo data loaded. Accounts (password {DEMO_PASSWORD}):")
    for line in accounts:
        print("  " + line)
    print(f"The admin and the operator log in with two-factor: authenticator key {DEMO_TOTP_SECRET} (see the README).")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from service.backup import BackupError, back_up, default_backup_path

    settings = load_settings()
    output: Path = args.output or default_backup_path()
    try:
        size = back_up(settings.database_url, output)
    except BackupError as exc:
        raise CommandError(str(exc)) from exc
    print(f"Backed up the database to {output} ({_size(size)})")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from service.backup import BackupError, check_backup_file, restore, tables_with_rows

    settings = load_settings()
    try:
        check_backup_file(args.file)
        if not args.yes:
            filled = _reachable(lambda: asyncio.run(tables_with_rows(settings.database_url)))
            if filled:
                shown = ", ".join(filled[:5]) + (f" and {len(filled) - 5} more" if len(filled) > 5 else "")
                raise CommandError(
                    f"the database already holds data ({shown}); restoring replaces it. "
                    "Run `kindling backup` first if you may want it back, then restore with --yes"
                )
        restore(settings.database_url, args.file)
    except BackupError as exc:
        raise CommandError(str(exc)) from exc
    print(f"Restored {args.file}. Run `kindling migrate` if it comes from an older version of Kindling.")
    return 0


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} kB"
    return f"{size / (1024 * 1024):.1f} MB"


@asynccontextmanager
async def _unit_of_work(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A command's one transaction, whose jobs go to Dramatiq once it commits."""
    from service.broker import DramatiqSender, create_broker
    from service.database import create_engine, create_sessionmaker, unit_of_work

    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    broker = create_broker(settings.redis_url)
    try:
        async with unit_of_work(create_sessionmaker(engine), DramatiqSender(broker)) as session:
            yield session
    finally:
        await engine.dispose()
        broker.close()


def _reachable(action: Callable[[], T]) -> T:
    """Run `action`, turning an unreachable database or broker into one line instead of a traceback."""
    from service.middleware import is_unavailable

    try:
        return action()
    except Exception as exc:
        if is_unavailable(exc):
            raise CommandError(f"cannot reach the database or Redis: {exc}") from exc
        raise


def _verify(args: argparse.Namespace) -> int:
    import json

    from campaigns.transparency.verify import verify_design_record

    try:
        content = args.file.read_bytes()
        document = json.loads(args.record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the file or the record: {exc}") from exc
    if not isinstance(document, dict):
        raise CommandError(f"{args.record} is not a design record (a JSON object)")
    verdict = verify_design_record(document, content, public_key=args.public_key)
    print(("VERIFIED: " if verdict.ok else "NOT VERIFIED: ") + verdict.reason)
    return 0 if verdict.ok else 1


def _fail(message: str, code: int) -> int:
    print(f"kindling: {message}", file=sys.stderr)
    return code


def _port(value: str) -> int:
    port = _positive(value)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, not {value!r}")
    return port


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value!r}")
    return number


if __name__ == "__main__":
    sys.exit(main())
