"""Which process plays a running quiz match, on both engines: a lease names its owner until a time; the owner
renews it; another process takes a match over only once its lease ran out (a match never leased: once its
start plus a grace period has passed), never its own, and gets the matches back in id order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bot.core.model import Match, MatchStatus
from bot.storage.store import Store

T0 = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)
GRACE = 15.0  # seconds


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def store(store_location: str) -> AsyncIterator[Store]:
    async with Store(store_location) as opened:
        yield opened


async def start(store: Store, n: int) -> int:
    created = await store.create_match(
        Match(
            id=0,
            chat_key=f"telegram:-{n}",
            platform="telegram",
            chat_id=f"-{n}",
            starter_id=None,
            topic=None,
            questions=5,
            seconds=20,
            solo=False,
            status=MatchStatus.RUNNING,
            card_ids=("c1", "c2"),
            rounds_played=0,
            idle_rounds=0,
            started_at=T0,
        )
    )
    assert created is not None
    return created.id


async def taken(store: Store, owner: str, now: float, until: float) -> list[int]:
    return [match.id for match in await store.take_over_matches(owner, at(now), at(until), GRACE)]


async def test_a_lease_holds_a_match_for_its_owner_until_it_runs_out(store: Store) -> None:
    first, second = await start(store, 1), await start(store, 2)
    assert await store.lease_match(first, "a", at(40)) is True
    assert await taken(store, "b", now=10, until=25) == []  # leased; the other, unleased, within its grace
    assert await taken(store, "b", now=15, until=60) == [second]  # the unleased one, once start + grace passed
    assert await taken(store, "c", now=20, until=35) == []  # b's lease holds it now; a's still holds the first
    assert await taken(store, "c", now=40, until=55) == [first]  # a's lease ran out


async def test_taken_over_matches_come_back_in_id_order_and_belong_to_the_new_owner(store: Store) -> None:
    first, second = await start(store, 1), await start(store, 2)
    await store.lease_match(first, "a", at(5))  # rewrites the first match's row after the second's
    await store.lease_match(second, "a", at(5))
    await store.lease_match(first, "a", at(5))
    assert await taken(store, "b", now=5, until=20) == [first, second]
    assert await store.renew_match_leases("b", [first, second], at(60)) == {first, second}
    assert await taken(store, "b", now=30, until=45) == []  # never its own, even past the old lease
    assert await taken(store, "c", now=59, until=75) == []  # the renewed lease holds
    assert await taken(store, "c", now=60, until=75) == [first, second]


async def test_a_lease_or_a_renewal_covers_only_running_matches_of_that_owner(store: Store) -> None:
    mine, theirs, ended = await start(store, 1), await start(store, 2), await start(store, 3)
    assert await store.end_match(ended, MatchStatus.STOPPED, "stopped", None, at(1))
    assert await store.lease_match(ended, "a", at(30)) is False
    assert await store.lease_match(9999, "a", at(30)) is False
    assert await store.lease_match(mine, "a", at(30)) is True
    assert await store.lease_match(theirs, "b", at(30)) is True
    assert await store.renew_match_leases("a", [mine, theirs, ended], at(90)) == {mine}
    assert await store.renew_match_leases("a", [], at(90)) == set()
    assert await taken(store, "c", now=60, until=75) == [theirs]  # only a's lease was renewed
    assert await taken(store, "c", now=95, until=110) == [mine]


async def test_a_takeover_skips_a_match_another_process_is_taking_over_at_that_moment(pg_dsn: str) -> None:
    async with Store(pg_dsn) as store:
        match = await start(store, 1)  # never leased: free to take once its grace has passed
        other = await asyncpg.connect(pg_dsn)  # another replica, in the middle of taking it over
        try:
            async with other.transaction():
                await other.execute("SELECT id FROM matches WHERE id = $1 FOR UPDATE", match)
                # skipped at once, not waited for
                assert await asyncio.wait_for(taken(store, "b", now=20, until=35), timeout=5) == []
        finally:
            await other.close()
        assert await taken(store, "b", now=20, until=35) == [match]  # free again once the other let go
