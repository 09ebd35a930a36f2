"""TelegramBot: one python-telegram-bot Application, its sending and its handlers, started and stopped."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, Application

from bot.adapters.telegram.commands import publish_commands
from bot.adapters.telegram.delivery import TelegramNotifier, TelegramSender
from bot.adapters.telegram.updates import UpdateHandlers
from bot.adapters.telegram.uploads import TelegramDownloads
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.ports import ChatStore, Clock

ALLOWED_UPDATES = ["message", "callback_query", "poll_answer", "my_chat_member"]

log = logging.getLogger("studybot.telegram")


class TelegramBot:
    """The StudyBot Telegram front end on one python-telegram-bot Application."""

    def __init__(
        self,
        commands: Commands,
        chats: ChatStore,
        clock: Clock,
        *,
        token: str,
        api_url: str = "https://api.telegram.org",
        retries: int = 3,
        backoff: float = 0.5,
        poll_timeout: float = 10.0,
        request_timeout: float = 10.0,
        max_rate: float = 30.0,
        competition: CompetitionService | None = None,
    ) -> None:
        self.commands = commands
        self.competition = competition
        self.chats = chats
        self.clock = clock
        self.poll_timeout = poll_timeout
        api = api_url.rstrip("/")
        self.application: Application[Any, Any, Any, Any, Any, Any] = (
            Application.builder()
            .token(token)
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            # a bucket of one spaced 1/max_rate apart: an even pace, no burst of max_rate at the start
            .rate_limiter(AIORateLimiter(overall_max_rate=1, overall_time_period=1 / max_rate, max_retries=1))
            .concurrent_updates(16)
            .connect_timeout(request_timeout)
            .read_timeout(request_timeout)
            .write_timeout(request_timeout)
            .pool_timeout(request_timeout)
            .get_updates_read_timeout(poll_timeout + request_timeout)
            .build()
        )
        self.sender = TelegramSender(chats, clock, retries=retries, backoff=backoff)
        self.notifier = TelegramNotifier(self.application, self.sender)
        self.downloads = TelegramDownloads(chats, clock, retries=retries, backoff=backoff)
        self.handlers = UpdateHandlers(commands, chats, self.sender, self.notifier, self.downloads, competition)
        self.handlers.install(self.application)

    async def start(self, *, polling: bool = True) -> None:
        """Initialise, publish the command list and (optionally) start long polling."""
        await self.application.initialize()
        await self.publish_commands()
        await self.application.start()
        if polling and self.application.updater is not None:
            await self.application.updater.start_polling(
                poll_interval=0.0, timeout=int(self.poll_timeout), allowed_updates=ALLOWED_UPDATES
            )
        log.info("Telegram bot @%s started", self.application.bot.username)

    async def stop(self) -> None:
        """Stop taking updates, let running handlers finish, close the HTTP clients."""
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def publish_commands(self) -> None:
        await publish_commands(self.application.bot, self.sender, self.commands.specs)

    async def process(self, data: dict[str, Any]) -> None:
        """Handle one update given as JSON (tests and webhooks)."""
        await self.application.process_update(Update.de_json(data, self.application.bot))
