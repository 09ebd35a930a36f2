"""Quiz rules at their edges, as players see them: a solo round's result line in bold, a solo round that
times out in the very instant its time is up, closing a round twice or one that does not exist, the group's
daily poll over two months, and /quiz weak in a chat that practises from its own deck.

On SQLite with a fake clock, as test_competition_screens.py; the screens are rendered with the Discord
renderer (Markdown: **bold**), so a style dropped shows up.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.console.text import render as render_console
from bot.bootstrap import App
from bot.core.bank import QuestionBank
from bot.core.competition import CompetitionService
from bot.core.model import (
    Caller,
    Chat,
    Identity,
    Match,
    MatchStatus,
    Round,
    RoundAnswer,
    Subscription,
    Topic,
    Upload,
)
from bot.core.study import StudyService
from bot.storage.sqlite import SqliteStore
from bot.storage.store import Store
from tests.adapters.stack import app_for
from tests.conftest import make_card, small_bank
from tests.fakes import FakeClock
from tests.integration.test_competition_screens import seen

START = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)
SOLO = Caller(Identity("telegram", "50"), "Solo", Chat("telegram", "50"))


@dataclass
class Arena:
    store: SqliteStore
    clock: FakeClock
    study: StudyService
    comp: CompetitionService

    def with_bank(self, bank: QuestionBank) -> CompetitionService:
        return CompetitionService(self.store, bank, self.clock, self.study, rng=random.Random(5))

    async def solo_match(self, args: str) -> Match:
        await self.comp.start(SOLO, args)
        match = await self.store.running_match(SOLO.chat.key)
        assert match is not None
        return match


@pytest.fixture
async def arena(tmp_path: Path) -> AsyncIterator[Arena]:
    clock = FakeClock(START)
    async with SqliteStore(tmp_path / "bot.db") as store:
        study = StudyService(store, small_bank(), clock)
        yield Arena(store, clock, study, CompetitionService(store, study.bank, clock, study, rng=random.Random(5)))


USAGE = (
    "Usage: /quiz [questions] [topic\\|weak] [seconds] — for example /quiz, /quiz 5, /quiz 10 transformers 30, "
    "/quiz 5 weak. Questions 1-30 (default 10), seconds per question 10-120 (default 20)."
)


# --- starting ---------------------------------------------------------------------------------------------


async def test_quiz_in_a_chat_whose_cards_have_no_quiz_question_says_there_is_nothing_to_ask(arena: Arena) -> None:
    comp = arena.with_bank(QuestionBank([make_card("story-0", "stories", quiz=False)], [Topic("stories", "Stories")]))
    assert seen(await comp.start(SOLO, "3")) == (
        "None of the cards this chat practises from has a quiz question, so there is nothing for /quiz to ask. "
        "/deck shows this chat's decks; /deck use bank brings back the shipped bank."
    )
    assert await arena.store.running_match(SOLO.chat.key) is None


class LostRaceStore(SqliteStore):
    """Another /quiz in the same chat wins the race to start, and its match is stopped before the loser looks."""

    async def create_match(self, match: Match) -> Match | None:
        rival = await super().create_match(replace(match, starter_id=None))
        lost = await super().create_match(match)
        assert rival is not None and lost is None
        await self.end_match(rival.id, MatchStatus.STOPPED, "Stopped by P2.", None, match.started_at)
        return lost


async def test_a_quiz_that_lost_the_race_to_a_match_already_over_gets_the_usage_line(tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with LostRaceStore(tmp_path / "bot.db") as store:
        study = StudyService(store, small_bank(), clock)
        comp = CompetitionService(store, study.bank, clock, study, rng=random.Random(5))
        assert seen(await comp.start(SOLO, "3")) == USAGE
        assert await store.running_match(SOLO.chat.key) is None


# --- answers ------------------------------------------------------------------------------------------------


async def test_an_answer_in_the_first_millisecond_beats_an_equal_score_one_millisecond_later(arena: Arena) -> None:
    group = Chat("telegram", "-100", is_group=True)
    first, second = (Caller(Identity("telegram", str(n)), f"P{n}", group) for n in (1, 2))
    await arena.comp.start(first, "1 20")  # P1 is the older learner, so first on a tie of points and time
    match = await arena.store.running_match(group.key)
    assert match is not None
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    right = opened.round.correct_index
    assert (await arena.comp.answer(second, opened.round.id, right)).notice is not None  # 0 ms after it opened
    arena.clock.advance(milliseconds=1)
    assert (await arena.comp.answer(first, opened.round.id, right)).notice is not None
    standings = await arena.store.standings(match.id)
    assert [(s.name, s.points, s.time_ms) for s in standings] == [("P2", 150, 0), ("P1", 150, 1)]


# --- solo rounds -------------------------------------------------------------------------------------------


async def test_a_solo_rounds_result_shows_the_players_choice_or_times_up_in_bold(arena: Arena) -> None:
    match = await arena.solo_match("3 20")
    results = []
    for choice in ("right", "wrong", None):
        opened = await arena.comp.open_round(match.id)
        assert opened is not None
        right = opened.round.correct_index
        option = {"right": right, "wrong": (right + 1) % 4, None: None}[choice]
        arena.clock.advance(seconds=2)
        if option is not None:
            assert (await arena.comp.answer(SOLO, opened.round.id, option)).notice == f"Locked in: {'ABCD'[option]}"
        else:
            arena.clock.advance(seconds=30)
        closed = await arena.comp.close_round(opened.round.id)
        assert closed is not None
        results.append((seen(closed.reply).split("\n\n")[2], "ABCD"[right], "ABCD"[option or 0]))
    (first, a, _), (second, b, wrong), (third, c, _) = results
    assert first == f"**✅ you: {a}** · correct: {a}"
    assert second == f"**❌ you: {wrong}** · correct: {b}" and wrong != b
    assert third == f"**⌛ Time's up** · no answer · correct: {c}"


async def test_a_solo_round_closed_in_the_instant_its_time_is_up_counts_as_a_wrong_answer_after_the_whole_round(
    arena: Arena,
) -> None:
    match = await arena.solo_match("1 120")
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    arena.clock.advance(seconds=120)  # exactly the round's closing time, as the runner's timer wakes
    closed = await arena.comp.close_round(opened.round.id)
    assert closed is not None and closed.match_over
    learner = await arena.study.learner(SOLO)
    assert await arena.store.round_answers(opened.round.id) == [
        RoundAnswer(opened.round.id, learner.id, -1, False, 0, 120_000, opened.round.closes_at)
    ]
    assert seen(closed.final) == (
        "**🏆 Final results**\n\n"
        "That was the last question!\n\n"
        "🥇 **Solo** 0\n\n"
        "• 🥇 **Solo** — 0 pts, 0/1 correct, 120.0 s\n\n"
        "See the chat's leaderboard with /leaderboard."
    )
    board = seen(await arena.comp.leaderboard(SOLO, "all"))
    assert board == "**🏆 Leaderboard — all time**\n\n• 🥇 **Solo** — 0 pts · 1 match · 0 wins · 0% accuracy"


async def test_a_vote_on_a_forwarded_solo_poll_in_its_last_instant_is_the_rounds_only_answer(arena: Arena) -> None:
    match = await arena.solo_match("1 20")
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    await arena.comp.attach_message(opened.round.id, "poll-1", "msg-1")
    friend = Caller(Identity("telegram", "60"), "Friend", Chat("telegram", "60"))  # voted on a forwarded copy
    arena.clock.advance(seconds=20)
    vote = await arena.comp.answer_poll(friend, "poll-1", [opened.round.correct_index])
    assert vote is not None and vote.notice is not None and vote.notice.startswith("Locked in")
    closed = await arena.comp.close_round(opened.round.id)
    assert closed is not None
    assert [(s.name, s.points, s.correct, s.answered) for s in await arena.store.standings(match.id)] == [
        ("Friend", 100, 1, 1)
    ]


async def test_closing_a_round_again_or_one_that_does_not_exist_reports_nothing(arena: Arena) -> None:
    assert await arena.comp.close_round(999) is None
    match = await arena.solo_match("2 20")
    opened = await arena.comp.open_round(match.id)
    assert opened is not None
    arena.clock.advance(seconds=21)
    assert await arena.comp.close_round(opened.round.id) is not None
    assert await arena.comp.close_round(opened.round.id) is None
    assert len(await arena.store.round_answers(opened.round.id)) == 1  # the time-out, recorded once


# --- the group's daily poll ---------------------------------------------------------------------------------


def group_subscription(now: datetime) -> Subscription:
    return Subscription(
        id=1,
        chat_key="telegram:-100",
        platform="telegram",
        chat_id="-100",
        is_group=True,
        learner_id=None,
        local_time="09:00",
        timezone="UTC",
        next_push_at=now,
    )


async def test_the_daily_poll_is_one_message(arena: Arena) -> None:
    poll = await arena.comp.daily_poll(group_subscription(arena.clock.now()), arena.clock.now())
    assert poll.extra == ()
    assert render_console(poll).startswith("☀️ Daily question: Pick the right one for ")


async def test_a_daily_question_comes_back_once_the_sixty_after_it_were_asked(arena: Arena) -> None:
    topic = Topic("optim", "Optimisation")
    comp = arena.with_bank(QuestionBank([make_card(f"optim-{n}", "optim") for n in range(61)], [topic]))
    sub = group_subscription(arena.clock.now())
    asked = []
    for _ in range(62):
        poll = await comp.daily_poll(sub, arena.clock.now())
        assert poll.poll is not None and poll.poll.round_id is not None
        round_ = await arena.store.get_round(poll.poll.round_id)
        assert round_ is not None
        asked.append(round_.card_id)
        arena.clock.advance(days=1)
    assert len(set(asked[:61])) == 61  # every card once
    assert asked[61] == asked[0]  # then the one not among the last sixty: the first


# --- /quiz weak in a chat that practises from its own deck ---------------------------------------------------

GROUP = Chat("telegram", "-500", is_group=True)
ADMIN = Caller(Identity("telegram", "100"), "Ann", GROUP, is_chat_admin=True)
QUIZZES = (
    "id,question,answer,topic,key_points,correct,distractors,explanation\n"
    "i1,What does the KV cache store?,Keys and values.,Inference,,Keys and values,Gradients;Weights;Logits,Saves..\n"
    "i2,What is speculative decoding?,A draft model proposes.,Inference,,A draft proposes,Pruning;Dropout;Beams,Fast.\n"
    "r1,What is label smoothing?,Softer targets.,Regularisation,,Softer targets,Bigger batches;Momentum;Noise,Calmer.\n"
    "r2,What is dropout?,Zeroing units.,Regularisation,,Zeroing units,Warm-up;Clipping;Decay,Less co-adaptation.\n"
)
NOTE = "Questions from the topics this chat answered worst (right answers, last 90 days): "


@dataclass
class DeckChat:
    app: App
    store: Store
    deck_id: int

    async def history(self, card: str, correct: list[bool]) -> None:
        """A past round of the deck's card `card` in the group, answered by players 1, 2, ... as `correct` says."""
        when = START - timedelta(days=1)
        opened = await self.store.open_round(
            Round(0, None, GROUP.key, 0, f"{self.deck_id}:{card}", (0, 1, 2, 3), 0, 0, when, when + timedelta(hours=1))
        )
        for n, right in enumerate(correct, start=1):
            who = Caller(Identity("telegram", str(n)), f"P{n}", GROUP)
            learner = await self.app.study.learner(who)
            answer = RoundAnswer(opened.id, learner.id, 0 if right else 1, right, 0, 10, when)
            assert await self.store.add_answer(answer, when)

    async def quiz(self, args: str) -> tuple[str, list[str]]:
        """/quiz `args` in the group: the reply and the match's cards (deck card numbers, else shipped ids)."""
        text = (await self.app.commands.run(ADMIN, "quiz", args)).plain_text()
        match = await self.store.running_match(GROUP.key)
        assert match is not None, text
        prefix = f"{self.deck_id}:"
        return text, [c.removeprefix(prefix) for c in match.card_ids]


@pytest.fixture
async def deck_chat(tmp_path: Path) -> AsyncIterator[DeckChat]:
    async with Store(str(tmp_path / "bot.db")) as store:
        app = app_for(store, FakeClock(START))
        data = QUIZZES.encode()

        async def read() -> bytes:
            return data

        imported = await app.commands.run(ADMIN, "deck", "import quizzes", upload=Upload("q.csv", len(data), read))
        assert "4 cards" in imported.plain_text(), imported.plain_text()
        used = await app.commands.run(ADMIN, "deck", "use quizzes")
        assert "now practises from quizzes" in used.plain_text(), used.plain_text()
        row = await store.db.fetchrow("SELECT id FROM decks WHERE name = 'quizzes'")
        assert row is not None
        yield DeckChat(app, store, int(row[0]))


async def test_quiz_on_a_topic_knows_only_the_topics_of_the_chats_decks(deck_chat: DeckChat) -> None:
    refused = await deck_chat.app.commands.run(ADMIN, "quiz", "2 optim")
    assert seen(refused) == f"I don't know the topic “optim”. Topics: inference, regularisation. {USAGE}"
    assert await deck_chat.store.running_match(GROUP.key) is None
    text, cards = await deck_chat.quiz("2 regularisation")
    assert "Quiz: 2 questions · 20 s each · Regularisation" in text and sorted(cards) == ["3", "4"]


async def test_quiz_weak_ranks_the_decks_topics_and_tops_up_from_the_rest_of_the_deck(deck_chat: DeckChat) -> None:
    await deck_chat.history("1", [True, False, False, False, False])  # Inference: 1 of 5
    await deck_chat.history("3", [True, True, True, True])  # Regularisation: 4 answers, too few to count
    text, cards = await deck_chat.quiz("4 weak")
    assert f"{NOTE}Inference 20%." in text
    assert sorted(cards[:2]) == ["1", "2"] and sorted(cards) == ["1", "2", "3", "4"]


async def test_quiz_weak_takes_the_weakest_deck_topics_cards_and_names_every_topic_it_drew_from(
    deck_chat: DeckChat,
) -> None:
    await deck_chat.history("1", [True, False, False, False, False])  # Inference: 20%
    await deck_chat.history("3", [True, True, True, True, True])  # Regularisation: 100%
    text, cards = await deck_chat.quiz("2 weak")
    assert f"{NOTE}Inference 20%." in text and sorted(cards) == ["1", "2"]
    await deck_chat.app.commands.run(ADMIN, "stopquiz")
    text, cards = await deck_chat.quiz("3 weak")
    assert f"{NOTE}Inference 20%, Regularisation 100%." in text
    assert sorted(cards[:2]) == ["1", "2"] and cards[2] in ("3", "4")
