"""The daily cap on due reviews (/reviews): after a break the backlog is spread over days, the cards most
likely to be forgotten first, none lost; today's own learning steps never wait for the cap."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import fsrs
import pytest

from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import Caller, CardState, Topic
from bot.core.study import StudyService
from bot.core.views import Reply
from tests.conftest import caller, make_card
from tests.fakes import FakeClock, MemoryStore
from tests.unit.test_weak import two_part_library

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ME = caller()


def press(reply: Reply, label: str) -> str:
    return next(b.action for row in reply.buttons for b in row if b.label.startswith(label))


class Backlog:
    """600 cards met weeks ago and all due now: stabilities from 2 to 62 days, overdue by 1 to 30 days."""

    def __init__(self, cards: int = 600) -> None:
        self.bank = QuestionBank([make_card(f"c{n:03d}") for n in range(cards)], [Topic("basics", "Basics")])
        self.clock = FakeClock(START)
        self.store = MemoryStore()
        self.study = StudyService(self.store, self.bank, self.clock, scheduler=fsrs.Scheduler(enable_fuzzing=False))
        self.commands = Commands(self.study)
        self.stability = {f"c{n:03d}": 2.0 + (n * 37 % cards) / 10 for n in range(cards)}
        self.last: dict[str, datetime] = {}

    async def run(self, name: str, args: str = "") -> Reply:
        self.clock.advance(seconds=5)  # a person takes a moment (and the flood guard counts per 10 s)
        return await self.commands.run(ME, name, args)

    async def press(self, reply: Reply, label: str) -> Reply:
        self.clock.advance(seconds=5)
        return await self.commands.press(ME, press(reply, label))

    async def seed(self, who: Caller = ME) -> int:
        learner = await self.study.learner(who)
        await self.store.set_new_per_day(learner.id, 0)  # reviews only
        for n, (card_id, stability) in enumerate(self.stability.items()):
            due = START - timedelta(days=1 + n * 53 % 30)  # overdue by 1 to 30 days, unrelated to stability
            last = due - timedelta(days=stability)
            self.last[card_id] = last
            self.store.states[(learner.id, card_id)] = CardState(
                learner.id, card_id, 2, None, stability, 5.0, due, last, 3, 0, "2025-12-01"
            )
        return learner.id

    async def review_until_caught_up(self, rating: str = "Good") -> tuple[list[str], Reply, Reply]:
        """Answer every question offered now; (cards asked in order, the first question, the last reply)."""
        asked: list[str] = []
        first: Reply | None = None
        while True:
            reply = await self.run("question")
            first = first or reply
            if "All caught up" in reply.plain_text():
                return asked, first, reply
            card_id = re.search(r"Question (c\d+)\?", reply.plain_text())
            assert card_id is not None, reply.plain_text()
            asked.append(card_id.group(1))
            revealed = await self.press(reply, "Show answer")
            await self.press(revealed, rating)


async def test_a_backlog_of_600_is_spread_over_6_days_at_100_most_at_risk_first_and_none_is_lost() -> None:
    world = Backlog()
    await world.seed()
    per_day: list[list[str]] = []
    for day in range(7):
        world.clock.set(START + timedelta(days=day))
        asked, first, last = await world.review_until_caught_up()
        per_day.append(asked)
        if day == 0:
            note = first.plain_text()
            assert "600 reviews are due. At 100 a day they are spread over about 6 days" in note
            assert "500 more reviews wait for the next 5 days" in last.plain_text()
            stats = (await world.run("stats")).plain_text()
            assert "Reviews today: 100 of 100 (/reviews)" in stats
            assert "Waiting for the next days (daily review cap reached): 500" in stats
    assert [len(asked) for asked in per_day] == [100, 100, 100, 100, 100, 100, 0]
    everything = [card for asked in per_day for card in asked]
    assert sorted(everything) == sorted(world.stability)  # each card once: none lost, none twice
    # Recall falls as (days since the last review) / stability grows: the highest ratios come first, which
    # is not the most overdue first (how overdue a card is was chosen independently of its stability).
    ratio = {card: round((START - world.last[card]).days / world.stability[card], 9) for card in world.stability}
    first_day = [ratio[card] for card in per_day[0]]
    assert first_day == sorted(first_day, reverse=True)
    assert min(first_day) >= max(ratio[card] for card in everything[100:])


async def test_the_cap_is_set_with_reviews_and_a_card_failed_today_still_comes_back_after_the_cap() -> None:
    world = Backlog(cards=40)
    await world.seed()
    assert (
        "Usage: /reviews N, where N is a whole number from 10 to 500." in (await world.run("reviews", "5")).plain_text()
    )
    assert "Usage" in (await world.run("reviews", "ten")).plain_text()
    shown = (await world.run("reviews")).plain_text()
    assert shown.startswith("You get up to 100 due reviews a day; 0 done today.")
    assert (await world.run("reviews", "10")).plain_text().startswith("Done: up to 10 due reviews a day.")

    asked = []
    for n in range(10):
        question = await world.run("question")
        asked.append(question)
        revealed = await world.press(question, "Show answer")
        await world.press(revealed, "Again" if n == 9 else "Good")
    capped = (await world.run("question")).plain_text()
    assert "All caught up for today!" in capped and "30 more reviews wait for the next 3 days" in capped
    world.clock.advance(minutes=15)  # the tenth card, rated Again, is due again within the day
    again = (await world.run("question")).plain_text()
    assert "All caught up" not in again and asked[9].plain_text().split("\n\n")[1] in again
    listed = (await world.run("reviews")).plain_text()
    assert "10 done today" in listed and "30 more reviews wait for the next days." in listed


@pytest.mark.parametrize("cap", [10, 500])
async def test_under_the_cap_nothing_waits_and_no_backlog_note(cap: int) -> None:
    world = Backlog(cards=8)
    learner_id = await world.seed()
    await world.store.set_reviews_per_day(learner_id, cap)
    asked, first, last = await world.review_until_caught_up()
    assert len(asked) == 8 and "are due. At" not in first.plain_text()
    assert last.plain_text().startswith("All caught up! 🎉") and "wait for the next" not in last.plain_text()


async def test_the_largest_cap_is_accepted_and_setting_it_says_how_the_rest_wait() -> None:
    world = Backlog(cards=8)
    await world.seed()
    assert (await world.run("reviews", "500")).plain_text() == (
        "Done: up to 500 due reviews a day. When more are due, the ones you are most likely to forget come first "
        "and the rest wait, none lost."
    )
    assert (await world.run("reviews", "501")).plain_text() == (
        "Usage: /reviews N, where N is a whole number from 10 to 500."
    )
    assert (await world.study.learner(ME)).reviews_per_day == 500


async def test_reviews_alone_after_a_skipped_card_shows_the_cap() -> None:
    world = Backlog(cards=8)
    await world.seed()
    question = await world.run("question")
    assert (await world.press(question, "Skip")).notice == "Skipped"
    assert (await world.run("reviews")).plain_text() == (
        "You get up to 100 due reviews a day; 0 done today. Change it with /reviews N (10-500)."
    )


async def capped_with_one_left(chat_decks: tuple[str, ...] | None, topic: str) -> str:
    """11 basics and 11 optim cards met long ago, all due; a cap of 10 reviews, no new cards. Answers the 10
    reviews /question gives (with `topic`, in a chat that chose `chat_decks`), then shows the next /question."""
    library = two_part_library(per_topic=11)
    clock = FakeClock(START)
    if chat_decks is not None:
        await library.set_choice(ME.chat.key, chat_decks, clock.now())
    store = MemoryStore()
    commands = Commands(StudyService(store, library, clock, scheduler=fsrs.Scheduler(enable_fuzzing=False)))
    learner = await commands.study.learner(ME)
    await store.set_new_per_day(learner.id, 0)
    await store.set_reviews_per_day(learner.id, 10)
    for n, card in enumerate(c for c in library.cards if c.topic != "stories"):
        due = START - timedelta(days=1 + n)
        store.states[(learner.id, card.id)] = CardState(
            learner.id, card.id, 2, None, 5.0, 5.0, due, due - timedelta(days=5), 3, 0, "2025-12-01"
        )
    for _ in range(10):
        clock.advance(seconds=5)
        question = await commands.run(ME, "question", topic)
        clock.advance(seconds=5)
        revealed = await commands.press(ME, press(question, "Show answer"))
        clock.advance(seconds=5)
        assert (await commands.press(ME, press(revealed, "Good"))).notice == "Saved: Good"
    clock.advance(seconds=5)
    return (await commands.run(ME, "question", topic)).plain_text()


async def test_caught_up_in_a_topic_by_the_cap_counts_only_that_topics_waiting_review() -> None:
    assert await capped_with_one_left(None, "basics") == (
        "All caught up in basics for today! 🎉\n\n"
        "You've done today's 10 reviews. 1 more review waits for the next 1 day at this pace, the ones you are "
        "most likely to forget first. /reviews N changes the daily number.\n\n"
        "You have seen every card in basics."
    )


async def test_caught_up_by_the_cap_in_a_chat_with_chosen_decks_counts_only_their_cards() -> None:
    assert await capped_with_one_left(("core",), "") == (
        "All caught up for today! 🎉\n\n"
        "You've done today's 10 reviews. 1 more review waits for the next 1 day at this pace, the ones you are "
        "most likely to forget first. /reviews N changes the daily number.\n\n"
        "You have seen every card."
    )
