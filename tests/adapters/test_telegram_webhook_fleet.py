"""Three `studybot run` processes on one PostgreSQL behind Telegram webhooks: the fake Bot API posts every update
round-robin to them (a load balancer's job), re-sends an update whose answer was slow, and records every Bot
API call, so each update's answers can be counted."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.adapters.fake_telegram import FakeTelegram, StoredMessage, WebhookDelivery
from tests.adapters.test_telegram import buttons
from tests.pg import free_port
from tests.processes import bot_env, start_studybot, stop_studybot

pytestmark = pytest.mark.slow

REPLICAS = 3
LEARNERS = 200
AT_ONCE = 16  # learners practising at the same moment
SLOW_QUESTIONS = 8  # learners whose /question answer is slow: Telegram re-sends it
SLOW_REVEALS = 4  # and whose "Show answer" press is slow
HOOK_URL = "https://bot.example.org/telegram/hook"
SECRET = "fleet-S3cret_0123456789"
FIRST_USER = 700_000


async def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Until the process answers HTTP on `port` (any status: the tick may not have run yet)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)


def calls_to_chat(fake: FakeTelegram, method: str, chat_id: int) -> list[Any]:
    """Every call to `method` for the chat, whatever its answer."""
    return [call for call in fake.calls_to(method) if call.chat_id == chat_id]


def bot_message(fake: FakeTelegram, chat_id: int) -> StoredMessage:
    mine = [m for m in fake.messages(chat_id) if m.from_bot]
    assert len(mine) == 1, f"chat {chat_id}: {len(mine)} bot messages"
    return mine[0]


async def practise(fake: FakeTelegram, user_id: int, *, slow_question: bool, slow_reveal: bool) -> list[int]:
    """/question, "Show answer", "Good" as one learner; the update ids sent."""
    user = fake.make_user(user_id, f"Learner {user_id}")
    question = fake.message_update(user_id, user, "/question")
    if slow_question:  # the message reaches the chat, Telegram's answer to the bot takes 1.5 s
        fake.delay_next("sendMessage", 1.5, process_first=True, chat_id=user_id)
    tried = await fake.deliver_until_ok(question, timeouts=(0.5, 20.0) if slow_question else (20.0,))
    if slow_question:
        assert [d.status for d in tried] == [None, 200], tried
    await fake.wait_for("sendMessage", predicate=lambda c: c.chat_id == user_id, timeout=20)
    if slow_question:
        await asyncio.sleep(1.6)  # the first handling ends
    shown = bot_message(fake, user_id)
    reveal = fake.callback_update(user_id, user, shown.message_id, buttons(shown)["Show answer"])
    if slow_reveal:
        fake.delay_next("editMessageText", 1.5, process_first=True, chat_id=user_id)
    tried = await fake.deliver_until_ok(reveal, timeouts=(0.5, 20.0) if slow_reveal else (20.0,))
    if slow_reveal:
        assert [d.status for d in tried] == [None, 200], tried
        await asyncio.sleep(1.6)
    revealed = bot_message(fake, user_id)
    assert "Model answer" in (revealed.text or ""), revealed.text
    rate = fake.callback_update(user_id, user, revealed.message_id, buttons(revealed)["Good"])
    await fake.deliver_until_ok(rate, timeouts=(20.0,))
    return [question["update_id"], reveal["update_id"], rate["update_id"]]


async def test_three_replicas_answer_every_webhook_update_exactly_once(
    fake: FakeTelegram, tmp_path: Path, pg_dsn: str
) -> None:
    ports = [free_port() for _ in range(REPLICAS)]
    common: dict[str, str] = {
        "STUDYBOT_DB": pg_dsn,
        "TELEGRAM_TOKEN": fake.token,
        "TELEGRAM_API_URL": fake.api_url,
        "TELEGRAM_WEBHOOK_URL": HOOK_URL,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_MAX_RATE": "1000",  # the fake has no limit; the test measures answers, not pacing
        "LOG_LEVEL": "WARNING",
    }
    processes = [
        await start_studybot(tmp_path, bot_env(tmp_path / "unused.db", **common, STUDYBOT_LISTEN=f"127.0.0.1:{port}"))
        for port in ports
    ]
    logs: list[str] = []
    try:
        await fake.wait_for("setWebhook", count=REPLICAS, predicate=lambda c: c.ok, timeout=45)
        await asyncio.gather(*(wait_listening(port) for port in ports))
        fake.webhook_targets = [f"http://127.0.0.1:{port}" for port in ports]
        assert fake.webhook_url == HOOK_URL and fake.webhook_secret == SECRET

        intruder = fake.make_user(FIRST_USER - 1, "Mallory")
        forged = fake.message_update(FIRST_USER - 1, intruder, "/question")
        refused = [await fake.deliver(forged, secret="guessed-secret") for _ in ports]
        refused.append(await fake.deliver(forged, omit_secret=True))
        assert [d.status for d in refused] == [403] * (REPLICAS + 1)

        users = [FIRST_USER + n for n in range(LEARNERS)]
        chosen = random.Random(16).sample(users, SLOW_QUESTIONS + SLOW_REVEALS)
        slow_questions, slow_reveals = set(chosen[:SLOW_QUESTIONS]), set(chosen[SLOW_QUESTIONS:])
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(user_id: int) -> list[int]:
            async with gate:
                return await practise(
                    fake, user_id, slow_question=user_id in slow_questions, slow_reveal=user_id in slow_reveals
                )

        sent_ids = await asyncio.gather(*(one(user_id) for user_id in users))
        await asyncio.sleep(0.5)  # any handling still running after its sender hung up
    finally:
        for process in processes:
            code, log = await stop_studybot(process)
            logs.append(log)
            assert code == 0, log[-3000:]

    # the forged update: refused everywhere, never answered
    assert not any(m.from_bot for m in fake.messages(FIRST_USER - 1))
    # every update answered exactly once: one message, two edits, one answer per button press
    answered_queries: dict[str, int] = {}
    for call in fake.calls_to("answerCallbackQuery"):
        key = str(call.params.get("callback_query_id"))
        answered_queries[key] = answered_queries.get(key, 0) + 1
    for user_id in users:
        assert len(calls_to_chat(fake, "sendMessage", user_id)) == 1, user_id
        assert len(calls_to_chat(fake, "editMessageText", user_id)) == 2, user_id
        assert "Rated Good" in (bot_message(fake, user_id).text or "")
    assert len(answered_queries) == 2 * LEARNERS and set(answered_queries.values()) == {1}
    assert [c for c in fake.calls if not c.ok] == []
    # re-sent after a slow answer: the copy went to another replica and was answered without handling
    resent = [
        fake.deliveries_of(ids[0 if user in slow_questions else 1]) for user, ids in zip(users, sent_ids, strict=True)
    ]
    resent = [d for d in resent if len(d) == 2]
    assert len(resent) == SLOW_QUESTIONS + SLOW_REVEALS
    assert all(first.status is None and second.status == 200 and first.url != second.url for first, second in resent)
    # the work was shared: every replica handled a third of the updates, each one once
    conn = await asyncpg.connect(pg_dsn)
    try:
        by_replica = await conn.fetch("SELECT replica, COUNT(*) AS n FROM telegram_updates GROUP BY replica")
        reviews = await conn.fetchval("SELECT COUNT(*) FROM reviews")
    finally:
        await conn.close()
    counts = sorted(int(row["n"]) for row in by_replica)
    assert sum(counts) == 3 * LEARNERS and len(counts) == REPLICAS and counts[0] >= LEARNERS // 2, counts
    assert reviews == LEARNERS
    every_post: list[WebhookDelivery] = fake.webhook_deliveries
    assert len(every_post) == 3 * LEARNERS + SLOW_QUESTIONS + SLOW_REVEALS + REPLICAS + 1
    for log in logs:
        assert SECRET not in log and fake.token.split(":")[1] not in log
