"""Migrations on both engines: a fresh database gets every numbered migration once, two processes
starting at once do not apply any twice, and opening again changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.core.model import Identity
from bot.storage.db import migrations
from bot.storage.store import Store


async def test_two_stores_opening_a_fresh_database_at_once_apply_each_migration_once(store_location: str) -> None:
    first, second = Store(store_location), Store(store_location)
    await asyncio.gather(first.open(), second.open())
    try:
        engine = first.engine
        latest = migrations(engine)[-1][0]
        assert await first.schema_version() == await second.schema_version() == latest
        if engine == "postgresql":
            rows = await first.db.fetch("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in rows] == [number for number, _name, _sql in migrations(engine)]
        # both work on the same schema: one writes, the other reads it back
        learner = await first.ensure_learner(Identity("t", "1"), "Ann", datetime(2026, 1, 1, tzinfo=UTC), "UTC", 10)
        assert await second.get_learner(learner.id) == learner
    finally:
        await asyncio.gather(first.close(), second.close())
    async with Store(store_location) as again:  # reopening applies nothing new and keeps the data
        assert await again.schema_version() == latest
        row = await again.db.fetchrow("SELECT COUNT(*) FROM learners")
        assert row is not None and row[0] == 1


def test_both_engines_ship_the_same_migration_numbers() -> None:
    sqlite = [number for number, _name, _sql in migrations("sqlite")]
    postgresql = [number for number, _name, _sql in migrations("postgresql")]
    assert sqlite == postgresql == list(range(1, len(sqlite) + 1))
