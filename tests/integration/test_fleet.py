"""Several processes on one database (issue 16), played in one test process: each replica is its own Store
(its own connections) with its own services, as `studybot run` processes sharing PostgreSQL are. Pushes are
claimed once whoever claims, every push gets a send slot shared by the fleet, a claim is taken over only when
its lease ran out, and a quiz match whose process died is finished by another one."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.competition import CompetitionService
from bot.core.daily import DailyService
from bot.core.model import Caller, Chat, Identity, MatchStatus, Subscription
from bot.core.ports import SendResult, SystemClock
from bot.core.study import StudyService
from bot.core.views import Paragraph, Reply
from bot.scheduler import MatchRunner
from bot.storage.store import Store
from tests.conftest import small_bank
from tests.fakes import FakeClock, FakeNotifier

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
GROUP = "-100"


def due(n: int, platform: str = "telegram", at: datetime = NOW) -> Subscription:
    return Subscription(0, f"{platform}:-{n}", platform, f"-{n}", True, None, "09:30", "UTC", at)


def next_day(sub: Subscription, now: datetime) -> tuple[str, datetime]:
    return now.date().isoformat(), now + timedelta(days=1)


async def test_send_slots_are_shared_by_every_claimer_and_keep_the_pace(engine_store: Store) -> None:
    store = engine_store
    for n in range(5):
        await store.save_subscription(due(n))
    pace = {"telegram": timedelta(milliseconds=100)}
    first = await store.claim_due(NOW, "a", 2, next_day, pace)
    second = await store.claim_due(NOW, "b", 3, next_day, pace)
    assert [c.send_at for c in first + second] == [NOW + timedelta(milliseconds=100 * i) for i in range(5)]
    assert len({c.subscription.id for c in first + second}) == 5
    for claim in first + second:
        await store.finish_delivery(claim.delivery_id, "sent", NOW)

    # an hour later the slots are long spent: the next claim starts at its own time; an unpaced platform at once
    later = NOW + timedelta(hours=1)
    await store.save_subscription(due(7, at=later))
    await store.save_subscription(due(8, "discord", at=later))
    claims = await store.claim_due(later, "c", 10, next_day, pace)
    assert sorted((c.subscription.platform, c.send_at) for c in claims) == [("discord", later), ("telegram", later)]
    # a retry is paced too, after the slots taken before it
    await store.finish_delivery(claims[0].delivery_id, "retry", later, retry_at=later)
    (retry,) = await store.open_claims(later, "c", 10, pace)
    assert retry.send_at == later + timedelta(milliseconds=100 if retry.subscription.platform == "telegram" else 0)


async def test_a_claimed_push_is_taken_over_after_its_lease_with_replicas_and_at_once_on_sqlite(
    engine_store: Store,
) -> None:
    store = engine_store
    await store.save_subscription(due(1))
    (claim,) = await store.claim_due(NOW, "a", 10, next_day)  # "a" sends it now; its lease: the slot + 30 s
    early = await store.open_claims(NOW + timedelta(seconds=10), "b", 10)
    if store.engine == "postgresql":  # "a" may still be sending it: not taken over yet
        assert early == []
        assert await store.open_claims(NOW + timedelta(seconds=29), "b", 10) == []
        (late,) = await store.open_claims(NOW + timedelta(seconds=31), "b", 10)  # "a" died
        assert late.delivery_id == claim.delivery_id
        # and "b" holds it now: "c" waits for b's lease in turn
        assert await store.open_claims(NOW + timedelta(seconds=40), "c", 10) == []
    else:  # one process: another claimer id is this process before its restart
        assert [c.delivery_id for c in early] == [claim.delivery_id]


async def test_three_replicas_claiming_at_once_claim_every_push_exactly_once(pg_dsn: str) -> None:
    stores = [await Store(pg_dsn).open() for _ in range(3)]
    try:
        for n in range(300):
            await stores[0].save_subscription(due(n))
        batches: dict[str, list[int]] = {}

        async def replica(name: str, store: Store) -> list[int]:
            claimed: list[int] = []
            while claims := await store.claim_due(NOW, name, 25, next_day):
                batches.setdefault(name, []).append(len(claims))
                claimed += [c.subscription.id for c in claims]
                await asyncio.sleep(0)
            return claimed

        results = await asyncio.gather(*(replica(f"r{i}", s) for i, s in enumerate(stores)))
        everyone = [sub_id for claimed in results for sub_id in claimed]
        assert len(everyone) == 300 and len(set(everyone)) == 300
        rows = await stores[0].db.fetch("SELECT COUNT(*), COUNT(DISTINCT subscription_id) FROM deliveries")
        assert tuple(rows[0]) == (300, 300)
        # rows another replica is claiming are skipped, not waited for: every replica claims some, and each
        # one's batches are full until the due ones run out (a claim that waited for another's lock would find
        # its rows taken: a short or empty batch, which ends that replica's claiming while pushes are due)
        assert len(batches) == 3, batches
        for sizes in batches.values():
            assert all(size == 25 for size in sizes[:-1]), batches
    finally:
        for store in stores:
            await store.close()


class TimedNotifier(FakeNotifier):
    """Records when each message left (the monotonic clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    async def send(self, chat_id: str, reply: Reply) -> SendResult:
        self.at.append(time.monotonic())
        return await super().send(chat_id, reply)


async def test_paced_replicas_push_everyone_once_and_together_keep_the_platform_rate(pg_dsn: str) -> None:
    rate = 40.0
    notifier = TimedNotifier()
    clock = SystemClock()
    stores = [await Store(pg_dsn).open() for _ in range(2)]
    try:
        now = clock.now()
        for n in range(60):
            await stores[0].save_subscription(due(n, at=now))

        async def question(sub: Subscription, at: datetime) -> Reply:
            return Reply(blocks=(Paragraph.of(f"daily question for {sub.chat_key}"),))

        replicas = [
            DailyService(
                store,
                StudyService(store, small_bank(), clock),
                {"telegram": notifier},
                group_content=question,
                rates={"telegram": rate},
                batch=10,  # claims of 10: the replicas take turns
                claimer=f"replica-{n}",
            )
            for n, store in enumerate(stores)
        ]
        reports = await asyncio.gather(*(daily.tick() for daily in replicas))
        assert sum(r.sent for r in reports) == 60 and all(r.sent for r in reports)  # both replicas sent some
        chats = [chat for chat, _reply in notifier.sent]
        assert sorted(chats) == sorted(f"-{n}" for n in range(60))  # each subscriber once
        # the two together, not each, keep the pace: at most rate/2 (+1 for the window's edge) in any half second
        times = sorted(notifier.at)
        busiest = max(sum(1 for t in times if start <= t < start + 0.5) for start in times)
        assert busiest <= rate / 2 + 1, busiest
        assert (60 - 1) / rate * 0.9 <= times[-1] - times[0] <= (60 - 1) / rate * 1.3 + 0.3  # at the pace, not slower
        # each delivery says which replica claimed it
        claimers = await stores[0].db.fetch("SELECT DISTINCT claimed_by FROM deliveries")
        assert sorted(row[0].rsplit("-", 1)[0] for row in claimers) == ["replica-0", "replica-1"]
    finally:
        for store in stores:
            await store.close()


def player(n: int) -> Caller:
    return Caller(Identity("telegram", str(n)), f"P{n}", Chat("telegram", GROUP, is_group=True))


class Replica:
    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        study = StudyService(store, small_bank(), clock)
        self.competition = CompetitionService(store, study.bank, clock, study, rng=random.Random(5))


@pytest.fixture
async def two_replicas(pg_dsn: str) -> AsyncIterator[tuple[Replica, Replica, FakeClock]]:
    clock = FakeClock(datetime(2026, 5, 6, 12, 0, tzinfo=UTC))
    async with Store(pg_dsn) as a, Store(pg_dsn) as b:
        yield Replica(a, clock), Replica(b, clock), clock


async def answer(replica: Replica, who: Caller, round_id: int, correct: bool) -> None:
    round_ = await replica.store.get_round(round_id)
    assert round_ is not None
    option = round_.correct_index if correct else (round_.correct_index + 1) % len(round_.options)
    await replica.competition.answer(who, round_id, option)


async def test_a_match_whose_replica_died_between_rounds_is_finished_by_another(
    two_replicas: tuple[Replica, Replica, FakeClock],
) -> None:
    a, b, clock = two_replicas
    notifier = FakeNotifier()
    died = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        await asyncio.sleep(0.01)  # slow enough for the players below to answer in time

    async def a_sleep(seconds: float) -> None:
        rounds = [t for t in notifier.texts() if "Round 1/3" in t]
        if rounds:  # round 1 is closed and scored: replica "a" dies in the pause before round 2
            died.set()
            await asyncio.Event().wait()
        await fake_sleep(seconds)

    async def answers_in_round(number: int) -> None:
        """P1 right, P2 wrong, through either replica: answers reaching any process are stored and scored."""
        while True:
            match = await a.store.running_match(f"telegram:{GROUP}")
            latest = await a.store.latest_round(match.id) if match is not None else None
            if latest is not None and latest.number == number and latest.message_id:
                await answer(a, player(1), latest.id, correct=True)
                await answer(b, player(2), latest.id, correct=False)
                return
            await asyncio.sleep(0.002)

    runner_a = MatchRunner(a.competition, {"telegram": notifier}, clock, sleep=a_sleep, lead_in=1, pause=1, shared=True)
    runner_b = MatchRunner(
        b.competition, {"telegram": notifier}, clock, sleep=fake_sleep, lead_in=1, pause=1, shared=True
    )
    reply = await a.competition.start(player(1), "3 10")
    assert "Quiz" in reply.plain_text()
    match = await a.store.running_match(f"telegram:{GROUP}")
    assert match is not None and match.id in runner_a.tasks
    await asyncio.wait_for(answers_in_round(1), timeout=10)
    assert await runner_a.watch_once() == ({match.id}, 0)  # "a" renews its lease and keeps playing
    await asyncio.wait_for(died.wait(), timeout=10)
    runner_a.tasks[match.id].cancel()  # kill -9: no more renewals, the match stays running in the database

    assert await runner_b.watch_once() == (set(), 0)  # a's lease still runs: not taken
    clock.advance(seconds=16)  # the lease (15 s) runs out
    _kept, taken = await runner_b.watch_once()
    assert taken == 1 and match.id in runner_b.tasks
    await asyncio.wait_for(answers_in_round(2), timeout=10)
    await asyncio.wait_for(answers_in_round(3), timeout=10)
    await asyncio.wait_for(runner_b.tasks[match.id], timeout=10)

    finished = await b.store.get_match(match.id)
    assert finished is not None and finished.status is MatchStatus.FINISHED
    texts = notifier.texts()
    assert [sum(f"Round {n}/3" in t for t in texts) for n in (1, 2, 3)] == [1, 1, 1]  # none lost, none twice
    standings = await b.store.standings(match.id)
    assert [(s.name, s.correct) for s in standings] == [("P1", 3), ("P2", 0)]
    assert any("Final results" in t and "P1" in t for t in texts)
    assert await runner_a.watch_once() == (set(), 0)  # nothing left to take


async def test_an_answer_on_another_replica_closes_a_solo_round_early(
    two_replicas: tuple[Replica, Replica, FakeClock],
) -> None:
    a, b, clock = two_replicas
    notifier = FakeNotifier()

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        await asyncio.sleep(0.001)

    runner = MatchRunner(
        a.competition, {"telegram": notifier}, clock, sleep=fake_sleep, lead_in=0, pause=0, shared=True
    )
    solo = Caller(Identity("telegram", "9"), "Solo", Chat("telegram", "9"))
    await a.competition.start(solo, "1 60")
    match = await a.store.running_match("telegram:9")
    assert match is not None and match.solo
    while not ((latest := await a.store.latest_round(match.id)) and latest.message_id):
        await asyncio.sleep(0.01)
    opened_at = clock.now()
    await b.competition.answer(solo, latest.id, latest.correct_index)  # reaches the other replica
    await asyncio.wait_for(runner.tasks[match.id], timeout=10)
    assert (clock.now() - opened_at).total_seconds() < 5  # closed within seconds, not after the 60 s round
    assert any("Final results" in t for t in notifier.texts())
