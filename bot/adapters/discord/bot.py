"""DiscordBot: one discord.py Client, its slash commands, interactions and sending, started and stopped.

With DISCORD_SHARD_COUNT the Client is discord.py's AutoShardedClient running this process's shards
(DISCORD_SHARD_IDS, or all of them): Discord sends each guild's events to shard
(guild_id >> 22) % shard_count and DMs to shard 0, and any process sends through the REST API.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any, cast

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands

from bot.adapters.discord.commands import SlashCommands
from bot.adapters.discord.delivery import DiscordNotifier, DiscordSender
from bot.adapters.discord.render import PLATFORM
from bot.adapters.discord.updates import Interaction, Interactions
from bot.adapters.discord.uploads import DiscordDownloads
from bot.core.commands import Commands
from bot.core.ports import ChatStore, Clock
from bot.logs import redact

log = logging.getLogger("studybot.discord")


def api_base(url: str) -> str:
    """DISCORD_API_URL as discord.py's REST base: "https://host", ".../api" and ".../api/v10" all work."""
    base = url.rstrip("/")
    if re.search(r"/api/v\d+$", base):
        return base
    if not base.endswith("/api"):
        base += "/api"
    return f"{base}/v{discord.http.INTERNAL_API_VERSION}"


class _StudyHooks:
    """What StudyBot adds to discord.py's Client, plain or sharded: interactions go to the adapter, and the
    wait before a re-IDENTIFY is configurable."""

    _studybot: DiscordBot

    async def on_interaction(self, interaction: Interaction) -> None:
        await self._studybot.interactions.on_interaction(interaction)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before every IDENTIFY but the first (a re-IDENTIFY, a sharded process's next
        # shard: Discord allows about one per 5 s per bot); the delay is configurable (0 in tests).
        if not initial and self._studybot.identify_delay:
            await asyncio.sleep(self._studybot.identify_delay)


class _StudyClient(_StudyHooks, discord.Client):
    def __init__(self, bot: DiscordBot, **options: Any) -> None:
        super().__init__(**options)
        self._studybot = bot


class _ShardedStudyClient(_StudyHooks, discord.AutoShardedClient):
    def __init__(self, bot: DiscordBot, **options: Any) -> None:
        super().__init__(**options)
        self._studybot = bot


class DiscordBot:
    """The StudyBot Discord front end on one discord.py Client (sharded when `shard_count` is given)."""

    def __init__(
        self,
        commands: Commands,
        chats: ChatStore,
        clock: Clock,
        *,
        token: str,
        api_url: str | None = None,
        gateway_url: str | None = None,
        guild_id: int | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        request_timeout: float = 15.0,
        defer_after: float = 2.0,
        ready_timeout: float = 60.0,
        guild_ready_timeout: float = 2.0,
        identify_delay: float = 5.0,
        shard_count: int | None = None,
        shard_ids: Sequence[int] | None = None,
    ) -> None:
        self.commands = commands
        self.chats = chats
        self.clock = clock
        self._token = token
        self.api_url = api_url
        self.gateway_url = gateway_url
        self.guild_id = guild_id
        self.ready_timeout = ready_timeout
        self.identify_delay = identify_delay
        if shard_ids is not None and shard_count is None:
            raise ValueError("shard_ids need a shard_count")
        self.shard_count = shard_count
        self.shard_ids: tuple[int, ...] | None = tuple(shard_ids) if shard_ids is not None else None
        # Slash commands and buttons need no privileged intent; GUILDS keeps channels and roles known.
        intents = discord.Intents.none()
        intents.guilds = True
        # The bot never joins voice: skip discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        self.client: discord.Client
        if shard_count is None:
            self.client = _StudyClient(self, intents=intents, guild_ready_timeout=guild_ready_timeout)
        else:
            self.client = _ShardedStudyClient(
                self,
                intents=intents,
                guild_ready_timeout=guild_ready_timeout,
                shard_count=shard_count,
                shard_ids=list(self.shard_ids) if self.shard_ids is not None else None,
            )
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(self.client)
        self.interactions = Interactions(commands, chats, token=token, defer_after=defer_after)
        self.tree.error(self.interactions.on_tree_error)
        self.sender = DiscordSender(chats, clock, retries=retries, backoff=backoff, request_timeout=request_timeout)
        self.downloads = DiscordDownloads(
            chats, clock, retries=retries, backoff=backoff, request_timeout=request_timeout
        )
        self.slash = SlashCommands(commands, self.tree, self.interactions.serve, self.downloads, guild_id=guild_id)
        self.notifier = DiscordNotifier(self.client, self.sender)
        self._runner: asyncio.Task[None] | None = None

    def _point_at_server(self) -> None:
        # discord.py reads both from class attributes; a process talks to one Discord, so setting
        # them once is enough (test helpers restore them themselves).
        if self.api_url:
            discord.http.Route.BASE = api_base(self.api_url)
        if self.gateway_url:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    async def start(self) -> None:
        """Log in, connect the gateway in the background, wait until ready, sync the slash commands."""
        self._point_at_server()
        self.install_commands()
        try:
            await self.client.login(self._token)
        except BaseException:
            await self.client.close()  # release the HTTP session login opened
            raise
        self._runner = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        self._runner.add_done_callback(self._gateway_ended)
        ready = asyncio.create_task(self.client.wait_until_ready())
        within = self.ready_within
        done, _ = await asyncio.wait({ready, self._runner}, timeout=within, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            failure: BaseException = TimeoutError(f"Discord was not ready within {within:.0f} s")
            if self._runner in done and not self._runner.cancelled() and self._runner.exception() is not None:
                failure = cast(BaseException, self._runner.exception())
            await self.stop()
            raise failure
        if self.syncs_commands:
            await self.sync_commands()
        else:
            log.info(
                "slash commands not synced here: the process that runs shard 0 syncs them",
                extra={"platform": PLATFORM},
            )
        user = self.client.user
        log.info(
            "Discord bot %s started%s", user.name if user else "?", self._shards_text(), extra={"platform": PLATFORM}
        )

    @property
    def ready_within(self) -> float:
        """How long start() waits for the gateway: `ready_timeout`, plus `identify_delay` for each further shard
        of this process (they connect one after another)."""
        return self.ready_timeout + self.identify_delay * (self._shards_here() - 1)

    def _shards_here(self) -> int:
        if self.shard_ids is not None:
            return len(self.shard_ids)
        return self.shard_count or 1

    @property
    def syncs_commands(self) -> bool:
        """Whether this process syncs the slash commands: unsharded, or the one that runs shard 0 (syncing is
        idempotent, but one process of a fleet is enough)."""
        return self.shard_ids is None or 0 in self.shard_ids

    def _shards_text(self) -> str:
        if self.shard_count is None:
            return ""
        ids = self.shard_ids if self.shard_ids is not None else range(self.shard_count)
        return f" (shards {','.join(str(i) for i in ids)} of {self.shard_count})"

    def _gateway_ended(self, runner: asyncio.Task[None]) -> None:
        # discord.py reconnects by itself; the gateway task only ends on close or a fatal error
        # (bad token, disallowed intents), which must not go unnoticed.
        if runner.cancelled() or self.client.is_closed():
            return
        error = runner.exception()
        if error is not None:
            log.error(
                "the Discord gateway connection ended: %s",
                redact(f"{type(error).__name__}: {error}", [self._token]),
                extra={"platform": PLATFORM},
            )

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
        """Let running interactions finish, then close the gateway and HTTP session (each step bounded)."""
        await self.drain(timeout)
        try:
            await asyncio.wait_for(self.client.close(), timeout)
        except (TimeoutError, Exception):  # a failing shutdown must not hang the process
            log.warning("closing the Discord client did not finish cleanly", exc_info=True)
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if not runner.done():
            try:
                await asyncio.wait_for(runner, timeout)
            except (TimeoutError, asyncio.CancelledError, Exception):
                runner.cancel()
        elif not runner.cancelled():
            runner.exception()  # retrieved (and logged by _gateway_ended), so asyncio stays quiet

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
        """Wait (at most `timeout` seconds) until the interactions being handled are fully answered."""
        await self.interactions.drain(timeout)

    def install_commands(self) -> None:
        """(Re)build the slash commands from the core's specs, globally or for `guild_id`."""
        self.slash.install()

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        return await self.slash.sync()
