"""The numbers behind /stats' picture: mastery per topic, reviews per local day, reviews due per local
day, computed from constructed histories; and the service that attaches the picture to /stats."""

from __future__ import annotations

import logging
import random
from datetime import UTC, date, datetime, timedelta

import fsrs
import pytest

from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import CardState
from bot.core.progress import (
    ACTIVITY_WEEKS,
    DUE_DAYS,
    NO_PICTURE_YET,
    PICTURE_NAME,
    Progress,
    ProgressHistory,
    ProgressService,
    activity_start,
    compute_progress,
)
from bot.core.study import StudyService
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock, MemoryStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SCHEDULER = fsrs.Scheduler(enable_fuzzing=False)


def state(
    card_id: str, *, stability: float = 10.0, reviewed: datetime | None = None, due: datetime | None = None
) -> CardState:
    """A review state: last reviewed `reviewed` (default a day ago) with `stability` days."""
    last = reviewed or NOW - timedelta(days=1)
    return CardState(
        learner_id=1,
        card_id=card_id,
        state=2,
        step=None,
        stability=stability,
        difficulty=5.0,
        due=due or last + timedelta(days=stability),
        last_review=last,
        reps=3,
    )


def progress_of(
    *states: CardState,
    per_day: dict[str, int] | None = None,
    now: datetime = NOW,
    timezone: str = "UTC",
    bank: QuestionBank | None = None,
) -> Progress:
    return compute_progress(
        bank or small_bank(),
        ProgressHistory(states=states, reviews_per_day=per_day or {}),
        learner="Ann",
        timezone=timezone,
        now=now,
        scheduler=SCHEDULER,
    )


# --- mastery ---------------------------------------------------------------------------------------------


def test_a_card_is_mastered_while_fsrs_gives_it_at_least_90_percent_recall_now() -> None:
    progress = progress_of(
        state("basics-0", stability=10, reviewed=NOW - timedelta(days=9)),  # before its stability: R > 0.9
        state("basics-1", stability=10, reviewed=NOW - timedelta(days=11)),  # past it: R < 0.9
        state("basics-2", stability=200, reviewed=NOW - timedelta(days=60)),  # long-lived memory
        state("basics-3", stability=0.5, reviewed=NOW - timedelta(days=2)),  # a lapse-prone card
    )
    basics = progress.mastery[0]
    assert (basics.topic.slug, basics.mastered, basics.total) == ("basics", 2, 6)
    assert basics.share == pytest.approx(2 / 6)


def test_mastery_agrees_with_the_schedulers_own_retrievability_card_by_card() -> None:
    """FSRS counts whole days since the last review; a formula of our own would disagree on some of these."""
    rng = random.Random(5)
    bank = small_bank()
    states = [
        state(card.id, stability=rng.uniform(0.5, 40), reviewed=NOW - timedelta(hours=rng.uniform(0, 24 * 60)))
        for card in bank.cards[2:]
    ]
    # 10.5 days after the review with a stability of 10.2 days: FSRS counts 10 whole days, so still mastered
    states.append(state("basics-0", stability=10.2, reviewed=NOW - timedelta(days=10, hours=12)))
    states.append(state("basics-1", stability=10.2, reviewed=NOW - timedelta(days=11, hours=1)))  # 11 days: not
    progress = progress_of(*states, bank=bank)
    expected = {
        topic.slug: sum(
            1
            for s in states
            if bank.card(s.card_id).topic == topic.slug  # type: ignore[union-attr]
            and SCHEDULER.get_card_retrievability(_fsrs_card(s), NOW) >= 0.9
        )
        for topic in bank.topics
    }
    assert {m.topic.slug: m.mastered for m in progress.mastery} == expected
    assert 0 < progress.mastered < progress.cards  # the sample has both kinds


def _fsrs_card(card: CardState) -> fsrs.Card:
    return fsrs.Card(
        card_id=1,
        state=fsrs.State(card.state),
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=card.due,
        last_review=card.last_review,
    )


def test_cards_never_seen_count_as_not_mastered_and_unknown_cards_are_left_out() -> None:
    progress = progress_of(state("optim-0"), state("retired-card"))
    assert [(m.topic.slug, m.mastered, m.total) for m in progress.mastery] == [
        ("basics", 0, 6),
        ("optim", 1, 6),
        ("stories", 0, 2),
    ]
    assert (progress.mastered, progress.cards) == (1, 14)


# --- activity by local day ---------------------------------------------------------------------------------


def test_the_heatmap_covers_twelve_weeks_from_a_monday_to_today() -> None:
    per_day = {"2026-03-02": 4, "2026-02-27": 9, "2025-12-15": 1, "2025-12-14": 7, "2026-03-03": 5}
    progress = progress_of(per_day=per_day)
    assert progress.today == date(2026, 3, 2)
    assert progress.activity_start == date(2025, 12, 15) and progress.activity_start.weekday() == 0
    assert len(progress.activity) == 7 * (ACTIVITY_WEEKS - 1) + 1  # today is the first day of its week
    assert progress.activity[0] == 1 and progress.activity[-1] == 4
    assert progress.activity_on(date(2026, 2, 27)) == 9
    assert progress.activity_on(date(2025, 12, 14)) == 0  # before the window
    assert sum(progress.activity) == 14  # the day before the window and a day after today are not drawn


@pytest.mark.parametrize(
    ("timezone", "today", "start", "days"),
    [
        ("Asia/Tokyo", date(2026, 3, 2), date(2025, 12, 15), 78),  # UTC+9: already Monday
        ("UTC", date(2026, 3, 1), date(2025, 12, 8), 84),  # still Sunday
        ("America/New_York", date(2026, 3, 1), date(2025, 12, 8), 84),
    ],
)
def test_today_and_the_weeks_are_the_learners_local_ones(timezone: str, today: date, start: date, days: int) -> None:
    evening_utc = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    progress = progress_of(now=evening_utc, timezone=timezone, per_day={today.isoformat(): 3})
    assert (progress.today, progress.activity_start, len(progress.activity)) == (today, start, days)
    assert progress.activity[-1] == 3


def test_activity_start_is_the_monday_eleven_weeks_before_this_weeks() -> None:
    for offset in range(14):
        day = date(2026, 3, 2) + timedelta(days=offset)
        start = activity_start(day)
        assert start.weekday() == 0
        assert 7 * (ACTIVITY_WEEKS - 1) <= (day - start).days < 7 * ACTIVITY_WEEKS


async def test_reviews_land_on_the_learners_local_day_across_a_time_zone() -> None:
    """A Tokyo learner answering at 20:00 UTC on Sunday answers on their Monday."""
    store = MemoryStore()
    clock = FakeClock(datetime(2026, 3, 1, 20, 0, tzinfo=UTC))
    study = StudyService(store, small_bank(), clock, scheduler=SCHEDULER, rng=random.Random(1))
    picturer = RecordingPicturer()
    service = ProgressService(store, study, picturer)
    ann = caller()
    learner = await study.learner(ann)
    await store.set_timezone(learner.id, "Asia/Tokyo")
    commands = Commands(study)
    for _ in range(3):
        await answer_one(commands, ann)

    progress = await service.progress(ann)
    assert progress is not None
    assert progress.today == date(2026, 3, 2)
    assert progress.activity[-1] == 3 and sum(progress.activity) == 3
    assert {r.local_day for r in store.reviews} == {"2026-03-02"}


# --- due per local day --------------------------------------------------------------------------------------


def test_due_counts_each_of_the_next_14_local_days_with_overdue_cards_today() -> None:
    progress = progress_of(
        state("basics-0", due=NOW - timedelta(days=5)),  # overdue: today
        state("basics-1", due=NOW + timedelta(hours=3)),  # later today
        state("basics-2", due=NOW + timedelta(days=1)),
        state("basics-3", due=NOW + timedelta(days=1, hours=2)),
        state("basics-4", due=NOW + timedelta(days=13)),  # the last day drawn
        state("basics-5", due=NOW + timedelta(days=14)),  # the day after: not drawn
    )
    assert len(progress.due) == DUE_DAYS
    assert progress.due[0] == 2 and progress.due[1] == 2 and progress.due[13] == 1
    assert sum(progress.due) == 5


def test_a_due_time_counts_on_the_learners_local_day() -> None:
    late_evening_utc = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 00:30 on 3 March in Berlin
    cards = (state("basics-0", due=late_evening_utc),)
    assert progress_of(*cards, timezone="UTC").due[:2] == (1, 0)
    assert progress_of(*cards, timezone="Europe/Berlin").due[:2] == (0, 1)


# --- the service ------------------------------------------------------------------------------------------


class RecordingPicturer:
    def __init__(self, fail: bool = False) -> None:
        self.drawn: list[Progress] = []
        self.fail = fail

    async def draw(self, progress: Progress) -> bytes:
        self.drawn.append(progress)
        if self.fail:
            raise RuntimeError("the font cache is broken")
        return b"\x89PNG fake"


async def answer_one(commands: Commands, who: object) -> None:
    asked = await commands.run(who, "question")  # type: ignore[arg-type]
    show = next(b.action for row in asked.buttons for b in row if b.action.startswith("sa:"))
    revealed = await commands.press(who, show)  # type: ignore[arg-type]
    good = next(b.action for row in revealed.buttons for b in row if b.label.startswith("Good"))
    await commands.press(who, good)  # type: ignore[arg-type]


def wired(picturer: RecordingPicturer) -> tuple[Commands, MemoryStore]:
    store = MemoryStore()
    study = StudyService(store, small_bank(), FakeClock(NOW), scheduler=SCHEDULER, rng=random.Random(2))
    commands = Commands(study)
    commands.attach_progress(ProgressService(store, study, picturer))
    return commands, store


async def test_stats_carries_the_picture_of_the_learners_own_numbers() -> None:
    picturer = RecordingPicturer()
    commands, _ = wired(picturer)
    ann = caller()
    await answer_one(commands, ann)
    await answer_one(commands, ann)

    reply = await commands.run(ann, "stats")

    assert reply.picture is not None and reply.picture.name == PICTURE_NAME
    assert reply.picture.content == b"\x89PNG fake"
    assert "Cards seen: 2 of 14" in reply.plain_text()  # the text is still there
    (drawn,) = picturer.drawn
    assert (drawn.learner, drawn.activity[-1], drawn.today) == ("Ann", 2, date(2026, 3, 2))
    caption = reply.picture.caption
    assert "90%" in caption and "FSRS" in caption and "haven't seen count as not mastered" in caption
    assert len(caption) <= 1024


async def test_a_learner_with_no_reviews_gets_the_text_and_a_friendly_line_but_no_picture() -> None:
    picturer = RecordingPicturer()
    commands, _ = wired(picturer)

    reply = await commands.run(caller(), "stats")

    assert reply.picture is None and picturer.drawn == []
    assert NO_PICTURE_YET in reply.plain_text() and "Cards seen: 0 of 14" in reply.plain_text()


async def test_a_picture_that_fails_to_draw_leaves_the_text_alone(caplog: pytest.LogCaptureFixture) -> None:
    picturer = RecordingPicturer(fail=True)
    commands, _ = wired(picturer)
    ann = caller()
    await answer_one(commands, ann)
    without = await Commands(commands.study).run(ann, "stats")

    with caplog.at_level(logging.ERROR, logger="studybot.progress"):
        reply = await commands.run(ann, "stats")

    assert reply.picture is None and len(picturer.drawn) == 1
    assert reply.blocks == without.blocks
    assert "could not draw the progress picture" in caplog.text
