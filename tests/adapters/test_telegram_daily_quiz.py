"""Daily pushes and group quizzes through the real Telegram adapter and the fake Bot API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.model import Caller, Chat, Identity
from bot.scheduler import MatchRunner
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import Stack, build_stack, bulk_subscribers
from tests.fakes import FakeClock

GROUP = -100777


@pytest.fixture
async def stack(fake: FakeTelegram, sqlite: SqliteStore) -> AsyncIterator[Stack]:
    built = build_stack(fake, sqlite, FakeClock(datetime(2026, 2, 2, 7, 0, tzinfo=UTC)))
    await built.telegram.start(polling=False)
    try:
        yield built
    finally:
        await built.stop()


async def say(
    fake: FakeTelegram, stack: Stack, text: str, user: dict, chat_id: int | None = None, chat_type: str = "private"
) -> None:
    await stack.telegram.process(fake.message_update(chat_id or user["id"], user, text, chat_type=chat_type))


async def test_a_learner_subscribes_and_receives_the_push_when_the_tick_runs(fake: FakeTelegram, stack: Stack) -> None:
    ann = fake.make_user(501, "Ann")
    await say(fake, stack, "/daily 08:00 Europe/London", ann)
    assert "Daily question on: 08:00 (Europe/London)" in (fake.sent_texts(501, rendered=True)[-1])
    report = await stack.daily.tick()
    assert report.sent == 0
    stack.clock.set(datetime(2026, 2, 2, 8, 0, tzinfo=UTC))
    report = await stack.daily.tick()
    assert report.sent == 1
    push = fake.messages(501)[-1]
    assert "Your daily question" in (push.text or "")
    labels = [b["text"] for row in (push.reply_markup or {})["inline_keyboard"] for b in row]
    assert labels == ["Show answer", "Multiple choice", "Skip"]
    assert (await stack.daily.tick()).sent == 0  # once a day


async def test_a_blocked_learner_pauses_and_is_told_on_return(fake: FakeTelegram, stack: Stack) -> None:
    ann = fake.make_user(502, "Ann")
    await say(fake, stack, "/daily 08:00 UTC", ann)
    fake.block_chat(502)
    stack.clock.set(datetime(2026, 2, 2, 8, 0, tzinfo=UTC))
    assert (await stack.daily.tick()).unreachable == 1
    stack.clock.set(datetime(2026, 2, 3, 8, 0, tzinfo=UTC))
    before = len(fake.calls_to("sendMessage"))
    assert (await stack.daily.tick()).claimed == 0
    assert len(fake.calls_to("sendMessage")) == before
    fake.unblock_chat(502)
    await say(fake, stack, "/stats", ann)
    assert any("Welcome back" in t for t in fake.sent_texts(502, rendered=True))
    stack.clock.set(datetime(2026, 2, 4, 8, 0, tzinfo=UTC))
    assert (await stack.daily.tick()).sent == 1


async def test_only_a_group_admin_can_subscribe_the_group(fake: FakeTelegram, stack: Stack) -> None:
    mo = fake.make_user(601, "Mo")
    ada = fake.make_user(602, "Ada")
    fake.set_member_status(GROUP, 602, "administrator")
    await say(fake, stack, "/daily 09:00 UTC", mo, GROUP, "supergroup")
    assert "Only an admin" in fake.sent_texts(GROUP, rendered=True)[-1]
    await say(fake, stack, "/daily 09:00 UTC", ada, GROUP, "supergroup")
    assert "Daily question on" in fake.sent_texts(GROUP, rendered=True)[-1]
    stack.clock.set(datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
    assert (await stack.daily.tick()).sent == 1
    (poll,) = fake.polls.values()
    assert poll.type == "quiz" and not poll.is_anonymous and poll.question.startswith("☀️ Daily question:")
    correct = poll.correct_option_ids[0]
    await stack.telegram.process(fake.poll_answer_update(poll.id, mo, [correct]))
    board = await stack.commands.run(
        Caller(Identity("telegram", "601"), "Mo", Chat("telegram", str(GROUP), is_group=True)), "leaderboard", ""
    )
    assert "Mo — 100 pts" in board.plain_text()


async def test_three_players_answer_quiz_polls_and_the_final_message_ranks_them(
    fake: FakeTelegram, stack: Stack
) -> None:
    players = [fake.make_user(700 + n, name) for n, name in enumerate(("Ann", "Bob", "Cy"))]
    answered: set[int] = set()

    async def play_and_wait(seconds: float) -> None:
        """The runner's sleep: when a new poll is out, the players vote (Ann fast and right, Bob slower and
        right, Cy wrong), then the clock moves on."""
        for poll in fake.polls.values():
            if poll.message_id in answered or poll.question.startswith("☀️"):
                continue
            answered.add(poll.message_id)
            right = poll.correct_option_ids[0]
            stack.clock.advance(seconds=1)
            await stack.telegram.process(fake.poll_answer_update(poll.id, players[0], [right]))
            stack.clock.advance(seconds=5)
            await stack.telegram.process(fake.poll_answer_update(poll.id, players[1], [right]))
            await stack.telegram.process(
                fake.poll_answer_update(poll.id, players[2], [(right + 1) % len(poll.options)])
            )
        stack.clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    runner = MatchRunner(stack.competition, stack.notifiers, stack.clock, sleep=play_and_wait, lead_in=1, pause=1)
    await say(fake, stack, "/quiz 3 basics 10", players[0], GROUP, "supergroup")
    match = await stack.store.running_match(f"telegram:{GROUP}")
    assert match is not None
    await asyncio.wait_for(runner.tasks[match.id], timeout=20)
    polls = list(fake.polls.values())
    assert len(polls) == 3 and all(p.is_closed for p in polls)  # each round's poll stopped at its end
    assert all(p.open_period == 10 and p.type == "quiz" and not p.is_anonymous for p in polls)
    final = fake.sent_texts(GROUP, rendered=True)[-1]
    assert "Final results" in final
    ranking = [line for line in final.splitlines() if line.startswith("• ")]
    assert [line.split()[2] for line in ranking] == ["Ann", "Bob", "Cy"]
    assert "Ann — 435 pts" in final and "Bob — 360 pts" in final  # 3 x (100 + 50 x 0.9), 3 x (100 + 50 x 0.4)
    assert "Cy — 0 pts" in final


@pytest.mark.slow
async def test_ten_thousand_subscribers_due_in_one_minute_are_each_delivered_exactly_once(
    tmp_path: Path,
) -> None:
    async with FakeTelegram(rate_limit_per_s=1000) as fake, SqliteStore(tmp_path / "many.db") as store:
        stack = build_stack(fake, store, FakeClock(datetime(2026, 2, 2, 5, 0, tzinfo=UTC)), max_rate=900)
        await stack.telegram.start(polling=False)
        try:
            for n in range(20):  # a few through the command, the rest written in bulk (setup, not the test)
                who = Caller(Identity("telegram", str(10_000 + n)), f"L{n}", Chat("telegram", str(10_000 + n)))
                await stack.daily.command(who, "06:00 UTC")
            await bulk_subscribers(store, range(10_020, 20_000), datetime(2026, 2, 2, 6, 0, tzinfo=UTC))
            stack.clock.set(datetime(2026, 2, 2, 6, 0, tzinfo=UTC))
            started = time.perf_counter()
            report = await stack.daily.tick()
            elapsed = time.perf_counter() - started
        finally:
            await stack.stop()
        sends = [c for c in fake.calls_to("sendMessage") if c.ok]
        per_chat: dict[object, int] = {}
        for call in sends:
            per_chat[call.chat_id] = per_chat.get(call.chat_id, 0) + 1
        assert report.sent == 10_000
        assert len(per_chat) == 10_000 and set(per_chat.values()) == {1}
        assert fake.rate_limited == 0  # the bot paced itself under the server's limit
        assert elapsed >= 10_000 / 1000 * 0.9  # it could not have gone faster than the limit allows
