"""Progress as a picture: the numbers /stats draws, computed from the learner's own history.

Three measures, each by the learner's local day (their time zone):
- mastery per topic: the share of the topic's cards whose FSRS retrievability now is at least 90%,
  computed with the scheduler's own formula; cards never seen count as not mastered;
- activity: reviews per local day over the last 12 weeks (the review log keeps each review's local day);
- due: how many cards fall due on each of the next 14 local days (today's count includes the overdue ones).

`compute_progress` is pure; ProgressService reads the history through a narrow store port, computes,
and has the picture drawn through the Picturer port (matplotlib lives outside the core).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol

import fsrs

from bot.core.bank import QuestionBank
from bot.core.model import Caller, CardState, Topic
from bot.core.study import StudyService, _to_fsrs
from bot.core.views import Paragraph, Picture, Reply, Span
from bot.core.zones import zone_info

log = logging.getLogger("studybot.progress")

MASTERY_THRESHOLD = 0.9  # retrievability at or above which a card counts as mastered
ACTIVITY_WEEKS = 12
DUE_DAYS = 14
PICTURE_NAME = "stats.png"
NO_PICTURE_YET = (
    "Your progress picture appears here after your first answer: send /question to start, "
    "and /stats will draw what you know, when you practised and what comes up next."
)


@dataclass(frozen=True, slots=True)
class ProgressHistory:
    """What the store reads for one learner's picture: every card state, and reviews per local day."""

    states: tuple[CardState, ...]
    reviews_per_day: Mapping[str, int]  # local day (YYYY-MM-DD) -> reviews that day, from the day asked for on


@dataclass(frozen=True, slots=True)
class TopicMastery:
    topic: Topic
    mastered: int
    total: int

    @property
    def share(self) -> float:
        return self.mastered / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    """The numbers of one progress picture."""

    learner: str
    timezone: str
    today: date  # the learner's local day
    mastery: tuple[TopicMastery, ...]  # in the bank's topic order
    activity_start: date  # a Monday: the first day of the heatmap's first week
    activity: tuple[int, ...]  # reviews on each local day from activity_start to today, in order
    due: tuple[int, ...]  # cards due on each of the DUE_DAYS local days from today; today's include the overdue

    def activity_on(self, day: date) -> int:
        """Reviews on a local day inside the heatmap's window (0 outside it)."""
        index = (day - self.activity_start).days
        return self.activity[index] if 0 <= index < len(self.activity) else 0

    @property
    def mastered(self) -> int:
        return sum(m.mastered for m in self.mastery)

    @property
    def cards(self) -> int:
        return sum(m.total for m in self.mastery)


class ProgressStore(Protocol):
    """The one read the picture needs."""

    async def progress_history(self, learner_id: int, since_day: str) -> ProgressHistory:
        """The learner's card states and their review counts per local day from `since_day` (YYYY-MM-DD) on."""
        ...


class Picturer(Protocol):
    """Draws progress as a PNG image, off the event loop."""

    async def draw(self, progress: Progress) -> bytes: ...


def activity_start(today: date) -> date:
    """The Monday that starts the heatmap: ACTIVITY_WEEKS weeks, the last one being today's."""
    return today - timedelta(days=today.weekday(), weeks=ACTIVITY_WEEKS - 1)


def retrievability(scheduler: fsrs.Scheduler, state: CardState, now: datetime) -> float:
    """The probability of recalling the card at `now`, by FSRS's own formula (0 for a card never reviewed)."""
    return float(scheduler.get_card_retrievability(_to_fsrs(state, now), current_datetime=now))


def compute_progress(
    bank: QuestionBank,
    history: ProgressHistory,
    *,
    learner: str,
    timezone: str,
    now: datetime,
    scheduler: fsrs.Scheduler,
) -> Progress:
    """Mastery per topic, reviews per local day and cards due per local day, from the learner's history."""
    zone = zone_info(timezone)
    today = now.astimezone(zone).date()
    states = {state.card_id: state for state in history.states if bank.card(state.card_id) is not None}
    mastered = {
        card_id for card_id, state in states.items() if retrievability(scheduler, state, now) >= MASTERY_THRESHOLD
    }
    mastery = tuple(
        TopicMastery(
            topic=topic,
            mastered=sum(1 for card in bank.cards_in(topic.slug) if card.id in mastered),
            total=len(bank.cards_in(topic.slug)),
        )
        for topic in bank.topics
        if bank.cards_in(topic.slug)
    )
    start = activity_start(today)
    activity = tuple(
        history.reviews_per_day.get((start + timedelta(days=n)).isoformat(), 0) for n in range((today - start).days + 1)
    )
    due = [0] * DUE_DAYS
    for state in states.values():
        offset = max(0, (state.due.astimezone(zone).date() - today).days)  # overdue cards are due today
        if offset < DUE_DAYS:
            due[offset] += 1
    return Progress(
        learner=learner,
        timezone=timezone,
        today=today,
        mastery=mastery,
        activity_start=start,
        activity=activity,
        due=tuple(due),
    )


def caption(progress: Progress) -> str:
    """The picture's caption: what each chart measures (at most a few hundred characters)."""
    return (
        f"{progress.learner}: {progress.mastered} of {progress.cards} cards mastered. "
        f"Mastered = FSRS says you'd recall it now with at least {MASTERY_THRESHOLD:.0%} probability; "
        "cards you haven't seen count as not mastered. "
        f"Days are your local days ({progress.timezone}); today's due count includes overdue cards."
    )


class ProgressService:
    """Draws a learner's progress for /stats through the Picturer port."""

    def __init__(self, store: ProgressStore, study: StudyService, picturer: Picturer) -> None:
        self.store = store
        self.study = study
        self.picturer = picturer

    async def progress(self, caller: Caller) -> Progress | None:
        """The caller's progress numbers, or None when they have not answered anything yet."""
        learner = await self.study.learner(caller)
        now = self.study.clock.now()
        since = activity_start(now.astimezone(zone_info(learner.timezone)).date())
        history = await self.store.progress_history(learner.id, since.isoformat())
        if not history.states and not any(history.reviews_per_day.values()):
            return None
        return compute_progress(
            self.study.bank,
            history,
            learner=learner.display_name,
            timezone=learner.timezone,
            now=now,
            scheduler=self.study.scheduler,
        )

    async def illustrate(self, caller: Caller, reply: Reply) -> Reply:
        """`reply` (the /stats text) with the progress picture; a learner with no answers gets a line
        saying where the picture will come from instead. A picture that fails to draw is left out:
        the text still goes."""
        progress = await self.progress(caller)
        if progress is None:
            return replace(reply, blocks=(*reply.blocks, Paragraph.of(Span(NO_PICTURE_YET, "italic"))))
        try:
            png = await self.picturer.draw(progress)
        except Exception:
            log.exception("could not draw the progress picture of %s", caller.identity)
            return reply
        return replace(reply, picture=Picture(PICTURE_NAME, png, caption(progress)))
