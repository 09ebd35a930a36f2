"""The storage contract, on every engine (SQLite and PostgreSQL): the store gives back what it was
given (learners, attempts, card states, matches, rounds, answers, subscriptions, deliveries,
heartbeats and exports) field by field, through its ports, and keeps its one-per rules."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import (
    AttemptStatus,
    CardState,
    Identity,
    Match,
    MatchStatus,
    Preview,
    Rating,
    Review,
    ReviewMode,
    Round,
    RoundAnswer,
    Subscription,
)
from bot.storage.store import Store

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ANN = Identity("telegram", "1")


@pytest.fixture
def store(engine_store: Store) -> Store:
    return engine_store


def state(learner_id: int, card_id: str = "c1", *, first_day: str | None = "2026-03-02") -> CardState:
    return CardState(
        learner_id=learner_id,
        card_id=card_id,
        state=2,
        step=None,
        stability=3.25,
        difficulty=6.5,
        due=NOW + timedelta(days=3),
        last_review=NOW,
        reps=2,
        lapses=1,
        first_day=first_day,
    )


def review(learner_id: int, rating: Rating = Rating.GOOD, *, was_new: bool = False) -> Review:
    return Review(
        learner_id=learner_id,
        card_id="c1",
        rating=rating,
        reviewed_at=NOW,
        mode=ReviewMode.CHOICE,
        local_day="2026-03-02",
        was_new=was_new,
        state_before=None if was_new else 2,
    )


async def test_a_learner_comes_back_with_the_name_zone_cap_and_creation_time_given(store: Store) -> None:
    created = await store.ensure_learner(ANN, "  Ann  ", NOW, "Europe/Berlin", 7)
    assert (created.display_name, created.timezone, created.new_per_day, created.created_at) == (
        "Ann",
        "Europe/Berlin",
        7,
        NOW,
    )
    assert await store.get_learner(created.id) == created
    assert await store.find_learner(ANN) == created
    assert await store.get_learner(created.id + 1) is None


async def test_a_learner_who_renames_themselves_is_stored_under_the_new_name(store: Store) -> None:
    first = await store.ensure_learner(ANN, "Ann", NOW, "Europe/Berlin", 7)
    renamed = await store.ensure_learner(ANN, "Annie", NOW + timedelta(days=1), "UTC", 10)
    assert renamed == first.__class__(first.id, "Annie", "Europe/Berlin", 7, NOW)  # zone and cap are kept
    assert await store.find_learner(ANN) == renamed
    assert await store.ensure_learner(ANN, "Annie", NOW, "UTC", 10) == renamed


async def test_a_blank_name_is_stored_as_learner_and_a_long_one_is_cut_to_64(store: Store) -> None:
    blank = await store.ensure_learner(ANN, "   ", NOW, "UTC", 10)
    assert blank.display_name == "learner"
    long = await store.ensure_learner(Identity("telegram", "2"), "x" * 70, NOW, "UTC", 10)
    assert long.display_name == "x" * 64
    assert (await store.find_learner(Identity("telegram", "2"))) == long


async def test_an_attempt_comes_back_as_created_and_closes_with_its_time(store: Store) -> None:
    learner = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    created = await store.create_attempt(learner.id, "c1", "telegram:1", NOW, "optim")
    assert await store.get_attempt(created.id) == created
    assert (created.learner_id, created.card_id, created.chat_key, created.status, created.created_at) == (
        learner.id,
        "c1",
        "telegram:1",
        AttemptStatus.OPEN,
        NOW,
    )
    assert await store.attempt_topic(created.id) == "optim"
    assert await store.attempt_topic(created.id + 1) is None
    assert await store.get_attempt(created.id + 1) is None
    preview = Preview(rating=Rating.GOOD, state=state(learner.id), interval_label="3 d")
    later = NOW + timedelta(minutes=1)
    assert await store.update_attempt(
        created.id, (AttemptStatus.OPEN,), AttemptStatus.REVEALED, NOW, previews=(preview,)
    )
    assert await store.record_answer(
        created.id, (AttemptStatus.REVEALED,), state(learner.id), review(learner.id), later
    )
    closed = await store.get_attempt(created.id)
    assert closed is not None and closed.status is AttemptStatus.DONE and closed.closed_at == later
    assert closed.previews == (preview,)
    assert await store.active_attempt(learner.id, "telegram:1") is None


async def test_a_recorded_card_state_comes_back_field_by_field(store: Store) -> None:
    learner = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    attempt = await store.create_attempt(learner.id, "c1", "telegram:1", NOW, None)
    assert await store.next_due(learner.id) is None  # nothing seen yet
    await store.record_answer(attempt.id, (AttemptStatus.OPEN,), state(learner.id), review(learner.id), NOW)
    assert await store.card_state(learner.id, "c1") == state(learner.id)
    assert await store.next_due(learner.id) == NOW + timedelta(days=3)
    assert await store.schedule(learner.id) == [("c1", NOW + timedelta(days=3), "2026-03-02")]


async def test_review_counts_tell_reviews_of_seen_cards_and_the_ones_passed(store: Store) -> None:
    learner = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    assert await store.review_counts(learner.id, NOW - timedelta(days=30)) == (0, 0, 0)
    for rating, was_new in ((Rating.GOOD, True), (Rating.AGAIN, False), (Rating.GOOD, False), (Rating.HARD, False)):
        attempt = await store.create_attempt(learner.id, "c1", "telegram:1", NOW, None)
        await store.record_answer(
            attempt.id, (AttemptStatus.OPEN,), state(learner.id), review(learner.id, rating, was_new=was_new), NOW
        )
    assert await store.review_counts(learner.id, NOW - timedelta(days=30)) == (4, 3, 2)


async def test_a_match_and_its_rounds_and_answers_come_back_as_stored(store: Store) -> None:
    learner = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    given = Match(
        id=0,
        chat_key="telegram:-5",
        platform="telegram",
        chat_id="-5",
        starter_id=learner.id,
        topic="optim",
        questions=3,
        seconds=20,
        solo=False,
        status=MatchStatus.RUNNING,
        card_ids=("c1", "c2", "c3"),
        rounds_played=0,
        idle_rounds=0,
        started_at=NOW,
    )
    match = await store.create_match(given)
    assert match is not None and match == replace(given, id=match.id)
    opened = await store.open_round(
        Round(
            id=0,
            match_id=match.id,
            chat_key="telegram:-5",
            number=1,
            card_id="c1",
            options=(2, 0, 1, 3),
            correct_index=1,
            speed_bonus=50,
            opened_at=NOW,
            closes_at=NOW + timedelta(seconds=20),
        )
    )
    assert await store.get_round(opened.id) == opened and opened.speed_bonus == 50
    answer = RoundAnswer(
        round_id=opened.id,
        learner_id=learner.id,
        option_index=1,
        correct=True,
        points=140,
        elapsed_ms=4000,
        answered_at=NOW + timedelta(seconds=4),
    )
    assert await store.add_answer(answer, NOW + timedelta(seconds=4))
    assert await store.round_answers(opened.id) == [answer]
    reason = "Stopped by " + "x" * 300
    assert await store.end_match(match.id, MatchStatus.STOPPED, reason, learner.id, NOW + timedelta(minutes=1))
    assert not await store.end_match(match.id, MatchStatus.FINISHED, "again", None, NOW + timedelta(minutes=2))
    ended = await store.get_match(match.id)
    assert ended is not None
    assert (ended.status, ended.end_reason, ended.winner_id) == (MatchStatus.STOPPED, reason[:200], learner.id)
    assert await store.running_match("telegram:-5") is None and await store.running_matches() == []


async def test_after_a_refused_second_match_the_store_keeps_working(store: Store) -> None:
    learner = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    match = Match(
        0, "telegram:-5", "telegram", "-5", learner.id, None, 1, 20, False, MatchStatus.RUNNING, ("c1",), 0, 0, NOW
    )
    created = await asyncio.gather(store.create_match(match), store.create_match(match))
    assert sorted(m is None for m in created) == [False, True]
    await store.set_new_per_day(learner.id, 3)  # a write after the refused one: no transaction left open
    assert (await store.find_learner(ANN) or learner).new_per_day == 3


async def test_a_subscription_comes_back_with_its_group_flag_and_creation_time(store: Store) -> None:
    sub = Subscription(
        id=0,
        chat_key="telegram:-5",
        platform="telegram",
        chat_id="-5",
        is_group=True,
        learner_id=None,
        local_time="09:00",
        timezone="UTC",
        next_push_at=NOW + timedelta(hours=1),
        created_at=NOW,
    )
    saved = await store.save_subscription(sub)
    assert saved == replace(sub, id=saved.id)
    assert await store.subscription("telegram:-5") == saved


async def test_a_local_day_is_claimed_once_however_often_the_subscription_falls_due(store: Store) -> None:
    sub = Subscription(0, "telegram:1", "telegram", "1", False, None, "09:00", "UTC", NOW)
    await store.save_subscription(sub)

    def same_day(s: Subscription, now: datetime) -> tuple[str, datetime]:
        return "2026-03-02", now  # still due: as if moved later on a day already pushed

    (claim,) = await store.claim_due(NOW, "me", 10, same_day)
    assert (claim.local_day, claim.attempts, claim.subscription.chat_key) == ("2026-03-02", 0, "telegram:1")
    assert await store.claim_due(NOW + timedelta(minutes=1), "me", 10, same_day) == []
    assert await store.day_claimed(claim.subscription.id, "2026-03-02")
    assert not await store.day_claimed(claim.subscription.id, "2026-03-03")


async def test_a_push_claimed_by_two_processes_that_died_goes_out_from_the_third(store: Store) -> None:
    sub = Subscription(0, "telegram:1", "telegram", "1", False, None, "09:00", "UTC", NOW)
    await store.save_subscription(sub)
    (first,) = await store.claim_due(NOW, "first", 10, lambda s, now: ("2026-03-02", now + timedelta(days=1)))
    (second,) = await store.open_claims(NOW + timedelta(minutes=1), "second", 10)  # first died
    assert (second.delivery_id, second.local_day) == (first.delivery_id, "2026-03-02")
    (third,) = await store.open_claims(NOW + timedelta(minutes=2), "third", 10)  # second died too
    assert third.delivery_id == first.delivery_id
    await store.finish_delivery(third.delivery_id, "sent", NOW + timedelta(minutes=2))
    assert await store.open_claims(NOW + timedelta(minutes=3), "fourth", 10) == []


async def test_a_heartbeat_reads_back_its_time(store: Store) -> None:
    assert await store.last_beat("daily-tick") is None
    await store.beat("daily-tick", NOW)
    await store.beat("other", NOW + timedelta(hours=1))
    assert await store.last_beat("daily-tick") == NOW


async def test_a_chat_marked_unreachable_is_reachable_again_once_marked(store: Store) -> None:
    assert not await store.mark_reachable("telegram:1")  # it never was unreachable
    await store.mark_unreachable("telegram:1", NOW, "Forbidden: bot was blocked by the user")
    assert not await store.is_reachable("telegram:1")
    async with Store(store.location) as reopened:  # read back from the table, not the cache
        assert not await reopened.is_reachable("telegram:1")
        assert await reopened.is_reachable("telegram:2")
    assert await store.mark_reachable("telegram:1")
    assert await store.is_reachable("telegram:1")


async def test_an_export_holds_decoded_options_and_previews_and_the_learners_chats(store: Store) -> None:
    learner = await store.ensure_learner(ANN, "Ann", NOW, "UTC", 10)
    attempt = await store.create_attempt(learner.id, "c1", "telegram:1", NOW, None)
    preview = Preview(rating=Rating.GOOD, state=state(learner.id), interval_label="3 d")
    await store.update_attempt(attempt.id, (AttemptStatus.OPEN,), AttemptStatus.CHOICE, NOW, options=(2, 0, 1, 3))
    await store.update_attempt(attempt.id, (AttemptStatus.CHOICE,), AttemptStatus.REVEALED, NOW, previews=(preview,))
    await store.mark_unreachable("telegram:1", NOW, "blocked")
    data = await store.export_learner(learner.id)
    (exported,) = data["attempts"]
    assert exported["options"] == [2, 0, 1, 3]
    assert isinstance(exported["previews"], list) and exported["previews"][0]["rating"] == int(Rating.GOOD)
    assert [chat["chat_key"] for chat in data["chats"]] == ["telegram:1"]
    assert data["learner"]["display_name"] == "Ann"
    assert (await store.export_learner(learner.id + 1))["learner"] is None


async def test_habit_settings_are_stored_and_survive_a_rename(store: Store) -> None:
    ann = await store.ensure_learner(Identity("telegram", "h1"), "Ann", NOW, "UTC", 10)
    assert (ann.reviews_per_day, ann.show_streak, ann.rating_explained, ann.quiet_hours) == (100, True, False, None)
    await store.set_reviews_per_day(ann.id, 40)
    await store.set_show_streak(ann.id, False)
    await store.mark_rating_explained(ann.id)
    await store.set_quiet_hours(ann.id, "22:00-07:00")
    renamed = await store.ensure_learner(Identity("telegram", "h1"), "Ann B", NOW, "UTC", 10)
    found = await store.find_learner(Identity("telegram", "h1"))
    for learner in (renamed, found, await store.get_learner(ann.id)):
        assert learner is not None
        assert (learner.reviews_per_day, learner.show_streak, learner.rating_explained) == (40, False, True)
        assert learner.quiet_hours == "22:00-07:00"
    await store.set_quiet_hours(ann.id, None)
    await store.set_show_streak(ann.id, True)
    again = await store.get_learner(ann.id)
    assert again is not None and again.quiet_hours is None and again.show_streak


async def test_pick_context_carries_each_cards_stability_and_last_review(store: Store) -> None:
    learner = await store.ensure_learner(Identity("telegram", "m1"), "Ann", NOW, "UTC", 10)
    attempt = await store.create_attempt(learner.id, "c1", "telegram:m1", NOW, None)
    await store.record_answer(attempt.id, (AttemptStatus.OPEN,), state(learner.id), review(learner.id), NOW)
    context = await store.pick_context(learner.id, NOW)
    assert dict(context.memory) == {"c1": (3.25, NOW)}
    assert context.schedule == (("c1", NOW + timedelta(days=3), "2026-03-02"),)


async def test_export_includes_the_private_chat_rows_of_every_platform_and_forget_deletes_them(store: Store) -> None:
    tg = await store.ensure_learner(Identity("telegram", "e1"), "Ann", NOW, "UTC", 10)
    dc = await store.ensure_learner(Identity("discord", "42"), "Bo", NOW, "UTC", 10)
    await store.mark_unreachable("telegram:e1", NOW, "Forbidden")
    await store.mark_unreachable("discord:user:42", NOW, "Cannot send messages to this user")  # a Discord DM
    assert [row["chat_key"] for row in (await store.export_learner(tg.id))["chats"]] == ["telegram:e1"]
    assert [row["chat_key"] for row in (await store.export_learner(dc.id))["chats"]] == ["discord:user:42"]
    await store.forget_learner(dc.id)
    assert await store.is_reachable("discord:user:42")  # its row went with the learner
