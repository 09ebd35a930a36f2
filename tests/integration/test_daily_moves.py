"""Changing the time of a daily question: at most one push per local day, whichever way it moves.

A learner who got today's push and then moves /daily later must not get a second push that day; one
who moves it earlier gets the next push tomorrow at the new time; the same across DST changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import fsrs
import pytest

from bot.core.daily import DailyService
from bot.core.study import StudyService
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier
from tests.integration.test_daily import World, at, person, subscribe, tick_at

ANN = person(1)


@pytest.fixture
async def world(store_location: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock(at("2026-01-10T00:00:00"))
    async with Store(store_location) as store:
        study = StudyService(store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        notifier = FakeNotifier()
        daily = DailyService(store, study, {"telegram": notifier})
        yield World(store, clock, notifier, study, daily, tmp_path / "bot.db")


async def move_at(world: World, moment: str, args: str) -> str:
    world.clock.set(at(moment))
    reply = await subscribe(world, ANN, args)
    assert "Daily question changed" in reply, reply
    return reply


async def pushes_between(world: World, start: str, end: str, every: timedelta = timedelta(minutes=30)) -> list[str]:
    """Tick from `start` to `end` (inclusive) every `every`; the UTC instants at which a push went out."""
    moment, last, pushed = at(start), at(end), []
    while moment <= last:
        if await tick_at(world, moment.isoformat()[:19]):
            pushed.append(moment.isoformat()[:16])
        moment += every
    return pushed


async def test_moving_the_daily_later_on_a_day_already_pushed_does_not_push_again_that_day(world: World) -> None:
    await subscribe(world, ANN, "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == ["1"]
    await move_at(world, "2026-01-10T09:00:00", "20:00")
    assert await pushes_between(world, "2026-01-10T09:00:00", "2026-01-11T19:30:00") == []
    assert await tick_at(world, "2026-01-11T20:00:00") == ["1"]  # the next day, at the new time
    assert len(world.notifier.sent) == 2


async def test_moving_the_daily_later_twice_on_a_pushed_day_still_pushes_once(world: World) -> None:
    await subscribe(world, ANN, "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == ["1"]
    await move_at(world, "2026-01-10T08:30:00", "12:00")
    assert await tick_at(world, "2026-01-10T12:00:00") == []
    await move_at(world, "2026-01-10T12:30:00", "18:00")
    assert await tick_at(world, "2026-01-10T18:00:00") == []
    assert len(world.notifier.sent) == 1


async def test_moving_the_daily_earlier_on_a_day_already_pushed_pushes_tomorrow_at_the_new_time(world: World) -> None:
    await subscribe(world, ANN, "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == ["1"]
    await move_at(world, "2026-01-10T09:00:00", "07:00")
    assert await pushes_between(world, "2026-01-10T09:00:00", "2026-01-11T06:30:00") == []
    assert await tick_at(world, "2026-01-11T07:00:00") == ["1"]
    assert await tick_at(world, "2026-01-11T08:00:00") == []  # not at the old time as well


async def test_moving_the_daily_earlier_before_todays_push_pushes_at_the_new_time_only(world: World) -> None:
    await subscribe(world, ANN, "08:00 UTC")
    await move_at(world, "2026-01-10T06:00:00", "07:00")
    assert await pushes_between(world, "2026-01-10T06:00:00", "2026-01-10T23:30:00") == ["2026-01-10T07:00"]


async def test_moving_the_daily_later_on_a_pushed_day_when_clocks_spring_forward_pushes_once(world: World) -> None:
    world.clock.set(at("2026-03-28T12:00:00"))
    await subscribe(world, ANN, "08:00 Europe/Berlin")
    assert await tick_at(world, "2026-03-29T06:00:00") == ["1"]  # 08:00 CEST, the first day of summer time
    await move_at(world, "2026-03-29T07:00:00", "21:00")
    assert await pushes_between(world, "2026-03-29T07:00:00", "2026-03-30T18:30:00") == []
    assert await tick_at(world, "2026-03-30T19:00:00") == ["1"]  # 21:00 CEST the next day


async def test_moving_the_daily_into_the_repeated_hour_when_clocks_fall_back_pushes_once(world: World) -> None:
    world.clock.set(at("2026-10-31T12:00:00"))
    await subscribe(world, ANN, "01:30 America/New_York")
    assert await tick_at(world, "2026-11-01T05:30:00") == ["1"]  # 01:30 EDT, the first of two 01:30s
    await move_at(world, "2026-11-01T05:40:00", "01:50")  # 01:40 EDT: 01:50 is still ahead today
    assert await pushes_between(world, "2026-11-01T05:40:00", "2026-11-02T06:40:00", timedelta(minutes=10)) == []
    assert await tick_at(world, "2026-11-02T06:50:00") == ["1"]  # 01:50 EST the next day


async def test_moving_the_daily_late_on_the_day_clocks_fall_back_pushes_the_next_local_day(world: World) -> None:
    world.clock.set(at("2026-10-31T12:00:00"))
    await subscribe(world, ANN, "00:30 America/New_York")
    assert await tick_at(world, "2026-11-01T04:30:00") == ["1"]  # 00:30 EDT
    await move_at(world, "2026-11-01T05:00:00", "23:30")  # 23:30 EST is 04:30 UTC on the 2nd, still the 1st locally
    assert await pushes_between(world, "2026-11-01T05:00:00", "2026-11-03T04:00:00") == []
    assert await tick_at(world, "2026-11-03T04:30:00") == ["1"]  # 23:30 EST on the 2nd


async def test_moving_the_daily_later_on_a_day_already_pushed_says_the_next_one_comes_tomorrow(world: World) -> None:
    await subscribe(world, ANN, "08:00 UTC")
    assert await tick_at(world, "2026-01-10T08:00:00") == ["1"]  # Saturday's push
    reply = await move_at(world, "2026-01-10T09:00:00", "20:00")
    assert "Next one: Sun 11 Jan at 20:00, in 1 d" in reply, reply
    assert "Next one: Sun 11 Jan at 20:00" in await subscribe(world, ANN, "")


async def test_moving_the_daily_later_before_todays_push_says_the_next_one_comes_today(world: World) -> None:
    await subscribe(world, ANN, "08:00 UTC")
    reply = await move_at(world, "2026-01-10T06:00:00", "20:00")
    assert "Next one: Sat 10 Jan at 20:00, in 14 h" in reply, reply
    assert await pushes_between(world, "2026-01-10T06:00:00", "2026-01-10T23:30:00") == ["2026-01-10T20:00"]
