"""Discord shards: DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS reach discord.py's sharded client, and the fake
gateway routes a guild's events to shard (guild_id >> 22) % num_shards and DMs to shard 0, as Discord does."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest

from bot.adapters.discord import DiscordBot
from bot.bootstrap import discord_adapter
from bot.storage.sqlite import SqliteStore
from tests.adapters.conftest import DISCORD_TOKEN, DISCORD_TUNING
from tests.adapters.fake_discord import Dispatched, FakeDiscord, point_discord_at
from tests.adapters.stack import app_for

LEARNER = 730000000000000001


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "bot.db") as opened:
        yield opened


def sharded_bot(fake: FakeDiscord, store: SqliteStore, **shards: Any) -> DiscordBot:
    """The Discord front end as `studybot run` builds it from the environment, plus `shards`
    (DISCORD_SHARD_COUNT=..., DISCORD_SHARD_IDS=...)."""
    app = app_for(
        store,
        DISCORD_TOKEN=DISCORD_TOKEN,
        DISCORD_API_URL=fake.base_url,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        **shards,
    )
    return discord_adapter(app, **DISCORD_TUNING)


@asynccontextmanager
async def discord_server(shard_count: int = 1) -> AsyncIterator[FakeDiscord]:
    """The fake Discord, recommending `shard_count` shards, with discord.py pointed at it."""
    async with FakeDiscord(token=DISCORD_TOKEN, shard_count=shard_count) as fake:
        with point_discord_at(fake):
            yield fake


@asynccontextmanager
async def started(bot: DiscordBot) -> AsyncIterator[DiscordBot]:
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


def command_syncs(fake: FakeDiscord) -> int:
    return sum(1 for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands"))


def interaction_shards(fake: FakeDiscord, payload: dict[str, Any]) -> list[tuple[int, int] | None]:
    """The shards the fake sent this interaction to."""
    return [d.shard for d in fake.dispatched if d.event == "INTERACTION_CREATE" and d.data["id"] == payload["id"]]


# --- the settings reach the client ----------------------------------------------------------------------


async def test_without_shard_settings_the_bot_runs_a_plain_client_that_identifies_unsharded(
    store: SqliteStore,
) -> None:
    async with discord_server() as fake:
        guild = fake.add_guild()
        async with started(sharded_bot(fake, store)) as bot:
            assert not isinstance(bot.client, discord.AutoShardedClient)
            assert [("shard" in p) for p in fake.identify_payloads] == [False]
            assert command_syncs(fake) == 1
            payload = fake.slash_interaction("question", user_id=LEARNER, guild_id=guild)
            await fake.send_interaction(payload)
            assert "Show answer" in str((await fake.wait_for_callback(payload)).data)
            assert interaction_shards(fake, payload) == [None]


async def test_shard_count_and_ids_reach_the_sharded_client_which_runs_only_those_shards(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with discord_server(2) as fake:
        mine, other = fake.add_guild(fake.guild_on_shard(1)), fake.add_guild(fake.guild_on_shard(0))
        bot = sharded_bot(fake, store, DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS="1")
        with caplog.at_level(logging.INFO, logger="studybot.discord"):
            async with started(bot):
                assert isinstance(bot.client, discord.AutoShardedClient)
                assert (bot.client.shard_count, bot.client.shard_ids) == (2, [1])
                assert set(bot.client.shards) == {1}
                assert [p["shard"] for p in fake.identify_payloads] == [[1, 2]]
                assert [g.id for g in bot.client.guilds] == [mine]
                assert bot.client.get_guild(other) is None
        assert command_syncs(fake) == 0  # shard 0's process syncs them
    messages = [r.getMessage() for r in caplog.records if r.name == "studybot.discord"]
    assert "slash commands not synced here: the process that runs shard 0 syncs them" in messages
    assert any(m.startswith("Discord bot StudyBot started (shards 1 of 2)") for m in messages)


async def test_a_shard_count_alone_runs_every_shard_in_this_process_and_syncs_the_commands(
    store: SqliteStore,
) -> None:
    async with discord_server(3) as fake:
        guilds = [fake.add_guild(fake.guild_on_shard(shard)) for shard in (2, 0, 1)]
        async with started(sharded_bot(fake, store, DISCORD_SHARD_COUNT="3")) as bot:
            assert isinstance(bot.client, discord.AutoShardedClient)
            assert (bot.client.shard_count, bot.client.shard_ids, set(bot.client.shards)) == (3, None, {0, 1, 2})
            assert sorted(p["shard"] for p in fake.identify_payloads) == [[0, 3], [1, 3], [2, 3]]
            assert sorted(g.id for g in bot.client.guilds) == sorted(guilds)
            assert command_syncs(fake) == 1
            for shard, guild in zip((2, 0, 1), guilds, strict=True):
                payload = fake.slash_interaction("question", user_id=LEARNER, guild_id=guild)
                await fake.send_interaction(payload)
                assert "Show answer" in str((await fake.wait_for_callback(payload)).data)
                assert interaction_shards(fake, payload) == [(shard, 3)]


# --- two sharded bots on one database: each answers its own shard's guilds; DMs reach shard 0 -------------


async def test_two_bots_with_one_shard_each_answer_their_own_guilds_and_shard_0_gets_the_dms(
    store: SqliteStore,
) -> None:
    async with discord_server(2) as fake:
        on_zero, on_one = fake.add_guild(fake.guild_on_shard(0)), fake.add_guild(fake.guild_on_shard(1))
        zero = sharded_bot(fake, store, DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS="0")
        one = sharded_bot(fake, store, DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS="1")
        async with started(zero), started(one):
            assert [g.id for g in zero.client.guilds] == [on_zero]
            assert [g.id for g in one.client.guilds] == [on_one]
            assert command_syncs(fake) == 1
            for guild, shard in ((on_zero, (0, 2)), (on_one, (1, 2))):
                payload = fake.slash_interaction("question", user_id=LEARNER, guild_id=guild)
                await fake.send_interaction(payload)
                assert "Show answer" in str((await fake.wait_for_callback(payload)).data)
                assert interaction_shards(fake, payload) == [shard]
            dm = fake.slash_interaction("question", user_id=LEARNER)
            await fake.send_interaction(dm)
            assert "Show answer" in str((await fake.wait_for_callback(dm)).data)
            assert interaction_shards(fake, dm) == [(0, 2)]


# --- the fake gateway's shards, seen from the websocket ---------------------------------------------------


async def identify(fake: FakeDiscord, shard: Any) -> tuple[aiohttp.ClientWebSocketResponse, aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(fake.gateway_url)
    hello = await ws.receive_json()
    assert hello["op"] == 10
    await ws.send_json({"op": 2, "d": {"token": DISCORD_TOKEN, "intents": 1, "properties": {}, "shard": shard}})
    return ws, session


async def next_dispatch(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), 5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    frame: dict[str, Any] = json.loads(message.data)
    return frame


async def test_the_fake_gateway_recommends_its_shard_count_and_refuses_an_invalid_shard() -> None:
    async with FakeDiscord(token=DISCORD_TOKEN, shard_count=4) as fake:
        headers = {"Authorization": f"Bot {DISCORD_TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{fake.base_url}/api/v10/gateway/bot", headers=headers) as response,
        ):
            assert (await response.json())["shards"] == 4
        for invalid in ([2, 2], [-1, 2], [0], "0,2"):
            ws, session = await identify(fake, invalid)
            try:
                closed = await asyncio.wait_for(ws.receive(), 5)
                assert (closed.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4010), invalid
            finally:
                await ws.close()
                await session.close()
        assert fake.identify_payloads == []


async def test_the_fake_gateway_sends_each_session_its_own_guilds_and_the_dms_to_shard_0() -> None:
    async with FakeDiscord(token=DISCORD_TOKEN, shard_count=2) as fake:
        guilds = {shard: fake.add_guild(fake.guild_on_shard(shard)) for shard in (0, 1)}
        assert [(g >> 22) % 2 for g in guilds.values()] == [0, 1]
        sockets = {shard: await identify(fake, [shard, 2]) for shard in (0, 1)}
        try:
            for shard, (ws, _) in sockets.items():
                ready = await next_dispatch(ws)
                assert (ready["t"], ready["d"]["shard"]) == ("READY", [shard, 2])
                assert [g["id"] for g in ready["d"]["guilds"]] == [str(guilds[shard])]
                created = await next_dispatch(ws)
                assert (created["t"], created["d"]["id"]) == ("GUILD_CREATE", str(guilds[shard]))
            sent = []
            for shard in (0, 1):
                payload = fake.slash_interaction("ping", guild_id=guilds[shard])
                assert await fake.dispatch("INTERACTION_CREATE", payload) == 1
                assert (await next_dispatch(sockets[shard][0]))["d"]["id"] == payload["id"]
                sent.append(payload["id"])
            dm = fake.slash_interaction("ping", user_id=LEARNER)
            assert await fake.dispatch("INTERACTION_CREATE", dm) == 1
            assert (await next_dispatch(sockets[0][0]))["d"]["id"] == dm["id"]
            assert fake.dispatched == [
                Dispatched("INTERACTION_CREATE", shard, data)
                for shard, data in (((0, 2), fake.dispatched[0].data), ((1, 2), fake.dispatched[1].data), ((0, 2), dm))
            ]
            assert [d.data["id"] for d in fake.dispatched] == [*sent, dm["id"]]
        finally:
            for ws, session in sockets.values():
                await ws.close()
                await session.close()


async def test_start_waits_for_each_further_shard_of_the_process_to_connect_after_its_identify_delay(
    store: SqliteStore,
) -> None:
    # Shards connect one after another, identify_delay apart (Discord: one IDENTIFY per 5 s); with three
    # shards the second and third come 2 s after the first, more than ready_timeout alone allows.
    async with discord_server(3) as fake:
        app = app_for(
            store,
            DISCORD_TOKEN=DISCORD_TOKEN,
            DISCORD_API_URL=fake.base_url,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            DISCORD_SHARD_COUNT="3",
        )
        bot = discord_adapter(app, **{**DISCORD_TUNING, "ready_timeout": 1.0, "identify_delay": 1.0})
        assert bot.ready_within == 3.0
        async with started(bot):
            assert isinstance(bot.client, discord.AutoShardedClient) and set(bot.client.shards) == {0, 1, 2}
            assert len(fake.identify_payloads) == 3
