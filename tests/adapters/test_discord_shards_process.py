"""Two `studybot run` processes with one Discord shard each, on one PostgreSQL database, against the fake
gateway: each answers the guilds of its own shard, shard 0's process answers DMs and syncs the slash commands,
and a daily push to a DM goes out through the REST API from a process that does not hold shard 0."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.discord import dm_chat
from bot.core.model import Caller, Identity
from bot.storage.store import Store
from tests.adapters.conftest import DISCORD_TOKEN
from tests.adapters.fake_discord import FakeDiscord, RecordedRequest
from tests.adapters.stack import app_for
from tests.fakes import FakeClock
from tests.pg import free_port
from tests.processes import bot_env, start_studybot, stop_studybot

pytestmark = pytest.mark.slow

LEARNER = 740000000000000001  # subscribed to a daily question by DM
MEMBER = 740000000000000002  # uses the bot in both servers and by DM


async def subscribe_by_dm_due_now(dsn: str, user_id: int) -> None:
    """A daily question by DM at 00:00 UTC, subscribed through the core two days ago: due now."""
    async with Store(dsn) as store:
        app = app_for(store, FakeClock(datetime.now(UTC) - timedelta(days=2)))
        try:
            who = Caller(Identity("discord", str(user_id)), "Ann", dm_chat(user_id))
            reply = await app.commands.run(who, "daily", "00:00")
            assert "Next one" in str(reply), reply
        finally:
            if app.pictures is not None:
                app.pictures.close()


def handled_updates(log: str) -> set[int]:
    """The interaction ids a process's JSON log says it handled."""
    handled = set()
    for line in log.splitlines():
        if line.startswith("{"):
            record: dict[str, Any] = json.loads(line)
            if record["message"].startswith("handled ") and "update" in record:
                handled.add(int(record["update"]))
    return handled


def errors(log: str) -> list[str]:
    """The ERROR lines of a process's JSON log (an interaction delivered to two processes makes one)."""
    return [line for line in log.splitlines() if line.startswith("{") and json.loads(line)["level"] == "ERROR"]


def is_post_to(channel_id: int) -> Any:
    def check(request: RecordedRequest) -> bool:
        return request.method == "POST" and request.path.endswith(f"/channels/{channel_id}/messages")

    return check


async def test_two_processes_with_one_shard_each_answer_their_guilds_and_a_dm_push_goes_out_by_rest(
    tmp_path: Path, pg_dsn: str
) -> None:
    await subscribe_by_dm_due_now(pg_dsn, LEARNER)
    async with FakeDiscord(token=DISCORD_TOKEN, shard_count=2) as fake:
        guilds = {shard: fake.add_guild(fake.guild_on_shard(shard)) for shard in (0, 1)}
        dm = fake.dm_channel_id(LEARNER)

        def env(shard: int) -> dict[str, str]:
            return bot_env(
                tmp_path / "unused.db",
                STUDYBOT_DB=pg_dsn,
                DISCORD_TOKEN=DISCORD_TOKEN,
                DISCORD_API_URL=fake.base_url,
                DISCORD_GATEWAY_URL=fake.gateway_url,
                DISCORD_SHARD_COUNT="2",
                DISCORD_SHARD_IDS=str(shard),
                STUDYBOT_LISTEN=f"127.0.0.1:{free_port()}",
                LOG_FORMAT="json",
            )

        # Shard 1's process alone first: it gets no DMs, yet its first tick pushes the due DM through REST.
        one = await start_studybot(tmp_path, env(1))
        zero: asyncio.subprocess.Process | None = None
        logs: dict[int, str] = {}
        try:
            await fake.wait_until_ready(timeout=30)
            assert [p["shard"] for p in fake.identify_payloads] == [[1, 2]]
            push = (await fake.wait_for(is_post_to(dm), timeout=30))[0]
            assert push.status == 200
            assert "Your daily question" in json.dumps(push.json)

            zero = await start_studybot(tmp_path, env(0))
            await fake.wait_until_ready(count=2, timeout=30)
            assert sorted(p["shard"] for p in fake.identify_payloads) == [[0, 2], [1, 2]]
            await fake.wait_for(lambda r: r.method == "PUT" and r.path.endswith("/commands"), timeout=30)

            asked = {}
            for where, guild in (("shard 0", guilds[0]), ("shard 1", guilds[1]), ("DM", None)):
                payload = fake.slash_interaction("question", user_id=MEMBER, guild_id=guild)
                await fake.send_interaction(payload)
                callback = await fake.wait_for_callback(payload, timeout=15)
                assert "Show answer" in str(callback.data), where
                asked[where] = int(payload["id"])
        finally:
            for shard, process in ((0, zero), (1, one)):
                if process is not None:
                    code, logs[shard] = await stop_studybot(process)
                    assert code == 0, logs[shard]

    assert (errors(logs[0]), errors(logs[1])) == ([], [])
    assert handled_updates(logs[0]) == {asked["shard 0"], asked["DM"]}
    assert handled_updates(logs[1]) == {asked["shard 1"]}
    syncs = [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]
    assert len(syncs) == 1  # by shard 0's process; shard 1's says so in its log
    assert "slash commands not synced here: the process that runs shard 0 syncs them" in logs[1]
    assert "slash commands not synced here" not in logs[0]
    assert len(fake.channel_messages(dm)) == 1  # the push, once: shard 0's process did not send it again
    for log in logs.values():
        assert DISCORD_TOKEN not in log and DISCORD_TOKEN.split(".")[-1] not in log
