"""Sending to Telegram: every outgoing call goes through one retry policy, and a Reply becomes messages.

429s are waited out and retried once by PTB's AIORateLimiter (so one reaching here is given up);
timeouts and 5xx are retried with backoff; a 403 marks the chat unreachable so nothing more is sent
there until it talks to the bot again; a 400 is the content's fault and is not retried.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import InputFile, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from bot.adapters.common import Failure, RetryingSender
from bot.adapters.telegram.render import (
    CAPTION_LIMIT,
    DOCUMENT_CAPTION_LIMIT,
    keyboard,
    render_html,
)
from bot.core.model import Chat
from bot.core.ports import ChatStore, Clock, Delivery, SendResult
from bot.core.views import Picture, Reply

PLATFORM = "telegram"

log = logging.getLogger("studybot.telegram")


def chat_of(chat_id: int | str) -> Chat:
    """The Telegram chat a Bot API chat id names (sending needs its key only, not its kind)."""
    return Chat(PLATFORM, str(chat_id))


def classify(exc: Exception) -> Failure | None:
    """Telegram's errors as delivery outcomes (see the module's docstring)."""
    if isinstance(exc, Forbidden):
        return Failure(Delivery.UNREACHABLE, str(exc))
    if isinstance(exc, BadRequest):
        return Failure(Delivery.REJECTED, str(exc))
    if isinstance(exc, RetryAfter):  # AIORateLimiter already waited and retried once
        return Failure(Delivery.FAILED, str(exc), warning=f"rate limited by Telegram: {exc}")
    if isinstance(exc, NetworkError):  # timeouts and 5xx
        return Failure(Delivery.FAILED, str(exc), retry=True)
    if isinstance(exc, TelegramError):
        return Failure(Delivery.FAILED, str(exc), warning=f"Telegram refused a call: {exc}")
    return None


class TelegramSender(RetryingSender):
    """Every outgoing Telegram call goes through here: retries, backoff and unreachable chats."""

    def __init__(self, chats: ChatStore, clock: Clock, *, retries: int = 3, backoff: float = 0.5) -> None:
        super().__init__(chats, clock, classify, log, retries=retries, backoff=backoff)


class TelegramNotifier:
    """Sends core replies to Telegram chats: text with buttons, or a native quiz poll."""

    platform = PLATFORM

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any], sender: TelegramSender) -> None:
        self.application = application
        self.sender = sender

    @property
    def username(self) -> str | None:
        """The bot's @username (known once the application is initialised), for deep links."""
        try:
            name: str = self.application.bot.username
        except RuntimeError:
            return None
        return name

    async def send(self, chat_id: str, reply: Reply, *, reply_to: int | None = None) -> SendResult:
        chat = chat_of(chat_id)
        if not await self.sender.chats.is_reachable(chat.key):
            return SendResult(Delivery.UNREACHABLE, detail="chat marked unreachable")
        bot = self.application.bot
        last: SendResult = SendResult(Delivery.SENT)
        if reply.poll is not None:
            poll = reply.poll
            delivery, message, detail = await self.sender.call(
                chat,
                lambda: bot.send_poll(
                    chat_id=chat_id,
                    question=poll.question,
                    options=list(poll.options),
                    type="quiz",
                    is_anonymous=False,
                    correct_option_ids=[poll.correct_index],
                    explanation=poll.explanation or None,
                    open_period=poll.open_seconds,
                ),
            )
            if delivery is not Delivery.SENT or message is None:
                return SendResult(delivery, detail=detail)
            last = SendResult(
                Delivery.SENT,
                message_id=str(message.message_id),
                poll_id=message.poll.id if message.poll else None,
            )
        if reply.attachment is not None:
            name, content = reply.attachment
            caption = render_html(Reply(blocks=reply.blocks))
            delivery, message, detail = await self.sender.call(
                chat,
                lambda: bot.send_document(
                    chat_id=chat_id,
                    document=InputFile(content, filename=name),
                    caption=caption[0] if caption and len(caption[0]) <= DOCUMENT_CAPTION_LIMIT else None,
                    parse_mode=ParseMode.HTML,
                ),
            )
            if delivery is not Delivery.SENT or message is None:
                return SendResult(delivery, detail=detail)
            return SendResult(Delivery.SENT, message_id=str(message.message_id))
        # A native poll is the whole message: its text and option buttons are for other platforms.
        chunks = [] if reply.poll is not None else render_html(reply)
        for index, text in enumerate(chunks):
            markup = keyboard(reply, self.username) if index == len(chunks) - 1 else None
            params = (
                ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                if reply_to is not None and index == 0
                else None
            )
            delivery, message, detail = await self.sender.call(
                chat,
                lambda text=text, markup=markup, params=params: bot.send_message(  # type: ignore[misc]
                    chat_id=chat_id,
                    text=text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_parameters=params,
                    link_preview_options=None,
                ),
            )
            if delivery is not Delivery.SENT or message is None:
                return SendResult(delivery, detail=detail)
            last = SendResult(Delivery.SENT, message_id=str(message.message_id), poll_id=last.poll_id)
        if reply.picture is not None:
            shown = await self.send_picture(chat_id, reply.picture, reply_to=None if chunks else reply_to)
            if not chunks:  # the picture is the whole reply
                return shown
        return last

    async def send_picture(self, chat_id: int | str, picture: Picture, *, reply_to: int | None = None) -> SendResult:
        """A picture as a photo with its caption. It goes after the reply's text, so a photo Telegram
        refuses (or that cannot be uploaded) costs the learner the picture only, never the text."""
        bot = self.application.bot
        caption = picture.caption
        if len(caption) > CAPTION_LIMIT:
            caption = caption[: CAPTION_LIMIT - 1] + "…"
        params = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
        delivery, message, detail = await self.sender.call(
            chat_of(chat_id),
            lambda: bot.send_photo(
                chat_id=chat_id,
                photo=InputFile(picture.content, filename=picture.name),
                caption=caption or None,
                reply_parameters=params,
            ),
        )
        if delivery is not Delivery.SENT or message is None:
            log.warning("could not send a picture to chat %s (%s): %s", chat_id, delivery.value, detail)
            return SendResult(delivery, detail=detail)
        return SendResult(Delivery.SENT, message_id=str(message.message_id))

    async def finish_round(self, chat_id: str, message_id: str, view: Reply) -> None:
        """Stop the round's quiz poll (Telegram shows the correct option and the counts itself)."""
        bot = self.application.bot
        await self.sender.call(chat_of(chat_id), lambda: bot.stop_poll(chat_id=chat_id, message_id=int(message_id)))

    async def edit(self, chat_id: int, message_id: int, reply: Reply) -> SendResult:
        """Replace a message's text and buttons; overflow goes out as new messages."""
        bot = self.application.bot
        chat = chat_of(chat_id)
        chunks = render_html(reply)
        if not chunks:
            return SendResult(Delivery.SENT, message_id=str(message_id))
        markup = keyboard(reply) if len(chunks) == 1 else None
        delivery, _, detail = await self.sender.call(
            chat,
            lambda: bot.edit_message_text(
                chat_id=chat_id, message_id=message_id, text=chunks[0], parse_mode=ParseMode.HTML, reply_markup=markup
            ),
        )
        if delivery is Delivery.REJECTED and "not modified" in detail:
            delivery = Delivery.SENT
        elif delivery is Delivery.REJECTED:  # too old to edit, deleted, ...: say it anew instead
            return await self.send(str(chat_id), reply)
        if len(chunks) > 1 and delivery is Delivery.SENT:
            rest = Reply(blocks=(), buttons=reply.buttons)
            for text in chunks[1:-1]:
                await self.sender.call(
                    chat,
                    lambda text=text: bot.send_message(  # type: ignore[misc]
                        chat_id=chat_id, text=text, parse_mode=ParseMode.HTML
                    ),
                )
            await self.sender.call(
                chat,
                lambda: bot.send_message(
                    chat_id=chat_id, text=chunks[-1], parse_mode=ParseMode.HTML, reply_markup=keyboard(rest)
                ),
            )
        if reply.picture is not None and delivery is Delivery.SENT:
            await self.send_picture(chat_id, reply.picture)
        return SendResult(delivery, message_id=str(message_id), detail=detail)
