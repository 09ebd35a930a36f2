"""Quiz matches as the players see them, and the rules behind the screens.

The screens are rendered with the Discord renderer (Markdown: **bold**), so a word lost, a style
dropped or a number miscounted shows up here. On SQLite with a fake clock, as test_competition.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.adapters.discord import render, render_block
from bot.core.bank import QuestionBank
from bot.core.competition import CompetitionService, speed_points, week_start
from bot.core.model import Caller, Chat, Identity, Match, Subscription, Topic
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.storage.sqlite import SqliteStore
from tests.conftest import make_card, small_bank
from tests.fakes import FakeClock

GROUP = "-100"
KEY = f"telegram:{GROUP}"
USAGE = (
    "Usage: /quiz [questions] [topic\\|weak] [seconds] — for example /quiz, /quiz 5, /quiz 10 transformers 30, "
    "/quiz 5 weak. Questions 1-30 (default 10), seconds per question 10-120 (default 20)."
)


def player(n: int, admin: bool = False) -> Caller:
    return Caller(Identity("telegram", str(n)), f"P{n}", Chat("telegram", GROUP, is_group=True), is_chat_admin=admin)


def seen(reply: Reply | None) -> str:
    assert reply is not None
    return "\n\n".join(render_block(block) for block in reply.blocks)


@dataclass
class Arena:
    store: SqliteStore
    clock: FakeClock
    study: StudyService
    comp: CompetitionService

    def reopened(self, bank: QuestionBank) -> CompetitionService:
        """The service after a restart with a different bank (a card removed in a content update)."""
        return CompetitionService(self.store, bank, self.clock, self.study, rng=random.Random(5))

    async def match(self) -> Match:
        match = await self.store.running_match(KEY)
        assert match is not None
        return match

    async def answer(self, who: Caller, round_id: int, correct: bool) -> Reply:
        round_ = await self.store.get_round(round_id)
        assert round_ is not None
        option = round_.correct_index if correct else (round_.correct_index + 1) % len(round_.options)
        return await self.comp.answer(who, round_id, option)


@pytest.fixture
async def arena(tmp_path: Path) -> AsyncIterator[Arena]:
    clock = FakeClock(datetime(2026, 5, 6, 12, 0, tzinfo=UTC))
    async with SqliteStore(tmp_path / "bot.db") as store:
        study = StudyService(store, small_bank(), clock)
        yield Arena(store, clock, study, CompetitionService(store, study.bank, clock, study, rng=random.Random(5)))


def without(bank: QuestionBank, card_id: str) -> QuestionBank:
    return QuestionBank([card for card in bank.cards if card.id != card_id], bank.topics)


async def test_a_whole_match_as_the_group_sees_it(arena: Arena) -> None:
    started = await arena.comp.start(player(1), "2 20 optim")
    assert seen(started) == (
        "**🏁 Quiz: 2 questions · 20 s each · Optimisation**\n\n"
        "Started by P1. A correct answer scores 100 points plus up to 50 for speed; only your first answer counts. "
        "First question in a moment!"
    )
    match = await arena.match()
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    assert seen(opened.reply) == (
        "**[1/2] Pick the right one for optim-4**\n\n"
        "• **A)** Wrong one\n• **B)** Right\n• **C)** Wrong three\n• **D)** Wrong two"
    )
    assert [[b.label for b in row] for row in opened.reply.buttons] == [["A", "B", "C", "D"]]
    poll = opened.reply.poll
    assert poll is not None
    assert (poll.question, poll.options[poll.correct_index], poll.open_seconds) == (
        "[1/2] Pick the right one for optim-4",
        "Right",
        20,
    )
    assert poll.explanation == "Because it is right."
    for n in range(1, 8):  # one second apart; every third player is wrong
        arena.clock.advance(seconds=1)
        reply = await arena.answer(player(n), opened.round.id, correct=n % 3 != 0)
        assert reply.notice == ("Locked in: B" if n % 3 else "Locked in: C")
    assert seen(await arena.comp.start(player(2), "")) == (
        "**A quiz is already running here: round 1 of 2**\n\n"
        "• 🥇 **P1** — 148 pts, 1/1 correct, 1.0 s\n"
        "• 🥈 **P2** — 145 pts, 1/1 correct, 2.0 s\n"
        "• 🥉 **P4** — 140 pts, 1/1 correct, 4.0 s\n"
        "• 4. **P5** — 138 pts, 1/1 correct, 5.0 s\n"
        "• 5. **P7** — 132 pts, 1/1 correct, 7.0 s\n"
        "• 6. **P3** — 0 pts, 0/1 correct, 3.0 s\n"
        "• 7. **P6** — 0 pts, 0/1 correct, 6.0 s\n\n"
        "The starter or an admin can end it with /stopquiz."
    )
    arena.clock.advance(seconds=13)
    closed = await arena.comp.close_round(opened.round.id)
    assert closed is not None and not closed.match_over and closed.final is None
    assert seen(closed.reply) == (
        "**Round 1/2: ✅ B) Right**\n\n"
        "Because it is right.\n\n"
        "5 of 7 answered correctly.\n\n"
        "🥇 **P1** 148 · 🥈 **P2** 145 · 🥉 **P4** 140 · 4. **P5** 138 · 5. **P7** 132 (+2 more)"
    )
    assert seen(closed.round_view) == (
        "**Pick the right one for optim-4**\n\n"
        "• **▫️ A)** Wrong one — 0\n• **✅ B)** Right — 5\n• **▫️ C)** Wrong three — 2\n• **▫️ D)** Wrong two — 0"
    )
    second = await arena.comp.open_round(match.id)
    assert second is not None and seen(second.reply).startswith("**[2/2] Pick the right one for optim-2**")
    arena.clock.advance(seconds=21)
    last = await arena.comp.close_round(second.round.id)
    assert last is not None and last.match_over
    assert seen(last.reply).startswith(
        "**Round 2/2: ✅ C) Right**\n\nBecause it is right.\n\n0 of 0 answered correctly."
    )
    assert seen(last.final) == (
        "**🏆 Final results**\n\n"
        "That was the last question!\n\n"
        "🥇 **P1** 148  🥈 **P2** 145  🥉 **P4** 140\n\n"
        "• 🥇 **P1** — 148 pts, 1/1 correct, 1.0 s\n"
        "• 🥈 **P2** — 145 pts, 1/1 correct, 2.0 s\n"
        "• 🥉 **P4** — 140 pts, 1/1 correct, 4.0 s\n"
        "• 4. **P5** — 138 pts, 1/1 correct, 5.0 s\n"
        "• 5. **P7** — 132 pts, 1/1 correct, 7.0 s\n"
        "• 6. **P3** — 0 pts, 0/1 correct, 3.0 s\n"
        "• 7. **P6** — 0 pts, 0/1 correct, 6.0 s\n\n"
        "See the chat's leaderboard with /leaderboard."
    )
    assert seen(await arena.comp.leaderboard(player(1), "")) == (
        "**🏆 Leaderboard — this week**\n\n"
        "• 🥇 **P1** — 148 pts · 1 match · 1 win · 100% accuracy\n"
        "• 🥈 **P2** — 145 pts · 1 match · 0 wins · 100% accuracy\n"
        "• 🥉 **P4** — 140 pts · 1 match · 0 wins · 100% accuracy\n"
        "• 4. **P5** — 138 pts · 1 match · 0 wins · 100% accuracy\n"
        "• 5. **P7** — 132 pts · 1 match · 0 wins · 100% accuracy\n"
        "• 6. **P3** — 0 pts · 1 match · 0 wins · 0% accuracy\n"
        "• 7. **P6** — 0 pts · 1 match · 0 wins · 0% accuracy"
    )


async def test_the_leaderboard_counts_matches_and_wins_in_the_plural(arena: Arena) -> None:
    for _ in range(2):
        await arena.comp.start(player(1), "1 10")
        opened = await arena.comp.open_round((await arena.match()).id)
        assert opened is not None
        await arena.answer(player(1), opened.round.id, correct=True)
        arena.clock.advance(seconds=11)
        await arena.comp.close_round(opened.round.id)
    assert seen(await arena.comp.leaderboard(player(1), "all")) == (
        "**🏆 Leaderboard — all time**\n\n• 🥇 **P1** — 300 pts · 2 matches · 2 wins · 100% accuracy"
    )


async def test_a_solo_quiz_of_one_question_says_so_in_the_singular(arena: Arena) -> None:
    solo = Caller(Identity("telegram", "50"), "Solo", Chat("telegram", "50"))
    assert seen(await arena.comp.start(solo, "1")) == (
        "**🏁 Solo quiz: 1 question · 20 s each · mixed topics**\n\n"
        "Started by Solo. A correct answer scores 100 points plus up to 50 for speed; only your first answer counts. "
        "First question in a moment!"
    )


async def test_a_solo_round_is_complete_as_soon_as_its_player_answers(arena: Arena) -> None:
    completed: list[int] = []
    arena.comp.on_round_complete(completed.append)
    solo = Caller(Identity("telegram", "50"), "Solo", Chat("telegram", "50"))
    await arena.comp.start(solo, "2")
    match = await arena.store.running_match("telegram:50")
    assert match is not None
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    await arena.comp.answer(solo, opened.round.id, 0)
    assert completed == [opened.round.id]
    await arena.comp.start(player(1), "2")  # a group match waits for the clock
    group_round = await arena.comp.open_round((await arena.match()).id)
    assert group_round is not None
    await arena.answer(player(1), group_round.round.id, correct=True)
    assert completed == [opened.round.id]


async def test_stopping_closes_the_open_round_and_tells_the_listeners(arena: Arena) -> None:
    stopped: list[int] = []

    async def listener(match: Match) -> None:
        stopped.append(match.id)

    arena.comp.on_match_stopped(listener)
    assert seen(await arena.comp.stop(player(1))) == "No quiz is running here. Start one with /quiz."
    await arena.comp.start(player(1), "3")
    match = await arena.match()
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    assert (
        seen(await arena.comp.stop(player(2))) == "Only the person who started this quiz or a chat admin can stop it."
    )
    assert seen(await arena.comp.stop(player(1))) == (
        "**🏆 Final results**\n\nStopped by P1.\n\nNobody scored this time.\n\n"
        "See the chat's leaderboard with /leaderboard."
    )
    assert stopped == [match.id]
    assert (await arena.answer(player(2), opened.round.id, correct=True)).notice == "Too late: this round is closed."


async def test_answers_to_unknown_rounds_other_chats_and_missing_options_are_refused(arena: Arena) -> None:
    await arena.comp.start(player(1), "2")
    opened = await arena.comp.open_round((await arena.match()).id)
    assert opened is not None
    elsewhere = Caller(Identity("telegram", "9"), "P9", Chat("telegram", "-200", is_group=True))
    assert (await arena.comp.answer(elsewhere, opened.round.id, 0)).notice == "That quiz question is not valid here."
    assert (await arena.comp.answer(player(2), 999, 0)).notice == "That quiz question is not valid here."
    assert (await arena.comp.answer(player(2), opened.round.id, 4)).notice == "That option does not exist."
    assert (await arena.comp.answer(player(2), opened.round.id, -1)).notice == "That option does not exist."
    await arena.answer(player(2), opened.round.id, correct=True)
    again = await arena.answer(player(2), opened.round.id, correct=True)
    assert again.notice == "You already answered this one; only your first answer counts."
    assert len(await arena.store.round_answers(opened.round.id)) == 1


async def test_an_answer_in_the_last_instant_of_a_round_counts(arena: Arena) -> None:
    await arena.comp.start(player(1), "2 20")
    opened = await arena.comp.open_round((await arena.match()).id)
    assert opened is not None
    arena.clock.advance(seconds=20)
    assert (await arena.answer(player(2), opened.round.id, correct=True)).notice == "Locked in: B"
    assert [(s.name, s.points) for s in await arena.store.standings(opened.round.match_id or 0)] == [("P2", 100)]


async def test_the_standings_show_answer_times_to_the_tenth_of_a_second(arena: Arena) -> None:
    await arena.comp.start(player(1), "2 120")
    match = await arena.match()
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    arena.clock.advance(seconds=100)
    await arena.answer(player(2), opened.round.id, correct=True)
    assert "• 🥇 **P2** — 108 pts, 1/1 correct, 100.0 s" in seen(await arena.comp.start(player(1), ""))


async def test_a_round_with_answers_resets_the_idle_count(arena: Arena) -> None:
    await arena.comp.start(player(1), "6 10")
    match = await arena.match()
    over = []
    for answered in (False, False, True, False, False):
        opened = await arena.comp.open_round(match.id)
        assert opened is not None
        if answered:
            await arena.answer(player(2), opened.round.id, correct=False)
        arena.clock.advance(seconds=11)
        closed = await arena.comp.close_round(opened.round.id)
        assert closed is not None
        over.append(closed.match_over)
    assert over == [False] * 5


async def test_bad_quiz_arguments_say_what_is_wrong(arena: Arena) -> None:
    async def says(args: str) -> str:
        return seen(await arena.comp.start(player(1), args))

    assert await says("31") == f"A match has 1-30 questions. {USAGE}"
    assert await says("0") == f"A match has 1-30 questions. {USAGE}"
    assert await says("5 121") == f"Rounds last 10-120 seconds. {USAGE}"
    assert await says("5 9") == f"Rounds last 10-120 seconds. {USAGE}"
    assert await says("1 2 3") == USAGE
    assert await says("deep space " + "x" * 50) == (
        f"I don't know the topic “deep space {'x' * 29}”. Topics: basics, optim, stories. {USAGE}"
    )
    assert await says("stories") == "There are no multiple-choice questions for that topic yet."
    assert await arena.store.running_match(KEY) is None


async def test_the_largest_match_and_the_longest_rounds_are_allowed(arena: Arena) -> None:
    started = seen(await arena.comp.start(player(1), "30 120"))
    assert started.startswith("**🏁 Quiz: 12 questions · 120 s each · mixed topics**")  # the bank has 12 quiz cards


async def test_a_quiz_on_a_topic_asks_only_that_topics_cards(arena: Arena) -> None:
    await arena.comp.start(player(1), "6 10 Optimisation")
    match = await arena.match()
    assert sorted(match.card_ids) == [f"optim-{n}" for n in range(6)]


async def test_two_quizzes_started_in_the_same_instant_make_one_match(arena: Arena) -> None:
    first, second = await asyncio.gather(arena.comp.start(player(1), "3"), arena.comp.start(player(2), "3"))
    texts = sorted([seen(first), seen(second)])
    assert texts[0].startswith("**A quiz is already running here: round 1 of 3**")
    assert texts[1].startswith("**🏁 Quiz: 3 questions")


async def test_a_card_removed_from_the_bank_mid_match_is_skipped(arena: Arena) -> None:
    await arena.comp.start(player(1), "3 10")
    match = await arena.match()
    comp = arena.reopened(without(arena.study.bank, match.card_ids[0]))
    opened = await comp.open_round(match.id)
    assert opened is not None and opened.round.number == 2
    assert seen(opened.reply).startswith(f"**[2/3] Pick the right one for {match.card_ids[1]}**")
    assert await comp.open_round(999) is None


async def test_a_round_whose_card_was_removed_still_closes_and_scores(arena: Arena) -> None:
    await arena.comp.start(player(1), "2 10")
    match = await arena.match()
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    await arena.answer(player(2), opened.round.id, correct=True)
    arena.clock.advance(seconds=11)
    closed = await arena.reopened(without(arena.study.bank, opened.round.card_id)).close_round(opened.round.id)
    assert closed is not None
    assert seen(closed.round_view).strip() == "**Question**"  # no options to show
    # the head names the letter only, and no explanation is left to give
    assert seen(closed.reply) == "**Round 1/2: ✅ B)** \n\n\n\n1 of 1 answered correctly.\n\n🥇 **P2** 150"


async def test_the_group_daily_poll_scores_a_flat_hundred_and_closes_without_a_match(arena: Arena) -> None:
    sub = Subscription(
        id=1,
        chat_key=KEY,
        platform="telegram",
        chat_id=GROUP,
        is_group=True,
        learner_id=None,
        local_time="09:00",
        timezone="UTC",
        next_push_at=arena.clock.now(),
    )
    poll = await arena.comp.daily_poll(sub, arena.clock.now())
    assert seen(poll) == (
        "**☀️ Daily question: Pick the right one for optim-3**\n\n"
        "• **A)** Right\n• **B)** Wrong one\n• **C)** Wrong three\n• **D)** Wrong two"
    )
    assert poll.poll is not None and poll.poll.open_seconds is None
    assert poll.poll.options[poll.poll.correct_index] == "Right"
    round_id = poll.poll.round_id
    assert round_id is not None
    arena.clock.advance(hours=3)
    await arena.answer(player(1), round_id, correct=True)
    await arena.answer(player(2), round_id, correct=False)
    assert seen(await arena.comp.leaderboard(player(1), "")).startswith(
        "**🏆 Leaderboard — this week**\n\n• 🥇 **P1** — 100 pts · 0 matches · 0 wins · 100% accuracy\n"
        "• 🥈 **P2** — 0 pts"
    )
    arena.clock.advance(hours=21)
    closed = await arena.comp.close_round(round_id)
    assert closed is not None and closed.match is None and closed.round.id == round_id
    assert not closed.match_over and closed.final is None
    assert (
        seen(closed.reply)
        == seen(closed.round_view)
        == (
            "**Pick the right one for optim-3**\n\n"
            "• **✅ A)** Right — 1\n• **▫️ B)** Wrong one — 1\n• **▫️ C)** Wrong three — 0\n• **▫️ D)** Wrong two — 0"
        )
    )


async def test_a_poll_vote_counts_for_the_group_the_poll_was_sent_to(arena: Arena) -> None:
    await arena.comp.start(player(1), "2")
    opened = await arena.comp.open_round((await arena.match()).id)
    assert opened is not None
    await arena.comp.attach_message(opened.round.id, "poll-7", "msg-7")
    voter = Caller(Identity("telegram", "2"), "P2", Chat("telegram", "2"))  # a poll answer names no chat
    correct = opened.round.correct_index
    assert await arena.comp.answer_poll(voter, "poll-unknown", [correct]) is None
    assert await arena.comp.answer_poll(voter, "poll-7", []) is None  # a retracted vote
    reply = await arena.comp.answer_poll(voter, "poll-7", [correct, 0])
    assert reply is not None and reply.notice == "Locked in: B"
    assert [(s.name, s.points) for s in await arena.store.standings(opened.round.match_id or 0)] == [("P2", 150)]


async def test_quiz_buttons_answer_and_other_buttons_are_refused(arena: Arena) -> None:
    await arena.comp.start(player(1), "2")
    opened = await arena.comp.open_round((await arena.match()).id)
    assert opened is not None
    press = opened.reply.buttons[0][1].action
    assert (await arena.comp.press(player(2), press)).notice == "Locked in: B"
    for data in ("nonsense", f"sa:{opened.round.id}", f"qo:{opened.round.id}"):
        assert (await arena.comp.press(player(3), data)).notice == "That button is not valid any more."


def test_a_round_of_no_length_scores_no_speed_bonus() -> None:
    assert speed_points(timedelta(0), timedelta(0)) == 100
    assert speed_points(timedelta(0), timedelta(seconds=1)) == 150


@pytest.fixture
def server_in_tokyo() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("server_in_tokyo")
def test_weeks_start_on_monday_in_utc_whatever_the_servers_time_zone() -> None:
    sunday_night_utc = datetime(2026, 5, 11, 8, 30, tzinfo=timezone(timedelta(hours=9, minutes=30)))
    assert week_start(sunday_night_utc) == datetime(2026, 5, 4, tzinfo=UTC)


async def play_one_round(arena: Arena, players: list[int], *, correct: bool = True) -> Reply:
    """A one-question match in which each player answers a second after the previous one."""
    await arena.comp.start(player(1), "1 60")
    opened = await arena.comp.open_round((await arena.match()).id)
    assert opened is not None
    for n in players:
        arena.clock.advance(seconds=1)
        await arena.answer(player(n), opened.round.id, correct=correct)
    arena.clock.advance(seconds=60)
    closed = await arena.comp.close_round(opened.round.id)
    assert closed is not None
    return closed.reply


async def test_five_players_fit_the_round_summary_with_nobody_left_over(arena: Arena) -> None:
    summary = seen(await play_one_round(arena, [1, 2, 3, 4, 5]))
    assert summary.endswith(" · 4. **P4** 147 · 5. **P5** 146")  # and no "(+0 more)"


async def test_a_match_in_which_nobody_scored_has_no_winner(arena: Arena) -> None:
    await play_one_round(arena, [1, 2], correct=False)
    board = seen(await arena.comp.leaderboard(player(1), ""))
    assert "1 match · 0 wins · 0% accuracy" in board and "1 win" not in board


async def test_the_leaderboard_lists_the_top_twenty(arena: Arena) -> None:
    await play_one_round(arena, list(range(1, 22)))
    board = seen(await arena.comp.leaderboard(player(1), "week"))
    assert board.count("\n• ") == 20 and "• 20. **P20**" in board and "P21" not in board


async def test_the_leaderboard_explains_its_periods_and_an_empty_week(arena: Arena) -> None:
    usage = (await arena.comp.leaderboard(player(1), "month")).plain_text()
    assert usage == "Usage: /leaderboard [week|all] — this ISO week (UTC) or all time."
    assert seen(await arena.comp.leaderboard(player(1), " WEEK ")) == (
        "**🏆 Leaderboard — this week**\n\nNo scores yet. Start a match with /quiz!"
    )


async def test_daily_polls_ask_every_card_once_before_repeating_one(arena: Arena) -> None:
    sub = Subscription(
        id=1,
        chat_key=KEY,
        platform="telegram",
        chat_id=GROUP,
        is_group=True,
        learner_id=None,
        local_time="09:00",
        timezone="UTC",
        next_push_at=arena.clock.now(),
    )
    asked = []
    for _ in range(13):
        poll = await arena.comp.daily_poll(sub, arena.clock.now())
        assert [[b.label for b in row] for row in poll.buttons] == [["A", "B", "C", "D"]]
        assert render(poll)  # renders as a Discord message, poll and buttons
        assert poll.poll is not None and poll.poll.round_id is not None
        round_ = await arena.store.get_round(poll.poll.round_id)
        assert round_ is not None
        asked.append(round_.card_id)
        arena.clock.advance(days=1)
    assert len(set(asked[:12])) == 12  # the twelve quiz cards of the bank, each once
    assert asked[12] in asked[:12]


async def test_a_long_quiz_prompt_is_cut_to_telegrams_poll_question_limit(arena: Arena) -> None:
    card = make_card("long-0", "optim")
    assert card.quiz is not None
    long_card = replace(card, quiz=replace(card.quiz, prompt="Which one? " * 40))
    comp = arena.reopened(QuestionBank([long_card], arena.study.bank.topics))
    await comp.start(player(1), "1")
    opened = await comp.open_round((await arena.match()).id)
    assert opened is not None and opened.reply.poll is not None
    assert opened.reply.poll.question == ("[1/1] " + "Which one? " * 40)[:300]


async def test_a_quiz_on_a_topic_named_in_several_words(arena: Arena) -> None:
    bank = QuestionBank([make_card(f"nets-{n}", "deep-nets") for n in range(3)], [Topic("deep-nets", "Deep nets")])
    started = seen(await arena.reopened(bank).start(player(1), "2 deep nets"))
    assert started.startswith("**🏁 Quiz: 2 questions · 20 s each · Deep nets**")
