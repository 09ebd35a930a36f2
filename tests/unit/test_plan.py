"""/plan: the daily cap for dates near and far, with and without topics; on-track reporting day by day on a
fake clock; bad input that changes nothing; the countdown in /stats; clearing and ending a plan; and
which new card comes first while a plan runs. The clock starts on Mon 2 March 2026, 09:00 UTC."""

from __future__ import annotations

import random
from datetime import date

import fsrs
import pytest

from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.plan import MAX_NEW_PER_DAY, PlanService, parse_day, plan_pace
from bot.core.study import StudyService
from bot.core.throttle import Throttle
from bot.core.views import Reply
from tests.conftest import CONTENT, caller, small_bank
from tests.fakes import FakeClock, MemoryStore
from tests.unit.test_weak import history, topic_of

ANN = caller("1", "Ann")
TODAY = date(2026, 3, 2)


def with_bank(bank: QuestionBank, store: MemoryStore, clock: FakeClock) -> Commands:
    study = StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(7))
    commands = Commands(study, throttle=Throttle(clock, limit=10**6))  # one learner answering fast, on purpose
    commands.attach_plan(PlanService(store, study))
    return commands


@pytest.fixture
def planning(store: MemoryStore, clock: FakeClock) -> Commands:
    return with_bank(small_bank(), store, clock)


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


async def learn(commands: Commands, count: int) -> list[Reply]:
    """Answer questions (rated Good) until `count` new cards are met; returns the new cards' questions.
    Due reviews that come first are answered too."""
    asked: list[Reply] = []
    while len(asked) < count:
        question = await commands.run(ANN, "question")
        revealed = await commands.press(ANN, button(question, "Show answer"))
        assert (await commands.press(ANN, button(revealed, "Good"))).notice == "Saved: Good"
        if " · new" in question.plain_text():
            asked.append(question)
    return asked


async def cap(commands: Commands) -> int:
    return (await commands.study.learner(ANN)).new_per_day


# --- the pace -------------------------------------------------------------------------------------------


def test_the_pace_spreads_the_unseen_cards_up_to_five_days_before_the_date() -> None:
    far = plan_pace(176, 0, TODAY, date(2026, 9, 1), current_cap=10)  # 179 days for new cards
    assert (far.cap, far.rushed, far.days, far.last_new_day) == (1, False, 179, date(2026, 8, 27))
    near = plan_pace(176, 0, TODAY, date(2026, 3, 27), current_cap=10)  # 2..22 March: 21 days
    assert (near.cap, near.rushed, near.days) == (9, False, 21)  # 9 * 21 = 189 >= 176 > 8 * 21
    one_topic = plan_pace(11, 0, TODAY, date(2026, 3, 27), current_cap=10)
    assert one_topic.cap == 1


def test_new_cards_already_met_today_count_against_todays_cap() -> None:
    assert plan_pace(20, 0, TODAY, date(2026, 3, 11), current_cap=10).cap == 4  # 5 days: 20 / 5
    assert plan_pace(20, 6, TODAY, date(2026, 3, 11), current_cap=10).cap == 6  # (20 + 6) / 5 rounded up


def test_a_date_too_close_is_rushed_at_the_largest_cap() -> None:
    close = plan_pace(176, 0, TODAY, date(2026, 3, 10), current_cap=10)  # 4 days: 44 a day needed
    assert (close.cap, close.rushed) == (44, False)
    closer = plan_pace(176, 0, TODAY, date(2026, 3, 9), current_cap=10)  # 3 days: 59 a day
    assert (closer.cap, closer.rushed, closer.days) == (MAX_NEW_PER_DAY, True, 3)
    inside = plan_pace(3, 0, TODAY, date(2026, 3, 6), current_cap=10)  # within five days: no day for new cards
    assert (inside.cap, inside.rushed, inside.days) == (MAX_NEW_PER_DAY, True, 0)


def test_with_nothing_left_to_meet_the_cap_stays() -> None:
    assert plan_pace(0, 3, TODAY, date(2026, 3, 27), current_cap=7) == plan_pace(0, 0, TODAY, date(2026, 3, 27), 7)
    assert plan_pace(0, 3, TODAY, date(2026, 3, 27), current_cap=7).cap == 7


# --- setting a plan -----------------------------------------------------------------------------------


async def test_a_far_date_sets_a_small_cap_and_a_near_one_a_larger_one(planning: Commands) -> None:
    far = (await planning.run(ANN, "plan", "2026-06-30")).plain_text()  # 116 days for 14 cards
    assert "Plan set: interview on Tue 30 Jun 2026 (UTC)" in far
    assert "Topics: every topic (14 cards)." in far
    assert "I set your daily new cards to 1 (it was 10)" in far and "by Thu 25 Jun" in far
    assert await cap(planning) == 1
    near = (await planning.run(ANN, "plan", "2026-03-09")).plain_text()  # 2, 3 and 4 March: 3 days
    assert "I set your daily new cards to 5 (it was 1)" in near and "by Wed 04 Mar" in near
    assert await cap(planning) == 5


async def test_topics_narrow_the_plan_and_its_cap(planning: Commands) -> None:
    reply = (await planning.run(ANN, "plan", "2026-03-09 optim")).plain_text()
    assert "Topics: optim (6 cards)." in reply and "daily new cards to 2" in reply
    assert "While the plan runs, new cards come from its topics first." in reply
    both = (await planning.run(ANN, "plan", "2026-03-09 optim, Basics")).plain_text()
    assert "Topics: optim, basics (12 cards)." in both and "daily new cards to 4" in both


async def test_a_plan_too_close_says_so_and_puts_the_articles_questions_then_the_weakest_topics_first(
    store: MemoryStore, clock: FakeClock
) -> None:
    bank = QuestionBank.load(CONTENT)
    commands = with_bank(bank, store, clock)
    me = (await commands.study.learner(ANN)).id
    weakest = next(card for card in bank.cards if card.topic == "data" and card.seed is None)
    await history(store, clock, me, weakest.id, passed=0, failed=5)  # data: the one weak topic
    reply = (await commands.run(ANN, "plan", "2026-03-09")).plain_text()
    unseen = len(bank.cards) - 1  # every card but the weak one reviewed
    assert f"That is too soon to meet all {unseen} new cards five days before it, even at 50 a day." in reply
    assert f"then your weakest topics ({weakest.topic})" in reply
    assert await cap(commands) == 50
    seeds = [card for card in bank.cards if card.seed is not None]
    asked = await learn(commands, len(seeds) + 1)
    asked_ids = [store.attempts[int(button(a, "Show answer").split(":")[1])].card_id for a in asked]
    assert {bank.card(cid).seed is not None for cid in asked_ids[: len(seeds)]} == {True}  # type: ignore[union-attr]
    after_seeds = bank.card(asked_ids[-1])
    assert after_seeds is not None and after_seeds.seed is None and after_seeds.topic == weakest.topic


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("2026/04/01", "“2026/04/01” is not a date written as YYYY-MM-DD."),
        ("tomorrow", "“tomorrow” is not a date written as YYYY-MM-DD."),
        ("2026-02-30", "2026-02-30 is not a day on the calendar."),
        ("2026-03-01", "01 Mar 2026 has already passed. A plan needs a date after today."),
        ("2026-03-02", "Your interview is today? Then it's time for a last review, not a plan: good luck! 🍀"),
        ("2027-03-03", "03 Mar 2027 is more than a year away. A plan takes a date up to 02 Mar 2027"),
        ("2026-04-01 astrology", "I don't know the topic “astrology”. Topics: basics, optim, stories."),
        ("off now", "Usage: /plan YYYY-MM-DD [topics]"),
    ],
)
async def test_bad_input_is_explained_and_changes_nothing(
    planning: Commands, store: MemoryStore, args: str, says: str
) -> None:
    await planning.run(ANN, "plan", "2026-06-30 optim")
    before = (dict(store.plans), dict(store.learners))
    assert says in (await planning.run(ANN, "plan", args)).plain_text()
    assert (dict(store.plans), dict(store.learners)) == before


async def test_a_year_ahead_is_the_furthest_date(planning: Commands) -> None:
    assert "Plan set" in (await planning.run(ANN, "plan", "2027-03-02")).plain_text()
    assert parse_day("2027-3-2") == date(2027, 3, 2)


async def test_the_date_is_the_learners_local_day(planning: Commands, store: MemoryStore, clock: FakeClock) -> None:
    me = await planning.study.learner(ANN)
    await store.set_timezone(me.id, "Pacific/Auckland")  # already 3 March there
    clock.set(clock.now().replace(hour=13))  # 02:00 on 3 March in Auckland
    reply = (await planning.run(ANN, "plan", "2026-03-02")).plain_text()
    assert "has already passed" in reply
    assert "(Pacific/Auckland)" in (await planning.run(ANN, "plan", "2026-04-01")).plain_text()
    assert store.plans[me.id].timezone == "Pacific/Auckland" and store.plans[me.id].start_day == "2026-03-03"


# --- where the learner stands -------------------------------------------------------------------------


async def test_on_track_is_reported_day_by_day(planning: Commands, clock: FakeClock) -> None:
    # 14 cards, new ones until 11 March (10 days): 1.4 a day planned, a cap of 2
    assert "daily new cards to 2" in (await planning.run(ANN, "plan", "2026-03-16")).plain_text()

    async def standing() -> str:
        return (await planning.run(ANN, "plan")).plain_text()

    shown = await standing()
    assert "14 days to your interview (Mon 16 Mar) · 14 cards of your plan still new" in shown
    assert "Cards left to meet: 14 of the 14 new when you set the plan" in shown
    assert "New cards a day: 2, set by the plan (it was 10)" in shown
    assert "Last day for new cards: Wed 11 Mar, then 5 days of reviews" in shown
    assert "On track: 0 new cards met so far; the plan expects 2 by the end of today." in shown

    await learn(planning, 2)  # day 1: 2 of 2
    assert "On track: 2 new cards met, today's share included." in await standing()
    clock.advance(days=1)  # day 2: 2 of 3 planned by tonight
    assert "On track: 2 new cards met so far; the plan expects 3 by the end of today." in await standing()
    clock.advance(days=1)  # day 3, nothing done on day 2: 3 planned by now
    behind = await standing()
    assert "A little behind: 2 new cards met, 3 planned by now." in behind
    assert "/plan 2026-03-16 again to spread the rest over the days left" in behind
    await learn(planning, 2)
    assert "On track: 4 new cards met so far; the plan expects 5 by the end of today." in await standing()
    clock.advance(days=1)
    await learn(planning, 2)
    shown = await standing()
    assert "On track: 6 new cards met, today's share included." in shown
    assert "11 days to your interview (Mon 16 Mar) · 8 cards of your plan still new" in shown


async def test_with_every_card_met_the_days_left_are_for_reviews(planning: Commands) -> None:
    await planning.run(ANN, "newcards", "50")
    await learn(planning, 14)
    reply = (await planning.run(ANN, "plan", "2026-03-20")).plain_text()
    assert "You have already seen every card of the plan" in reply and "stay at 50" in reply
    assert (
        "You have seen every card of the plan: the days left are for reviews."
        in (await planning.run(ANN, "plan")).plain_text()
    )


async def test_plan_alone_without_a_plan_says_how_to_set_one(planning: Commands) -> None:
    text = (await planning.run(ANN, "plan")).plain_text()
    assert "You have no plan yet." in text and "Usage: /plan YYYY-MM-DD [topics]" in text


async def test_stats_carry_a_one_line_countdown(planning: Commands, clock: FakeClock) -> None:
    assert "📅" not in (await planning.run(ANN, "stats")).plain_text()
    await planning.run(ANN, "plan", "2026-03-20 optim")
    await learn(planning, 1)
    clock.advance(days=2)
    lines = (await planning.run(ANN, "stats")).plain_text().splitlines()
    assert "📅 16 days to your interview (Fri 20 Mar) · 5 cards of your plan still new" in lines
    clock.set(clock.now().replace(day=20))
    assert "📅 Your interview is today. Good luck! 🍀" in (await planning.run(ANN, "stats")).plain_text()


# --- new cards under a plan ---------------------------------------------------------------------------


async def test_new_cards_come_from_the_plans_topics_first_then_the_rest(planning: Commands) -> None:
    await planning.run(ANN, "plan", "2026-03-09 stories")  # 2 cards: a cap of 1
    await planning.run(ANN, "newcards", "4")
    asked = await learn(planning, 4)
    assert [topic_of(planning.study, a) for a in asked][:2] == ["stories", "stories"]
    assert {topic_of(planning.study, a) for a in asked[2:]} <= {"basics", "optim"}


async def test_an_explicit_topic_still_wins_over_the_plan(planning: Commands) -> None:
    await planning.run(ANN, "plan", "2026-03-09 stories")
    assert topic_of(planning.study, await planning.run(ANN, "question", "optim")) == "optim"


async def test_newcards_while_a_plan_runs_says_what_it_means_for_the_plan(planning: Commands) -> None:
    await planning.run(ANN, "plan", "2026-03-09")  # a cap of 5
    lower = (await planning.run(ANN, "newcards", "3")).plain_text()
    assert "Done: up to 3 new cards a day." in lower
    assert "Your plan to 09 Mar set 5 a day; with fewer, some of its cards may still be new" in lower
    assert "When the plan ends, your number stays as you set it." in lower
    higher = (await planning.run(ANN, "newcards", "8")).plain_text()
    assert "That's at least the 5 a day your plan to 09 Mar needs." in higher
    shown = (await planning.run(ANN, "plan")).plain_text()
    assert "New cards a day: 5, set by the plan (it was 10); you changed it to 8 with /newcards" in shown


async def test_newcards_at_exactly_the_plans_number_is_enough_and_fewer_is_explained(planning: Commands) -> None:
    await planning.run(ANN, "plan", "2026-03-09")  # a cap of 5
    assert (await planning.run(ANN, "newcards", "5")).plain_text() == (
        "Done: up to 5 new cards a day.\n\n"
        "That's at least the 5 a day your plan to 09 Mar needs. When the plan ends, your number stays as you set it."
    )
    assert (await planning.run(ANN, "newcards", "4")).plain_text() == (
        "Done: up to 4 new cards a day.\n\n"
        "Your plan to 09 Mar set 5 a day; with fewer, some of its cards may still be new in the last days before "
        "the interview. /plan shows where you stand. When the plan ends, your number stays as you set it."
    )


# --- clearing and ending --------------------------------------------------------------------------------


async def test_plan_off_clears_it_and_puts_the_cap_back(planning: Commands, store: MemoryStore) -> None:
    await planning.run(ANN, "plan", "2026-03-09")
    await planning.run(ANN, "plan", "2026-03-20")  # planning again keeps the cap from before the first plan
    assert await cap(planning) == 1
    assert (await planning.run(ANN, "plan", "off")).plain_text() == (
        "Plan cleared: no more countdown to 20 Mar. Your daily new cards are back to 10."
    )
    assert store.plans == {} and await cap(planning) == 10
    assert "You have no plan to clear." in (await planning.run(ANN, "plan", "off")).plain_text()


async def test_a_cap_changed_during_the_plan_is_kept_when_it_ends(planning: Commands) -> None:
    await planning.run(ANN, "plan", "2026-03-09")
    await planning.run(ANN, "newcards", "7")
    assert (await planning.run(ANN, "plan", "stop")).plain_text().endswith("Your daily new cards are at 7.")
    assert await cap(planning) == 7


async def test_after_the_date_the_next_question_ends_the_plan_with_a_summary(
    planning: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    await planning.run(ANN, "plan", "2026-03-16")
    await learn(planning, 2)
    clock.advance(days=14)  # 16 March: the day itself, the plan still runs
    assert "Your interview is today" in (await planning.run(ANN, "stats")).plain_text()
    clock.advance(days=1)
    asked = (await planning.run(ANN, "question")).plain_text()
    assert asked.startswith("🏁 Your plan to Mon 16 Mar 2026 is over. I hope the interview went well!")
    assert "Since 02 Mar you met 2 of the 14 new cards it planned and did 2 reviews." in asked
    assert "Your daily new cards are back to 10. Got another date? Send /plan YYYY-MM-DD." in asked
    assert "Answer in your own words" in asked  # the question follows the summary
    assert store.plans == {} and await cap(planning) == 10
    assert "is over" not in (await planning.run(ANN, "question")).plain_text()  # said once


@pytest.mark.parametrize("where", ["stats", "plan"])
async def test_stats_and_plan_end_a_passed_plan_too(planning: Commands, clock: FakeClock, where: str) -> None:
    await planning.run(ANN, "plan", "2026-03-09")
    clock.advance(days=8)
    text = (await planning.run(ANN, where)).plain_text()
    assert "🏁 Your plan to Mon 09 Mar 2026 is over." in text
    assert "did 0 reviews" in text
    if where == "stats":
        assert "New today: 0 of 10" in text  # the cap is back already
        assert "📅" not in text
    assert "You have no plan yet." in (await planning.run(ANN, "plan")).plain_text()


async def test_the_summary_reports_retention_over_the_plan(
    planning: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    await planning.run(ANN, "plan", "2026-03-09")
    me = (await planning.study.learner(ANN)).id
    await history(store, clock, me, "basics-0", passed=5, failed=0)  # an hour before the plan: not in it
    clock.advance(hours=2)
    await history(store, clock, me, "optim-0", passed=3, failed=1)
    clock.advance(days=8)
    text = (await planning.run(ANN, "plan")).plain_text()
    assert "did 4 reviews (retention 75%)" in text


async def test_the_question_that_ends_a_plan_already_has_the_cap_put_back(
    planning: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    await planning.run(ANN, "plan", "2026-03-09 stories")  # a cap of 1; the date is a UTC day
    me = await planning.study.learner(ANN)
    await store.set_timezone(me.id, "Pacific/Auckland")  # moved since: 13 hours ahead of the plan's zone
    clock.set(clock.now().replace(day=9, hour=12))  # 10 March, 01:00 in Auckland; still the 9th in UTC
    question = await planning.run(ANN, "question")
    revealed = await planning.press(ANN, button(question, "Show answer"))
    await planning.press(ANN, button(revealed, "Easy"))  # the learner's one new card of their 10 March
    clock.set(clock.now().replace(day=10, hour=0, minute=30))  # the plan's date has passed in UTC
    asked = (await planning.run(ANN, "question")).plain_text()
    assert "🏁 Your plan to Mon 09 Mar 2026 is over." in asked
    assert " · new" in asked  # today's new cards follow the cap as it is back to 10, not the plan's 1
