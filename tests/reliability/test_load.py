"""Load: 500 simulated learners practise concurrently through the fake Bot API (real long polling)
for 30 seconds (marked slow: CI runs it; `-m "not slow"` skips it locally).

What is checked is what could go wrong under load: every reply answers the request it belongs to
(the rating pressed is the rating confirmed), every acknowledged rating is in the database under the
right learner and in the right order, nothing errors, and the bot keeps Telegram's pace: requests to
chats reach the API at most ~30 a second even though 500 people press at once. The bot paces its sends
(AIORateLimiter), so replies queue: the printed latencies show that queue, not slowness.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import random
import time
from collections import defaultdict
from pathlib import Path

import pytest

from bot.core.bank import QuestionBank
from bot.core.model import Rating
from bot.core.ports import SystemClock
from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import Call, FakeTelegram
from tests.adapters.stack import build_stack
from tests.conftest import CONTENT

pytestmark = pytest.mark.slow

LEARNERS = 500
SECONDS = float(os.environ.get("STUDYBOT_LOAD_SECONDS", "30"))
ANSWER_TIMEOUT = 30.0
MAX_RATE = 30.0  # requests per second the bot allows itself (Telegram's overall limit)


async def test_five_hundred_learners_practising_for_thirty_seconds_get_every_update_answered(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    inbox: dict[int, asyncio.Queue[Call]] = defaultdict(asyncio.Queue)
    paced_at: list[float] = []  # when each request to a chat (those the bot paces) reached the API
    seen = 0

    def route() -> None:  # hand every new call of the fake to the learner whose chat it is
        nonlocal seen
        now = time.monotonic()
        for call in fake.calls[seen:]:
            if call.chat_id is not None:
                paced_at.append(now)
            if isinstance(call.chat_id, int) and call.method in ("sendMessage", "editMessageText"):
                inbox[call.chat_id].put_nowait(call)
        seen = len(fake.calls)

    fake._call_listeners.append(route)  # our own fake: a cheap per-chat feed instead of polling
    async with SqliteStore(tmp_path / "load.db") as store:
        stack = build_stack(fake, store, bank=QuestionBank.load(CONTENT), max_rate=MAX_RATE)
        stack.clock.now = SystemClock().now  # type: ignore[method-assign]  # real time: a real 30 s run
        errors: list[object] = []

        async def record(update: object, context: object) -> None:
            errors.append(getattr(context, "error", None))

        stack.telegram.application.error_handlers.clear()
        stack.telegram.application.add_error_handler(record)  # type: ignore[arg-type]
        await stack.telegram.start(polling=True)
        sent_updates = 0
        answered = 0
        latencies: list[float] = []
        confirmed: dict[int, list[int]] = defaultdict(list)  # chat id -> ratings the bot confirmed, in order
        end = time.monotonic() + SECONDS

        async def expect(chat_id: int, method: str) -> Call:
            while True:
                call = await asyncio.wait_for(inbox[chat_id].get(), ANSWER_TIMEOUT)
                if call.method == method:
                    return call

        def buttons_of(chat_id: int, message_id: int) -> dict[str, str]:
            stored = fake.message(chat_id, message_id)
            markup = (stored.reply_markup or {}) if stored else {}
            return {
                b["text"].split(" · ")[0]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row
            }

        async def learner(n: int) -> None:
            nonlocal sent_updates, answered
            rng = random.Random(n)
            chat_id = 20_000 + n
            user = fake.make_user(chat_id, f"L{n}")
            await asyncio.sleep(rng.random() * 2)
            while time.monotonic() < end:
                started = time.monotonic()
                fake.push_update(fake.message_update(chat_id, user, "/question"))
                sent_updates += 1
                question = await expect(chat_id, "sendMessage")
                answered += 1
                latencies.append(time.monotonic() - started)
                assert question.ok, question.description
                labels = buttons_of(chat_id, question.result["message_id"])
                if "Show answer" not in labels:
                    await asyncio.sleep(1 + rng.random())
                    continue
                rating = rng.choice(list(Rating))
                for pick, reply_says in (("Show answer", "Model answer"), (rating.label, f"Rated {rating.label}")):
                    await asyncio.sleep(0.5 + rng.random())
                    started = time.monotonic()
                    fake.push_update(fake.callback_update(chat_id, user, question.result["message_id"], labels[pick]))
                    sent_updates += 1
                    edit = await expect(chat_id, "editMessageText")
                    answered += 1
                    latencies.append(time.monotonic() - started)
                    assert edit.ok, edit.description
                    assert edit.params["message_id"] == question.result["message_id"]
                    assert reply_says in str(edit.params.get("text")), (pick, edit.params.get("text"))
                    labels = buttons_of(chat_id, question.result["message_id"])
                confirmed[chat_id].append(int(rating))
                await asyncio.sleep(0.5 + rng.random())

        try:
            await asyncio.gather(*(learner(n) for n in range(LEARNERS)))
        finally:
            await stack.stop()
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[int(len(latencies) * 0.99)]
        print(
            f"\nload: {sent_updates} updates in {SECONDS:.0f} s, all answered; p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms"
        )
        assert errors == []
        assert [c for c in fake.calls if not c.ok] == []
        stored: dict[int, list[int]] = defaultdict(list)
        for chat_id, rating in await store.db.fetch(
            "SELECT i.external_id, r.rating FROM reviews r JOIN identities i ON i.learner_id = r.learner_id "
            "ORDER BY r.id"
        ):
            stored[int(chat_id)].append(int(rating))
        assert stored == confirmed  # every confirmed rating saved once, for its learner, in order
        assert sum(len(ratings) for ratings in confirmed.values()) > LEARNERS
        states = await store.db.fetch("SELECT learner_id, SUM(reps) FROM card_states GROUP BY learner_id")
        assert sorted(int(reps) for _, reps in states) == sorted(len(r) for r in confirmed.values() if r)
        # the pace: in no one-second window did much more than max_rate requests to chats reach the API
        # (measured at the fake, where requests can only bunch up, not spread out)
        busiest = max(bisect.bisect_right(paced_at, t + 1.0) - i for i, t in enumerate(paced_at))
        print(f"load: busiest second {busiest} requests; {len(paced_at)} paced requests in all")
        assert busiest <= 1.5 * MAX_RATE
