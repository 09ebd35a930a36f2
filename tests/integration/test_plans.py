"""Plans and weakest topics on SQLite and PostgreSQL: the repository, the plan read with the schedule
at no extra round trip, the daily push's countdown and a plan's end, the group quiz from a chat's
weakest topics, and plans in /export and /forget."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import fsrs
import pytest

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import (
    AttemptStatus,
    Caller,
    CardEvidence,
    CardState,
    Chat,
    Identity,
    Plan,
    PlanFocus,
    Rating,
    Review,
    ReviewMode,
    Round,
    RoundAnswer,
)
from bot.core.plan import PlanService
from bot.core.privacy import PrivacyService
from bot.core.study import StudyService
from bot.core.throttle import Throttle
from bot.core.views import Reply
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GROUP = Chat("telegram", "-100", is_group=True)


def person(n: int) -> Caller:
    return Caller(Identity("telegram", str(n)), f"P{n}", Chat("telegram", str(n)))


def player(n: int, chat: Chat = GROUP) -> Caller:
    return Caller(Identity("telegram", str(n)), f"P{n}", chat)


@dataclass
class World:
    store: Store
    clock: FakeClock
    study: StudyService
    commands: Commands
    daily: DailyService
    competition: CompetitionService
    notifier: FakeNotifier


@pytest.fixture
async def world(store_location: str) -> AsyncIterator[World]:
    clock = FakeClock(START)
    async with Store(store_location) as store:
        study = StudyService(
            store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(5)
        )
        commands = Commands(study, throttle=Throttle(clock, limit=10**6))
        competition = CompetitionService(store, study.bank, clock, study, rng=random.Random(6))
        notifier = FakeNotifier()
        daily = DailyService(store, study, {"telegram": notifier}, group_content=competition.daily_poll)
        commands.attach_daily(daily)
        commands.attach_competition(competition)
        commands.attach_plan(PlanService(store, study))
        commands.attach_privacy(PrivacyService(store, clock))
        yield World(store, clock, study, commands, daily, competition, notifier)


def a_plan(learner_id: int, **changes: object) -> Plan:
    plan = Plan(
        learner_id=learner_id,
        target_day="2026-04-01",
        timezone="Europe/Berlin",
        topics=("optim", "basics"),
        new_per_day=3,
        previous_new_per_day=10,
        start_day="2026-03-02",
        planned=12,
        rushed=False,
        created_at=START,
    )
    return replace(plan, **changes)  # type: ignore[arg-type]


async def review(store: Store, learner_id: int, card_id: str, rating: Rating, when: datetime, was_new: bool) -> None:
    attempt = await store.create_attempt(learner_id, card_id, "telegram:history", when, None)
    state = CardState(learner_id, card_id, 2, None, 10.0, 5.0, when + timedelta(days=10), when, 1, 0, "2026-03-01")
    entry = Review(learner_id, card_id, rating, when, ReviewMode.REVEAL, "2026-03-01", was_new, None)
    assert await store.record_answer(attempt.id, (AttemptStatus.OPEN,), state, entry, when)


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


# --- the repository --------------------------------------------------------------------------------------


async def test_a_plan_is_saved_with_the_cap_and_ended_with_the_cap_put_back(world: World) -> None:
    store = world.store
    me = await world.study.learner(person(1))
    assert await store.plan_for(me.id) is None
    plan = a_plan(me.id)
    await store.save_plan(plan)
    assert await store.plan_for(me.id) == plan
    assert (await store.get_learner(me.id)).new_per_day == 3  # type: ignore[union-attr]
    moved = replace(plan, target_day="2026-05-01", topics=(), rushed=True, new_per_day=50)
    await store.save_plan(moved)  # one plan per learner: replaced
    assert await store.plan_for(me.id) == moved
    assert (await store.get_learner(me.id)).new_per_day == 50  # type: ignore[union-attr]
    assert await store.end_plan(me.id) == (moved, True)
    assert (await store.get_learner(me.id)).new_per_day == 10  # type: ignore[union-attr]
    assert await store.plan_for(me.id) is None
    assert await store.end_plan(me.id) is None


async def test_a_cap_the_learner_changed_is_not_put_back(world: World) -> None:
    me = await world.study.learner(person(1))
    await world.store.save_plan(a_plan(me.id))
    await world.store.set_new_per_day(me.id, 20)
    assert await world.store.end_plan(me.id) == (a_plan(me.id), False)
    assert (await world.store.get_learner(me.id)).new_per_day == 20  # type: ignore[union-attr]


async def test_the_schedule_query_brings_the_plan_along(world: World) -> None:
    me = await world.study.learner(person(1))
    await review(world.store, me.id, "basics-0", Rating.GOOD, START, was_new=True)
    skipped = await world.store.create_attempt(me.id, "optim-1", "telegram:1", START, None)
    await world.store.update_attempt(skipped.id, (AttemptStatus.OPEN,), AttemptStatus.SKIPPED, START)
    plain = await world.store.pick_context(me.id, START - timedelta(hours=1))
    assert plain.plan is None and [c for c, _, _ in plain.schedule] == ["basics-0"]
    assert plain.skipped == {"optim-1"}
    await world.store.save_plan(a_plan(me.id, rushed=True))
    before = world.store.db.trips
    context = await world.store.pick_context(me.id, START - timedelta(hours=1))
    assert world.store.db.trips - before == 1
    assert context.plan == PlanFocus("2026-04-01", "Europe/Berlin", ("optim", "basics"), True)
    assert (context.schedule, context.skipped) == (plain.schedule, plain.skipped)


async def test_card_evidence_counts_reviews_of_seen_cards_in_the_window_in_one_query(world: World) -> None:
    me = await world.study.learner(person(1))
    other = await world.study.learner(person(2))
    since = START - timedelta(days=30)
    await review(world.store, me.id, "basics-0", Rating.AGAIN, START, was_new=True)  # a first answer: not evidence
    for rating in (Rating.AGAIN, Rating.HARD, Rating.GOOD, Rating.EASY):
        await review(world.store, me.id, "basics-0", rating, START, was_new=False)
    await review(world.store, me.id, "optim-0", Rating.AGAIN, START, was_new=False)
    await review(world.store, me.id, "optim-0", Rating.GOOD, since - timedelta(seconds=1), was_new=False)  # too old
    await review(world.store, other.id, "optim-0", Rating.GOOD, START, was_new=False)  # someone else's
    before = world.store.db.trips
    assert await world.store.card_evidence(me.id, since) == [
        CardEvidence("basics-0", 4, 3),
        CardEvidence("optim-0", 1, 0),
    ]
    assert world.store.db.trips - before == 1


async def test_a_chats_quiz_answers_per_card_in_one_query(world: World) -> None:
    store = world.store
    players = [await world.study.learner(player(n)) for n in (1, 2, 3)]

    async def round_in(chat_key: str, card_id: str, opened: datetime, correct: list[bool]) -> None:
        opened_round = await store.open_round(
            Round(0, None, chat_key, 0, card_id, (0, 1, 2, 3), 0, 0, opened, opened + timedelta(hours=1))
        )
        for learner, right in zip(players, correct, strict=False):
            answer = RoundAnswer(opened_round.id, learner.id, 0 if right else 1, right, 0, 10, opened)
            assert await store.add_answer(answer, opened)

    await round_in(GROUP.key, "basics-0", START, [True, False, False])
    await round_in(GROUP.key, "basics-0", START, [True, True])
    await round_in(GROUP.key, "optim-0", START, [False])
    await round_in(GROUP.key, "optim-1", START - timedelta(days=91), [False, False, False])  # too old
    await round_in("telegram:-200", "optim-2", START, [False, False])  # another chat
    before = store.db.trips
    found = await store.chat_card_results(GROUP.key, START - timedelta(days=90))
    assert store.db.trips - before == 1
    assert found == [CardEvidence("basics-0", 5, 3), CardEvidence("optim-0", 1, 0)]


# --- asking under a plan costs no extra round trip -------------------------------------------------------


async def test_a_question_under_a_plan_costs_the_same_round_trips_as_without(world: World) -> None:
    ann, bob = person(1), person(2)
    await world.commands.run(ann, "stats")
    await world.commands.run(bob, "stats")
    await world.commands.run(bob, "plan", "2026-04-01 optim")
    spent = {}
    for who in (ann, bob):
        before = world.store.db.trips
        asked = await world.commands.run(who, "question")
        spent[who.display_name] = world.store.db.trips - before
        assert button(asked, "Show answer")
    assert spent["P1"] == spent["P2"] == 3


# --- the daily push ---------------------------------------------------------------------------------------


async def test_the_daily_push_carries_the_countdown_and_ends_a_passed_plan(world: World) -> None:
    ann = person(1)
    assert "Daily question on" in (await world.commands.run(ann, "daily", "08:00 UTC")).plain_text()
    await world.commands.run(ann, "plan", "2026-03-05")
    world.clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    await world.daily.tick()
    pushed = world.notifier.texts("1")[-1]
    assert pushed.startswith(
        "☀️ Your daily question · start a streak today!\n\n📅 2 days to your interview (Thu 05 Mar)"
    )
    assert "14 cards of your plan still new" in pushed
    assert "Answer in your own words" in pushed
    world.clock.set(datetime(2026, 3, 5, 8, 0, tzinfo=UTC))
    await world.daily.tick()
    assert "📅 Your interview is today. Good luck! 🍀" in world.notifier.texts("1")[-1]
    world.clock.set(datetime(2026, 3, 6, 8, 0, tzinfo=UTC))
    await world.daily.tick()
    ended = world.notifier.texts("1")[-1]
    assert "🏁 Your plan to Thu 05 Mar 2026 is over. I hope the interview went well!" in ended
    assert "📅" not in ended and "Answer in your own words" in ended
    assert await world.store.plan_for((await world.study.learner(ann)).id) is None
    world.clock.set(datetime(2026, 3, 7, 8, 0, tzinfo=UTC))
    await world.daily.tick()
    assert "🏁" not in world.notifier.texts("1")[-1] and "📅" not in world.notifier.texts("1")[-1]


async def test_a_push_without_a_plan_has_no_countdown(world: World) -> None:
    await world.commands.run(person(1), "daily", "08:00 UTC")
    world.clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    await world.daily.tick()
    assert "📅" not in world.notifier.texts("1")[-1]


# --- the group quiz from the chat's weakest topics --------------------------------------------------------


async def history_in_chat(world: World, chat: Chat, card_id: str, correct: list[bool], when: datetime) -> None:
    """A daily-poll round in `chat` answered by players 1, 2, 3, ... as `correct` says."""
    opened = await world.store.open_round(
        Round(0, None, chat.key, 0, card_id, (0, 1, 2, 3), 0, 0, when, when + timedelta(hours=1))
    )
    for n, right in enumerate(correct, start=1):
        learner = await world.study.learner(player(n, chat))
        assert await world.store.add_answer(
            RoundAnswer(opened.id, learner.id, 0 if right else 1, right, 0, 10, when), when
        )


async def test_quiz_weak_picks_from_the_topics_this_chat_answered_worst(world: World) -> None:
    await history_in_chat(world, GROUP, "basics-0", [True, True, True, True, True], START - timedelta(days=1))
    await history_in_chat(world, GROUP, "optim-0", [True, False, False, False, False], START - timedelta(days=1))
    other = Chat("telegram", "-300", is_group=True)  # another chat's answers do not count here
    await history_in_chat(world, other, "basics-1", [False] * 5, START - timedelta(days=1))
    started = await world.commands.run(player(1), "quiz", "4 weak")
    text = started.plain_text()
    assert "Quiz: 4 questions · 20 s each · weakest topics" in text
    assert "Questions from the topics this chat answered worst (right answers, last 90 days): Optimisation 20%." in text
    match = await world.store.running_match(GROUP.key)
    assert match is not None and len(match.card_ids) == 4
    assert {card_id.split("-")[0] for card_id in match.card_ids} == {"optim"}


async def test_quiz_weak_tops_up_from_the_next_topics_when_the_weakest_is_small(world: World) -> None:
    await history_in_chat(world, GROUP, "basics-0", [True, True, True, True, False], START)  # 80%
    await history_in_chat(world, GROUP, "optim-0", [True, True, False, False, False], START)  # 40%
    await world.competition.start(player(1), "weak 9 30")
    match = await world.store.running_match(GROUP.key)
    assert match is not None and match.seconds == 30 and len(match.card_ids) == 9
    topics = [card_id.split("-")[0] for card_id in match.card_ids]
    assert topics.count("optim") == 6 and topics.count("basics") == 3  # every optim card, then basics


async def test_quiz_weak_without_history_says_so_and_mixes_every_topic(world: World) -> None:
    await history_in_chat(world, GROUP, "optim-0", [False] * 4, START)  # 4 answers: not enough
    await history_in_chat(world, GROUP, "basics-0", [False] * 5, START - timedelta(days=91))  # too old
    text = (await world.commands.run(player(1), "quiz", "weak")).plain_text()
    assert "Quiz: 10 questions · 20 s each · weakest topics" in text
    assert "This chat doesn't have enough quiz answers yet to tell its weakest topics" in text
    assert "a topic counts after 5 answers in 90 days" in text
    match = await world.store.running_match(GROUP.key)
    assert match is not None and len(match.card_ids) == 10
    assert {card_id.split("-")[0] for card_id in match.card_ids} == {"basics", "optim"}


async def test_quiz_weak_and_a_topic_together_are_refused(world: World) -> None:
    text = (await world.commands.run(player(1), "quiz", "5 optim weak")).plain_text()
    assert text.startswith("Choose a topic or weak, not both.")
    assert await world.store.running_match(GROUP.key) is None


# --- export and forget -----------------------------------------------------------------------------------


async def test_export_includes_the_plan_and_forget_deletes_it(world: World) -> None:
    ann = person(1)
    await world.commands.run(ann, "plan", "2026-04-01 optim")
    exported = await world.commands.run(ann, "export")
    assert exported.attachment is not None
    data = json.loads(exported.attachment[1])
    (plan,) = data["plans"]
    assert (plan["target_day"], plan["timezone"], json.loads(plan["topics"]), plan["new_per_day"]) == (
        "2026-04-01",
        "UTC",
        ["optim"],
        1,
    )
    confirm = await world.commands.run(ann, "forget")
    await world.commands.press(ann, button(confirm, "Delete everything"))
    row = await world.store.db.fetchrow("SELECT COUNT(*) FROM plans")
    assert row is not None and row[0] == 0
