"""PlanService: a plan to the interview date (`/plan YYYY-MM-DD [topics]`, `/plan`, `/plan off`).

A plan sets the learner's daily new-card cap (the /newcards number) so that every card of the chosen
topics is first seen at least REVIEW_DAYS days before the date, leaving those days for reviews. When
even the largest cap cannot cover them, it says so and new cards come in a rushed order: the source
article's questions first, then the learner's weakest topics. While a plan runs, new cards come from
its topics first (due reviews of every topic still come before any new card). The plan ends by itself
at the first contact after the date (a question, /stats, /plan or the daily push), with a summary.

The date is a local day in the learner's time zone, kept with the plan.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol

from bot.core.bank import QuestionBank
from bot.core.model import Caller, Card, Learner, Plan
from bot.core.ports import PlanStore, StudyStore
from bot.core.views import Block, Bullets, Inline, Paragraph, Reply, Span, Title, plural
from bot.core.zones import local_day_of

if TYPE_CHECKING:  # study.py imports this module; the service only needs the type
    from bot.core.study import StudyService

REVIEW_DAYS = 5  # days before the date kept for reviews: no card should be new on them
MAX_NEW_PER_DAY = 50  # the largest cap /newcards allows
OFF_WORDS = frozenset({"off", "stop", "clear", "cancel", "none"})
USAGE = (
    "Usage: /plan YYYY-MM-DD [topics], for example /plan 2026-06-15 or /plan 2026-06-15 transformers llm "
    "(default: every topic). /plan alone shows where you stand; /plan off clears the plan."
)


class PlanPorts(PlanStore, StudyStore, Protocol):
    """The store a plan works on: the plan, and the learner's cards and reviews."""


class PlanError(ValueError):
    """Input /plan cannot use; the message says why."""


def parse_day(text: str) -> date:
    """'2026-06-15' -> date; PlanError for anything else, or a day that is not on the calendar."""
    found = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text.strip())
    if found is None:
        raise PlanError(f"“{text.strip()[:20]}” is not a date written as YYYY-MM-DD")
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        raise PlanError(f"{text.strip()} is not a day on the calendar") from None


def one_year_after(day: date) -> date:
    """The same date next year (28 February for 29 February): the furthest date a plan takes."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def plan_cards(bank: QuestionBank, topics: Collection[str]) -> tuple[Card, ...]:
    """The cards a plan covers: those of its topics, or every card when it names none."""
    if not topics:
        return bank.cards
    return tuple(card for card in bank.cards if card.topic in topics)


def cards_left(bank: QuestionBank, topics: Collection[str], seen: Collection[str]) -> int:
    """Cards of the plan the learner has not seen yet."""
    return sum(1 for card in plan_cards(bank, topics) if card.id not in seen)


def plan_is_over(target_day: str, timezone: str, now: datetime) -> bool:
    """Whether the plan's date has passed in its time zone (on the day itself it still runs)."""
    return local_day_of(now, timezone) > target_day


@dataclass(frozen=True, slots=True)
class Pace:
    cap: int  # new cards a day
    rushed: bool  # even MAX_NEW_PER_DAY a day cannot meet every card in time
    days: int  # days left for new cards, today included (0: the date is REVIEW_DAYS days away or closer)
    last_new_day: date  # REVIEW_DAYS days before the date


def plan_pace(unseen: int, new_today: int, today: date, target: date, current_cap: int) -> Pace:
    """The smallest daily cap that meets `unseen` cards by REVIEW_DAYS days before `target`, today
    included (its `new_today` new cards so far already use part of today's cap), at most MAX_NEW_PER_DAY.
    With nothing unseen the cap stays `current_cap`: the days left are for reviews."""
    last = target - timedelta(days=REVIEW_DAYS)
    days = max(0, (last - today).days + 1)
    if unseen == 0:
        return Pace(current_cap, False, days, last)
    if days == 0:
        return Pace(MAX_NEW_PER_DAY, True, 0, last)
    needed = math.ceil((unseen + new_today) / days)
    if needed > MAX_NEW_PER_DAY:
        return Pace(MAX_NEW_PER_DAY, True, days, last)
    return Pace(needed, False, days, last)


@dataclass(frozen=True, slots=True)
class Progress:
    met: int  # cards of the plan first seen since it was set
    left: int  # cards of the plan still unseen
    planned_by_now: int  # new cards the plan expected by the end of yesterday
    planned_by_tonight: int  # ... by the end of today


def progress(plan: Plan, left: int, today: date) -> Progress:
    """How far the learner is against the plan: the planned cards spread evenly over the days from the
    day it was set to REVIEW_DAYS days before the date (a rushed plan: its cap every day)."""
    met = max(0, min(plan.planned, plan.planned - left))
    start = date.fromisoformat(plan.start_day)
    last = date.fromisoformat(plan.target_day) - timedelta(days=REVIEW_DAYS)
    days = max(1, (last - start).days + 1)
    per_day = Fraction(plan.new_per_day) if plan.rushed else Fraction(plan.planned, days)
    elapsed = max(0, (today - start).days)

    def planned_after(day_count: int) -> int:
        return min(plan.planned, math.ceil(per_day * day_count))

    return Progress(met, left, planned_after(elapsed), planned_after(elapsed + 1))


def on_track_line(p: Progress, target_day: str) -> str:
    if p.left == 0:
        return "✅ You have seen every card of the plan: the days left are for reviews."
    if p.met >= p.planned_by_tonight:
        return f"✅ On track: {plural(p.met, 'new card')} met, today's share included."
    if p.met >= p.planned_by_now:
        return (
            f"✅ On track: {plural(p.met, 'new card')} met so far; the plan expects {p.planned_by_tonight} "
            "by the end of today."
        )
    return (
        f"⏳ A little behind: {plural(p.met, 'new card')} met, {p.planned_by_now} planned by now. /question brings "
        f"the next ones, or send /plan {target_day} again to spread the rest over the days left."
    )


def countdown_line(target_day: str, today: date, left: int) -> str:
    """One line for /stats and the daily push: days to go and the plan's cards still new."""
    target = date.fromisoformat(target_day)
    days = (target - today).days
    if days <= 0:
        return "📅 Your interview is today. Good luck! 🍀"
    cards = f"{plural(left, 'card')} of your plan still new" if left else "every card of your plan seen"
    return f"📅 {plural(days, 'day')} to your interview ({target:%a %d %b}) · {cards}"


def topics_text(bank: QuestionBank, topics: tuple[str, ...]) -> str:
    count = len(plan_cards(bank, topics))
    if not topics:
        return f"every topic ({plural(count, 'card')})"
    return f"{', '.join(topics)} ({plural(count, 'card')})"


@dataclass(frozen=True, slots=True)
class PlanEnding:
    """A plan that ended because its date passed: what to tell the learner, and their cap now."""

    blocks: tuple[Paragraph, ...]
    new_per_day: int


async def finish_plan(
    store: PlanPorts, bank: QuestionBank, learner: Learner, seen: Collection[str]
) -> PlanEnding | None:
    """End the learner's plan (its date has passed) and sum it up; None when it was already ended."""
    ended = await store.end_plan(learner.id)
    if ended is None:
        return None
    plan, restored = ended
    left = cards_left(bank, plan.topics, seen)
    met = max(0, min(plan.planned, plan.planned - left))
    reviews, of_seen, passed = await store.review_counts(learner.id, plan.created_at)
    target, start = date.fromisoformat(plan.target_day), date.fromisoformat(plan.start_day)
    retention = f" (retention {passed / of_seen:.0%})" if of_seen else ""
    blocks = [
        Paragraph.of(
            Span(f"🏁 Your plan to {target:%a %d %b %Y} is over.", "bold"), " I hope the interview went well!"
        ),
        Paragraph.of(
            f"Since {start:%d %b} you met {met} of the {plural(plan.planned, 'new card')} it planned "
            f"and did {plural(reviews, 'review')}{retention}."
        ),
    ]
    cap = plan.previous_new_per_day if restored else learner.new_per_day
    tail = (
        f"Your daily new cards are back to {cap}. "
        if restored and cap != plan.new_per_day
        else f"Your daily new cards stay at {cap}. "
    )
    blocks.append(Paragraph.of(f"{tail}Got another date? Send /plan YYYY-MM-DD."))
    return PlanEnding(tuple(blocks), cap)


def _say(*texts: str) -> Reply:
    return Reply(blocks=tuple(Paragraph.of(text) for text in texts))


class PlanService:
    """The /plan command: set, show and clear a learner's plan to their interview date."""

    def __init__(self, store: PlanPorts, study: StudyService) -> None:
        self.store = store
        self.study = study
        self.bank = study.bank
        self.clock = study.clock

    async def command(self, caller: Caller, args: str) -> Reply:
        """/plan YYYY-MM-DD [topics] sets a plan, /plan shows it, /plan off clears it; bad input changes nothing."""
        words = args.split()
        learner = await self.study.learner(caller)
        if not words:
            return await self.show(learner)
        if words[0].casefold() in OFF_WORDS:
            return _say(USAGE) if len(words) > 1 else await self.clear(learner)
        try:
            target = parse_day(words[0])
            topics = self.parse_topics(" ".join(words[1:]))
        except PlanError as exc:
            return _say(f"{exc}.", USAGE)
        return await self.set(learner, target, topics)

    def parse_topics(self, text: str) -> tuple[str, ...]:
        """Topic slugs from 'transformers llm', 'transformers, large language models' or 'all' (= ())."""
        if not text.strip() or text.strip().casefold() == "all":
            return ()
        whole = self.bank.find_topic(text)
        if whole is not None:
            return (whole.slug,)
        slugs: list[str] = []
        for part in (p.strip() for p in re.split(r"[,;]", text)):
            if not part:
                continue
            found = self.bank.find_topic(part)
            if found is not None:
                slugs.append(found.slug)
                continue
            for word in part.split():
                one = self.bank.find_topic(word)
                if one is None:
                    names = ", ".join(t.slug for t in self.bank.topics)
                    raise PlanError(f"I don't know the topic “{word[:40]}”. Topics: {names}")
                slugs.append(one.slug)
        return tuple(dict.fromkeys(slugs))

    async def set(self, learner: Learner, target: date, topics: tuple[str, ...]) -> Reply:
        now = self.clock.now()
        today = date.fromisoformat(local_day_of(now, learner.timezone))
        if target == today:
            return _say("Your interview is today? Then it's time for a last review, not a plan: good luck! 🍀")
        if target < today:
            return _say(f"{target:%d %b %Y} has already passed. A plan needs a date after today.", USAGE)
        if target > one_year_after(today):
            return _say(
                f"{target:%d %b %Y} is more than a year away. A plan takes a date up to "
                f"{one_year_after(today):%d %b %Y}; set one closer to the interview.",
            )
        existing = await self.store.plan_for(learner.id)
        seen = await self.store.seen_card_ids(learner.id)
        unseen = cards_left(self.bank, topics, seen)
        new_today = await self.store.count_new_on_day(learner.id, today.isoformat())
        pace = plan_pace(unseen, new_today, today, target, learner.new_per_day)
        # planning again keeps the cap from before the first plan, unless the learner chose another since
        unchanged = existing is not None and learner.new_per_day == existing.new_per_day
        previous = existing.previous_new_per_day if existing is not None and unchanged else learner.new_per_day
        plan = Plan(
            learner_id=learner.id,
            target_day=target.isoformat(),
            timezone=learner.timezone,
            topics=topics,
            new_per_day=pace.cap,
            previous_new_per_day=previous,
            start_day=today.isoformat(),
            planned=unseen,
            rushed=pace.rushed,
            created_at=now,
        )
        await self.store.save_plan(plan)
        blocks: list[Block] = [
            Title(f"📅 Plan set: interview on {target:%a %d %b %Y} ({learner.timezone})"),
            Paragraph.of(f"Topics: {topics_text(self.bank, topics)}."),
        ]
        if unseen == 0:
            blocks.append(
                Paragraph.of(
                    "You have already seen every card of the plan, so the days until then are for reviews. "
                    f"Your daily new cards stay at {pace.cap}."
                )
            )
        elif pace.rushed:
            weakest = [score.topic.slug for score in (await self.study.topic_scores(learner))[:3]]
            first = f"then your weakest topics ({', '.join(weakest)})" if weakest else "then your weakest topics"
            when = (
                "The date is five days away or closer"
                if pace.days == 0
                else f"That is too soon to meet {'the' if unseen == 1 else 'all'} {plural(unseen, 'new card')} "
                f"five days before it, even at {MAX_NEW_PER_DAY} a day"
            )
            blocks.append(
                Paragraph.of(
                    Span("⚠️ ", "bold"),
                    f"{when}. I set your daily new cards to {pace.cap} and put the article's questions first, {first}.",
                )
            )
        else:
            blocks.append(
                Paragraph.of(
                    f"I set your daily new cards to {pace.cap} (it was {learner.new_per_day}): at that pace you "
                    f"meet the {plural(unseen, 'card')} you haven't seen by {pace.last_new_day:%a %d %b}, "
                    f"leaving the last {REVIEW_DAYS} days for reviews."
                )
            )
        if topics:
            blocks.append(Paragraph.of("While the plan runs, new cards come from its topics first."))
        blocks += [
            Paragraph.of(countdown_line(plan.target_day, today, unseen)),
            Paragraph.of(
                Span("/plan", "code"), " shows where you stand, ", Span("/plan off", "code"), " clears the plan."
            ),
        ]
        return Reply(blocks=tuple(blocks))

    async def show(self, learner: Learner) -> Reply:
        plan = await self.store.plan_for(learner.id)
        if plan is None:
            return _say("You have no plan yet. Tell me the date of your interview and I'll pace the new cards.", USAGE)
        now = self.clock.now()
        seen = await self.store.seen_card_ids(learner.id)
        if plan_is_over(plan.target_day, plan.timezone, now):
            ending = await finish_plan(self.store, self.bank, learner, seen)
            if ending is None:  # ended by another contact at the same moment
                return _say("You have no plan now.", USAGE)
            return Reply(blocks=ending.blocks)
        today = date.fromisoformat(local_day_of(now, plan.timezone))
        target = date.fromisoformat(plan.target_day)
        left = cards_left(self.bank, plan.topics, seen)
        done = progress(plan, left, today)
        cap: list[Inline] = [f"New cards a day: {plan.new_per_day}, set by the plan"]
        if plan.previous_new_per_day != plan.new_per_day:
            cap.append(f" (it was {plan.previous_new_per_day})")
        if learner.new_per_day != plan.new_per_day:
            cap.append(f"; you changed it to {learner.new_per_day} with /newcards")
        items: list[tuple[Inline, ...]] = [
            (f"Topics: {topics_text(self.bank, plan.topics)}",),
            (f"Cards left to meet: {left} of the {plan.planned} new when you set the plan",),
            tuple(cap),
            (
                f"Last day for new cards: {target - timedelta(days=REVIEW_DAYS):%a %d %b}, "
                f"then {REVIEW_DAYS} days of reviews",
            ),
        ]
        if plan.rushed:
            items.append(
                ("Too close to meet every card in time: the article's questions and your weakest topics first",)
            )
        return Reply(
            blocks=(
                Title(f"📅 Your plan: interview on {target:%a %d %b %Y}"),
                Paragraph.of(countdown_line(plan.target_day, today, left)),
                Bullets(tuple(items)),
                Paragraph.of(on_track_line(done, plan.target_day)),
                Paragraph.of(
                    Span(f"/plan {plan.target_day}", "code"),
                    " again recomputes the pace; ",
                    Span("/plan off", "code"),
                    " clears the plan.",
                ),
            )
        )

    async def clear(self, learner: Learner) -> Reply:
        ended = await self.store.end_plan(learner.id)
        if ended is None:
            return _say("You have no plan to clear.", USAGE)
        plan, restored = ended
        cap = plan.previous_new_per_day if restored else learner.new_per_day
        return _say(
            f"Plan cleared: no more countdown to {date.fromisoformat(plan.target_day):%d %b}. "
            f"Your daily new cards are {'back to' if restored and cap != plan.new_per_day else 'at'} {cap}."
        )
