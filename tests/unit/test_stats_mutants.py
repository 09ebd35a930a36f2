"""/stats and the daily review cap at their edges, as a Discord user sees them (Markdown: **bold**,
*italic*, `code`): a review due this very moment, the 30-day window's first minute, the learner's own
cap, no streak yet, two freezes, a plan that /stats ends, the weakest topics' styling, the backlog note
and what waits for the next days; and recall and "reviewed today" for cards the schedule has no memory of.
The clock stands still at Mon 2 March 2026, 09:00 UTC, unless a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fsrs
import pytest

from bot.adapters.discord import render_block
from bot.core.commands import Commands
from bot.core.model import CardState, PickContext, Rating
from bot.core.study import StudyService
from bot.core.views import Reply
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock, MemoryStore
from tests.unit.test_plan import learn, with_bank
from tests.unit.test_weak import history, review

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
TODAY = "2026-03-02"
LONG_AGO = "2025-12-01"  # the first day of cards met before today
ME = caller()


def seen(reply: Reply) -> str:
    return "\n\n".join(render_block(block) for block in reply.blocks)


class World:
    """One learner (no new cards unless asked) on the small bank, with card states placed by hand."""

    def __init__(self) -> None:
        self.clock = FakeClock(NOW)
        self.store = MemoryStore()
        self.study = StudyService(self.store, small_bank(), self.clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        self.commands = Commands(self.study)

    async def learner_id(self, *, reviews_per_day: int = 100) -> int:
        learner = await self.study.learner(ME)
        await self.store.set_new_per_day(learner.id, 0)
        await self.store.set_reviews_per_day(learner.id, reviews_per_day)
        return learner.id

    def place(
        self, learner_id: int, card_id: str, due: datetime, *, first_day: str = LONG_AGO, last: datetime | None = None
    ) -> None:
        """A card in review with a stability of 5 days, last reviewed `last` (default: 5 days before `due`)."""
        last_review = last or due - timedelta(days=5)
        self.store.states[(learner_id, card_id)] = CardState(
            learner_id, card_id, 2, None, 5.0, 5.0, due, last_review, 3, 0, first_day
        )

    async def screen(self, name: str, args: str = "") -> str:
        return seen(await self.commands.run(ME, name, args))


# --- the numbers of /stats ----------------------------------------------------------------------------------


async def test_a_review_due_this_very_moment_counts_once_as_due_now() -> None:
    world = World()
    me = await world.learner_id()
    world.place(me, "basics-0", NOW - timedelta(days=1))
    world.place(me, "basics-1", NOW)  # due this very moment
    world.place(me, "basics-2", NOW + timedelta(seconds=1))  # not yet
    lines = (await world.screen("stats")).splitlines()
    assert "• Due now: 2" in lines


async def test_reviews_count_from_exactly_30_days_ago_and_not_a_minute_earlier() -> None:
    world = World()
    me = await world.learner_id()
    await review(world.store, me, "basics-0", Rating.GOOD, NOW - timedelta(days=30))  # the window's first instant
    await review(world.store, me, "basics-1", Rating.AGAIN, NOW - timedelta(days=30, minutes=1))  # just before it
    lines = (await world.screen("stats")).splitlines()
    assert "• Reviews in the last 30 days: 1" in lines
    assert "• Retention (30 days, reviews of cards seen before): 100%" in lines


async def test_stats_show_the_learners_own_daily_review_cap() -> None:
    world = World()
    await world.learner_id()
    assert (await world.screen("reviews", "50")).startswith("Done: up to 50 due reviews a day.")
    assert "• Reviews today: 0 of 50 (/reviews)" in (await world.screen("stats")).splitlines()


async def test_a_learner_who_never_answered_has_no_streak_yet() -> None:
    world = World()
    await world.learner_id()
    lines = (await world.screen("stats")).splitlines()
    assert "• 🔥 no streak yet" in lines
    assert not any("-day streak" in line for line in lines)


async def test_two_freezes_in_a_streak_are_listed_with_a_comma_between_their_days() -> None:
    world = World()
    me = await world.learner_id()
    # Mon 2, Tue 3, (Wed 4 missed), Thu 5 to Sun 8, (Mon 9 missed), Tue 10: one missed day in each week
    for day in (2, 3, 5, 6, 7, 8, 10):
        await review(world.store, me, "basics-0", Rating.GOOD, datetime(2026, 3, day, 8, 0, tzinfo=UTC))
    world.clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    assert (
        "• 🔥 7-day streak (best 7); kept by 2 freezes (Wed 04 Mar, Mon 09 Mar): one missed day a week is forgiven"
        in (await world.screen("stats")).splitlines()
    )


async def test_stats_that_end_a_passed_plan_count_the_cards_met_during_it() -> None:
    clock = FakeClock(NOW)
    planning = with_bank(small_bank(), MemoryStore(), clock)
    await planning.run(ME, "plan", "2026-03-16")
    await learn(planning, 2)
    clock.advance(days=15)  # Tue 17 March: the plan is over
    text = (await planning.run(ME, "stats")).plain_text()
    assert "🏁 Your plan to Mon 16 Mar 2026 is over." in text
    assert "Since 02 Mar you met 2 of the 14 new cards it planned and did 2 reviews." in text


async def test_the_weakest_topics_are_named_in_code_under_a_bold_title() -> None:
    world = World()
    me = await world.learner_id()
    await history(world.store, world.clock, me, "basics-0", passed=4, failed=1)  # 80%
    await history(world.store, world.clock, me, "optim-0", passed=1, failed=4)  # 20%
    text = await world.screen("stats")
    section = "**Weakest topics (30 days)**" + text.split("**Weakest topics (30 days)**")[1].split("**By topic**")[0]
    assert section == (
        "**Weakest topics (30 days)**\n\n"
        "• `optim` 20% retention (5 reviews)\n"
        "• `basics` 80% retention (5 reviews)\n\n"
        "Practise them with `/question weak`.\n\n"
    )


# --- the daily review cap: the backlog note and what waits ------------------------------------------------


async def test_the_backlog_note_counts_reviews_due_now_of_cards_met_before_today_in_italics() -> None:
    world = World()
    me = await world.learner_id(reviews_per_day=10)
    for n in range(5):
        world.place(me, f"basics-{n}", NOW - timedelta(days=1 + n))
        world.place(me, f"optim-{n}", NOW - timedelta(hours=1 + n))
    world.place(me, "basics-5", NOW)  # due this very moment: the eleventh review due
    world.place(me, "optim-5", NOW + timedelta(seconds=1))  # not due yet
    # met today and due again (a learning step): today's own work, not part of the backlog; it comes first
    world.place(me, "story-0", NOW - timedelta(minutes=1), first_day=TODAY, last=NOW - timedelta(minutes=11))
    blocks = (await world.screen("question")).split("\n\n")
    assert blocks[0] == (
        "*11 reviews are due. At 10 a day they are spread over about 2 days, the ones you are most likely to "
        "forget first; none is lost. /reviews N changes the daily number.*"
    )
    assert blocks[1].startswith("**Stories · core · behavioural**")


async def test_exactly_as_many_reviews_due_as_the_cap_get_no_backlog_note() -> None:
    world = World()
    me = await world.learner_id(reviews_per_day=10)
    for n in range(5):
        world.place(me, f"basics-{n}", NOW - timedelta(days=1 + n))
        world.place(me, f"optim-{n}", NOW - timedelta(hours=1 + n))
    text = await world.screen("question")
    assert text.startswith("**Basics · ") and "reviews are due" not in text


async def test_stats_count_as_waiting_the_due_reviews_of_cards_met_before_today_beyond_the_cap() -> None:
    world = World()
    me = await world.learner_id(reviews_per_day=10)
    for n in range(5):  # today's ten reviews, done: the cap is reached
        for topic in ("basics", "optim"):
            world.place(me, f"{topic}-{n}", NOW + timedelta(days=3), last=NOW - timedelta(hours=1))
    world.place(me, "basics-5", NOW - timedelta(days=2))  # waits
    world.place(me, "optim-5", NOW)  # due this very moment: waits too
    world.place(me, "story-0", NOW - timedelta(minutes=1), first_day=TODAY)  # met today: never waits for the cap
    world.place(me, "story-1", NOW + timedelta(seconds=1))  # not due yet
    lines = (await world.screen("stats")).splitlines()
    assert lines[2:7] == [
        "• Cards seen: 14 of 14",
        "• Due now: 3",
        "• Reviews today: 10 of 10 (/reviews)",
        "• Waiting for the next days (daily review cap reached): 2",
        "• New today: 1 of 0",
    ]


# --- recall and reviewed today, for cards the schedule has no memory of --------------------------------------


def test_a_card_never_reviewed_has_no_chance_of_recall_and_a_reviewed_one_fsrs_own() -> None:
    world = World()
    context = PickContext(
        schedule=(), skipped=frozenset(), memory={"basics-0": (5.0, NOW - timedelta(days=5)), "basics-1": (None, None)}
    )
    assert world.study.recall(context, "basics-2", NOW) == 0.0  # nothing known of it
    assert world.study.recall(context, "basics-1", NOW) == 0.0
    assert world.study.recall(context, "basics-0", NOW) == pytest.approx(0.9)  # FSRS: 90% after `stability` days


def test_working_out_recall_never_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Picking among a backlog weighs every due card's recall: a pause per card would add up."""

    def no_pause(seconds: float) -> None:
        raise AssertionError(f"paused {seconds} s")

    monkeypatch.setattr("fsrs.card.time.sleep", no_pause)
    world = World()
    context = PickContext(schedule=(), skipped=frozenset(), memory={"basics-0": (5.0, NOW - timedelta(days=5))})
    assert world.study.recall(context, "basics-0", NOW) == pytest.approx(0.9)


async def test_a_schedule_without_memory_has_nothing_reviewed_today() -> None:
    world = World()
    learner = await world.study.learner(ME)
    schedule = (("basics-0", NOW - timedelta(days=1), LONG_AGO), ("basics-1", NOW, LONG_AGO))
    assert world.study.reviewed_today(learner, PickContext(schedule=schedule, skipped=frozenset())) == set()
    remembered = PickContext(
        schedule=schedule, skipped=frozenset(), memory={"basics-1": (5.0, NOW - timedelta(hours=1))}
    )
    assert world.study.reviewed_today(learner, remembered) == {"basics-1"}


async def test_showing_the_answer_of_a_new_or_a_seen_card_never_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reveal works out four ratings' intervals: a pause per rating would hold up every press."""

    def no_pause(seconds: float) -> None:
        raise AssertionError(f"paused {seconds} s")

    monkeypatch.setattr("fsrs.card.time.sleep", no_pause)
    world = World()
    me = await world.learner_id()
    await world.store.set_new_per_day(me, 1)
    world.place(me, "optim-0", NOW - timedelta(days=1))  # a seen card, due
    for expected in ("Question optim-0?", "Question basics-0?"):  # the review first, then a new card
        question = await world.commands.run(ME, "question", "")
        assert expected in question.plain_text()
        revealed = await world.commands.press(ME, question.buttons[0][0].action)
        assert [b.label.split(" · ")[0] for row in revealed.buttons for b in row] == ["Again", "Hard", "Good", "Easy"]
        await world.commands.press(ME, revealed.buttons[0][0].action)


async def test_forgetting_a_card_in_review_adds_one_lapse_to_those_it_had() -> None:
    world = World()
    me = await world.learner_id()
    world.store.states[(me, "basics-0")] = CardState(
        me, "basics-0", 2, None, 5.0, 5.0, NOW - timedelta(days=1), NOW - timedelta(days=6), 6, 2, LONG_AGO
    )
    question = await world.commands.run(ME, "question", "")
    revealed = await world.commands.press(ME, question.buttons[0][0].action)
    rated = await world.commands.press(ME, revealed.buttons[0][0].action)  # Again
    assert rated.notice == "Saved: Again"
    state = world.store.states[(me, "basics-0")]
    assert (state.reps, state.lapses) == (7, 3)
