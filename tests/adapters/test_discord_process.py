"""`studybot run` with a Discord token, as a real process against the fake Discord server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.conftest import DISCORD_GUILD, DISCORD_TOKEN
from tests.adapters.fake_discord import FakeDiscord
from tests.processes import bot_env, start_studybot, stop_studybot

pytestmark = pytest.mark.slow


async def test_studybot_run_answers_a_slash_command_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    async with FakeDiscord(token=DISCORD_TOKEN, guilds=[DISCORD_GUILD]) as fake:
        env = bot_env(
            tmp_path / "bot.db",
            DISCORD_TOKEN=DISCORD_TOKEN,
            DISCORD_API_URL=fake.base_url,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            DISCORD_GUILD_ID=str(DISCORD_GUILD),
        )
        process = await start_studybot(tmp_path, env)
        try:
            await fake.wait_until_ready(timeout=30)
            await fake.wait_for(lambda r: r.method == "PUT" and "/commands" in r.path, timeout=30)
            assert "question" in [c["name"] for c in fake.synced_commands[DISCORD_GUILD]]
            payload = fake.slash_interaction("question", user_id=720000000000000001, guild_id=DISCORD_GUILD)
            await fake.send_interaction(payload)
            callback = await fake.wait_for_callback(payload, timeout=15)
            assert "Show answer" in str(callback.data)
        finally:
            code, log = await stop_studybot(process)
    assert code == 0, log
    assert DISCORD_TOKEN not in log and DISCORD_TOKEN.split(".")[-1] not in log
