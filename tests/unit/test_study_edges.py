"""StudyService edges a learner can see: the chat bank's glossary in typed answers, each learner's own order
of new cards, the "comes early" note's styling, a plan that ends under the daily push's header, the first
question after a plan ends, the push's countdown over the plan's own topics, an explicit topic under a rushed
plan, and a rushed plan favouring exactly the three weakest topics.
The clock stands at Mon 2 March 2026, 09:00 UTC, unless a test moves it."""

from __future__ import annotations

from dataclasses import replace

import fsrs

from bot.adapters.discord import render_block
from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.grading import Glossary
from bot.core.model import KeyPoint, Topic
from bot.core.study import StudyService
from bot.core.views import Reply
from tests.conftest import caller, make_card, small_bank
from tests.fakes import FakeClock, MemoryStore
from tests.unit.test_plan import with_bank
from tests.unit.test_weak import history, topic_of

ANN = caller("1", "Ann")
DAILY_HEADER = "☀️ Your daily question · start a streak today!"


def card_line(reply: Reply) -> str:
    """The question's title line: topic · difficulty · new."""
    return next(line for line in reply.plain_text().splitlines() if " · " in line)


def question_line(reply: Reply) -> str:
    """The question itself (make_card's cards ask "Question <card id>?")."""
    return next(line for line in reply.plain_text().splitlines() if line.startswith("Question "))


# --- typed answers --------------------------------------------------------------------------------------


async def test_a_typed_answer_using_a_synonym_from_the_banks_glossary_covers_the_key_point(
    store: MemoryStore, clock: FakeClock
) -> None:
    card = replace(
        make_card("norm-0", "basics"), key_points=(KeyPoint("batch normalization"), KeyPoint("learning rate warmup"))
    )
    glossary = Glossary((("batch normalization", "batchnorm", "bn"), ("learning rate", "lr")))
    bank = QuestionBank([card], [Topic("basics", "Basics")], glossary=glossary)
    commands = Commands(StudyService(store, bank, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False)))
    await commands.run(ANN, "question")
    reply = await commands.text(ANN, "Put BN after each layer and use an LR warmup.")
    assert reply is not None
    text = reply.plain_text()
    assert "You covered 2 of 2 key points" in text
    assert "✓ batch normalization" in text and "✓ learning rate warmup" in text


# --- the order of new cards -----------------------------------------------------------------------------


async def test_each_learner_meets_the_warm_ups_in_their_own_order(commands: Commands) -> None:
    firsts = [question_line(await commands.run(caller(str(n), f"P{n}"), "question")) for n in range(1, 5)]
    # a stable per-learner shuffle among the four equally ranked warm-ups: not everyone starts on the same card
    assert firsts == ["Question basics-0?", "Question basics-0?", "Question basics-0?", "Question optim-3?"]


# --- /question weak ---------------------------------------------------------------------------------------


async def test_the_note_that_a_weak_topic_card_comes_early_is_in_italics(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    me = (await commands.study.learner(ANN)).id
    for n in range(6):  # every optim card seen, due in ten days or more
        await history(store, clock, me, f"optim-{n}", passed=0 if n else 1, failed=1)
    await history(store, clock, me, "basics-0", passed=5, failed=0)
    asked = await commands.run(ANN, "question", "weak")
    assert [render_block(block) for block in asked.blocks[:2]] == [
        "*Your weakest topic: Optimisation (14% retention over 7 reviews in 30 days).*",
        "*Nothing in Optimisation is due, so this card comes early.*",
    ]


# --- plans ------------------------------------------------------------------------------------------------


async def test_a_plan_ending_at_the_daily_push_keeps_the_push_header_above_its_summary(
    store: MemoryStore, clock: FakeClock
) -> None:
    commands = with_bank(small_bank(), store, clock)
    await commands.run(ANN, "plan", "2026-03-09")
    clock.advance(days=8)
    learner = await commands.study.learner(ANN)
    pushed = await commands.study.ask(learner, ANN.chat.key, None, header=DAILY_HEADER, plan_line=True)
    assert pushed.plain_text().startswith(
        f"{DAILY_HEADER}\n\n🏁 Your plan to Mon 09 Mar 2026 is over. I hope the interview went well!\n\n"
    )
    assert "📅" not in pushed.plain_text() and "Answer in your own words" in pushed.plain_text()


async def test_question_weak_that_ends_a_plan_gives_the_summary_then_the_weak_note(
    store: MemoryStore, clock: FakeClock
) -> None:
    commands = with_bank(small_bank(), store, clock)
    await commands.run(ANN, "plan", "2026-03-09")
    clock.advance(days=8)
    text = (await commands.run(ANN, "question", "weak")).plain_text()
    assert text.startswith("🏁 Your plan to Mon 09 Mar 2026 is over.")
    assert "Got another date? Send /plan YYYY-MM-DD.\n\nNot enough reviews yet to tell your weakest topic" in text
    assert "Answer in your own words" in text


async def test_the_first_question_after_a_plan_ends_no_longer_prefers_the_plans_topics(
    store: MemoryStore, clock: FakeClock
) -> None:
    commands = with_bank(small_bank(), store, clock)
    await commands.run(ANN, "plan", "2026-03-09 stories")  # stories: two "core" cards, no warm-up
    assert topic_of(commands.study, await commands.run(ANN, "question")) == "stories"  # while it runs
    clock.advance(days=8)
    asked = await commands.run(ANN, "question")
    assert "🏁 Your plan to Mon 09 Mar 2026 is over." in asked.plain_text()
    assert card_line(asked) == "Basics · warm-up · new"  # warm-ups first again, as without a plan


async def test_the_daily_push_countdown_counts_only_the_plans_topics(store: MemoryStore, clock: FakeClock) -> None:
    commands = with_bank(small_bank(), store, clock)
    await commands.run(ANN, "plan", "2026-03-20 stories")  # 2 of the 14 cards
    learner = await commands.study.learner(ANN)
    pushed = await commands.study.ask(learner, ANN.chat.key, None, header=DAILY_HEADER, plan_line=True)
    assert pushed.plain_text().startswith(
        f"{DAILY_HEADER}\n\n📅 18 days to your interview (Fri 20 Mar) · 2 cards of your plan still new\n\n"
    )


async def test_an_explicit_topic_under_a_rushed_plan_asks_from_that_topic(store: MemoryStore, clock: FakeClock) -> None:
    commands = with_bank(small_bank(), store, clock)
    planned = (await commands.run(ANN, "plan", "2026-03-06")).plain_text()
    assert "The date is five days away or closer." in planned  # a rushed plan
    asked = await commands.run(ANN, "question", "optim")
    assert topic_of(commands.study, asked) == "optim" and card_line(asked) == "Optimisation · warm-up · new"


async def test_a_rushed_plan_puts_only_the_three_weakest_topics_first(store: MemoryStore, clock: FakeClock) -> None:
    """t1..t4 ranked weakest first; t1..t3 have nothing new left, so the 4th weakest (t4) is no better
    placed than a topic with no reviews (t5): the warm-up of t5 comes before t4's core card."""
    slugs = ["t1", "t2", "t3", "t4", "t5"]
    cards = [make_card(f"{slug}-0", slug) for slug in slugs] + [make_card("t4-1", "t4", 2)]
    bank = QuestionBank(cards, [Topic(slug, slug.upper()) for slug in slugs])
    commands = with_bank(bank, store, clock)
    me = (await commands.study.learner(ANN)).id
    for n, slug in enumerate(slugs[:4]):  # 0%, 20%, 40%, 60% retention
        await history(store, clock, me, f"{slug}-0", passed=n, failed=5 - n)
    planned = (await commands.run(ANN, "plan", "2026-03-06")).plain_text()
    assert "then your weakest topics (t1, t2, t3)" in planned
    asked = await commands.run(ANN, "question")
    assert card_line(asked) == "T5 · warm-up · new"
