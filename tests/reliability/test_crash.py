"""Crash safety: `kill -9` the bot during a burst of answers and during a daily fan-out; after a
restart every acknowledged answer is stored and every due push is delivered (never missed, at most
one duplicate)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import bulk_subscribers
from tests.adapters.test_telegram_ops import answer_burst
from tests.processes import bot_env, start_studybot, stop_studybot

pytestmark = pytest.mark.slow


async def launch(fake: FakeTelegram, db: Path) -> asyncio.subprocess.Process:
    env = bot_env(db, TELEGRAM_TOKEN=fake.token, TELEGRAM_API_URL=fake.api_url, LOG_LEVEL="WARNING")
    return await start_studybot(db.parent, env)


async def test_kill_9_during_a_burst_of_answers_loses_no_acknowledged_answer(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    users = [fake.make_user(8000 + n, f"K{n}") for n in range(40)]
    process = await launch(fake, db)
    try:
        await answer_burst(fake, users, "Easy", acknowledged=3)
    finally:
        await stop_studybot(process, signal.SIGKILL)
    acknowledged = {
        c.chat_id for c in fake.calls_to("editMessageText") if c.ok and "Rated Easy" in str(c.params.get("text"))
    }
    assert acknowledged

    restarted = await launch(fake, db)  # the database recovers from its WAL; the bot runs again
    try:
        await fake.wait_for_long_poll(timeout=30)
        fake.push_update(fake.message_update(users[0]["id"], users[0], "/stats"))
        await fake.wait_for(
            "sendMessage", predicate=lambda c: c.ok and "Progress of" in str(c.params["text"]), timeout=30
        )
    finally:
        code, log = await stop_studybot(restarted)
        assert code == 0, log
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {
        int(r[0])
        for r in con.execute(
            "SELECT i.external_id FROM reviews r JOIN identities i ON i.learner_id = r.learner_id WHERE r.rating = 4"
        )
    }
    con.close()
    assert acknowledged <= stored


async def test_kill_9_during_a_daily_fan_out_misses_no_push(fake: FakeTelegram, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    count = 240
    async with SqliteStore(db) as store:
        await bulk_subscribers(store, range(9000, 9000 + count), datetime.now(UTC) - timedelta(minutes=1), "00:00")

    def pushes() -> list[int]:
        return [
            int(c.chat_id or 0)
            for c in fake.calls_to("sendMessage")
            if c.ok and "Your daily question" in str(c.params.get("text"))
        ]

    process = await launch(fake, db)  # its first tick claims every due push and starts sending (30/s)
    try:
        await fake.wait_for("sendMessage", count=60, predicate=lambda c: c.ok, timeout=60)
    finally:
        await stop_studybot(process, signal.SIGKILL)
    before = len(pushes())
    assert 0 < before < count  # killed in the middle of the fan-out

    restarted = await launch(fake, db)  # recovers the dead process's claims on its first tick
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(set(pushes())) < count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
    finally:
        code, log = await stop_studybot(restarted)
        assert code == 0, log
    delivered = pushes()
    per_chat = {chat: delivered.count(chat) for chat in set(delivered)}
    assert set(per_chat) == {9000 + n for n in range(count)}  # never a missed one
    assert max(per_chat.values()) <= 2  # at most one duplicate (a send in flight at the kill)
    duplicates = sum(1 for v in per_chat.values() if v == 2)
    assert duplicates <= 40
