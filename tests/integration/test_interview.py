"""Mock interviews through the command router on a real store (SQLite and PostgreSQL): questions,
follow-ups, skip, end, the report, the FSRS reviews it records, resuming after a restart, expiry."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import fsrs
import pytest

from bot.core.actions import Verb, parse_action
from bot.core.commands import Commands
from bot.core.interview import (
    FOLLOW_UP_WEIGHT,
    Answer,
    InterviewService,
    Phase,
    Status,
    question_score,
    rating_for,
)
from bot.core.model import Caller, Chat, Identity, Kind, Rating, ReviewMode
from bot.core.privacy import PrivacyService
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.storage.store import Store
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock

ANN = caller("1", "Ann")
BOB = caller("2", "Bob")
FULL = "The chain rule gives the gradient of the loss, and vanishing gradients appear in deep nets."
ONE_POINT = "It is the chain rule applied backwards through the network."
TWO_POINTS = "The chain rule gives the gradient of the loss layer by layer."
MISSED_TWO = "The gradient of the loss shrinks, which is the vanishing gradients problem."
MISSED_ONE = "Deep nets suffer from vanishing gradients when the factors are small."


@dataclass
class World:
    store: Store
    clock: FakeClock
    study: StudyService
    interview: InterviewService
    commands: Commands

    async def run(self, who: Caller, name: str, args: str = "") -> Reply:
        return await self.commands.run(who, name, args)

    async def say(self, who: Caller, text: str, *, after: float = 30) -> Reply:
        self.clock.advance(seconds=after)
        reply = await self.commands.text(who, text)
        assert reply is not None, f"no reply to {text!r}"
        return reply

    async def reviews(self, mode: str = "interview") -> list[tuple[str, int]]:
        found = await self.store.db.fetch("SELECT card_id, rating FROM reviews WHERE mode = ? ORDER BY id", mode)
        return [(row[0], int(row[1])) for row in found]

    async def answers(self) -> list[tuple[int, str, float]]:
        found = await self.store.db.fetch(
            "SELECT position, part, score FROM interview_answers ORDER BY position, part DESC"
        )
        return [(int(row[0]), str(row[1]), float(row[2])) for row in found]


def build(store: Store, clock: FakeClock) -> World:
    study = StudyService(
        store, small_bank(), clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(5)
    )
    commands = Commands(study)
    interview = InterviewService(store, study, clock, rng=random.Random(6))
    commands.attach_privacy(PrivacyService(store, clock))
    commands.attach_interview(interview)
    return World(store, clock, study, interview, commands)


@pytest.fixture
async def world(store_location: str) -> AsyncIterator[World]:
    async with Store(store_location) as store:
        yield build(store, FakeClock())


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label == label)


def text(reply: Reply) -> str:
    return "\n".join([reply.plain_text(), *(more.plain_text() for more in reply.extra)])


# --- a whole interview ------------------------------------------------------------------------------------


async def test_a_coach_interview_asks_follow_ups_grades_both_and_records_each_question_as_a_review(
    world: World,
) -> None:
    started = await world.run(ANN, "interview", "basics 3")
    shown = started.plain_text()
    assert "Mock interview · 3 questions" in shown and "Question 1 of 3" in shown and "Coach mode" in shown
    assert started.answer_box and [b.label for row in started.buttons for b in row] == ["Skip", "End interview"]

    first = await world.say(ANN, FULL, after=95)
    assert "You covered 3 of 3 key points." in first.plain_text()
    assert "Follow-up · question 1 of 3" in first.plain_text() and "A follow-up?" in first.plain_text()
    after_follow = await world.say(ANN, FULL, after=40)
    assert "Question 1: 100% · recorded as Good." in after_follow.plain_text()
    assert "Question 2 of 3" in after_follow.plain_text()

    second = await world.say(ANN, ONE_POINT)  # 1 of 3
    assert "You covered 1 of 3 key points." in second.plain_text()
    assert "✗ gradient of the loss" in second.plain_text()
    follow = await world.say(ANN, "The gradient of the loss is what backprop returns.")  # 1 of the 2 missed
    assert "brought in 1 of the 2 points it was after: gradient of the loss" in follow.plain_text()
    expected_second = (1 - FOLLOW_UP_WEIGHT) * (1 / 3) + FOLLOW_UP_WEIGHT * 0.5
    assert f"Question 2: {round(expected_second * 100)}% · recorded as Again." in follow.plain_text()

    third = await world.say(ANN, TWO_POINTS)  # 2 of 3
    report = await world.say(ANN, MISSED_ONE)  # the one missed point: 1 of 1
    expected_third = (1 - FOLLOW_UP_WEIGHT) * (2 / 3) + FOLLOW_UP_WEIGHT * 1.0
    assert rating_for(expected_third) is Rating.HARD
    shown = report.plain_text()
    overall = (1.0 + expected_second + expected_third) / 3
    assert f"Interview report · {round(overall * 100)}%" in shown
    assert "rated Good" in shown and "rated Again" in shown and "rated Hard" in shown
    assert "Good ×1, Hard ×1, Again ×1" in shown
    assert "Missed: gradient of the loss; vanishing gradients." in shown  # question 2
    assert "1:35" in shown  # the first answer took 95 s from the question being sent
    assert "What next" in shown and "/question basics" in shown
    assert "Follow-up · question 3 of 3" in third.plain_text()

    # every question is a review in FSRS with the rating the report states, on the card's state
    reviews = await world.reviews()
    assert [rating for _, rating in reviews] == [int(Rating.GOOD), int(Rating.AGAIN), int(Rating.HARD)]
    learner = await world.study.learner(ANN)
    for card_id, _ in reviews:
        state = await world.store.card_state(learner.id, card_id)
        assert state is not None and state.reps == 1
    assert [(p, part) for p, part, _ in await world.answers()] == [
        (0, "main"),
        (0, "follow_up"),
        (1, "main"),
        (1, "follow_up"),
        (2, "main"),
        (2, "follow_up"),
    ]
    history = await world.run(ANN, "interview", "history")
    assert f"Basics · coach · {round(overall * 100)}%" in history.plain_text()


async def test_real_mode_keeps_verdicts_for_the_report_shows_the_time_limit_and_marks_late_answers(
    world: World,
) -> None:
    started = await world.run(ANN, "interview", "real basics 3")
    assert "⏱ 4 min for this answer." in started.plain_text()
    noted = await world.say(ANN, ONE_POINT, after=5 * 60)  # over the 4 minutes
    assert "key points" not in noted.plain_text() and "Noted." in noted.plain_text()
    assert "Over time: your answer counts, marked late." in noted.plain_text()
    assert "⏱ 2 min for this answer." in noted.plain_text()  # the follow-up's limit
    then = await world.say(ANN, MISSED_TWO)
    assert "recorded as" not in then.plain_text() and "Question 2 of 3" in then.plain_text()
    await world.run(ANN, "skip")
    report = await world.run(ANN, "skip")
    shown = report.plain_text()
    assert "Interview report" in shown and "5:00 late" in shown and "You covered" not in shown
    assert len(await world.reviews()) == 1  # skipped questions are not reviews


async def test_skip_scores_zero_without_a_review_and_end_reports_only_what_was_answered(world: World) -> None:
    started = await world.run(ANN, "interview", "basics 5")
    skipped = await world.commands.press(ANN, button(started, "Skip"))
    assert skipped.notice == "Skipped" and "Question 1 skipped" in skipped.plain_text()
    assert "Question 2 of 5" in skipped.plain_text()
    stale = await world.commands.press(ANN, button(started, "Skip"))  # the first question's button again
    assert stale.is_notice_only and "already answered" in (stale.notice or "")
    await world.say(ANN, FULL)  # question 2, its follow-up now open
    ended = await world.run(ANN, "end")
    shown = ended.plain_text()
    # question 2 counts with its answer alone (the follow-up was never answered); 3-5 were never reached
    assert "Interview report · 50%" in shown and "ended after 2 questions" in shown
    assert "skipped: 0%, not reviewed" in shown
    assert [rating for _, rating in await world.reviews()] == [int(Rating.GOOD)]
    nothing = await world.run(ANN, "end")
    assert "No interview is running" in nothing.plain_text()
    assert await world.commands.text(ANN, FULL) is None  # the interview no longer takes text


async def test_ending_before_any_answer_says_there_is_nothing_to_report(world: World) -> None:
    started = await world.run(ANN, "interview")
    ended = await world.commands.press(ANN, button(started, "End interview"))
    assert "no question was answered" in ended.plain_text()
    assert await world.reviews() == []


# --- state in the database ----------------------------------------------------------------------------------


async def test_a_restart_in_the_middle_resumes_at_the_open_question(store_location: str) -> None:
    clock = FakeClock()
    async with Store(store_location) as store:
        first = build(store, clock)
        await first.run(ANN, "interview", "basics 3")
        await first.say(ANN, FULL)
        follow_up = (await first.say(ANN, FULL)).plain_text()
        assert "Question 2 of 3" in follow_up
    async with Store(store_location) as store:  # a new process on the same database
        second = build(store, clock)
        resumed = await second.run(ANN, "interview")
        assert "You're in an interview already" in resumed.plain_text()
        assert "Question 2 of 3" in resumed.plain_text() and "Mock interview ·" not in resumed.plain_text()
        await second.say(ANN, ONE_POINT)
        await second.say(ANN, MISSED_TWO)
        await second.say(ANN, FULL)
        report = await second.say(ANN, FULL)
        assert "Interview report" in report.plain_text()
        assert len(await second.reviews()) == 3


async def test_an_interview_left_for_two_hours_expires_with_a_report_of_what_was_answered(world: World) -> None:
    await world.run(ANN, "interview", "basics 4")
    await world.say(ANN, FULL)
    await world.say(ANN, FULL)  # question 1 done: Good
    world.clock.advance(hours=2, minutes=1)
    expired = await world.say(ANN, FULL, after=0)
    shown = expired.plain_text()
    assert "expired after 2 hours" in shown and "didn't grade that message" in shown
    assert "Interview report · 100%" in shown and "expired after 1 question" in shown
    assert len(await world.reviews()) == 1  # the late message was not graded
    history = await world.run(ANN, "interview", "history")
    assert "(expired)" in history.plain_text()
    again = await world.run(ANN, "interview", "basics 3")  # a new one starts
    assert "Question 1 of 3" in again.plain_text()


async def test_an_expired_interview_reports_when_a_new_one_is_asked_for(world: World) -> None:
    await world.run(ANN, "interview", "basics 3")
    await world.say(ANN, ONE_POINT)
    world.clock.advance(hours=3)
    reply = await world.run(ANN, "interview", "basics 3")
    assert "expired after 2 hours" in reply.plain_text() and "Interview report" in reply.plain_text()
    assert "Question 1 of 3" in text(reply)  # the new interview follows the old report
    learner = await world.study.learner(ANN)
    assert [i.status for i in await world.store.recent_interviews(learner.id, 5)] == [Status.RUNNING, Status.EXPIRED]


async def test_two_answers_to_the_same_prompt_count_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await world.run(ANN, "interview", "basics 3")
    world.clock.advance(seconds=20)
    both_read = asyncio.Barrier(2)
    read = world.store.running_interview_for

    async def read_then_wait(identity: Identity) -> object:
        found = await read(identity)
        await both_read.wait()  # both answers have seen the same open prompt before either is stored
        return found

    monkeypatch.setattr(world.store, "running_interview_for", read_then_wait)
    replies = await asyncio.gather(world.commands.text(ANN, FULL), world.commands.text(ANN, ONE_POINT))
    assert sorted(bool(r and "Follow-up" in r.plain_text()) for r in replies) == [False, True]
    assert any(r is not None and "already answered" in (r.notice or "") for r in replies)
    assert [(p, part) for p, part, _ in await world.answers()] == [(0, "main")]


# --- where and how it runs ------------------------------------------------------------------------------


async def test_in_a_group_without_private_replies_it_points_to_a_private_chat(world: World) -> None:
    group = caller("1", "Ann", chat="-100", group=True)
    reply = await world.run(group, "interview")
    assert reply.private_start == "interview" and "private chat" in reply.plain_text()
    assert await world.store.running_interview((await world.study.learner(ANN)).id) is None
    deep_link = await world.run(ANN, "start", "interview")  # t.me/<bot>?start=interview
    assert "Question 1 of 5" in deep_link.plain_text()


async def test_in_a_discord_server_it_runs_for_the_caller_alone(world: World) -> None:
    server = Caller(Identity("test", "1"), "Ann", Chat("test", "channel:9", is_group=True, private_replies=True))
    reply = await world.run(server, "interview", "3")
    assert reply.private and reply.answer_box and "Question 1 of 3" in reply.plain_text()
    assert await world.commands.text(server, FULL) is not None


async def test_question_waits_while_an_interview_runs_and_skip_works_outside_one(world: World) -> None:
    await world.run(ANN, "interview", "basics 3")
    refused = await world.run(ANN, "question")
    assert "You're in a mock interview (question 1 of 3)" in refused.plain_text()
    await world.run(ANN, "end")
    asked = await world.run(ANN, "question")
    assert "Show answer" in [b.label for row in asked.buttons for b in row]
    skipped = await world.run(ANN, "skip")
    assert skipped.notice == "Skipped" and not skipped.edit
    skip_action = parse_action(button(skipped, "Skip"))
    assert skip_action is not None and skip_action.verb is Verb.SKIP
    assert skip_action.target != parse_action(button(asked, "Skip")).target  # type: ignore[union-attr]


async def test_skip_with_nothing_open_says_so(world: World) -> None:
    reply = await world.run(ANN, "skip")
    assert "Nothing to skip" in reply.plain_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("11", "3 to 10 questions, not 11"),
        ("2", "3 to 10 questions, not 2"),
        ("quantum", "I don't know the topic “quantum”"),
    ],
)
async def test_bad_arguments_get_a_clear_message_and_start_nothing(world: World, args: str, says: str) -> None:
    reply = await world.run(ANN, "interview", args)
    assert says in reply.plain_text() and "/interview [coach|real]" in reply.plain_text()
    learner = await world.study.learner(ANN)
    assert await world.store.running_interview(learner.id) is None


async def test_another_learner_cannot_press_my_interview_buttons(world: World) -> None:
    started = await world.run(ANN, "interview", "basics 3")
    await world.run(BOB, "interview", "basics 3")  # Bob has his own
    refused = await world.commands.press(BOB, button(started, "End interview"))
    assert refused.is_notice_only and "over" in (refused.notice or "")
    learner = await world.study.learner(ANN)
    assert await world.store.running_interview(learner.id) is not None


async def test_a_non_answer_is_not_graded_and_leaves_the_question_open(world: World) -> None:
    await world.run(ANN, "interview", "basics 3")
    reply = await world.say(ANN, "ok")
    assert "I didn't take “ok” as an answer" in reply.plain_text() and "Question 1 of 3" in reply.plain_text()
    assert await world.answers() == []


# --- choosing questions --------------------------------------------------------------------------------------


async def test_mixed_interviews_spread_over_topics_never_repeat_and_end_with_one_behavioural_question(
    world: World,
) -> None:
    await world.run(ANN, "interview", "4")
    learner = await world.study.learner(ANN)
    running = await world.store.running_interview(learner.id)
    assert running is not None
    cards = [world.study.bank.card(card_id) for card_id in running.card_ids]
    assert len(set(running.card_ids)) == 4
    kinds = [card.kind for card in cards if card is not None]
    assert kinds == [Kind.TECHNICAL] * 3 + [Kind.BEHAVIORAL]
    assert {card.topic for card in cards[:3] if card is not None} == {"basics", "optim"}


async def test_due_cards_come_first(world: World) -> None:
    learner = await world.study.learner(ANN)
    for card_id in ("optim-4", "basics-5"):  # reviewed weeks ago: due now
        card = world.study.bank.card(card_id)
        assert card is not None
        state, review = world.study.review_outcome(learner, card, None, Rating.GOOD, ReviewMode.REVEAL)
        async with world.store.db.transaction() as tx:
            await world.store._write_review(tx, state, review)
    world.clock.advance(days=40)
    await world.run(ANN, "interview", "3")
    running = await world.store.running_interview(learner.id)
    assert running is not None and set(running.card_ids[:2]) == {"optim-4", "basics-5"}


def test_rating_follows_the_score_thresholds() -> None:
    assert [rating_for(s) for s in (1.0, 0.8, 0.79, 0.5, 0.49, 0.0)] == [
        Rating.GOOD,
        Rating.GOOD,
        Rating.HARD,
        Rating.HARD,
        Rating.AGAIN,
        Rating.AGAIN,
    ]
    answered = Answer(0, Phase.MAIN, "c", 0.6, (), 1000, datetime(2026, 1, 1, tzinfo=UTC))
    assert question_score(answered, None) == 0.6
    assert question_score(answered, replace(answered, part=Phase.FOLLOW_UP, score=1.0)) == pytest.approx(0.7)
    assert question_score(replace(answered, skipped=True), None) == 0.0


async def test_export_includes_interviews_and_forget_deletes_them(world: World) -> None:
    await world.run(ANN, "interview", "basics 3")
    await world.say(ANN, FULL)
    exported = await world.run(ANN, "export")
    assert exported.attachment is not None
    data = json.loads(exported.attachment[1])
    assert len(data["interviews"]) == 1 and data["interviews"][0]["status"] == "running"
    assert [row["part"] for row in data["interview_answers"]] == ["main"]
    confirm = await world.run(ANN, "forget")
    await world.commands.press(ANN, confirm.buttons[0][0].action)
    left = await world.store.db.fetch(
        "SELECT COUNT(*) FROM interviews UNION ALL SELECT COUNT(*) FROM interview_answers"
    )
    assert [int(row[0]) for row in left] == [0, 0]


async def test_a_topic_with_fewer_cards_than_asked_says_how_many_it_found_in_words(store_location: str) -> None:
    from bot.core.bank import QuestionBank
    from bot.core.model import Topic
    from tests.conftest import make_card

    base = small_bank()
    bank = QuestionBank([*base.cards, make_card("lone-0", "lone", 1)], [*base.topics, Topic("lone", "Lone")])
    async with Store(store_location) as store:
        clock = FakeClock()
        study = StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        commands = Commands(study)
        commands.attach_interview(InterviewService(store, study, clock, rng=random.Random(6)))
        one = (await commands.run(ANN, "interview", "lone 3")).plain_text()
        two = (await commands.run(BOB, "interview", "stories 3")).plain_text()
    assert "I found 1 question for you, not 3." in one
    assert "I found 2 questions for you, not 3." in two
