"""Weakest topics: ranking from constructed review histories, /question weak, its fallback, and /stats."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.adapters.discord import render_block
from bot.core.bank import DeckInfo, QuestionBank
from bot.core.commands import Commands
from bot.core.decks import Library
from bot.core.model import AttemptStatus, CardEvidence, CardState, Rating, Review, ReviewMode, Topic
from bot.core.study import StudyService
from bot.core.views import Reply
from bot.core.weak import rank_topics
from tests.conftest import caller, make_card, small_bank
from tests.fakes import FakeClock, MemoryStore

ANN = caller("1", "Ann")


async def review(
    store: MemoryStore, learner_id: int, card_id: str, rating: Rating, when: datetime, *, was_new: bool = False
) -> None:
    """One answer in the review log, through the store's own API; the card is next due in ten days."""
    attempt = await store.create_attempt(learner_id, card_id, "test:history", when, None)
    state = CardState(
        learner_id, card_id, 2, None, 10.0, 5.0, when + timedelta(days=10), when, 1, 0, when.date().isoformat()
    )
    entry = Review(learner_id, card_id, rating, when, ReviewMode.REVEAL, when.date().isoformat(), was_new, 2)
    assert await store.record_answer(attempt.id, (AttemptStatus.OPEN,), state, entry, when)


async def history(
    store: MemoryStore, clock: FakeClock, learner_id: int, card_id: str, passed: int, failed: int
) -> None:
    """`passed` reviews rated Good and `failed` rated Again, of a card seen before, an hour ago."""
    for n in range(passed + failed):
        rating = Rating.GOOD if n < passed else Rating.AGAIN
        await review(store, learner_id, card_id, rating, clock.now() - timedelta(hours=1, minutes=n))


async def learner_id(commands: Commands) -> int:
    return (await commands.study.learner(ANN)).id


def topic_of(study: StudyService, reply: Reply) -> str:
    """The topic of the card a question reply asks (its title names the topic)."""
    title = next(line for line in reply.plain_text().splitlines() if " · " in line)
    name = title.split(" · ")[0]
    return next(topic.slug for topic in study.bank.topics if topic.name == name)


def button(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


# --- ranking ----------------------------------------------------------------------------------------


def two_topic_bank() -> QuestionBank:
    """Topics declared out of alphabetical order, so a tie broken by name is not the bank's order."""
    cards = [make_card("z-1", "zeta"), make_card("z-2", "zeta"), make_card("a-1", "alpha"), make_card("a-2", "alpha")]
    return QuestionBank(cards, [Topic("zeta", "Zeta"), Topic("alpha", "Alpha")])


def test_the_lowest_share_of_good_answers_is_the_weakest_and_thin_topics_do_not_count() -> None:
    bank = two_topic_bank()
    evidence = [CardEvidence("z-1", 5, 4), CardEvidence("a-1", 3, 1), CardEvidence("a-2", 2, 0)]
    ranked = rank_topics(evidence, bank)
    assert [(s.topic.slug, s.answers, s.passed) for s in ranked] == [("alpha", 5, 1), ("zeta", 5, 4)]
    assert ranked[0].rate == 0.2
    assert rank_topics([CardEvidence("z-1", 4, 0), CardEvidence("a-1", 4, 4)], bank) == []  # 4 < 5 answers


def test_ties_go_to_the_topic_with_fewer_answers_then_to_the_name() -> None:
    bank = two_topic_bank()
    fewer = rank_topics([CardEvidence("a-1", 10, 6), CardEvidence("z-1", 5, 3)], bank)  # 60% each
    assert [s.topic.slug for s in fewer] == ["zeta", "alpha"]
    same = rank_topics([CardEvidence("z-1", 5, 3), CardEvidence("a-1", 5, 3)], bank)
    assert [s.topic.slug for s in same] == ["alpha", "zeta"]


def test_cards_no_longer_in_the_bank_are_left_out() -> None:
    assert rank_topics([CardEvidence("gone", 9, 0), CardEvidence("z-1", 5, 5)], two_topic_bank())[0].topic.slug == (
        "zeta"
    )
    assert rank_topics([CardEvidence("gone", 9, 0)], two_topic_bank()) == []


# --- /question weak ---------------------------------------------------------------------------------


async def test_weak_asks_from_the_topic_with_the_lowest_retention(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    me = await learner_id(commands)
    await history(store, clock, me, "basics-0", passed=4, failed=1)  # basics 80%
    await history(store, clock, me, "optim-0", passed=2, failed=3)  # optim 40%
    asked = await commands.run(ANN, "question", "weak")
    assert "Your weakest topic: Optimisation (40% retention over 5 reviews in 30 days)." in asked.plain_text()
    assert topic_of(commands.study, asked) == "optim"
    assert button(asked, "Show answer")  # a real question, with its buttons


async def test_new_cards_and_old_reviews_are_not_evidence(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    me = await learner_id(commands)
    for n in range(5):  # first answers of new cards: not retention
        await review(store, me, f"optim-{n}", Rating.AGAIN, clock.now() - timedelta(hours=1), was_new=True)
    for n in range(5):  # reviews from 31 days ago: outside the window
        await review(store, me, "optim-5", Rating.AGAIN, clock.now() - timedelta(days=31, minutes=n))
    await history(store, clock, me, "basics-0", passed=4, failed=1)
    asked = await commands.run(ANN, "question", "weak")
    assert "Your weakest topic: Basics (80% retention over 5 reviews in 30 days)." in asked.plain_text()


async def test_without_enough_reviews_weak_falls_back_to_the_usual_order_and_says_so(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    me = await learner_id(commands)
    await history(store, clock, me, "optim-0", passed=0, failed=4)  # four reviews: not enough yet
    asked = await commands.run(ANN, "question", "weak")
    text = asked.plain_text()
    assert "Not enough reviews yet to tell your weakest topic" in text
    assert "a topic counts after 5 reviews" in text and "usual order" in text
    weak_card = text.split("Answer in your own words")[0].strip().splitlines()[-1]
    usual = (await commands.run(ANN, "question")).plain_text()
    assert usual.split("Answer in your own words")[0].strip().splitlines()[-1] == weak_card


async def test_a_tie_goes_to_the_less_practised_topic(commands: Commands, store: MemoryStore, clock: FakeClock) -> None:
    me = await learner_id(commands)
    await history(store, clock, me, "basics-0", passed=6, failed=4)  # 60% of 10
    await history(store, clock, me, "optim-0", passed=3, failed=2)  # 60% of 5
    asked = await commands.run(ANN, "question", "WEAK")
    assert topic_of(commands.study, asked) == "optim"


async def test_next_question_and_skip_stay_on_the_weakest_topic(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    me = await learner_id(commands)
    await history(store, clock, me, "basics-0", passed=5, failed=0)
    await history(store, clock, me, "optim-0", passed=1, failed=4)
    asked = await commands.run(ANN, "question", "weak")
    revealed = await commands.press(ANN, button(asked, "Show answer"))
    rated = await commands.press(ANN, button(revealed, "Good"))
    following = await commands.press(ANN, button(rated, "Next question"))
    assert "Your weakest topic: Optimisation" in following.plain_text()
    assert topic_of(commands.study, following) == "optim"
    skipped = await commands.press(ANN, button(following, "Skip"))
    assert skipped.notice == "Skipped" and topic_of(commands.study, skipped) == "optim"


async def test_when_nothing_of_the_weakest_topic_is_due_or_new_a_card_comes_early(
    commands: Commands, store: MemoryStore, clock: FakeClock
) -> None:
    me = await learner_id(commands)
    for n in range(6):  # every optim card seen, due in ten days or more
        await history(store, clock, me, f"optim-{n}", passed=0 if n else 1, failed=1)
    await history(store, clock, me, "basics-0", passed=5, failed=0)
    asked = await commands.run(ANN, "question", "weak")
    text = asked.plain_text()
    assert topic_of(commands.study, asked) == "optim"
    assert "Nothing in Optimisation is due, so this card comes early." in text
    assert " · new" not in text


async def test_a_topic_named_like_weak_is_not_needed_and_topics_still_work(commands: Commands) -> None:
    asked = await commands.run(ANN, "question", "optim")
    assert topic_of(commands.study, asked) == "optim"
    assert "weakest" not in asked.plain_text()


# --- /stats -----------------------------------------------------------------------------------------


async def test_stats_name_the_three_weakest_topics_in_order(store: MemoryStore, clock: FakeClock) -> None:
    bank = small_bank()
    bank = QuestionBank(
        [*bank.cards, make_card("extra-0", "extra")],
        [*bank.topics, Topic("extra", "Extra")],
    )
    commands = Commands(StudyService(store, bank, clock))
    me = await learner_id(commands)
    await history(store, clock, me, "basics-0", passed=4, failed=1)  # 80%
    await history(store, clock, me, "optim-0", passed=1, failed=4)  # 20%
    await history(store, clock, me, "story-0", passed=3, failed=2)  # 60%
    await history(store, clock, me, "extra-0", passed=5, failed=0)  # 100%: fourth, not named
    text = (await commands.run(ANN, "stats")).plain_text()
    section = text.split("Weakest topics (30 days)")[1].split("By topic")[0]
    assert [line.strip() for line in section.splitlines() if line.strip().startswith("•")] == [
        "• optim 20% retention (5 reviews)",
        "• stories 60% retention (5 reviews)",
        "• basics 80% retention (5 reviews)",
    ]
    assert "extra" not in section
    assert "Practise them with /question weak." in section


async def test_stats_say_when_no_topic_has_enough_reviews(commands: Commands) -> None:
    text = (await commands.run(ANN, "stats")).plain_text()
    assert "Weakest topics" in text
    assert "Not enough reviews yet: a topic counts after 5 reviews" in text


# --- how the notes look ---------------------------------------------------------------------------------


def first_block(reply: Reply) -> str:
    """The reply's first block as Discord shows it (Markdown: *italic*)."""
    return render_block(reply.blocks[0])


async def test_the_weakest_topic_note_is_in_italics(commands: Commands, store: MemoryStore, clock: FakeClock) -> None:
    await history(store, clock, await learner_id(commands), "optim-0", passed=2, failed=3)
    asked = await commands.run(ANN, "question", "weak")
    assert first_block(asked) == "*Your weakest topic: Optimisation (40% retention over 5 reviews in 30 days).*"


async def test_the_note_that_weak_falls_back_to_the_usual_order_is_in_italics(commands: Commands) -> None:
    asked = await commands.run(ANN, "question", "weak")
    assert first_block(asked) == (
        "*Not enough reviews yet to tell your weakest topic (a topic counts after 5 reviews of cards you had seen "
        "before, in 30 days), so here is your next card in the usual order.*"
    )


def two_part_library(per_topic: int = 6) -> Library:
    """The small bank shipped as two parts a chat can choose with /deck: core (basics) and extra (the rest)."""
    bank = small_bank(per_topic)
    shipped = QuestionBank(
        [replace(card, deck="core" if card.topic == "basics" else "extra") for card in bank.cards],
        bank.topics,
        [DeckInfo("core", "Core", "core.yaml", per_topic), DeckInfo("extra", "Extra", "extra.yaml", per_topic + 2)],
    )
    return Library(shipped)


async def test_weak_does_not_bring_a_card_early_from_outside_the_chats_decks(
    store: MemoryStore, clock: FakeClock
) -> None:
    library = two_part_library()
    await library.set_choice(ANN.chat.key, ("core",), clock.now())  # this chat practises basics only
    commands = Commands(StudyService(store, library, clock))
    await history(store, clock, await learner_id(commands), "optim-0", passed=1, failed=4)  # optim: weakest
    asked = await commands.run(ANN, "question", "weak")
    text = asked.plain_text()
    assert "Your weakest topic: Optimisation" in text and "All caught up in optim" in text
    assert "comes early" not in text and not asked.buttons
    assert [a.chat_key for a in store.attempts.values()] == ["test:history"] * 5  # nothing asked here
