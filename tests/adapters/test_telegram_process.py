"""`studybot run` as a real process against the fake Bot API: it answers, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.adapters.fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow


async def test_studybot_run_answers_question_and_exits_0_on_sigterm(fake: FakeTelegram, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env.update(
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
        STUDYBOT_DB=str(tmp_path / "bot.db"),
        LOG_LEVEL="INFO",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake.wait_for_long_poll(timeout=30)
        ann = fake.make_user(1001, "Ann")
        fake.push_update(fake.message_update(1001, ann, "/question"))
        calls = await fake.wait_for("sendMessage", predicate=lambda c: c.ok, timeout=15)
        assert "Answer in your own words" in str(calls[0].params["text"])
        health = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "health",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(health.communicate(), timeout=30)
        assert health.returncode == 0 and out.decode().startswith("healthy")  # the running bot's tick beat
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    log = stderr.decode()
    assert fake.token not in log and fake.token.split(":")[1] not in log
    assert "handled /question" in log
    con = sqlite3.connect(tmp_path / "bot.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1
    con.close()
