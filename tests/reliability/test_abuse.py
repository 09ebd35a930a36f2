"""Abuse: floods are slowed down, replays and forgeries change nothing, admin actions need an admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.commands import SLOW_DOWN, Commands
from bot.core.model import Caller, Chat, Identity
from bot.core.throttle import Throttle
from bot.storage.sqlite import SqliteStore
from tests.conftest import caller
from tests.fakes import FakeClock
from tests.reliability.test_fuzz import full_commands


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "abuse.db") as opened:
        yield opened


@pytest.fixture
def abuse(clock: FakeClock, store: SqliteStore) -> Commands:
    commands = full_commands(store, clock)
    commands.throttle = Throttle(clock, limit=20)
    return commands


async def count(store: SqliteStore, sql: str) -> int:
    rows = await store.db.fetch(sql)
    return int(rows[0][0])


async def test_a_flood_gets_one_slow_down_then_silence_then_service_again(abuse: Commands, clock: FakeClock) -> None:
    who = caller("1")
    replies = [await abuse.run(who, "topics") for _ in range(25)]
    assert all(r.blocks and SLOW_DOWN not in r.plain_text() for r in replies[:20])
    assert SLOW_DOWN in replies[20].plain_text()
    assert all(r.is_notice_only for r in replies[21:])  # told once; no chat spam
    assert (await abuse.press(who, "sa:1")).notice == SLOW_DOWN  # buttons are throttled too
    other = await abuse.run(caller("2"), "topics")  # the budget is per learner
    assert other.blocks and SLOW_DOWN not in other.plain_text()
    clock.advance(seconds=11)
    assert SLOW_DOWN not in (await abuse.run(who, "topics")).plain_text()


async def test_a_replayed_rating_counts_once(abuse: Commands, store: SqliteStore) -> None:
    who = caller("1")
    question = await abuse.run(who, "question")
    revealed = await abuse.press(who, question.buttons[0][0].action)
    good = revealed.buttons[1][0].action
    results = [await abuse.press(who, good) for _ in range(5)]
    assert sum(1 for r in results if not r.is_notice_only) == 1
    assert await count(store, "SELECT COUNT(*) FROM reviews") == 1


async def test_forged_callbacks_for_other_learners_and_verbs_change_nothing(
    abuse: Commands, store: SqliteStore
) -> None:
    victim = caller("1")
    attacker = caller("2")
    question = await abuse.run(victim, "question")
    await abuse.run(attacker, "start")
    attempt = question.buttons[0][0].action.split(":")[1]
    for data in (
        f"sa:{attempt}",
        f"mc:{attempt}",
        f"sk:{attempt}",
        f"rt:{attempt}:4",
        f"op:{attempt}:0",
        f"fa:{attempt}",
        "fg:1:1",
        f"qo:{attempt}:0",
        "fg:999:1",
    ):
        reply = await abuse.press(attacker, data)
        assert reply.is_notice_only, data
    assert await count(store, "SELECT COUNT(*) FROM reviews") == 0
    assert await store.find_learner(victim.identity) is not None
    assert await count(store, "SELECT COUNT(*) FROM attempts WHERE learner_id = 1 AND status = 'open'") == 1


async def test_admin_only_actions_by_non_admins_are_refused(abuse: Commands, store: SqliteStore) -> None:
    member = Caller(Identity("telegram", "7"), "Mo", Chat("telegram", "-1", is_group=True))
    admin = Caller(Identity("telegram", "8"), "Ada", Chat("telegram", "-1", is_group=True), is_chat_admin=True)
    assert "Only an admin" in (await abuse.run(member, "daily", "08:00 UTC")).plain_text()
    await abuse.run(admin, "quiz", "3")
    assert "Only the person who started" in (await abuse.run(member, "stopquiz")).plain_text()
    assert "Final results" in (await abuse.run(admin, "stopquiz")).plain_text()


ON_TELEGRAM = Caller(Identity("telegram", "1"), "Ann", Chat("telegram", "1"))


@pytest.mark.parametrize(
    ("name", "args", "says"),
    [
        ("question", "x" * 5000, ("too long for /question", "Usage: /question [topic|weak]")),
        ("daily", "99:99 " + "Z" * 150, ("“99:99” is not a time", "Usage: /daily HH:MM")),
        ("daily", "08:00 Mars/Olympus", ("I don't know the time zone “Mars/Olympus”", "Usage: /daily HH:MM")),
        ("quiz", "1 2 3 4 5", ("Usage: /quiz [questions] [topic|weak] [seconds]", "Questions 1-30")),
        ("newcards", "1e9", ("Usage: /newcards N", "from 0 to 50")),
        ("leaderboard", "\x00\x01", ("Usage: /leaderboard [week|all]",)),
        ("quiz", "-5", ("I don't know the topic “-5”", "Questions 1-30")),
    ],
)
async def test_long_and_malformed_arguments_get_a_clear_message_and_change_nothing(
    abuse: Commands, store: SqliteStore, name: str, args: str, says: tuple[str, ...]
) -> None:
    reply = await abuse.run(ON_TELEGRAM, name, args)
    text = reply.plain_text()
    for phrase in says:
        assert phrase in text, (phrase, text)
    assert len(text) < 1500
    for table in ("attempts", "subscriptions", "matches"):
        assert await count(store, f"SELECT COUNT(*) FROM {table}") == 0, table
    learner = await store.find_learner(ON_TELEGRAM.identity)
    assert learner is None or learner.new_per_day == 10


async def test_arguments_split_over_lines_are_understood(abuse: Commands, store: SqliteStore) -> None:
    reply = await abuse.run(ON_TELEGRAM, "daily", "08:00\nEurope/Berlin\n\n")
    assert "Daily question on: 08:00 (Europe/Berlin)" in reply.plain_text()
    subscription = await store.subscription("telegram:1")
    assert subscription is not None and subscription.timezone == "Europe/Berlin"
