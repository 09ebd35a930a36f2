"""Every study screen as a Discord user sees it: the whole text, its bold and italic, its buttons.

The replies are rendered with the Discord renderer (Markdown: **bold**, *italic*, `code`), so a word
lost, a style dropped or a button mislabelled shows up here. Each screen is checked on the in-memory
store and on SQLite: the same presses give the same screens on either.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import fsrs
import pytest

from bot.adapters.discord import render_block
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.grading import Judgement
from bot.core.model import Card, Topic
from bot.core.ports import StudyStore
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.storage.sqlite import SqliteStore
from tests.conftest import caller, make_card, small_bank
from tests.fakes import FakeClock, MemoryStore
from tests.unit.test_weak import two_part_library

ANSWER_SCREEN = """**Question {card}?**

**Model answer**

The answer to {card}.

• first detail
• second detail

**Key points**

• chain rule
• gradient of the loss
• vanishing gradients

**An interviewer may ask next**

• A follow-up?
• Another?"""


MEANING = (  # said with a learner's first rating buttons only
    "\n\n*Again: you didn't remember it. Hard: you remembered, with effort (still a pass). Good: you "
    "remembered. Easy: it came at once. Honest ratings keep the schedule right for you.*"
)


def seen(reply: Reply) -> str:
    return "\n\n".join(render_block(block) for block in reply.blocks)


def buttons(reply: Reply) -> list[list[str]]:
    return [[b.label for b in row] for row in reply.buttons]


def press(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StudyStore]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        async with SqliteStore(tmp_path / "bot.db") as sqlite:
            yield sqlite


@pytest.fixture
def study(store: StudyStore) -> StudyService:
    return StudyService(
        store, small_bank(), FakeClock(), scheduler=fsrs.Scheduler(enable_fuzzing=False), rng=random.Random(7)
    )


@pytest.fixture
def commands(study: StudyService) -> Commands:
    return Commands(study)


async def test_a_new_question_shows_topic_level_and_newness_the_question_and_how_to_answer(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "")
    assert seen(question) == (
        "**Basics · warm-up · new**\n\n"
        "**Question basics-0?**\n\n"
        "*Answer in your own words (just type it), or pick a button.*"
    )
    assert buttons(question) == [["Show answer", "Multiple choice"], ["Skip"]]
    assert not question.edit


async def test_a_question_in_a_group_names_who_asked_and_asks_for_a_reply(commands: Commands) -> None:
    question = await commands.run(caller("2", "Bo", chat="-5", group=True), "question", "stories")
    assert seen(question) == (
        "Question for **Bo**:\n\n"
        "**Stories · core · behavioural · new**\n\n"
        "**Question story-1?**\n\n"
        "*Answer in your own words (reply to this message), or pick a button.*"
    )
    assert buttons(question) == [["Show answer"], ["Skip"]]  # a behavioural card has no multiple choice


async def test_show_answer_gives_the_model_answer_key_points_follow_ups_and_rating_buttons(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "")
    revealed = await commands.press(caller(), press(question, "Show answer"))
    assert seen(revealed) == ANSWER_SCREEN.format(card="basics-0") + "\n\n*How well did you know it?*" + MEANING
    assert buttons(revealed) == [["Again · 1 min", "Hard · 6 min"], ["Good · 10 min", "Easy · 8 d"]]
    assert revealed.edit


async def test_what_the_ratings_mean_is_said_with_the_first_rating_buttons_only(commands: Commands) -> None:
    first = await commands.press(caller(), press(await commands.run(caller(), "question", ""), "Show answer"))
    assert "Hard: you remembered, with effort (still a pass)" in seen(first)
    await commands.press(caller(), press(first, "Hard"))
    for _ in range(3):
        later = await commands.press(caller(), press(await commands.run(caller(), "question", ""), "Show answer"))
        assert seen(later).endswith("*How well did you know it?*")
        await commands.press(caller(), press(later, "Good"))
    bo = caller("9", "Bo")
    other = await commands.press(bo, press(await commands.run(bo, "question", ""), "Show answer"))
    assert "Hard: you remembered" in seen(other)  # per learner


async def test_rating_confirms_the_rating_and_the_next_review(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "")
    revealed = await commands.press(caller(), press(question, "Show answer"))
    rated = await commands.press(caller(), press(revealed, "Good"))
    assert seen(rated) == ANSWER_SCREEN.format(card="basics-0") + "\n\n**🙂 Rated Good** · next review in 10 min."
    assert buttons(rated) == [["Next question ▶"]]
    assert rated.notice == "Saved: Good" and rated.edit


async def test_multiple_choice_shows_lettered_options_and_a_wrong_pick_names_the_right_one(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "optim")
    choice = await commands.press(caller(), press(question, "Multiple choice"))
    assert seen(choice) == (
        "**Pick the right one for optim-3**\n\n"
        "• **A)** Wrong three\n• **B)** Wrong one\n• **C)** Right\n• **D)** Wrong two"
    )
    assert buttons(choice) == [["A", "B", "C", "D"], ["Show answer instead"]]
    wrong = await commands.press(caller(), press(choice, "A"))
    assert seen(wrong) == (
        "**Pick the right one for optim-3**\n\n"
        "**❌ Not quite.** You chose A; the answer is C) Right\n\n"
        "Because it is right.\n\n"
        "*Next review in 1 min.*"
    )
    assert buttons(wrong) == [["Full answer", "Next question ▶"]]
    assert wrong.notice == "Not quite" and wrong.edit
    full = await commands.press(caller(), press(wrong, "Full answer"))
    assert seen(full) == ANSWER_SCREEN.format(card="optim-3")
    assert buttons(full) == [["Next question ▶"]]


async def test_a_right_pick_says_correct_with_the_answer(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "optim")
    choice = await commands.press(caller(), press(question, "Multiple choice"))
    right = await commands.press(caller(), press(choice, "C"))
    assert seen(right) == (
        "**Pick the right one for optim-3**\n\n"
        "**✅ Correct!** C) Right\n\n"
        "Because it is right.\n\n"
        "*Next review in 10 min.*"
    )
    assert right.notice == "Correct!"


async def test_skipping_shows_the_next_question_in_place(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "")
    skipped = await commands.press(caller(), press(question, "Skip"))
    assert seen(skipped).startswith("**Optimisation · warm-up · new**\n\n**Question optim-3?**")
    assert skipped.notice == "Skipped" and skipped.edit


async def test_an_unknown_topic_lists_the_topics(commands: Commands) -> None:
    reply = await commands.run(caller(), "question", "astrology")
    assert seen(reply) == (
        "I don't know the topic “astrology”.\n\nTopics: `basics, optim, stories`\n\nExample: /question optimization"
    )


async def test_topics_lists_each_topic_with_its_card_count(commands: Commands) -> None:
    assert seen(await commands.run(caller(), "topics", "")) == (
        "**3 topics, 14 cards**\n\n"
        "• `basics` Basics (6)\n• `optim` Optimisation (6)\n• `stories` Stories (2)\n\n"
        "Practise one with /question `topic`, e.g. /question transformers"
    )


async def test_stats_after_two_answers_show_progress_streak_and_topics(commands: Commands) -> None:
    for rating in ("Good", "Again"):
        question = await commands.run(caller(), "question", "")
        revealed = await commands.press(caller(), press(question, "Show answer"))
        await commands.press(caller(), press(revealed, rating))
    stats = await commands.run(caller(), "stats", "")
    assert seen(stats) == (
        "**Progress of Ann**\n\n"
        "• Cards seen: 2 of 14\n• Due now: 0\n• Reviews today: 0 of 100 (/reviews)\n• New today: 2 of 10\n"
        "• Reviews in the last 30 days: 2\n"
        "• Retention (30 days, reviews of cards seen before): —\n• 🔥 1-day streak (best 1)\n\n"
        "**Weakest topics**\n\n"
        "Not enough reviews yet: a topic counts after 5 reviews of cards you had seen before, in 30 days.\n\n"
        "**By topic**\n\n"
        "• `basics` 1/6\n• `optim` 1/6\n• `stories` 0/2"
    )
    assert stats.private


async def test_newcards_shows_checks_and_sets_the_daily_number(commands: Commands) -> None:
    shown = seen(await commands.run(caller(), "newcards", ""))
    assert shown == "You get up to 10 new cards a day. Change it with /newcards N (0-50)."
    for bad in ("51", "-1", "two"):
        refused = seen(await commands.run(caller(), "newcards", bad))
        assert refused == "Usage: /newcards N, where N is a whole number from 0 to 50."
    assert seen(await commands.run(caller(), "newcards", "50")) == "Done: up to 50 new cards a day."
    assert seen(await commands.run(caller(), "newcards", "0")) == "Done: up to 0 new cards a day."


async def test_caught_up_says_the_daily_cap_is_met_and_when_the_next_review_is(commands: Commands) -> None:
    await commands.run(caller(), "newcards", "1")
    question = await commands.run(caller(), "question", "")
    await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Good"))
    assert seen(await commands.run(caller(), "question", "")) == (
        "**All caught up! 🎉**\n\n"
        "You've met today's 1 new card. 13 more wait for tomorrow (change the daily number with /newcards).\n\n"
        "Next review due in 10 min."
    )


async def test_caught_up_in_a_topic_with_every_card_seen_says_so(commands: Commands) -> None:
    for _ in range(2):
        question = await commands.run(caller(), "question", "stories")
        await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Easy"))
    assert seen(await commands.run(caller(), "question", "stories")) == (
        "**All caught up in stories! 🎉**\n\nYou have seen every card in stories.\n\nNext review due in 8 d."
    )


async def test_a_greeting_is_not_taken_as_an_answer_and_the_question_stays_open(study: StudyService) -> None:
    commands = Commands(study)
    await commands.run(caller(), "question", "")
    reply = await study.answer_text(caller(), "hi")
    assert reply is not None
    assert seen(reply) == (
        "I didn't take “hi” as an answer: that reads as a greeting or a pass, not an answer. The question is still "
        "open.\n\n**Question basics-0?**\n\n"
        "*Type your answer in a sentence or two, or use a button: Show answer if you don't know, or Skip.*"
    )
    assert buttons(reply) == [["Show answer", "Multiple choice"], ["Skip"]]
    assert reply.notice == "Not taken as an answer"


async def test_a_typed_answer_shows_the_points_covered_and_missed_then_the_model_answer(study: StudyService) -> None:
    commands = Commands(study)
    await commands.run(caller(), "question", "")
    reply = await study.answer_text(caller(), "the chain rule gives the gradient of the loss through each layer")
    assert reply is not None
    assert seen(reply) == (
        "**You covered 2 of 3 key points.**\n\n"
        "• **✓** chain rule\n• **✓** gradient of the loss\n• **✗** vanishing gradients\n\n"
        "**Try next:** A follow-up?\n\n"
        "*Suggested rating: 🙂 Good* (your call: rate below)\n\n"
        "*Checked offline for coverage of the key points, not for correctness: compare your wording with the model "
        "answer.*\n\n" + ANSWER_SCREEN.format(card="basics-0") + "\n\n*How well did you know it?*" + MEANING
    )
    assert buttons(reply) == [["Again · 1 min", "Hard · 6 min"], ["Good · 10 min", "Easy · 8 d"]]
    assert not reply.edit


class ModelGrader:
    """A grader standing in for the model: it returns the judgement it was given, for any answer."""

    name = "llm"

    def __init__(self, **judgement: Any) -> None:
        self.judgement = judgement

    async def judge(self, card: Card, answer: str, learner_id: int | None = None) -> Judgement:
        return Judgement(card_id=card.id, grader="llm", key_points=card.key_points, **self.judgement)


async def graded_by_model(store: StudyStore, **judgement: Any) -> str:
    study = StudyService(store, small_bank(), FakeClock(), scheduler=fsrs.Scheduler(enable_fuzzing=False))
    study.grader = ModelGrader(**judgement)
    await Commands(study).run(caller(), "question", "")
    reply = await study.answer_text(caller(), "the chain rule gives the gradient")
    assert reply is not None
    return seen(reply)


async def test_a_model_judgement_shows_misconceptions_and_feedback_and_no_offline_note(store: StudyStore) -> None:
    shown = await graded_by_model(
        store, covered=(0,), misconceptions=("Adam needs no tuning", "Dropout at test time"), feedback="Good start."
    )
    assert (
        shown
        == (
            "**You covered 1 of 3 key points.**\n\n"
            "• **✓** chain rule\n• **✗** gradient of the loss\n• **✗** vanishing gradients\n\n"
            "**Watch out**\n\n• Adam needs no tuning\n• Dropout at test time\n\n"
            "**Feedback:** Good start.\n\n"
            "*Suggested rating: 😓 Hard* (your call: rate below)\n\n"
        )
        + ANSWER_SCREEN.format(card="basics-0")
        + "\n\n*How well did you know it?*"
        + MEANING
    )


async def test_an_off_topic_answer_is_told_so_and_earns_no_key_points(store: StudyStore) -> None:
    shown = await graded_by_model(store, covered=(), off_topic=True)
    assert shown.startswith(
        "**Your answer doesn't seem to be about this question**, so it earns no key points. Compare it with the "
        "model answer below.\n\n"
        "• **✗** chain rule\n• **✗** gradient of the loss\n• **✗** vanishing gradients\n\n"
        "*Suggested rating: 🔁 Again* (your call: rate below)\n\n**Question basics-0?**"
    )


async def test_a_greeting_during_multiple_choice_points_to_the_options(study: StudyService) -> None:
    commands = Commands(study)
    question = await commands.run(caller(), "question", "")
    await commands.press(caller(), press(question, "Multiple choice"))
    reply = await study.answer_text(caller(), "hi")
    assert reply is not None
    assert seen(reply) == (
        "I didn't take “hi” as an answer: that reads as a greeting or a pass, not an answer. The question is still "
        "open.\n\n**Question basics-0?**\n\n"
        "*Pick an option (A, B, C, D) with the buttons, or type your answer in a sentence or two.*"
    )
    assert buttons(reply) == [["A", "B", "C", "D"], ["Show answer instead"]]


async def test_multiple_choice_on_a_card_without_one_says_to_show_the_answer(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "stories")
    attempt = press(question, "Show answer").split(":")[1]
    reply = await commands.press(caller(), f"mc:{attempt}")
    assert reply.notice == "This card has no multiple-choice form. Try “Show answer”."


async def test_a_stray_control_key_is_quoted_without_it(study: StudyService) -> None:
    await Commands(study).run(caller(), "question", "")
    reply = await study.answer_text(caller(), " hi\t\x00\x1b ")
    assert reply is not None
    assert reply.plain_text().startswith(
        "I didn't take “hi” as an answer: it looks like a stray key or control sequence. The question is still open."
    )


async def test_typed_words_that_cannot_be_quoted_or_are_long_are_shown_sensibly(study: StudyService) -> None:
    await Commands(study).run(caller(), "question", "")
    unquotable = await study.answer_text(caller(), "\x00\x1b")
    assert unquotable is not None and unquotable.plain_text().startswith("I didn't take that as an answer: it looks")
    long_word = "Supercalifragilisticexpialidociousextraordinarilylongword"
    long = await study.answer_text(caller(), long_word)
    assert long is not None and long.plain_text().startswith(f"I didn't take “{long_word[:40]}” as an answer")
    greeting = await study.answer_text(caller(), "good   morning")
    assert greeting is not None and greeting.plain_text().startswith("I didn't take “good morning” as an answer")


async def test_typed_words_with_no_open_question_are_not_taken_up(study: StudyService) -> None:
    assert await study.answer_text(caller(), "hello") is None  # a stranger
    commands = Commands(study)
    await commands.run(caller(), "newcards", "0")
    assert await study.answer_text(caller(), "the chain rule") is None  # known, but nothing asked
    question = await commands.run(caller(), "question", "")  # caught up: nothing asked either
    assert "All caught up" in seen(question)
    assert await study.answer_text(caller(), "the chain rule") is None


async def test_the_grader_is_told_which_learner_answered(store: StudyStore) -> None:
    seen_ids: list[int | None] = []

    class Recording(ModelGrader):
        async def judge(self, card: Card, answer: str, learner_id: int | None = None) -> Judgement:
            seen_ids.append(learner_id)
            return await super().judge(card, answer, learner_id)

    study = StudyService(store, small_bank(), FakeClock(), grader=Recording(covered=(0,)))
    await Commands(study).run(caller(), "question", "")
    await study.answer_text(caller(), "the chain rule gives the gradient")
    learner = await store.find_learner(caller().identity)
    assert learner is not None and seen_ids == [learner.id]  # the model grader's per-learner budget


async def test_an_unknown_topic_is_quoted_up_to_sixty_characters(commands: Commands) -> None:
    topic = "a" * 70
    assert seen(await commands.run(caller(), "question", topic)).startswith(f"I don't know the topic “{'a' * 60}”.")


async def test_caught_up_in_a_topic_by_the_daily_cap_counts_that_topics_cards(commands: Commands) -> None:
    await commands.run(caller(), "newcards", "1")
    question = await commands.run(caller(), "question", "optim")
    await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Good"))
    assert seen(await commands.run(caller(), "question", "optim")) == (
        "**All caught up in optim! 🎉**\n\n"
        "You've met today's 1 new card. 5 more wait for tomorrow (change the daily number with /newcards).\n\n"
        "Next review due in 10 min."
    )


async def test_every_card_seen_at_the_daily_cap_says_every_card_is_seen(commands: Commands) -> None:
    await commands.run(caller(), "newcards", "2")
    for _ in range(2):
        question = await commands.run(caller(), "question", "stories")
        await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Easy"))
    assert seen(await commands.run(caller(), "question", "stories")) == (
        "**All caught up in stories! 🎉**\n\nYou have seen every card in stories.\n\nNext review due in 8 d."
    )


async def test_a_learner_with_no_new_cards_and_nothing_due_is_caught_up_without_a_next_review(
    commands: Commands,
) -> None:
    await commands.run(caller(), "newcards", "0")
    assert seen(await commands.run(caller(), "question", "")) == (
        "**All caught up! 🎉**\n\n"
        "You've met today's 0 new cards. 14 more wait for tomorrow (change the daily number with /newcards)."
    )


async def test_skipping_the_last_card_left_replaces_the_message_with_caught_up(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "stories")
    second = await commands.press(caller(), press(question, "Skip"))
    caught_up = await commands.press(caller(), press(second, "Skip"))  # both stories skipped for an hour
    assert seen(caught_up).startswith("**All caught up in stories! 🎉**") and caught_up.edit


async def test_skipping_in_a_topic_stays_in_that_topic(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "optim")
    skipped = await commands.press(caller(), press(question, "Skip"))
    assert seen(skipped).startswith("**Optimisation · ")
    assert seen(await commands.press(caller(), press(skipped, "Skip"))).startswith("**Optimisation · ")


async def test_skipping_an_answered_question_is_refused(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "")
    await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Good"))
    stale = await commands.press(caller(), press(question, "Skip"))
    assert stale.notice == "This question is already closed. Send /question for a new one."


async def test_an_option_past_the_last_is_refused(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "optim")
    choice = await commands.press(caller(), press(question, "Multiple choice"))
    attempt = press(choice, "A").split(":")[1]
    assert (await commands.press(caller(), f"op:{attempt}:4")).notice == "That button is not valid any more. " + (
        "Send /question for a new one."
    )


async def test_a_card_seen_before_and_answered_by_multiple_choice_is_not_new_again(
    study: StudyService, store: StudyStore
) -> None:
    commands = Commands(study)
    question = await commands.run(caller(), "question", "optim")
    await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Good"))
    clock = study.clock
    assert isinstance(clock, FakeClock)
    clock.advance(days=1)
    again = await commands.run(caller(), "question", "optim")
    assert "· new" not in seen(again).split("\n")[0]  # the same card, due for review
    choice = await commands.press(caller(), press(again, "Multiple choice"))
    await commands.press(caller(), press(choice, "C"))
    assert "• New today: 0 of 10" in seen(await commands.run(caller(), "stats", ""))


async def test_retention_counts_the_reviews_of_cards_seen_before_that_were_not_forgotten(study: StudyService) -> None:
    commands = Commands(study)
    for _ in range(2):
        question = await commands.run(caller(), "question", "")
        await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Good"))
    clock = study.clock
    assert isinstance(clock, FakeClock)
    clock.advance(hours=1)  # both cards are due again
    for rating in ("Again", "Good"):
        question = await commands.run(caller(), "question", "")
        await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), rating))
    stats = seen(await commands.run(caller(), "stats", ""))
    assert "• Reviews in the last 30 days: 4\n• Retention (30 days, reviews of cards seen before): 50%" in stats


async def test_multiple_choice_replaces_the_question_message(commands: Commands) -> None:
    question = await commands.run(caller(), "question", "optim")
    choice = await commands.press(caller(), press(question, "Multiple choice"))
    assert choice.edit is True


async def test_a_non_answer_to_an_open_question_offers_the_answer_box_after_show_answer(study: StudyService) -> None:
    await Commands(study).run(caller(), "question", "")
    reply = await study.answer_text(caller(), "hi")
    assert reply is not None
    assert reply.answer_box is True and reply.answer_box_at == 1


async def test_a_non_answer_during_multiple_choice_offers_no_answer_box(study: StudyService) -> None:
    commands = Commands(study)
    question = await commands.run(caller(), "question", "")
    await commands.press(caller(), press(question, "Multiple choice"))
    reply = await study.answer_text(caller(), "hi")
    assert reply is not None
    assert reply.answer_box is False


async def test_a_single_typed_letter_to_an_open_question_is_not_an_answer(study: StudyService) -> None:
    await Commands(study).run(caller(), "question", "")
    reply = await study.answer_text(caller(), "z")
    assert reply is not None
    assert reply.plain_text().startswith(
        "I didn't take “z” as an answer: a letter or two is not an answer. The question is still open."
    )


async def test_a_typed_answer_is_a_new_message_below_the_question(study: StudyService) -> None:
    await Commands(study).run(caller(), "question", "")
    reply = await study.answer_text(caller(), "the chain rule gives the gradient of the loss through each layer")
    assert reply is not None
    assert reply.edit is False


def bare_card_bank() -> QuestionBank:
    """One imported card without key points (the learner compares with the model answer and rates)."""
    return QuestionBank([replace(make_card("bare-0"), key_points=())], [Topic("basics", "Basics")])


async def test_a_typed_answer_to_a_card_without_key_points_asks_to_compare_and_rate(store: StudyStore) -> None:
    study = StudyService(store, bare_card_bank(), FakeClock(), scheduler=fsrs.Scheduler(enable_fuzzing=False))
    await Commands(study).run(caller(), "question", "")
    reply = await study.answer_text(caller(), "the chain rule gives the gradient of the loss through each layer")
    assert reply is not None
    assert seen(reply).startswith(
        "**This card has no key points to check your words against**: compare your answer with the model answer "
        "below, then rate how well you knew it.\n\n**Question bare-0?**\n\n**Model answer**"
    )
    assert buttons(reply) == [["Again · 1 min", "Hard · 6 min"], ["Good · 10 min", "Easy · 8 d"]]
    assert reply.edit is False


@pytest.mark.parametrize("bank", [small_bank(), bare_card_bank()], ids=["key points", "no key points"])
async def test_a_typed_answer_to_a_card_seen_before_offers_its_review_intervals(
    store: StudyStore, bank: QuestionBank
) -> None:
    clock = FakeClock()
    study = StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
    commands = Commands(study)
    question = await commands.run(caller(), "question", "basics")
    await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Easy"))
    clock.advance(days=8)  # the card is due again, now a review
    again = await commands.run(caller(), "question", "basics")
    assert "· new" not in seen(again).split("\n")[0]
    reply = await study.answer_text(caller(), "the chain rule gives the gradient of the loss through each layer")
    assert reply is not None
    assert buttons(reply) == [["Again · 10 min", "Hard · 27 d"], ["Good · 1 mo", "Easy · 2 mo"]]


async def test_topics_of_a_chat_that_chose_decks_take_the_example_from_them_and_point_to_deck(
    store: StudyStore,
) -> None:
    library = two_part_library()
    clock = FakeClock()
    await library.set_choice(caller().chat.key, ("core", "extra"), clock.now())
    commands = Commands(StudyService(store, library, clock))
    assert seen(await commands.run(caller(), "topics", "")) == (
        "**3 topics, 14 cards**\n\n"
        "• `basics` Basics (6)\n• `optim` Optimisation (6)\n• `stories` Stories (2)\n\n"
        "Practise one with /question `topic`, e.g. /question basics\n\n"
        "These are the decks this chat practises from; /deck shows and changes them."
    )


async def test_caught_up_because_the_cards_left_were_skipped_says_nothing_of_the_daily_cap(commands: Commands) -> None:
    await commands.run(caller(), "newcards", "2")
    question = await commands.run(caller(), "question", "stories")
    await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Easy"))
    other = await commands.run(caller(), "question", "stories")  # 1 of 2 new cards met today: not the cap
    skipped = await commands.press(caller(), press(other, "Skip"))
    assert seen(skipped) == "**All caught up in stories! 🎉**\n\nNext review due in 8 d."


async def test_caught_up_with_a_review_due_this_very_moment_but_skipped_names_no_next_review(
    commands: Commands, study: StudyService
) -> None:
    await commands.run(caller(), "newcards", "1")
    question = await commands.run(caller(), "question", "")
    await commands.press(caller(), press(await commands.press(caller(), press(question, "Show answer")), "Again"))
    clock = study.clock
    assert isinstance(clock, FakeClock)
    clock.advance(minutes=1)  # its one-minute step ends now, exactly
    again = await commands.run(caller(), "question", "")
    assert "Question basics-0?" in seen(again)
    skipped = await commands.press(caller(), press(again, "Skip"))
    assert seen(skipped) == (
        "**All caught up! 🎉**\n\n"
        "You've met today's 1 new card. 13 more wait for tomorrow (change the daily number with /newcards)."
    )
