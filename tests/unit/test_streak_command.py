"""Forgiving streaks in /stats (a freeze shown as such) and /streak off|on, over a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fsrs

from bot.core.commands import Commands
from bot.core.study import StudyService
from bot.core.views import Reply
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock, MemoryStore

ME = caller()
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock(MONDAY)
        self.store = MemoryStore()
        self.study = StudyService(self.store, small_bank(), self.clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        self.commands = Commands(self.study)

    async def run(self, name: str, args: str = "") -> str:
        self.clock.advance(seconds=30)
        return (await self.commands.run(ME, name, args)).plain_text()

    async def answer_one(self) -> None:
        self.clock.advance(seconds=30)
        question = await self.commands.run(ME, "question", "")
        self.clock.advance(seconds=30)
        revealed = await self.commands.press(ME, press(question, "Show answer"))
        self.clock.advance(seconds=30)
        await self.commands.press(ME, press(revealed, "Good"))

    async def on_day(self, day: int) -> None:
        self.clock.set(MONDAY + timedelta(days=day))


def press(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


async def test_stats_show_a_freeze_and_a_second_missed_day_in_the_week_ends_the_streak() -> None:
    world = World()
    for day in (0, 1, 3):  # Mon, Tue, (Wed missed), Thu
        await world.on_day(day)
        await world.answer_one()
    stats = await world.run("stats")
    assert "🔥 3-day streak (best 3); kept by 1 freeze (Wed 04 Mar): one missed day a week is forgiven" in stats
    await world.on_day(5)  # Fri missed as well: the week's freeze is used, so the streak ends
    assert "🔥 0-day streak (best 3)" in await world.run("stats")


async def test_streak_off_hides_it_everywhere_and_on_brings_it_back_from_history() -> None:
    world = World()
    for day in (0, 1):
        await world.on_day(day)
        await world.answer_one()
    assert (await world.run("streak", "sometimes")).startswith("Usage: /streak on or /streak off")
    assert await world.run("streak") == "Streaks are shown. /streak on or /streak off changes that."
    assert (await world.run("streak", "off")).startswith("Streaks are hidden: /stats and daily questions won't")
    hidden = await world.run("stats")
    assert "streak" not in hidden and "🔥" not in hidden and "Reviews today" in hidden
    await world.on_day(2)
    await world.answer_one()  # practice still counts while hidden
    assert await world.run("streak", "on") == "Streaks are back. You're on a 3-day streak."
    assert "🔥 3-day streak (best 3)" in await world.run("stats")


async def test_streak_alone_says_hidden_after_off_and_off_says_practice_still_counts() -> None:
    world = World()
    assert await world.run("streak", "off") == (
        "Streaks are hidden: /stats and daily questions won't mention them. Your practice counts all the same; "
        "/streak on brings them back, worked out from your history."
    )
    assert await world.run("streak") == "Streaks are hidden. /streak on or /streak off changes that."


async def test_streak_on_without_any_practice_says_no_streak_is_running() -> None:
    world = World()
    await world.run("streak", "off")
    assert await world.run("streak", "on") == "Streaks are back. No streak running right now."
