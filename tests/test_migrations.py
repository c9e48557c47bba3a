from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from service.metadata import target_metadata


async def test_the_models_and_the_migrations_agree(engine: AsyncEngine) -> None:
    def differences(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, target_metadata))

    async with engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []
