"""ProgressRepository on every engine (SQLite and PostgreSQL): the picture's one read gives back the
learner's card states field by field and their reviews counted per local day from a given day on, in
one round trip, and nothing of another learner's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import AttemptStatus, CardState, Identity, Rating, Review, ReviewMode
from bot.storage.store import Store

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(engine_store: Store) -> Store:
    return engine_store


async def answer(store: Store, learner_id: int, card_id: str, day: str, *, stability: float = 3.25) -> CardState:
    """One recorded answer (attempt, card state, review) as StudyService records it."""
    attempt = await store.create_attempt(learner_id, card_id, f"test:{learner_id}", NOW, None)
    state = CardState(
        learner_id=learner_id,
        card_id=card_id,
        state=2,
        step=None,
        stability=stability,
        difficulty=6.5,
        due=NOW + timedelta(days=3),
        last_review=NOW - timedelta(hours=1),
        reps=2,
        lapses=1,
        first_day="2026-02-01",
    )
    review = Review(learner_id, card_id, Rating.GOOD, NOW, ReviewMode.CHOICE, day, was_new=False, state_before=2)
    assert await store.record_answer(attempt.id, (AttemptStatus.OPEN,), state, review, NOW)
    return state


async def test_the_history_is_the_learners_card_states_and_reviews_per_local_day_since_a_day(store: Store) -> None:
    ann = await store.ensure_learner(Identity("telegram", "1"), "Ann", NOW, "UTC", 10)
    bob = await store.ensure_learner(Identity("telegram", "2"), "Bob", NOW, "UTC", 10)
    first = await answer(store, ann.id, "backprop", "2026-02-27")
    await answer(store, ann.id, "backprop", "2026-02-27")
    second = await answer(store, ann.id, "dropout", "2026-03-02", stability=40.5)
    await answer(store, ann.id, "attention", "2025-12-01")  # before the day asked for
    await answer(store, bob.id, "backprop", "2026-03-02")  # someone else's

    history = await store.progress_history(ann.id, "2025-12-15")

    states = {s.card_id: s for s in history.states}
    assert set(states) == {"backprop", "dropout", "attention"}
    assert states["backprop"] == first
    assert states["dropout"] == second
    assert dict(history.reviews_per_day) == {"2026-02-27": 2, "2026-03-02": 1}


async def test_a_learner_with_no_answers_has_an_empty_history(store: Store) -> None:
    ann = await store.ensure_learner(Identity("telegram", "1"), "Ann", NOW, "UTC", 10)
    history = await store.progress_history(ann.id, "2025-12-15")
    assert history.states == () and dict(history.reviews_per_day) == {}


async def test_the_history_is_one_round_trip(store: Store) -> None:
    ann = await store.ensure_learner(Identity("telegram", "1"), "Ann", NOW, "UTC", 10)
    await answer(store, ann.id, "backprop", "2026-03-02")
    before = store.db.trips
    await store.progress_history(ann.id, "2025-12-15")
    assert store.db.trips - before == 1
