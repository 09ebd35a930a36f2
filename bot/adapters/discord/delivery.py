"""Sending to Discord unprompted (daily pushes, quiz rounds), under one retry policy.

discord.py waits out 429s itself (one still reaching here is given up); 5xx, timeouts and connection
errors are retried with backoff; a 403 or 404 on a chat (DMs closed, code 50007; a deleted channel)
marks it unreachable, and the user is told why the next time they use a command; other 4xx are the
content's fault and are not retried.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Literal, cast

import aiohttp
import discord

from bot.adapters.common import Failure, RetryingSender
from bot.adapters.discord.render import PLATFORM, edit_kwargs, notice_part, render, send_kwargs, without_picture
from bot.core.model import Chat
from bot.core.ports import ChatStore, Clock, Delivery, SendResult
from bot.core.views import Reply

UNKNOWN_MESSAGE = 10008  # Discord's error code for a deleted (or never existing) message

log = logging.getLogger("studybot.discord")


# A Discord chat id says where a message goes: "channel:<id>" (a server channel) or "user:<id>" (a DM).
# It is built and read here only.


def channel_chat(channel_id: int | None) -> Chat:
    """A server channel: a group chat where the bot can answer one member privately (ephemerally)."""
    return Chat(PLATFORM, f"channel:{channel_id}", is_group=True, private_replies=True)


def dm_chat(user_id: int) -> Chat:
    """The direct-message chat with one user."""
    return Chat(PLATFORM, f"user:{user_id}")


def chat_of(chat_id: str) -> Chat:
    """The chat a stored Discord chat id names (a malformed one is kept as it is, for `destination` to refuse)."""
    where = destination(Chat(PLATFORM, chat_id))
    if where is None:
        return Chat(PLATFORM, chat_id)
    kind, snowflake = where
    return channel_chat(snowflake) if kind == "channel" else dm_chat(snowflake)


def destination(chat: Chat) -> tuple[Literal["channel", "user"], int] | None:
    """Where a Discord chat's messages go (a channel or a user's DMs), or None for a malformed id."""
    kind, _, raw_id = chat.chat_id.partition(":")
    if kind not in ("user", "channel") or not raw_id.isdigit():
        return None
    return ("channel" if kind == "channel" else "user"), int(raw_id)


def classify(exc: Exception) -> Failure | None:
    """discord.py's and the network's errors as delivery outcomes (see the module's docstring)."""
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        detail = f"{exc.status} {exc.code}: {exc.text}"
        if exc.code == UNKNOWN_MESSAGE:  # the message is gone, not the chat
            return Failure(Delivery.REJECTED, detail)
        return Failure(Delivery.UNREACHABLE, detail, reason=f"{exc.status} {exc.code}")
    if isinstance(exc, discord.RateLimited):  # discord.py waits short limits out; this one was too long
        return Failure(
            Delivery.FAILED,
            f"rate limited for {exc.retry_after:.1f} s",
            warning=f"rate limited by Discord (retry after {exc.retry_after:.1f} s)",
        )
    if isinstance(exc, discord.HTTPException):
        detail = f"{exc.status} {exc.code}: {exc.text}"
        if exc.status < 500 and exc.status != 429:
            return Failure(Delivery.REJECTED, detail)
        return Failure(Delivery.FAILED, detail, retry=True)
    if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
        return Failure(Delivery.FAILED, f"{type(exc).__name__}: {exc}", retry=True)
    return None


class DiscordSender(RetryingSender):
    """Every unprompted send goes through here: retries, backoff, a time limit and unreachable chats."""

    def __init__(
        self,
        chats: ChatStore,
        clock: Clock,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        request_timeout: float = 15.0,
    ) -> None:
        super().__init__(chats, clock, classify, log, retries=retries, backoff=backoff, timeout=request_timeout)


class DiscordNotifier:
    """Sends core replies to Discord unprompted: "user:<id>" by DM, "channel:<id>" to a channel."""

    platform = PLATFORM

    def __init__(self, client: discord.Client, sender: DiscordSender) -> None:
        self.client = client
        self.sender = sender

    async def _target(self, chat: Chat) -> tuple[discord.abc.Messageable | None, SendResult]:
        where = destination(chat)
        if where is None:
            return None, SendResult(Delivery.REJECTED, detail=f"not a Discord chat id: {chat.chat_id!r}")
        kind, snowflake = where
        if kind == "channel":
            return self.client.get_partial_messageable(snowflake), SendResult(Delivery.SENT)
        delivery, dm, detail = await self.sender.call(chat, lambda: self.client.create_dm(discord.Object(id=snowflake)))
        return dm, SendResult(delivery, detail=detail)

    async def send(self, chat_id: str, reply: Reply) -> SendResult:
        chat = chat_of(chat_id)
        if not await self.sender.chats.is_reachable(chat.key):
            return SendResult(Delivery.UNREACHABLE, detail="chat marked unreachable")
        target, failed = await self._target(chat)
        if target is None:
            return failed
        last = SendResult(Delivery.SENT)
        for message in [reply, *reply.extra]:
            parts = render(message) if not message.is_notice_only else [notice_part(message.notice or "")]
            for part in parts:
                if not (part.content or part.has_embed or part.buttons or part.attachment):
                    continue
                delivery, sent, detail = await self.sender.call(
                    chat,
                    lambda part=part: target.send(**send_kwargs(part)),  # type: ignore[misc]
                )
                if delivery is Delivery.REJECTED and (rest := without_picture(part, detail)) is not None:
                    delivery, sent, detail = await self.sender.call(
                        chat,
                        lambda rest=rest: target.send(**send_kwargs(rest)),  # type: ignore[misc]
                    )
                if delivery is not Delivery.SENT or sent is None:
                    return SendResult(delivery, message_id=last.message_id, detail=detail)
                last = SendResult(Delivery.SENT, message_id=str(sent.id))
        return last

    async def finish_round(self, chat_id: str, message_id: str, view: Reply) -> None:
        """A quiz round ended: its message now shows the correct option and how many chose each."""
        await self.edit(chat_id, message_id, view)

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> SendResult:
        """Replace a message the bot sent (e.g. a quiz round's standings); overflow goes out as new messages."""
        chat = chat_of(chat_id)
        if not await self.sender.chats.is_reachable(chat.key):
            return SendResult(Delivery.UNREACHABLE, detail="chat marked unreachable")
        target, failed = await self._target(chat)
        if target is None or not message_id.isdigit():
            return failed if target is None else SendResult(Delivery.REJECTED, detail="bad message id")
        parts = render(reply)
        if not parts:
            return SendResult(Delivery.SENT, message_id=message_id)
        first = parts[0] if len(parts) == 1 else replace(parts[0], buttons=())
        message = discord.PartialMessage(channel=cast(Any, target), id=int(message_id))
        delivery, _, detail = await self.sender.call(chat, lambda: message.edit(**edit_kwargs(first)))
        if delivery is not Delivery.SENT or len(parts) == 1:
            return SendResult(delivery, message_id=message_id, detail=detail)
        for part in parts[1:]:
            delivery, sent, detail = await self.sender.call(
                chat,
                lambda part=part: target.send(**send_kwargs(part)),  # type: ignore[misc]
            )
            if delivery is not Delivery.SENT or sent is None:
                return SendResult(delivery, message_id=message_id, detail=detail)
        return SendResult(Delivery.SENT, message_id=message_id)
