"""`studybot run` with a Discord token, as a real process against the fake Discord server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.adapters.conftest import DISCORD_GUILD, DISCORD_TOKEN
from tests.adapters.fake_discord import FakeDiscord

pytestmark = pytest.mark.slow


async def test_studybot_run_answers_a_slash_command_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    async with FakeDiscord(token=DISCORD_TOKEN, guilds=[DISCORD_GUILD]) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "STUDYBOT_"))}
        env.update(
            {
                "DISCORD_TOKEN": DISCORD_TOKEN,
                "DISCORD_API_URL": fake.base_url,
                "DISCORD_GATEWAY_URL": fake.gateway_url,
                "DISCORD_GUILD_ID": str(DISCORD_GUILD),
                "STUDYBOT_DB": str(tmp_path / "bot.db"),
                "LOG_LEVEL": "INFO",
            }
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
            await fake.wait_until_ready(timeout=30)
            await fake.wait_for(lambda r: r.method == "PUT" and "/commands" in r.path, timeout=30)
            assert "question" in [c["name"] for c in fake.synced_commands[DISCORD_GUILD]]
            payload = fake.slash_interaction("question", user_id=720000000000000001, guild_id=DISCORD_GUILD)
            await fake.send_interaction(payload)
            callback = await fake.wait_for_callback(payload, timeout=15)
            assert "Show answer" in str(callback.data)
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert DISCORD_TOKEN not in log and DISCORD_TOKEN.split(".")[-1] not in log
