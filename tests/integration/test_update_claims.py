"""The webhook's update ids in the database (UpdateRepository), on SQLite and PostgreSQL: the first claim of an
update id wins, a released claim can be taken again, and ids older than a day are pruned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.storage.store import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_the_first_claim_of_an_update_wins_and_a_second_is_refused(engine_store: Store) -> None:
    assert await engine_store.claim_update(501, NOW, "replica-a") is True
    assert await engine_store.claim_update(501, NOW, "replica-b") is False
    assert await engine_store.claim_update(501, NOW, "replica-a") is False
    assert await engine_store.claim_update(502, NOW, "replica-b") is True
    rows = await engine_store.db.fetch("SELECT update_id, replica FROM telegram_updates ORDER BY update_id")
    assert [(row[0], row[1]) for row in rows] == [(501, "replica-a"), (502, "replica-b")]


async def test_concurrent_claims_of_one_update_let_exactly_one_through(engine_store: Store) -> None:
    results = await asyncio.gather(*(engine_store.claim_update(777, NOW, f"r{n}") for n in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_a_released_claim_can_be_taken_again(engine_store: Store) -> None:
    await engine_store.claim_update(9, NOW, "replica-a")
    await engine_store.claim_update(10, NOW, "replica-a")
    await engine_store.release_update(9)
    assert await engine_store.claim_update(9, NOW, "replica-b") is True
    assert await engine_store.claim_update(10, NOW, "replica-b") is False  # only the released one


async def test_prune_forgets_update_ids_received_before_the_cut(engine_store: Store) -> None:
    await engine_store.claim_update(1, NOW - timedelta(days=2), "a")
    await engine_store.claim_update(2, NOW - timedelta(hours=25), "a")
    await engine_store.claim_update(3, NOW - timedelta(hours=1), "a")
    assert await engine_store.prune_updates(NOW - timedelta(days=1)) == 2
    assert await engine_store.claim_update(1, NOW, "b") is True  # forgotten
    assert await engine_store.claim_update(3, NOW, "b") is False  # kept
    assert await engine_store.prune_updates(NOW - timedelta(days=1)) == 0


async def test_update_ids_beyond_32_bits_are_kept(engine_store: Store) -> None:
    big = 2**40 + 3  # Telegram's update ids are 64-bit in the Bot API's JSON
    assert await engine_store.claim_update(big, NOW, "a") is True
    assert await engine_store.claim_update(big, NOW, "b") is False
