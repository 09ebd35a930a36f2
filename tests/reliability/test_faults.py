"""Faults: the fake Bot API answers 429, 403, 5xx and slowly at random; nothing is lost, nothing
crashes, and every affected user ends in a defined state."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.fakes import FakeClock

USERS = 30


def inject(fake: FakeTelegram, rng: random.Random, chat_id: int) -> str:
    roll = rng.random()
    if roll < 0.1:
        fake.block_chat(chat_id)
        return "blocked"
    if roll < 0.25:
        fake.fail_next("*", rng.choice([500, 502]), chat_id=chat_id, times=rng.choice([1, 2]))
        return "5xx"
    if roll < 0.3:
        fake.fail_next("sendMessage", 429, retry_after=1, chat_id=chat_id)
        return "429"
    if roll < 0.4:
        fake.delay_next("sendMessage", rng.choice([0.2, 1.5]))  # 1.5 s outlasts the client's timeout
        return "slow"
    return "none"


async def test_random_faults_on_updates_and_pushes_leave_every_user_in_a_defined_state(tmp_path: Path) -> None:
    rng = random.Random(2026)
    clock = FakeClock(datetime(2026, 4, 1, 7, 0, tzinfo=UTC))
    async with FakeTelegram() as fake, SqliteStore(tmp_path / "faults.db") as store:
        stack = build_stack(fake, store, clock, request_timeout=1.0)
        errors: list[object] = []

        async def record(update: object, context: object) -> None:
            errors.append(getattr(context, "error", None))

        stack.telegram.application.error_handlers.clear()
        stack.telegram.application.add_error_handler(record)  # type: ignore[arg-type]
        await stack.telegram.start(polling=False)
        faults: dict[int, str] = {}
        try:
            users = [fake.make_user(5000 + n, f"U{n}") for n in range(USERS)]
            for user in users:  # every user subscribes while nothing fails
                await stack.telegram.process(fake.message_update(user["id"], user, "/daily 08:00 UTC"))
            for user in users:  # then practises while the server misbehaves
                faults[user["id"]] = inject(fake, rng, user["id"])
                await stack.telegram.process(fake.message_update(user["id"], user, "/question"))
            clock.set(datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
            for user in users:
                if rng.random() < 0.3 and faults[user["id"]] != "blocked":
                    fake.fail_next("sendMessage", rng.choice([500, 502]), chat_id=user["id"], times=3)
            first = await stack.daily.tick()
            for _ in range(8):  # later ticks retry what failed
                clock.advance(minutes=10)
                await stack.daily.tick()
        finally:
            await stack.stop()

        assert errors == []  # no handler ever crashed
        blocked = {chat for chat, kind in faults.items() if kind == "blocked"}
        assert blocked and first.claimed == USERS
        for chat_id, kind in faults.items():
            key = f"telegram:{chat_id}"
            sub = await store.subscription(key)
            assert sub is not None
            if kind == "blocked":
                assert not await store.is_reachable(key)
                assert sub.paused_reason == "unreachable"
            else:
                assert await store.is_reachable(key)
                questions = [
                    c
                    for c in fake.calls_to("sendMessage")
                    if c.ok and c.chat_id == chat_id and "Answer in your own words" in str(c.params["text"])
                ]
                assert len(questions) >= 1, (chat_id, kind)  # the /question reply (or the push) arrived
        rows = await store.db.fetch(
            "SELECT s.chat_id, d.status FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
        )
        statuses = {int(r[0]): r[1] for r in rows}
        assert len(statuses) == USERS  # one delivery per subscriber for the day: nothing lost, nothing doubled
        for chat_id, status in statuses.items():
            assert status == ("unreachable" if chat_id in blocked else "sent"), (chat_id, status)
        pushes = [c for c in fake.calls_to("sendMessage") if c.ok and "Your daily question" in str(c.params["text"])]
        assert sorted(int(c.chat_id or 0) for c in pushes) == sorted(set(faults) - blocked)
        assert clock.now() - datetime(2026, 4, 1, 8, 0, tzinfo=UTC) >= timedelta(minutes=80)
