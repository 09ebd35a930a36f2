"""What the storage contract tests left open, found by mutation testing (`python -m bench.mutation`):
each test pins an outcome of a repository method, on every engine (SQLite and PostgreSQL), that a
small change to the repositories got through unnoticed before. A few columns that only operators
and exports read (a finished delivery's detail, when a match ended) are read back through the
store's own connection, store.db."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import (
    AttemptStatus,
    BoardRow,
    CardState,
    Identity,
    Learner,
    Match,
    MatchStatus,
    Rating,
    Review,
    ReviewMode,
    Round,
    RoundAnswer,
    Subscription,
)
from bot.storage import rows
from bot.storage.rows import LEARNER_COLUMNS, columns, to_ms
from bot.storage.store import Store

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ANN = Identity("telegram", "1")
BOB = Identity("telegram", "2")


@pytest.fixture
def store(engine_store: Store) -> Store:
    return engine_store


def state(learner_id: int, card_id: str = "c1", due: datetime = NOW + timedelta(days=3)) -> CardState:
    return CardState(
        learner_id=learner_id,
        card_id=card_id,
        state=2,
        step=None,
        stability=3.25,
        difficulty=6.5,
        due=due,
        last_review=NOW,
        reps=2,
        lapses=1,
        first_day="2026-03-02",
    )


async def learn(store: Store, learner: Learner, card_state: CardState, *, state_before: int | None = 2) -> int:
    """Ask the card in the learner's private chat and record an answer that leaves `card_state`."""
    attempt = await store.create_attempt(learner.id, card_state.card_id, "telegram:1", NOW, None)
    review = Review(
        learner_id=learner.id,
        card_id=card_state.card_id,
        rating=Rating.GOOD,
        reviewed_at=NOW,
        mode=ReviewMode.REVEAL,
        local_day="2026-03-02",
        was_new=state_before is None,
        state_before=state_before,
    )
    assert await store.record_answer(attempt.id, (AttemptStatus.OPEN,), card_state, review, NOW)
    return attempt.id


def subscription(learner_id: int | None = None, paused_reason: str | None = None) -> Subscription:
    return Subscription(
        0, "telegram:1", "telegram", "1", False, learner_id, "09:00", "UTC", NOW, paused_reason=paused_reason
    )


# --- learners and attempts ---------------------------------------------------------------------


async def test_users_tapping_twice_on_first_contact_get_one_learner_each(store: Store) -> None:
    users = [Identity("telegram", str(100 + n)) for n in range(20)]
    got = await asyncio.gather(
        *(store.ensure_learner(user, "Ann", NOW, "UTC", 10) for user in users * 2), return_exceptions=True
    )
    assert not [error for error in got if isinstance(error, BaseException)]
    learners = [learner for learner in got if isinstance(learner, Learner)]
    assert learners[:20] == learners[20:]
    assert len({learner.id for learner in learners}) == 20
    assert learners[0] == Learner(learners[0].id, "Ann", "UTC", 10, NOW)
    assert [await store.find_learner(user) for user in users] == learners[:20]


async def test_an_attempt_read_for_its_caller_carries_the_cards_state(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    answered = await learn(store, ann, state(ann.id))
    view = await store.attempt_for(answered, ANN)
    assert view is not None and (view.caller, view.state) == (ann, state(ann.id))
    again = await store.create_attempt(ann.id, "c1", "telegram:1", NOW + timedelta(days=3), None)
    open_view = await store.open_attempt_for(ANN, "telegram:1")
    assert open_view is not None
    assert (open_view.attempt.id, open_view.caller, open_view.state) == (again.id, ann, state(ann.id))


async def test_count_due_counts_the_learners_cards_due_by_then(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    bob = await store.ensure_learner(BOB, "Bob", NOW, "UTC", 10)
    await learn(store, ann, state(ann.id, "c1", NOW - timedelta(hours=1)))
    await learn(store, ann, state(ann.id, "c2", NOW + timedelta(days=3)))
    await learn(store, bob, state(bob.id, "c3", NOW - timedelta(hours=1)))
    assert await store.count_due(ann.id, NOW) == 1
    assert await store.count_due(ann.id, NOW + timedelta(days=3)) == 2  # due at that very moment counts
    assert await store.count_due(ann.id, NOW - timedelta(hours=2)) == 0
    assert await store.count_due(bob.id, NOW) == 1


async def test_skipped_since_lists_the_learners_cards_skipped_since_then(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    bob = await store.ensure_learner(BOB, "Bob", NOW, "UTC", 10)
    for learner, card, skipped_at in ((ann, "c2", NOW - timedelta(days=2)), (ann, "c1", NOW), (bob, "c4", NOW)):
        attempt = await store.create_attempt(learner.id, card, f"telegram:{learner.id}", skipped_at, None)
        assert await store.update_attempt(attempt.id, (AttemptStatus.OPEN,), AttemptStatus.SKIPPED, skipped_at)
    await learn(store, ann, state(ann.id, "c3"))  # answered, not skipped
    assert await store.skipped_since(ann.id, NOW - timedelta(days=1)) == {"c1"}
    assert await store.skipped_since(ann.id, NOW - timedelta(days=2)) == {"c1", "c2"}
    assert await store.skipped_since(ann.id, NOW + timedelta(seconds=1)) == set()


async def test_columns_select_a_tables_columns_as_the_row_mapping_reads_them(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", NOW, "Europe/Berlin", 7)
    plain = await store.db.fetchrow(f"SELECT {columns('l', LEARNER_COLUMNS)} FROM learners l WHERE l.id = ?", ann.id)
    assert plain is not None and rows.learner(plain) == ann
    prefixed = await store.db.fetchrow(
        f"SELECT {columns('l', LEARNER_COLUMNS, 'p_')} FROM learners l WHERE l.id = ?", ann.id
    )
    assert prefixed is not None and rows.learner(prefixed, "p_") == ann


# --- chats and exports -------------------------------------------------------------------------


async def test_a_chat_marked_reachable_again_is_reachable_after_a_restart(store: Store) -> None:
    await store.mark_unreachable("telegram:1", NOW, "Forbidden: bot was blocked by the user")
    assert await store.mark_reachable("telegram:1")
    async with Store(store.location) as reopened:  # read back from the table, not the cache
        assert await reopened.is_reachable("telegram:1")


async def test_an_export_holds_the_chats_reason_the_reviews_state_before_and_who_subscribed(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    reason = "Forbidden: " + "x" * 300
    await store.mark_unreachable("telegram:1", NOW, reason)
    await learn(store, ann, state(ann.id), state_before=3)
    await store.save_subscription(subscription(ann.id))
    data = await store.export_learner(ann.id)
    assert [chat["reason"] for chat in data["chats"]] == [reason[:200]]
    assert [review["state_before"] for review in data["reviews"]] == [3]
    assert [(sub["learner_id"], sub["created_by"]) for sub in data["subscriptions"]] == [(ann.id, ann.id)]


async def test_a_forgotten_learners_paused_subscription_is_paused_no_more(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    await store.save_subscription(subscription(ann.id, paused_reason="blocked"))
    assert await store.paused_reason("telegram:1") == "blocked"
    await store.forget_learner(ann.id)
    assert await store.paused_reason("telegram:1") is None
    assert await store.subscription("telegram:1") is None


# --- daily pushes ------------------------------------------------------------------------------


async def test_the_paused_reason_follows_save_pause_resume_and_delete(store: Store) -> None:
    assert await store.paused_reason("telegram:1") is None  # read once; kept in step from here on
    saved = await store.save_subscription(subscription(paused_reason="blocked"))
    assert saved.paused_reason == "blocked" and await store.paused_reason("telegram:1") == "blocked"
    assert (await store.subscription("telegram:1") or saved).paused_reason == "blocked"
    await store.resume_subscription("telegram:1", NOW + timedelta(days=1))
    assert await store.paused_reason("telegram:1") is None
    resumed = await store.subscription("telegram:1")
    assert resumed is not None and (resumed.paused_reason, resumed.next_push_at) == (None, NOW + timedelta(days=1))
    await store.resume_subscription("telegram:1", NOW + timedelta(days=2))  # resuming one that runs: no change
    assert await store.paused_reason("telegram:1") is None
    await store.pause_subscription("telegram:1", "rate limited")
    assert await store.paused_reason("telegram:1") == "rate limited"
    await store.save_subscription(subscription())  # saved again, unpaused
    assert await store.paused_reason("telegram:1") is None
    await store.pause_subscription("telegram:1", "blocked")
    assert await store.delete_subscription("telegram:1")
    assert await store.paused_reason("telegram:1") is None
    assert not await store.delete_subscription("telegram:1")
    assert await store.paused_reason("telegram:1") is None
    await store.pause_subscription("telegram:1", "blocked")  # there is none to pause
    assert await store.paused_reason("telegram:1") is None


async def test_a_reclaimed_push_belongs_to_its_new_claimer(store: Store) -> None:
    await store.save_subscription(subscription())
    (first,) = await store.claim_due(NOW, "first", 10, lambda s, now: ("2026-03-02", now + timedelta(days=1)))
    (second,) = await store.open_claims(NOW + timedelta(minutes=1), "second", 10)  # first died
    assert second.delivery_id == first.delivery_id
    assert await store.open_claims(NOW + timedelta(minutes=2), "second", 10) == []  # second's own, still running


async def test_a_finished_delivery_records_its_outcome_time_attempts_detail_and_message(store: Store) -> None:
    await store.save_subscription(subscription())
    (claim,) = await store.claim_due(NOW, "me", 10, lambda s, now: ("2026-03-02", now + timedelta(days=1)))
    sql = "SELECT status, attempts, finished_at, detail, message_id, retry_at FROM deliveries WHERE id = ?"

    async def delivery() -> tuple[object, ...]:
        row = await store.db.fetchrow(sql, claim.delivery_id)
        assert row is not None
        return tuple(row[n] for n in range(6))

    later, retry_at = NOW + timedelta(minutes=1), NOW + timedelta(minutes=10)
    await store.finish_delivery(claim.delivery_id, "retry", later, detail="y" * 400, retry_at=retry_at)
    assert await delivery() == ("retry", 1, to_ms(later), "y" * 300, None, to_ms(retry_at))
    await store.finish_delivery(claim.delivery_id, "sent", retry_at, message_id="77")
    assert await delivery() == ("sent", 2, to_ms(retry_at), "", "77", None)
    await store.finish_delivery(claim.delivery_id, "sent", retry_at)  # no message id: the stored one stays
    assert (await delivery())[4] == "77"


# --- competitions ------------------------------------------------------------------------------


async def test_an_ended_match_records_when_it_ended(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    given = Match(
        0, "telegram:-5", "telegram", "-5", ann.id, None, 1, 20, False, MatchStatus.RUNNING, ("c1",), 0, 0, NOW
    )
    match = await store.create_match(given)
    assert match is not None
    assert await store.end_match(match.id, MatchStatus.FINISHED, "done", None, NOW + timedelta(minutes=2))
    row = await store.db.fetchrow("SELECT ended_at FROM matches WHERE id = ?", match.id)
    assert row is not None and row[0] == to_ms(NOW + timedelta(minutes=2))


async def test_the_all_time_leaderboard_counts_every_answer_and_names_each_player(store: Store) -> None:
    ann = await store.ensure_learner(ANN, "Ann", EPOCH, "UTC", 10)
    given = Match(
        0, "telegram:-5", "telegram", "-5", ann.id, None, 1, 20, False, MatchStatus.RUNNING, ("c1",), 0, 0, EPOCH
    )
    match = await store.create_match(given)
    assert match is not None
    opened = await store.open_round(
        Round(0, match.id, "telegram:-5", 1, "c1", (0, 1, 2, 3), 2, 50, EPOCH, EPOCH + timedelta(seconds=20))
    )
    assert await store.add_answer(RoundAnswer(opened.id, ann.id, 2, True, 150, 0, EPOCH), EPOCH)  # at the epoch
    assert await store.end_match(match.id, MatchStatus.FINISHED, "done", ann.id, EPOCH + timedelta(seconds=20))
    assert await store.leaderboard("telegram:-5", None) == [BoardRow(ann.id, "Ann", 150, 1, 1, 1, 1)]
    assert await store.leaderboard("telegram:-5", EPOCH + timedelta(seconds=1)) == []
