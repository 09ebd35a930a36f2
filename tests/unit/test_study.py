"""StudyService through its public interface, on the in-memory store and a fake clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

import fsrs
import pytest

from bot.core.actions import Action, Verb, parse_action
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import AttemptStatus, AttemptView, Card, Identity, Learner, Rating, ReviewMode
from bot.core.study import INVALID, NOT_YOURS, STALE, Streak, StudyService, interval_label, streak, streaks
from bot.core.views import Paragraph, Reply
from tests.conftest import caller, make_card, small_bank
from tests.fakes import FakeClock, MemoryStore


def button(reply: Reply, label_start: str) -> str:
    for row in reply.buttons:
        for b in row:
            if b.label.startswith(label_start):
                return b.action
    raise AssertionError(f"no button {label_start!r} in {[b.label for r in reply.buttons for b in r]}")


def labels(reply: Reply) -> list[str]:
    return [b.label for row in reply.buttons for b in row]


def attempt_id(reply: Reply) -> int:
    action = parse_action(reply.buttons[0][0].action)
    assert action is not None
    return action.target


async def ask(commands: Commands, who: str = "1", topic: str = "") -> Reply:
    return await commands.run(caller(who), "question", topic)


async def answer_with(commands: Commands, rating: str, who: str = "1", topic: str = "") -> Reply:
    question = await ask(commands, who, topic)
    revealed = await commands.press(caller(who), button(question, "Show answer"))
    return await commands.press(caller(who), button(revealed, rating))


# --- next card ---------------------------------------------------------------------------------


async def test_a_new_learner_gets_a_new_warm_up_card(commands: Commands, store: MemoryStore) -> None:
    reply = await ask(commands)
    assert "new" in reply.plain_text()
    assert "warm-up" in reply.plain_text()
    assert labels(reply) == ["Show answer", "Multiple choice", "Skip"]
    attempt = store.attempts[attempt_id(reply)]
    assert attempt.status is AttemptStatus.OPEN


async def test_due_reviews_come_before_new_cards_most_overdue_first(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    first = await ask(commands)
    first_card = store.attempts[attempt_id(first)].card_id
    await commands.press(caller(), button(await commands.press(caller(), button(first, "Show answer")), "Again"))
    clock.advance(seconds=5)
    second = await ask(commands)
    second_card = store.attempts[attempt_id(second)].card_id
    await commands.press(caller(), button(await commands.press(caller(), button(second, "Show answer")), "Again"))
    clock.advance(minutes=30)  # both learning steps have passed: both due, the first one longer
    reply = await ask(commands)
    assert store.attempts[attempt_id(reply)].card_id == first_card
    assert "new" not in reply.plain_text().split("\n")[0]
    assert second_card != first_card


async def test_the_daily_new_card_cap_stops_new_cards(commands: Commands, study: StudyService) -> None:
    await commands.run(caller(), "newcards", "2")
    for _ in range(2):
        await answer_with(commands, "Good")
    reply = await ask(commands)
    assert "All caught up" in reply.plain_text()
    assert "2 new cards" in reply.plain_text()
    assert not reply.buttons


async def test_the_new_card_cap_resets_on_the_learners_next_local_day(commands: Commands, clock: FakeClock) -> None:
    await commands.run(caller(), "newcards", "1")
    await answer_with(commands, "Easy")
    assert "All caught up" in (await ask(commands)).plain_text()
    clock.advance(days=1)
    reply = await ask(commands)
    assert reply.buttons and "new" in reply.plain_text()


async def test_newcards_refuses_bad_numbers_and_changes_nothing(commands: Commands, study: StudyService) -> None:
    for bad in ("-1", "51", "ten", "3.5"):
        reply = await commands.run(caller(), "newcards", bad)
        assert "Usage: /newcards N" in reply.plain_text()
    learner = await study.learner(caller())
    assert learner.new_per_day == 10


async def test_a_topic_filter_only_asks_cards_of_that_topic(commands: Commands, store: MemoryStore) -> None:
    for _ in range(4):
        reply = await ask(commands, topic="optim")
        assert store.attempts[attempt_id(reply)].card_id.startswith("optim-")
        await commands.press(caller(), button(await commands.press(caller(), button(reply, "Show answer")), "Good"))


async def test_topics_match_by_name_and_unique_prefix(commands: Commands, store: MemoryStore) -> None:
    for text in ("Optimisation", "OPTIM", "opt"):
        reply = await ask(commands, topic=text)
        assert store.attempts[attempt_id(reply)].card_id.startswith("optim-")


async def test_an_unknown_topic_lists_the_topics_and_creates_nothing(commands: Commands, store: MemoryStore) -> None:
    reply = await ask(commands, topic="quantum chemistry")
    text = reply.plain_text()
    assert "quantum chemistry" in text and "basics, optim, stories" in text
    assert store.attempts == {}


async def test_skip_moves_to_another_card_and_keeps_the_first_out_of_the_way(
    commands: Commands, store: MemoryStore
) -> None:
    first = await ask(commands)
    skipped = store.attempts[attempt_id(first)].card_id
    reply = await commands.press(caller(), button(first, "Skip"))
    assert reply.edit
    assert store.attempts[attempt_id(first)].status is AttemptStatus.SKIPPED
    assert store.attempts[attempt_id(reply)].card_id != skipped
    again = await ask(commands)
    assert store.attempts[attempt_id(again)].card_id != skipped


# --- reveal and rate ----------------------------------------------------------------------------


async def test_reveal_shows_answer_key_points_follow_ups_and_four_ratings_with_intervals(
    commands: Commands,
) -> None:
    question = await ask(commands)
    reply = await commands.press(caller(), button(question, "Show answer"))
    text = reply.plain_text()
    assert reply.edit
    assert "Model answer" in text and "chain rule" in text and "A follow-up?" in text
    assert [label.split(" · ")[0] for label in labels(reply)] == ["Again", "Hard", "Good", "Easy"]
    assert all(" · " in label for label in labels(reply))


@pytest.mark.parametrize(
    ("rating", "expected"),
    [("Again", timedelta(minutes=1)), ("Hard", timedelta(minutes=5, seconds=30)), ("Good", timedelta(minutes=10))],
)
async def test_a_new_card_is_scheduled_by_fsrs_learning_steps(
    commands: Commands, store: MemoryStore, clock: FakeClock, rating: str, expected: timedelta
) -> None:
    reply = await answer_with(commands, rating)
    (state,) = store.states.values()
    assert state.due - clock.now() == expected
    assert state.state == 1  # FSRS Learning
    assert state.step is not None
    assert f"Rated {rating}" in reply.plain_text()


async def test_a_card_rated_easy_graduates_to_review_days_away(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    await answer_with(commands, "Easy")
    (state,) = store.states.values()
    assert state.state == 2  # FSRS Review
    assert state.due - clock.now() >= timedelta(days=1)


async def test_a_card_rated_good_is_not_due_again_today_after_its_learning_steps(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    await answer_with(commands, "Good")
    clock.advance(minutes=11)
    card_id = next(iter(store.states))[1]
    reply = await ask(commands)
    assert store.attempts[attempt_id(reply)].card_id == card_id  # its 10-minute step is due
    revealed = await commands.press(caller(), button(reply, "Show answer"))
    await commands.press(caller(), button(revealed, "Good"))
    state = store.states[(1, card_id)]
    assert state.state == 2
    assert state.due - clock.now() >= timedelta(days=1)


async def test_the_committed_interval_is_the_one_shown_on_the_button(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    question = await ask(commands)
    revealed = await commands.press(caller(), button(question, "Show answer"))
    easy_label = next(label for label in labels(revealed) if label.startswith("Easy"))
    clock.advance(hours=3)  # rating later must not recompute the interval
    await commands.press(caller(), button(revealed, "Easy"))
    (state,) = store.states.values()
    shown = easy_label.split(" · ")[1]
    assert interval_label(state.due - (clock.now() - timedelta(hours=3))) == shown


async def test_rating_twice_counts_once(commands: Commands, store: MemoryStore) -> None:
    question = await ask(commands)
    revealed = await commands.press(caller(), button(question, "Show answer"))
    await commands.press(caller(), button(revealed, "Good"))
    second = await commands.press(caller(), button(revealed, "Easy"))
    assert second.notice == STALE and second.is_notice_only
    assert len(store.reviews) == 1 and store.reviews[0].rating is Rating.GOOD


# --- multiple choice ----------------------------------------------------------------------------


async def choose(commands: Commands, store: MemoryStore, correct: bool) -> Reply:
    question = await ask(commands)
    aid = attempt_id(question)
    shown = await commands.press(caller(), button(question, "Multiple choice"))
    order = store.attempts[aid].options
    position = order.index(0) if correct else next(i for i, o in enumerate(order) if o != 0)
    return await commands.press(caller(), Action(Verb.OPTION, aid, position).encode()) if shown else shown


async def test_a_correct_choice_is_rated_good(commands: Commands, store: MemoryStore) -> None:
    reply = await choose(commands, store, correct=True)
    assert "Correct" in reply.plain_text() and "Because it is right." in reply.plain_text()
    assert store.reviews[0].rating is Rating.GOOD


async def test_a_wrong_choice_is_rated_again_and_shows_the_right_option(commands: Commands, store: MemoryStore) -> None:
    reply = await choose(commands, store, correct=False)
    assert "Not quite" in reply.plain_text() and "Right" in reply.plain_text()
    assert store.reviews[0].rating is Rating.AGAIN


async def test_options_are_shuffled_per_attempt(commands: Commands, store: MemoryStore, clock: FakeClock) -> None:
    orders = set()
    for _ in range(8):
        clock.advance(hours=2)  # skipped cards come back after an hour
        question = await ask(commands, topic="basics")
        await commands.press(caller(), button(question, "Multiple choice"))
        orders.add(store.attempts[attempt_id(question)].options)
        await commands.press(caller(), button(question, "Skip"))
    assert len(orders) > 1


async def test_a_card_without_a_quiz_offers_no_multiple_choice(commands: Commands, store: MemoryStore) -> None:
    reply = await ask(commands, topic="stories")
    assert labels(reply) == ["Show answer", "Skip"]
    forged = await commands.press(caller(), Action(Verb.CHOICE, attempt_id(reply)).encode())
    assert forged.is_notice_only


# --- free text ----------------------------------------------------------------------------------


async def test_a_typed_answer_lists_covered_and_missed_key_points_then_the_model_answer(
    commands: Commands, store: MemoryStore
) -> None:
    question = await ask(commands)
    reply = await commands.text(caller(), "You apply the Chain-Rule to get each gradient of the losses.")
    assert reply is not None
    text = reply.plain_text()
    assert "You covered 2 of 3 key points" in text
    assert "✓ chain rule" in text and "✗ vanishing gradients" in text
    assert "Model answer" in text and next(label.split(" · ")[0] for label in labels(reply)) == "Again"
    assert store.attempts[attempt_id(question)].status is AttemptStatus.REVEALED


async def test_text_without_an_open_question_is_not_an_answer(commands: Commands) -> None:
    assert await commands.text(caller(), "hello there") is None


# --- forged and stale actions -------------------------------------------------------------------


async def test_another_learners_button_is_refused_and_changes_nothing(commands: Commands, store: MemoryStore) -> None:
    question = await ask(commands, who="1")
    await commands.run(caller("2", "Bob"), "start")
    reply = await commands.press(caller("2", "Bob"), button(question, "Show answer"))
    assert reply.notice == NOT_YOURS and reply.is_notice_only
    assert store.attempts[attempt_id(question)].status is AttemptStatus.OPEN


@pytest.mark.parametrize("data", ["", "zz:1", "sa", "sa:abc", "rt:1:9", "sa:999999", "sa:1:2:3", "x" * 65, "💥"])
async def test_forged_or_malformed_actions_are_refused(commands: Commands, store: MemoryStore, data: str) -> None:
    await ask(commands)
    before = dict(store.attempts)
    reply = await commands.press(caller(), data)
    assert reply.is_notice_only and reply.notice
    assert store.attempts == before and store.reviews == []


async def test_a_stale_question_is_refused_after_a_new_one_was_asked(commands: Commands, store: MemoryStore) -> None:
    old = await ask(commands)
    await ask(commands)
    reply = await commands.press(caller(), button(old, "Show answer"))
    assert reply.notice == STALE
    assert store.attempts[attempt_id(old)].status is AttemptStatus.EXPIRED


async def test_rating_before_reveal_is_refused(commands: Commands, store: MemoryStore) -> None:
    question = await ask(commands)
    reply = await commands.press(caller(), Action(Verb.RATE, attempt_id(question), 4).encode())
    assert reply.notice == STALE
    assert store.reviews == []


async def test_an_option_out_of_range_is_refused(commands: Commands, store: MemoryStore) -> None:
    question = await ask(commands)
    await commands.press(caller(), button(question, "Multiple choice"))
    reply = await commands.press(caller(), Action(Verb.OPTION, attempt_id(question), 7).encode())
    assert reply.notice == INVALID and store.reviews == []


# --- stats, streaks, commands --------------------------------------------------------------------


async def test_stats_count_cards_reviews_retention_and_streak(commands: Commands, clock: FakeClock) -> None:
    await answer_with(commands, "Good")
    clock.advance(minutes=11)
    await answer_with(commands, "Good")  # the same card, now reviewed again
    clock.advance(days=1)
    await answer_with(commands, "Again")
    text = (await commands.run(caller(), "stats")).plain_text()
    assert "Cards seen: 2 of 14" in text
    assert "Reviews in the last 30 days: 3" in text
    assert "Retention (30 days, reviews of cards seen before): 100%" in text
    assert "2-day streak (best 2)" in text
    import re

    assert sum(int(n) for n in re.findall(r"(\d+)/6", text)) == 2


def test_streaks_forgive_one_missed_day_per_calendar_week_and_not_two() -> None:
    assert streaks([], "2026-03-05") == (0, 0)
    # Sun 1 Mar, then Mon 2 and Tue 3; Wed 4 missed (the week's freeze), Thu 5 answered
    days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-05"]
    assert streak(days, "2026-03-05") == Streak(4, 4, ("2026-03-04",))
    assert streaks(days, "2026-03-06") == (4, 4)  # today not answered yet: the streak is still alive
    assert streak(days, "2026-03-07") == Streak(0, 4, ())  # Fri 6 missed too: a second miss that week ends it
    # one missed day in each of two weeks (Wed 4 and Mon 9) keeps it going; answered days are what count
    weeks = [*days, "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-10"]
    assert streak(weeks, "2026-03-10") == Streak(8, 8, ("2026-03-04", "2026-03-09"))
    # Sun 8 and Mon 9 missed: two days in a row, but in two calendar weeks, so each week's freeze covers one
    across = ["2026-03-05", "2026-03-06", "2026-03-07", "2026-03-10"]
    assert streak(across, "2026-03-10") == Streak(4, 4, ("2026-03-08", "2026-03-09"))
    # a freeze is not a fresh start: a broken run's week stays used
    broken = ["2026-03-02", "2026-03-04", "2026-03-05", "2026-03-07"]  # Tue 3 frozen, Fri 6 breaks it
    assert streak(broken, "2026-03-07") == Streak(1, 3, ())
    # recomputed from the log in any order, with repeats (several reviews a day)
    assert streak([*reversed(weeks), *weeks], "2026-03-10") == streak(weeks, "2026-03-10")


async def test_a_streak_counts_by_the_learners_local_day(
    study: StudyService, commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    learner = await study.learner(caller())
    await store.set_timezone(learner.id, "America/New_York")
    from datetime import UTC, datetime

    clock.set(datetime(2026, 3, 3, 3, 0, tzinfo=UTC))  # 22:00 on the 2nd in New York
    await answer_with(commands, "Easy")
    clock.set(datetime(2026, 3, 3, 14, 0, tzinfo=UTC))  # 09:00 on the 3rd in New York
    await answer_with(commands, "Easy")
    assert [r.local_day for r in store.reviews] == ["2026-03-02", "2026-03-03"]
    assert "2-day streak" in (await commands.run(caller(), "stats")).plain_text()


def test_interval_labels_are_short_and_human() -> None:
    assert interval_label(timedelta(seconds=20)) == "<1 min"
    assert interval_label(timedelta(minutes=10)) == "10 min"
    assert interval_label(timedelta(hours=5)) == "5 h"
    assert interval_label(timedelta(days=3)) == "3 d"
    assert interval_label(timedelta(days=90)) == "3 mo"
    assert interval_label(timedelta(days=548)) == "1.5 y"


async def test_unknown_commands_and_help(commands: Commands) -> None:
    assert "I don't know /frobnicate" in (await commands.run(caller(), "frobnicate")).plain_text()
    help_text = (await commands.run(caller(), "help")).plain_text()
    for name in ("/question [topic|weak]", "/topics", "/stats", "/newcards"):
        assert name in help_text


async def test_over_long_arguments_are_refused(commands: Commands, store: MemoryStore) -> None:
    reply = await commands.run(caller(), "question", "x" * 500)
    assert "too long" in reply.plain_text() and store.attempts == {}


def test_commands_split_with_bot_suffix() -> None:
    assert Commands.split_command("/question@StudyBot optim", "studybot") == ("question", "optim")
    assert Commands.split_command("/question@OtherBot", "studybot") is None
    assert Commands.split_command("/Stats") == ("stats", "")
    assert Commands.split_command("hello") is None


async def test_one_learner_across_two_chats_keeps_one_schedule(commands: Commands, store: MemoryStore) -> None:
    await answer_with(commands, "Easy")
    group_caller = caller("1", chat="-100", group=True)
    reply = await commands.run(group_caller, "question")
    assert "Question for Ann" in reply.plain_text()
    assert store.attempts[attempt_id(reply)].card_id not in {cid for (_, cid) in store.states}
    assert len(store.learners) == 1


@pytest.mark.parametrize("text", ["hello", "7", "idk", "\x1b[A", "ok", "z"])
async def test_a_non_answer_keeps_the_question_open_stores_nothing_and_shows_its_buttons_again(
    commands: Commands, store: MemoryStore, text: str
) -> None:
    question = await ask(commands)
    reply = await commands.text(caller(), text)
    assert reply is not None
    assert "I didn't take" in reply.plain_text() and "The question is still open" in reply.plain_text()
    assert "Model answer" not in reply.plain_text()
    assert labels(reply) == labels(question)
    assert store.attempts[attempt_id(question)].status is AttemptStatus.OPEN and store.reviews == []
    graded = await commands.text(caller(), "You apply the chain rule to get each gradient of the loss.")
    assert graded is not None and "You covered 2 of 3 key points" in graded.plain_text()


async def test_a_stray_letter_during_multiple_choice_lists_the_options_and_keeps_them(
    commands: Commands, store: MemoryStore
) -> None:
    question = await ask(commands)
    choice = await commands.press(caller(), button(question, "Multiple choice"))
    reply = await commands.text(caller(), "E")
    assert reply is not None and "not one of the options (A, B, C, D)" in reply.plain_text()
    assert labels(reply) == labels(choice)
    assert store.attempts[attempt_id(question)].status is AttemptStatus.CHOICE and store.reviews == []


async def test_the_verdict_suggests_a_rating_and_a_follow_up_and_says_what_the_offline_check_is(
    commands: Commands,
) -> None:
    await ask(commands)
    reply = await commands.text(caller(), "You apply the chain rule to get each gradient of the loss.")
    assert reply is not None
    text = reply.plain_text()
    assert "Suggested rating: 🙂 Good" in text
    assert "Try next: A follow-up?" in text
    assert "not for correctness" in text


async def test_caught_up_in_a_topic_names_that_topics_next_review_not_another_topics(commands: Commands) -> None:
    await answer_with(commands, "Again", topic="optim")  # an optim card due again in a minute
    for _ in range(2):
        await answer_with(commands, "Easy", topic="stories")
    reply = await commands.run(caller(), "question", "stories")
    text = reply.plain_text()
    assert "All caught up in stories" in text
    assert "Next review due in 8 d." in text and "1 min" not in text


async def test_counts_of_one_are_singular(commands: Commands) -> None:
    assert (await commands.run(caller(), "newcards", "1")).plain_text() == "Done: up to 1 new card a day."
    assert (await commands.run(caller(), "newcards", "")).plain_text().startswith("You get up to 1 new card a day.")


# --- a second press landing first (a double tap, another device) -------------------------------------


class RacingStore(MemoryStore):
    """A MemoryStore on which another press of a button can land between a press's read and its write."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    async def attempt_for(self, attempt_id: int, identity: Identity) -> AttemptView | None:
        view = await super().attempt_for(attempt_id, identity)
        if self.meanwhile is not None:
            other, self.meanwhile = self.meanwhile, None
            await other()
        return view


def racing() -> tuple[RacingStore, Commands]:
    store = RacingStore()
    study = StudyService(store, small_bank(), FakeClock(), scheduler=fsrs.Scheduler(enable_fuzzing=False))
    return store, Commands(study)


async def test_multiple_choice_pressed_twice_at_once_opens_it_once_and_says_the_other_is_closed() -> None:
    store, commands = racing()
    question = await ask(commands, topic="optim")
    first: list[Reply] = []

    async def other_press() -> None:
        first.append(await commands.press(caller(), button(question, "Multiple choice")))

    store.meanwhile = other_press
    late = await commands.press(caller(), button(question, "Multiple choice"))
    assert late == Reply(notice=STALE)
    assert first[0].buttons[0][0].label == "A"
    assert store.attempts[attempt_id(question)].status is AttemptStatus.CHOICE


async def test_an_option_pressed_twice_at_once_counts_once_and_says_the_other_is_closed() -> None:
    store, commands = racing()
    question = await ask(commands, topic="optim")
    choice = await commands.press(caller(), button(question, "Multiple choice"))
    store.meanwhile = lambda: commands.press(caller(), button(choice, "A"))
    late = await commands.press(caller(), button(choice, "B"))
    assert late == Reply(notice=STALE)
    assert len(store.reviews) == 1


async def test_skip_pressed_twice_at_once_skips_once_and_says_the_other_is_closed() -> None:
    store, commands = racing()
    question = await ask(commands)
    store.meanwhile = lambda: commands.press(caller(), button(question, "Skip"))
    late = await commands.press(caller(), button(question, "Skip"))
    assert late == Reply(notice=STALE)
    assert [a.status for a in store.attempts.values()] == [AttemptStatus.SKIPPED, AttemptStatus.OPEN]


async def test_multiple_choice_pressed_again_after_it_opened_says_the_question_is_closed(
    commands: Commands, store: MemoryStore
) -> None:
    question = await ask(commands, topic="optim")
    await commands.press(caller(), button(question, "Multiple choice"))
    options = store.attempts[attempt_id(question)].options
    again = await commands.press(caller(), button(question, "Multiple choice"))
    assert again == Reply(notice=STALE)
    assert store.attempts[attempt_id(question)].options == options  # not shuffled again


# --- a card seen before, answered another way ---------------------------------------------------------


async def test_a_seen_card_answered_by_multiple_choice_counts_towards_retention(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    await answer_with(commands, "Easy", topic="optim")
    clock.advance(days=8)  # due again: a review of a card seen before
    await choose(commands, store, correct=True)
    assert [(r.was_new, r.state_before) for r in store.reviews] == [(True, None), (False, 2)]
    stats = (await commands.run(caller(), "stats")).plain_text()
    assert "Retention (30 days, reviews of cards seen before): 100%" in stats


async def test_a_review_outcome_for_another_service_starts_from_the_cards_state(
    commands: Commands, study: StudyService, store: MemoryStore, clock: FakeClock
) -> None:
    await answer_with(commands, "Easy", topic="optim")
    ((key, before),) = store.states.items()
    clock.advance(days=8)
    learner = await study.learner(caller())
    card = study.bank.card(key[1])
    assert card is not None
    state, review = study.review_outcome(learner, card, before, Rating.GOOD, ReviewMode.INTERVIEW)
    assert (review.was_new, review.state_before, review.mode) == (False, 2, ReviewMode.INTERVIEW)
    assert state.first_day == before.first_day == "2026-03-02"
    assert (state.state, state.reps, interval_label(state.due - clock.now())) == (2, 2, "1 mo")


# --- /skip ---------------------------------------------------------------------------------------------


async def test_skip_without_an_open_question_says_there_is_nothing_to_skip(study: StudyService) -> None:
    reply = await study.skip_open(caller())
    assert reply == Reply(blocks=(Paragraph.of("Nothing to skip: no question is open. Send /question for one."),))


async def test_skip_sends_the_next_question_as_a_new_message(commands: Commands, study: StudyService) -> None:
    question = await ask(commands)
    reply = await study.skip_open(caller())
    assert reply.edit is False and reply.notice == "Skipped"
    assert attempt_id(reply) == attempt_id(question) + 1


async def test_show_answer_pressed_twice_at_once_reveals_once_and_says_the_other_is_closed() -> None:
    store, commands = racing()
    question = await ask(commands)
    first: list[Reply] = []

    async def other_press() -> None:
        first.append(await commands.press(caller(), button(question, "Show answer")))

    store.meanwhile = other_press
    late = await commands.press(caller(), button(question, "Show answer"))
    assert late == Reply(notice=STALE)
    assert [label.split(" · ")[0] for label in labels(first[0])] == ["Again", "Hard", "Good", "Easy"]
    assert store.attempts[attempt_id(question)].status is AttemptStatus.REVEALED


async def test_a_rating_pressed_twice_at_once_counts_once_and_says_the_other_is_closed() -> None:
    store, commands = racing()
    question = await ask(commands)
    revealed = await commands.press(caller(), button(question, "Show answer"))
    store.meanwhile = lambda: commands.press(caller(), button(revealed, "Good"))
    late = await commands.press(caller(), button(revealed, "Easy"))
    assert late == Reply(notice=STALE)
    assert [review.rating for review in store.reviews] == [Rating.GOOD]


async def test_a_rating_whose_interval_was_never_shown_is_invalid_and_stores_nothing(
    commands: Commands, store: MemoryStore
) -> None:
    question = await ask(commands)
    revealed = await commands.press(caller(), button(question, "Show answer"))
    attempt = store.attempts[attempt_id(question)]
    # the stored attempt lacks Easy's interval (a damaged row): the Easy button has nothing to commit
    store.attempts[attempt.id] = replace(attempt, previews=attempt.previews[:3])
    refused = await commands.press(caller(), button(revealed, "Easy"))
    assert refused == Reply(notice=INVALID)
    assert store.reviews == [] and store.attempts[attempt.id].status is AttemptStatus.REVEALED


# --- the question and its answer, as the bank has them ---------------------------------------------------


class ReimportedBank(QuestionBank):
    """A bank whose deck can be imported again while the bot runs: a changed card is a new Card object."""

    def __init__(self, bank: QuestionBank) -> None:
        super().__init__(bank.cards, bank.topics)
        self.changed: dict[str, Card] = {}

    def card(self, card_id: str) -> Card | None:
        return self.changed.get(card_id) or super().card(card_id)


async def test_after_a_deck_is_imported_again_show_answer_shows_the_changed_answer(
    store: MemoryStore, clock: FakeClock
) -> None:
    bank = ReimportedBank(small_bank())
    commands = Commands(StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False)))
    first = await answer_with(commands, "Good")
    assert "The answer to basics-0." in first.plain_text()
    card = bank.card("basics-0")
    assert card is not None
    bank.changed["basics-0"] = replace(card, answer="A corrected answer.")
    clock.advance(minutes=11)  # its 10-minute learning step is due
    question = await ask(commands)
    assert "Question basics-0?" in question.plain_text()
    revealed = await commands.press(caller(), button(question, "Show answer"))
    assert "A corrected answer." in revealed.plain_text()
    assert "The answer to basics-0." not in revealed.plain_text()


async def test_a_card_whose_topic_the_bank_no_longer_lists_is_labelled_with_its_topic_slug(
    store: MemoryStore, clock: FakeClock
) -> None:
    bank = small_bank()
    orphan = QuestionBank([make_card("gone-0", "gone")], bank.topics)  # its deck was dropped meanwhile
    reply = await Commands(StudyService(store, orphan, clock)).run(caller(), "question", "")
    assert reply.plain_text().splitlines()[0] == "gone · warm-up · new"


class ChatPoolBank(QuestionBank):
    """The whole bank, of which this chat practises one topic's cards only (as a Library's chosen decks)."""

    async def pool_for(self, chat_key: str) -> QuestionBank:
        return QuestionBank(self.cards_in("optim"), [t for t in self.topics if t.slug == "optim"])


async def test_an_unknown_topic_lists_only_the_topics_of_the_chats_own_cards(
    store: MemoryStore, clock: FakeClock
) -> None:
    bank = small_bank()
    commands = Commands(StudyService(store, ChatPoolBank(bank.cards, bank.topics), clock))
    reply = await commands.run(caller(), "question", "basics")
    assert reply.plain_text() == "I don't know the topic “basics”.\n\nTopics: optim\n\nExample: /question optimization"


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.learner_reads = 0

    async def ensure_learner(
        self, identity: Identity, display_name: str, now: datetime, timezone: str, new_per_day: int
    ) -> Learner:
        self.learner_reads += 1
        return await super().ensure_learner(identity, display_name, now, timezone, new_per_day)


async def test_a_learner_already_read_is_not_read_again_for_a_name_longer_than_the_stored_64_characters(
    clock: FakeClock,
) -> None:
    store = CountingStore()
    study = StudyService(store, small_bank(), clock)
    long_name = caller(name="A" * 70)
    learner = replace(await study.learner(long_name), display_name="A" * 64)  # as the store keeps it
    store.learner_reads = 0
    reply = await study.next_question(long_name, learner=learner)
    assert "Question basics-0?" in reply.plain_text()
    assert store.learner_reads == 0


def test_interval_labels_change_unit_exactly_at_a_day_a_month_and_a_year() -> None:
    assert interval_label(timedelta(hours=23, minutes=59)) == "24 h"
    assert interval_label(timedelta(hours=24)) == "1 d"
    assert interval_label(timedelta(hours=24, minutes=30)) == "1 d"
    assert interval_label(timedelta(days=30, hours=23)) == "31 d"
    assert interval_label(timedelta(days=31)) == "1 mo"
    assert interval_label(timedelta(days=31, hours=12)) == "1 mo"
    assert interval_label(timedelta(days=200)) == "7 mo"
    assert interval_label(timedelta(days=364)) == "12 mo"
    assert interval_label(timedelta(days=365)) == "1.0 y"
    assert interval_label(timedelta(days=365, hours=12)) == "1.0 y"
    assert interval_label(timedelta(days=420)) == "1.2 y"
