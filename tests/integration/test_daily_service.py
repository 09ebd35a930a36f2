"""The daily service's fleet settings, on both engines and a fake clock: the pace per platform (each push
waits for its send slot, retries too), how many pushes a paced service claims at once, the name a
claim carries, this process's own tick, and a stale copy of a paused chat that must not resume it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import asyncpg
import fsrs
import pytest

from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import Delivery, SendResult
from bot.core.study import StudyService
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier
from tests.integration.test_daily import World, at, person, subscribe, tick_at


@pytest.fixture
async def world(store_location: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock(at("2026-01-10T00:00:00"))
    async with Store(store_location) as store:
        study = StudyService(store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        notifier = FakeNotifier()
        daily = DailyService(store, study, {"telegram": notifier})
        yield World(store, clock, notifier, study, daily, tmp_path / "bot.db")


def on_discord(n: int) -> Caller:
    return Caller(Identity("discord", str(n)), f"D{n}", Chat("discord", str(n)))


class Waits:
    """A sleep that records how long each push waited for its slot (the fake clock stands still)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(round(seconds, 3))


def paced(world: World, rates: Mapping[str, float], waits: Waits, discord: FakeNotifier | None = None) -> DailyService:
    notifiers = {"telegram": world.notifier, **({"discord": discord} if discord else {})}
    return DailyService(world.store, world.study, notifiers, rates=rates, sleep=waits)


async def test_each_platform_keeps_its_own_pace_and_a_rate_of_zero_is_no_pace(world: World) -> None:
    discord = FakeNotifier("discord")
    for n in range(1, 7):
        await subscribe(world, person(n), "08:00 UTC")
    for n in range(1, 4):
        await subscribe(world, on_discord(n), "08:00 UTC")
    waits = Waits()
    daily = paced(world, {"telegram": 4, "discord": 1, "terminal": 0}, waits, discord)
    world.clock.set(at("2026-01-10T08:00:00"))
    report = await daily.tick()
    assert report.sent == 9 and len(world.notifier.sent) == 6 and len(discord.sent) == 3
    # the first of each platform goes at once; then telegram every 0.25 s, discord every second
    assert sorted(waits.seconds) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.25, 2.0]


async def test_without_rates_nothing_waits(world: World) -> None:
    for n in range(1, 5):
        await subscribe(world, person(n), "08:00 UTC")
    waits = Waits()
    daily = paced(world, {}, waits)
    assert (await tick_at(world, "2026-01-10T08:00:00", daily)) == ["1", "2", "3", "4"]
    assert waits.seconds == []


async def test_retries_wait_for_send_slots_at_the_pace_too(world: World) -> None:
    for n in range(1, 4):
        await subscribe(world, person(n), "08:00 UTC")
    waits = Waits()
    daily = paced(world, {"telegram": 4}, waits)
    world.notifier.script = [SendResult(Delivery.FAILED, detail="Timed out")] * 3
    assert await tick_at(world, "2026-01-10T08:00:00", daily) == []
    assert sorted(waits.seconds) == [0.25, 0.5]
    waits.seconds.clear()
    assert await tick_at(world, "2026-01-10T08:03:00", daily) == ["1", "2", "3"]  # after the 2-minute retry delay
    assert sorted(waits.seconds) == [0.25, 0.5]


async def test_a_paced_service_claims_five_seconds_of_its_fastest_pace_at_a_time_and_at_least_ten(world: World) -> None:
    def batch(rates: Mapping[str, float] | None, given: int = 500) -> int:
        return DailyService(world.store, world.study, {}, rates=rates, batch=given).batch

    assert batch(None) == 500
    assert batch({"telegram": 30, "discord": 50}) == 250
    assert batch({"telegram": 30}, given=100) == 100  # never more than asked for
    assert batch({"telegram": 1}) == 10


async def test_a_claim_names_the_replica_and_a_per_start_suffix(world: World) -> None:
    await subscribe(world, person(1), "08:00 UTC")
    await subscribe(world, person(2), "09:00 UTC")
    named = DailyService(world.store, world.study, {"telegram": world.notifier}, claimer="replica-2")
    assert await tick_at(world, "2026-01-10T08:00:00", named) == ["1"]
    assert await tick_at(world, "2026-01-10T09:00:00") == ["2"]  # the fixture's service: no name given
    rows = await world.store.db.fetch("SELECT claimed_by FROM deliveries ORDER BY id")
    first, second = (row[0] for row in rows)
    assert re.fullmatch(r"replica-2-[0-9a-f]{8}", first), first
    assert re.fullmatch(r"[0-9a-f]{32}", second), second


async def test_the_service_remembers_its_own_last_tick(world: World) -> None:
    assert world.daily.last_tick is None
    await tick_at(world, "2026-01-10T08:00:00")
    assert world.daily.last_tick == at("2026-01-10T08:00:00")
    await tick_at(world, "2026-01-10T08:01:00")
    assert world.daily.last_tick == at("2026-01-10T08:01:00")


async def test_a_replica_with_an_old_copy_of_a_pause_does_not_welcome_back_a_chat_resumed_elsewhere(
    world: World, store_location: str
) -> None:
    ann = person(1)
    await subscribe(world, ann, "08:00 UTC")
    world.notifier.script = [SendResult(Delivery.UNREACHABLE, detail="Forbidden: bot was blocked by the user")]
    await tick_at(world, "2026-01-10T08:00:00")
    async with Store(store_location) as other_store:
        other = DailyService(other_store, world.study, {"telegram": world.notifier})
        assert await other_store.paused_reason(ann.chat.key) == "unreachable"  # its copy, read now
        # Ann comes back through this replica and turns the pushes on again herself
        await world.store.mark_reachable(ann.chat.key)
        assert "Daily question changed" in await subscribe(world, ann, "09:00")
        # her next message reaches the other replica, whose copy still says paused
        await other_store.mark_reachable(ann.chat.key)
        assert await other.welcome_back(ann) is None
    sub = await world.store.subscription(ann.chat.key)
    assert sub is not None and sub.local_time == "09:00" and sub.paused_reason is None


async def test_a_retry_another_replica_is_claiming_at_that_moment_is_skipped_not_waited_for(pg_dsn: str) -> None:
    clock = FakeClock(at("2026-01-10T00:00:00"))
    async with Store(pg_dsn) as store:
        study = StudyService(store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        notifier = FakeNotifier()
        world = World(store, clock, notifier, study, DailyService(store, study, {"telegram": notifier}), Path("-"))
        await subscribe(world, person(1), "08:00 UTC")
        notifier.script = [SendResult(Delivery.FAILED, detail="Timed out")]
        assert await tick_at(world, "2026-01-10T08:00:00") == []  # waits for a retry at 08:02
        other = await asyncpg.connect(pg_dsn)
        try:
            async with other.transaction():
                await other.execute("SELECT id FROM deliveries FOR UPDATE")
                claims = store.open_claims(at("2026-01-10T08:05:00"), "replica-b", 10)
                assert await asyncio.wait_for(claims, timeout=5) == []
        finally:
            await other.close()
        assert len(await store.open_claims(at("2026-01-10T08:05:00"), "replica-b", 10)) == 1
