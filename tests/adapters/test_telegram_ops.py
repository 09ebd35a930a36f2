"""Operating the Telegram bot: graceful SIGTERM under load, secret-free logs, /export and /forget."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.storage.sqlite import SqliteStore
from tests.adapters.fake_telegram import FakeTelegram
from tests.adapters.stack import build_stack
from tests.processes import bot_env, start_studybot, stop_studybot

pytestmark = pytest.mark.slow


async def start_bot(fake: FakeTelegram, tmp_path: Path, **extra: str) -> asyncio.subprocess.Process:
    env = bot_env(tmp_path / "bot.db", TELEGRAM_TOKEN=fake.token, TELEGRAM_API_URL=fake.api_url, **extra)
    return await start_studybot(tmp_path, env)


def buttons(fake: FakeTelegram, chat_id: int, message_id: int) -> dict[str, str]:
    message = fake.message(chat_id, message_id)
    assert message is not None and message.reply_markup
    return {
        b["text"].split(" · ")[0]: b["callback_data"] for row in message.reply_markup["inline_keyboard"] for b in row
    }


async def answer_burst(fake: FakeTelegram, users: list[dict[str, Any]], rating: str, acknowledged: int) -> None:
    """Every user asks, reveals, then all rate at once; returns once `acknowledged` ratings were edited in."""
    await fake.wait_for_long_poll(timeout=30)
    for user in users:
        fake.push_update(fake.message_update(user["id"], user, "/question"))
    await fake.wait_for("sendMessage", count=len(users), predicate=lambda c: c.ok, timeout=30)
    questions = {c.chat_id: c.result["message_id"] for c in fake.calls_to("sendMessage") if c.ok}
    for label in ("Show answer", rating):
        for user in users:
            data = buttons(fake, user["id"], questions[user["id"]])[label]
            fake.push_update(fake.callback_update(user["id"], user, questions[user["id"]], data))
        wanted = len(users) if label == "Show answer" else len(users) + acknowledged
        await fake.wait_for("editMessageText", count=wanted, predicate=lambda c: c.ok, timeout=30)


async def test_sigterm_in_a_burst_of_answers_exits_0_and_keeps_every_acknowledged_answer(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    process = await start_bot(fake, tmp_path)
    users = [fake.make_user(3000 + n, f"U{n}") for n in range(40)]
    try:
        await answer_burst(fake, users, "Good", acknowledged=5)  # every learner rates at once ...
    finally:
        code, log = await stop_studybot(process)  # ... and the bot is stopped in the middle of it
    assert code == 0, log
    acknowledged = {
        c.chat_id for c in fake.calls_to("editMessageText") if c.ok and "Rated Good" in str(c.params.get("text"))
    }
    assert len(acknowledged) >= 5
    con = sqlite3.connect(tmp_path / "bot.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {
        int(r[0])
        for r in con.execute("SELECT i.external_id FROM reviews r JOIN identities i ON i.learner_id = r.learner_id")
    }
    con.close()
    assert acknowledged <= stored  # every answer the bot acknowledged is in the database
    assert fake.token not in log


async def test_the_token_never_appears_in_logs_when_requests_fail(fake: FakeTelegram, tmp_path: Path) -> None:
    fake.fail_next("getUpdates", 500, times=2)
    fake.fail_next("sendMessage", 502, times=3)
    fake.fail_next("setMyCommands", 500)
    process = await start_bot(fake, tmp_path, LOG_LEVEL="DEBUG", LOG_FORMAT="json")
    try:
        await fake.wait_for_long_poll(timeout=30)
        ann = fake.make_user(77, "Ann")
        fake.push_update(fake.message_update(77, ann, "/start"))
        await fake.wait_for("sendMessage", predicate=lambda c: c.ok, timeout=30)
    finally:
        code, log = await stop_studybot(process)
    assert code == 0
    assert "getUpdates" in log or "Internal Server Error" in log or "Bad Gateway" in log  # failures were logged
    secret = fake.token.split(":", 1)[1]
    assert fake.token not in log and secret not in log
    for line in log.splitlines():
        if line.startswith("{"):
            json.loads(line)  # structured lines stay valid JSON


async def test_export_sends_a_json_file_and_forget_deletes_after_confirmation(
    fake: FakeTelegram, sqlite: SqliteStore
) -> None:
    stack = build_stack(fake, sqlite)
    await stack.telegram.start(polling=False)
    try:
        ann = fake.make_user(88, "Ann")
        await stack.telegram.process(fake.message_update(88, ann, "/question"))
        await stack.telegram.process(fake.message_update(88, ann, "/export"))
        (upload,) = [c for c in fake.calls_to("sendDocument") if c.ok]
        document = upload.params["document"]
        data = json.loads(document.content)
        assert data["learner"]["display_name"] == "Ann" and data["format"] == "studybot-export/1"
        await stack.telegram.process(fake.message_update(88, ann, "/forget"))
        confirm = fake.messages(88)[-1]
        await stack.telegram.process(
            fake.callback_update(
                88, ann, confirm.message_id, buttons(fake, 88, confirm.message_id)["Delete everything"]
            )
        )
        assert "all your data is deleted" in (fake.message(88, confirm.message_id).text or "")  # type: ignore[union-attr]
        assert (
            await sqlite.find_learner(__import__("bot.core.model", fromlist=["Identity"]).Identity("telegram", "88"))
            is None
        )
        await stack.telegram.process(fake.message_update(-500, ann, "/export", chat_type="group"))
        assert "works in a private chat" in fake.sent_texts(-500, rendered=True)[-1]
    finally:
        await stack.stop()
