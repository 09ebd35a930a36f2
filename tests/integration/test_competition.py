"""CompetitionService and MatchRunner on SQLite with a fake clock: scoring, rules, restarts, load."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.competition import CompetitionService, speed_points, week_start
from bot.core.model import Caller, Chat, Identity, MatchStatus
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.scheduler import MatchRunner
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier

GROUP = "-100"


def player(n: int, admin: bool = False) -> Caller:
    return Caller(Identity("telegram", str(n)), f"P{n}", Chat("telegram", GROUP, is_group=True), is_chat_admin=admin)


@dataclass
class Arena:
    store: Store
    clock: FakeClock
    comp: CompetitionService


@pytest.fixture
async def arena(store_location: str) -> AsyncIterator[Arena]:
    clock = FakeClock(datetime(2026, 5, 6, 12, 0, tzinfo=UTC))
    async with Store(store_location) as store:
        study = StudyService(store, small_bank(), clock)
        yield Arena(store, clock, CompetitionService(store, study.bank, clock, study, rng=random.Random(5)))


async def start(arena: Arena, args: str = "3 20", who: Caller | None = None) -> int:
    reply = await arena.comp.start(who or player(1), args)
    assert "Quiz" in reply.plain_text(), reply.plain_text()
    match = await arena.store.running_match(f"telegram:{GROUP}")
    assert match is not None
    return match.id


async def answer(arena: Arena, who: Caller, round_id: int, correct: bool) -> Reply:
    round_ = await arena.store.get_round(round_id)
    assert round_ is not None
    option = round_.correct_index if correct else (round_.correct_index + 1) % len(round_.options)
    return await arena.comp.answer(who, round_id, option)


def test_speed_bonus_falls_linearly_over_the_round() -> None:
    round_length = timedelta(seconds=20)
    assert speed_points(timedelta(0), round_length) == 150
    assert speed_points(timedelta(seconds=10), round_length) == 125
    assert speed_points(timedelta(seconds=20), round_length) == 100
    assert speed_points(timedelta(seconds=30), round_length) == 100


async def test_scoring_correct_fast_correct_slow_and_wrong(arena: Arena) -> None:
    match_id = await start(arena)
    opened = await arena.comp.open_round(match_id)
    assert opened is not None and opened.reply.poll is not None and opened.reply.poll.open_seconds == 20
    await answer(arena, player(1), opened.round.id, correct=True)
    arena.clock.advance(seconds=10)
    await answer(arena, player(2), opened.round.id, correct=True)
    await answer(arena, player(3), opened.round.id, correct=False)
    arena.clock.advance(seconds=10)
    closed = await arena.comp.close_round(opened.round.id)
    assert closed is not None and not closed.match_over
    standings = await arena.store.standings(match_id)
    assert [(s.name, s.points) for s in standings] == [("P1", 150), ("P2", 125), ("P3", 0)]
    assert "2 of 3 answered correctly" in closed.reply.plain_text()


async def test_only_the_first_answer_counts(arena: Arena) -> None:
    match_id = await start(arena)
    opened = await arena.comp.open_round(match_id)
    assert opened is not None
    first = await answer(arena, player(1), opened.round.id, correct=False)
    second = await answer(arena, player(1), opened.round.id, correct=True)
    assert first.notice and first.notice.startswith("Locked in")
    assert second.notice and "only your first answer counts" in second.notice
    answers = await arena.store.round_answers(opened.round.id)
    assert len(answers) == 1 and not answers[0].correct


async def test_late_answers_are_ignored(arena: Arena) -> None:
    match_id = await start(arena)
    opened = await arena.comp.open_round(match_id)
    assert opened is not None
    arena.clock.advance(seconds=21)
    reply = await answer(arena, player(1), opened.round.id, correct=True)
    assert reply.notice == "Too late: this round is closed."
    await arena.comp.close_round(opened.round.id)
    arena.clock.set(opened.round.opened_at)  # even back inside the window, a closed round takes nothing
    assert (await answer(arena, player(2), opened.round.id, correct=True)).notice == "Too late: this round is closed."
    assert await arena.store.round_answers(opened.round.id) == []


async def test_ties_are_broken_by_total_answer_time(arena: Arena) -> None:
    match_id = await start(arena, "2 20")
    first = await arena.comp.open_round(match_id)
    assert first is not None
    arena.clock.advance(seconds=4)
    await answer(arena, player(1), first.round.id, correct=True)  # 140
    arena.clock.advance(seconds=4)
    await answer(arena, player(2), first.round.id, correct=True)  # 130
    arena.clock.advance(seconds=12)
    await arena.comp.close_round(first.round.id)
    second = await arena.comp.open_round(match_id)
    assert second is not None
    arena.clock.advance(seconds=4)
    await answer(arena, player(2), second.round.id, correct=True)  # 140 -> 270
    arena.clock.advance(seconds=4)
    await answer(arena, player(1), second.round.id, correct=True)  # 130 -> 270
    arena.clock.advance(seconds=13)
    closed = await arena.comp.close_round(second.round.id)
    assert closed is not None and closed.match_over and closed.final is not None
    standings = await arena.store.standings(match_id)
    assert [s.points for s in standings] == [270, 270]
    assert standings[0].time_ms == standings[1].time_ms  # identical totals: 4 s + 8 s each
    # now make P2 a little faster overall
    await arena.store.db.execute(
        "UPDATE round_answers SET elapsed_ms = elapsed_ms - 500 WHERE learner_id = "
        "(SELECT learner_id FROM identities WHERE external_id = '2')"
    )
    assert [s.name for s in await arena.store.standings(match_id)] == ["P2", "P1"]


async def test_only_the_starter_or_an_admin_can_stop_a_match(arena: Arena) -> None:
    await start(arena, who=player(1))
    refused = await arena.comp.stop(player(2), "")
    assert "Only the person who started this quiz or a chat admin" in refused.plain_text()
    assert await arena.store.running_match(f"telegram:{GROUP}") is not None
    stopped = await arena.comp.stop(player(3, admin=True), "")
    assert "Stopped by P3" in stopped.plain_text()
    assert await arena.store.running_match(f"telegram:{GROUP}") is None


async def test_the_starter_can_stop_and_a_second_quiz_shows_the_running_one(arena: Arena) -> None:
    await start(arena, who=player(1))
    again = await arena.comp.start(player(2), "5")
    assert "already running" in again.plain_text()
    assert "Final results" in (await arena.comp.stop(player(1), "")).plain_text()


@pytest.mark.parametrize("args", ["0", "31", "5 9", "5 121", "1 2 3", "5 astrology"])
async def test_bad_quiz_arguments_get_the_usage_line_and_start_nothing(arena: Arena, args: str) -> None:
    reply = await arena.comp.start(player(1), args)
    assert "Usage: /quiz" in reply.plain_text()
    assert await arena.store.running_match(f"telegram:{GROUP}") is None


async def test_three_idle_rounds_end_the_match(arena: Arena) -> None:
    match_id = await start(arena, "10 10")
    results = []
    for _ in range(3):
        opened = await arena.comp.open_round(match_id)
        assert opened is not None
        arena.clock.advance(seconds=11)
        results.append(await arena.comp.close_round(opened.round.id))
    assert [r.match_over for r in results if r] == [False, False, True]
    last = results[-1]
    assert last is not None and last.final is not None and "Nobody answered for 3 rounds" in last.final.plain_text()
    match = await arena.store.get_match(match_id)
    assert match is not None and match.status is MatchStatus.FINISHED


async def test_the_runner_plays_a_match_and_a_restarted_runner_resumes_it(arena: Arena) -> None:
    notifier = FakeNotifier()
    parked = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        arena.clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    async def sleep_until_killed_in_round_2(seconds: float) -> None:
        if any(t.startswith("[2/3]") for t in notifier.texts()):  # round 2 is out: the process dies while it runs
            parked.set()
            await asyncio.Event().wait()
        await fake_sleep(seconds)

    runner = MatchRunner(
        arena.comp, {"telegram": notifier}, arena.clock, sleep=sleep_until_killed_in_round_2, lead_in=1, pause=1
    )
    match_id = await start(arena, "3 10")
    task = runner.tasks[match_id]
    await asyncio.wait_for(parked.wait(), timeout=10)
    task.cancel()  # the process dies during round 2
    with pytest.raises(asyncio.CancelledError):
        await task
    latest = await arena.store.latest_round(match_id)
    assert latest is not None and latest.number == 2 and not latest.closed and latest.message_id

    second_life = MatchRunner(arena.comp, {"telegram": notifier}, arena.clock, sleep=fake_sleep, lead_in=1, pause=1)
    assert await second_life.resume() == 1
    await asyncio.wait_for(second_life.tasks[match_id], timeout=5)
    match = await arena.store.get_match(match_id)
    assert match is not None and match.status is not MatchStatus.RUNNING
    texts = notifier.texts()
    assert sum("Round 2/3" in t for t in texts) == 1 and sum("Round 3/3" in t for t in texts) == 1
    assert any("Final results" in t for t in texts)
    assert len(notifier.finished) == 3  # every round's poll was stopped


async def test_a_match_whose_platform_is_gone_after_a_restart_ends_cleanly(arena: Arena) -> None:
    match_id = await start(arena)
    runner = MatchRunner(arena.comp, {}, arena.clock, lead_in=0, pause=0)
    await runner.resume()
    await asyncio.wait_for(runner.tasks[match_id], timeout=5)
    match = await arena.store.get_match(match_id)
    assert match is not None and match.status is MatchStatus.FINISHED


async def test_two_hundred_players_answering_in_the_same_second_are_scored_exactly_once(arena: Arena) -> None:
    match_id = await start(arena, "1 30")
    opened = await arena.comp.open_round(match_id)
    assert opened is not None
    players = [player(1000 + n) for n in range(200)]
    # every player answers twice (a double tap), all at once
    replies = await asyncio.gather(
        *(answer(arena, p, opened.round.id, correct=n % 2 == 0) for n, p in enumerate(players * 2))
    )
    locked = [r for r in replies if r.notice and r.notice.startswith("Locked in")]
    assert len(locked) == 200
    answers = await arena.store.round_answers(opened.round.id)
    assert len(answers) == 200 and len({a.learner_id for a in answers}) == 200
    closed = await arena.comp.close_round(opened.round.id)
    assert closed is not None and closed.final is not None
    standings = await arena.store.standings(match_id)
    assert sum(1 for s in standings if s.points == 150) == 100


async def test_leaderboard_week_and_all_time(arena: Arena) -> None:
    match_id = await start(arena, "1 20")
    opened = await arena.comp.open_round(match_id)
    assert opened is not None
    await answer(arena, player(1), opened.round.id, correct=True)
    await answer(arena, player(2), opened.round.id, correct=False)
    arena.clock.advance(seconds=20)
    await arena.comp.close_round(opened.round.id)
    week = (await arena.comp.leaderboard(player(1), "")).plain_text()
    assert "this week" in week and "P1 — 150 pts · 1 match · 1 win · 100% accuracy" in week
    assert "P2 — 0 pts · 1 match · 0 wins · 0% accuracy" in week
    arena.clock.advance(days=7)
    assert "No scores yet" in (await arena.comp.leaderboard(player(1), "week")).plain_text()
    assert "P1 — 150 pts" in (await arena.comp.leaderboard(player(1), "all")).plain_text()
    assert "Usage: /leaderboard" in (await arena.comp.leaderboard(player(1), "month")).plain_text()


def test_weeks_are_iso_weeks_in_utc() -> None:
    assert week_start(datetime(2026, 5, 10, 23, 59, tzinfo=UTC)) == datetime(2026, 5, 4, tzinfo=UTC)  # Sunday
    assert week_start(datetime(2026, 5, 11, 0, 0, tzinfo=UTC)) == datetime(2026, 5, 11, tzinfo=UTC)  # Monday


async def test_a_solo_round_that_times_out_counts_as_wrong_and_each_result_says_what_you_chose(arena: Arena) -> None:
    me = Caller(Identity("console", "me"), "Me", Chat("console", "local", typed_keys=True))
    reply = await arena.comp.start(me, "4 20")
    assert "Solo quiz: 4 questions" in reply.plain_text()
    match = await arena.store.running_match("console:local")
    assert match is not None
    lines = []
    for n, choice in enumerate(("right", "wrong", None, "right")):
        opened = await arena.comp.open_round(match.id)
        assert opened is not None and opened.round.number == n + 1
        letter = "ABCD"[opened.round.correct_index]
        if choice is None:
            arena.clock.advance(seconds=21)  # time is up with no answer
        else:
            await answer_solo(arena, me, opened.round.id, choice == "right")
        closed = await arena.comp.close_round(opened.round.id)
        assert closed is not None
        lines.append((closed.reply.plain_text().split("\n\n")[2], letter))
        assert "answered correctly" not in closed.reply.plain_text()
    (first, a), (second, b), (third, c), (fourth, d) = lines
    assert first == f"✅ you: {a} · correct: {a}"
    assert second.startswith("❌ you: ") and second.endswith(f" · correct: {b}") and f"you: {b}" not in second
    assert third == f"⌛ Time's up · no answer · correct: {c}"
    assert fourth == f"✅ you: {d} · correct: {d}"
    final = closed.final
    assert final is not None and "Me — " in final.plain_text() and "2/4 correct" in final.plain_text()
    board = (await arena.comp.leaderboard(me, "all")).plain_text()
    assert "50% accuracy" in board


async def answer_solo(arena: Arena, who: Caller, round_id: int, correct: bool) -> None:
    reply = await answer(arena, who, round_id, correct)
    assert reply.notice is not None and reply.notice.startswith("Locked in")
