"""The FSRS state saved for a rating is exactly the preview shown on its button, on every store.

The preview is worked out independently here, with FSRS itself at the moment the answer was shown,
and the stored card state is compared with it field by field. The rating is pressed hours after the
answer was shown (on a fake clock), so a preview recomputed at press time would differ.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import fsrs
import pytest

from bot.core.bank import QuestionBank
from bot.core.commands import Commands
from bot.core.model import CardState, Rating
from bot.core.ports import StudyStore
from bot.core.study import StudyService, interval_label
from bot.core.views import Reply
from bot.storage.store import Store
from tests.conftest import caller, small_bank
from tests.fakes import FakeClock, MemoryStore
from tests.unit.test_study import attempt_id, button

ANN = caller("1", "Ann")
PRESS_DELAY = timedelta(hours=3, minutes=17)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StudyStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    location = str(request.getfixturevalue("pg_dsn")) if request.param == "postgresql" else str(tmp_path / "bot.db")
    async with Store(location) as store:
        yield store


def study_on(store: StudyStore, bank: QuestionBank, clock: FakeClock) -> Commands:
    scheduler = fsrs.Scheduler(enable_fuzzing=False)
    return Commands(StudyService(store, bank, clock, scheduler=scheduler, rng=random.Random(5)))


def fsrs_card(state: CardState | None, now: datetime) -> fsrs.Card:
    if state is None:
        return fsrs.Card(card_id=1, due=now)
    return fsrs.Card(
        card_id=1,
        state=fsrs.State(state.state),
        step=state.step,
        stability=state.stability,
        difficulty=state.difficulty,
        due=state.due,
        last_review=state.last_review,
    )


def expected_after(before: CardState | None, rating: Rating, shown_at: datetime) -> dict[str, object]:
    """What FSRS says the card becomes when rated `rating` at the moment the answer was shown."""
    scheduler = fsrs.Scheduler(enable_fuzzing=False)
    card, _ = scheduler.review_card(fsrs_card(before, shown_at), fsrs.Rating(rating), shown_at)
    lapsed = rating is Rating.AGAIN and before is not None and before.state == int(fsrs.State.Review)
    return {
        "state": int(card.state),
        "step": card.step,
        "stability": card.stability,
        "difficulty": card.difficulty,
        "due": card.due,
        "last_review": card.last_review,
        "reps": (before.reps if before else 0) + 1,
        "lapses": (before.lapses if before else 0) + int(lapsed),
    }


def fields(state: CardState) -> dict[str, object]:
    return {
        "state": state.state,
        "step": state.step,
        "stability": state.stability,
        "difficulty": state.difficulty,
        "due": state.due,
        "last_review": state.last_review,
        "reps": state.reps,
        "lapses": state.lapses,
    }


def shown_interval(revealed: Reply, rating: Rating) -> str:
    label = next(b.label for row in revealed.buttons for b in row if b.label.startswith(rating.label))
    return label.split(" · ")[1]


async def rate_hours_later(
    commands: Commands, store: StudyStore, clock: FakeClock, rating: Rating, expected_card: str | None = None
) -> tuple[str, CardState | None, datetime, Reply]:
    """Ask, show the answer, wait PRESS_DELAY, press `rating`: (card id, state before, shown at, revealed)."""
    question = await commands.run(ANN, "question")
    attempt = await store.get_attempt(attempt_id(question))
    assert attempt is not None
    if expected_card is not None:
        assert attempt.card_id == expected_card, "the due card should come back first"
    before = await store.card_state(attempt.learner_id, attempt.card_id)
    revealed = await commands.press(ANN, button(question, "Show answer"))
    shown_at = clock.now()
    clock.advance(seconds=PRESS_DELAY.total_seconds())
    done = await commands.press(ANN, button(revealed, rating.label))
    assert f"Rated {rating.label}" in done.plain_text()
    return attempt.card_id, before, shown_at, revealed


@pytest.mark.parametrize("rating", list(Rating), ids=lambda r: r.label)
async def test_a_new_cards_saved_state_is_field_by_field_the_preview_shown_when_rated_hours_later(
    any_store: StudyStore, rating: Rating
) -> None:
    clock = FakeClock()
    commands = study_on(any_store, small_bank(), clock)
    card_id, before, shown_at, revealed = await rate_hours_later(commands, any_store, clock, rating)
    assert before is None
    expected = expected_after(None, rating, shown_at)
    saved = await any_store.card_state(1, card_id)
    assert saved is not None
    assert fields(saved) == expected
    assert shown_interval(revealed, rating) == interval_label(saved.due - shown_at)


@pytest.mark.parametrize("second", list(Rating), ids=lambda r: r.label)
@pytest.mark.parametrize("first", [Rating.AGAIN, Rating.GOOD, Rating.EASY], ids=lambda r: r.label)
async def test_a_reviewed_cards_saved_state_is_field_by_field_the_preview_shown_when_rated_hours_later(
    any_store: StudyStore, first: Rating, second: Rating
) -> None:
    clock = FakeClock()
    commands = study_on(any_store, small_bank(), clock)
    card_id, _, _, _ = await rate_hours_later(commands, any_store, clock, first)
    after_first = await any_store.card_state(1, card_id)
    assert after_first is not None
    clock.set(max(clock.now(), after_first.due) + timedelta(hours=2))  # the card is due again
    _, before, shown_at, revealed = await rate_hours_later(commands, any_store, clock, second, expected_card=card_id)
    assert before == after_first
    expected = expected_after(before, second, shown_at)
    saved = await any_store.card_state(1, card_id)
    assert saved is not None
    assert fields(saved) == expected
    assert saved.stability != saved.difficulty  # a swap of the two would show
    assert shown_interval(revealed, second) == interval_label(saved.due - shown_at)
