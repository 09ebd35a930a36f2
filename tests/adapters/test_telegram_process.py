"""`studybot run` as a real process against the fake Bot API: it answers, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.adapters.fake_telegram import FakeTelegram
from tests.processes import bot_env, start_studybot, stop_studybot

pytestmark = pytest.mark.slow


async def test_studybot_run_answers_question_and_exits_0_on_sigterm(fake: FakeTelegram, tmp_path: Path) -> None:
    env = bot_env(tmp_path / "bot.db", TELEGRAM_TOKEN=fake.token, TELEGRAM_API_URL=fake.api_url)
    process = await start_studybot(tmp_path, env)
    try:
        await fake.wait_for_long_poll(timeout=30)
        ann = fake.make_user(1001, "Ann")
        fake.push_update(fake.message_update(1001, ann, "/question"))
        calls = await fake.wait_for("sendMessage", predicate=lambda c: c.ok, timeout=15)
        assert "Answer in your own words" in str(calls[0].params["text"])
        health = await start_studybot(tmp_path, env, "health")
        out, _ = await asyncio.wait_for(health.communicate(), timeout=30)
        assert health.returncode == 0 and out.decode().startswith("healthy")  # the running bot's tick beat
    finally:
        code, log = await stop_studybot(process)
    assert code == 0, log
    assert fake.token not in log and fake.token.split(":")[1] not in log
    assert "handled /question" in log
    con = sqlite3.connect(tmp_path / "bot.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1
    con.close()
