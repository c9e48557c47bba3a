"""Running Alembic from our own code (the CLI, the dev runner and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str) -> None:
    """`alembic upgrade heads`: every branch of the chain (several 0020 migrations stand side by side until they
    are chained). Blocking: call it from a thread when an event loop is running."""
    command.upgrade(alembic_config(database_url), "heads")
