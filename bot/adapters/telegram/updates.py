"""Telegram updates -> core calls: commands, typed answers, button presses and quiz-poll votes.

A command that takes a file (Commands.takes_upload) gets the document it came with: a document whose
caption is the command, or the document of the message a command replies to.

An update becomes a Caller and one core call; the Reply goes back through the notifier (a button
press edits its message in place when the core says so).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from telegram import Message, Update, User
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    PollAnswerHandler,
    filters,
)

from bot.adapters.common import SORRY, log_handled
from bot.adapters.telegram.delivery import PLATFORM, TelegramNotifier, TelegramSender, chat_of
from bot.adapters.telegram.uploads import DownloadFailed, TelegramDownloads, attached_document
from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import ChatStore, Delivery
from bot.core.views import Paragraph, Reply

NO_OPEN_QUESTION = "No question is open. Send /question to get one, or /help."
CALLBACK_ANSWER_LIMIT = 200  # the text of a button press's answer

log = logging.getLogger("studybot.telegram")


def display_name(user: User) -> str:
    return user.full_name or (f"@{user.username}" if user.username else str(user.id))


def caller_of(update: Update) -> Caller | None:
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return None
    return Caller(
        identity=Identity(PLATFORM, str(user.id)),
        display_name=display_name(user),
        chat=Chat(PLATFORM, str(chat.id), is_group=chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)),
    )


class UpdateHandlers:
    """The handlers installed on the Application: each turns one update into one core call."""

    def __init__(
        self,
        commands: Commands,
        chats: ChatStore,
        sender: TelegramSender,
        notifier: TelegramNotifier,
        downloads: TelegramDownloads,
        competition: CompetitionService | None = None,
    ) -> None:
        self.commands = commands
        self.chats = chats
        self.sender = sender
        self.notifier = notifier
        self.competition = competition
        self.downloads = downloads

    def install(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        application.add_handler(MessageHandler(filters.COMMAND, self.on_command))
        application.add_handler(MessageHandler(filters.Document.ALL & filters.CAPTION, self.on_caption_command))
        application.add_handler(CallbackQueryHandler(self.on_press))
        application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        application.add_handler(PollAnswerHandler(self.on_poll_answer))
        application.add_error_handler(self.on_error)

    async def _came_back(self, caller: Caller) -> None:
        if not await self.chats.is_reachable(caller.chat.key):
            await self.chats.mark_reachable(caller.chat.key)

    async def _with_admin(self, caller: Caller, name: str, context: ContextTypes.DEFAULT_TYPE) -> Caller:
        """Fill in is_chat_admin for commands that depend on it (one getChatMember call, groups only)."""
        spec = self.commands.spec(name)
        if spec is None or not spec.admin_aware or not caller.chat.is_group:
            return caller
        chat_id, user_id = int(caller.chat.chat_id), int(caller.identity.external_id)
        delivery, member, _ = await self.sender.call(caller.chat, lambda: context.bot.get_chat_member(chat_id, user_id))
        is_admin = delivery is Delivery.SENT and member is not None and member.status in ("administrator", "creator")
        return replace(caller, is_chat_admin=is_admin)

    async def _send_notice(self, caller: Caller) -> None:
        note = await self.commands.pending_notice(caller)
        if note:
            await self.notifier.send(caller.chat.chat_id, Reply(blocks=(Paragraph.of(note),)))

    def _log_handled(self, update: Update, what: str, started: float) -> None:
        log_handled(
            log,
            what,
            started,
            update=update.update_id,
            chat=update.effective_chat.id if update.effective_chat else None,
            user=update.effective_user.id if update.effective_user else None,
            platform=PLATFORM,
        )

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        await self._command(update, context, message.text)

    async def on_caption_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A document whose caption is a command: the command runs with the document as its file."""
        message = update.effective_message
        if message is None or message.caption is None:
            return
        await self._command(update, context, message.caption)

    async def _command(self, update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
        started = time.perf_counter()
        message = update.effective_message
        caller = caller_of(update)
        if message is None or caller is None:
            return
        parsed = Commands.split_command(text, context.bot.username)
        if parsed is None:  # not a command, or one addressed to another bot
            return
        name, args = parsed
        if self.commands.spec(name) is None and caller.chat.is_group and "@" not in text.split()[0]:
            return  # in groups, a bare unknown command is probably meant for another bot
        await self._came_back(caller)
        caller = await self._with_admin(caller, name, context)
        document = attached_document(message) if self.commands.takes_upload(name) else None
        upload = self.downloads.upload(context.bot, document) if document is not None else None
        try:
            reply = await self.commands.run(caller, name, args, upload)
        except DownloadFailed as failed:
            reply = Reply(blocks=(Paragraph.of(failed.message),))
        await self._answer_message(update, caller, reply)
        await self._send_notice(caller)
        self._log_handled(update, f"/{name}", started)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.perf_counter()
        message = update.effective_message
        caller = caller_of(update)
        if message is None or caller is None or not message.text:
            return
        if caller.chat.is_group:
            replied = message.reply_to_message
            if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
                return  # group chatter is not an answer unless it replies to the bot
        await self._came_back(caller)
        await self._send_notice(caller)
        reply = await self.commands.text(caller, message.text)
        if reply is None:
            if caller.chat.is_group:
                return
            reply = Reply(blocks=(Paragraph.of(NO_OPEN_QUESTION),))
        await self._answer_message(update, caller, reply)
        self._log_handled(update, "text", started)

    async def _answer_message(self, update: Update, caller: Caller, reply: Reply) -> None:
        message = update.effective_message
        if message is None:
            return
        reply_to = message.message_id if caller.chat.is_group else None
        if reply.is_notice_only:
            if reply.notice:
                reply = Reply(blocks=(Paragraph.of(reply.notice),))
            else:
                return
        await self.notifier.send(caller.chat.chat_id, reply, reply_to=reply_to)
        for more in reply.extra:
            await self.notifier.send(caller.chat.chat_id, more)

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.perf_counter()
        query = update.callback_query
        caller = caller_of(update)
        if query is None or caller is None:
            return
        answered = False
        try:
            await self._came_back(caller)
            reply = await self.commands.press(caller, query.data or "")
            notice = (reply.notice or "")[:CALLBACK_ANSWER_LIMIT] or None
            await self.sender.call(caller.chat, lambda: query.answer(text=notice))
            answered = True
            if not reply.is_notice_only:
                message = query.message
                if reply.edit and isinstance(message, Message):
                    await self.notifier.edit(message.chat_id, message.message_id, reply)
                else:
                    await self.notifier.send(caller.chat.chat_id, reply)
            for more in reply.extra:
                await self.notifier.send(caller.chat.chat_id, more)
        finally:
            if not answered:  # always stop the client's spinner, even when handling failed
                await self.sender.call(caller.chat, lambda: query.answer(text=SORRY[:CALLBACK_ANSWER_LIMIT]))
        await self._send_notice(caller)
        self._log_handled(update, "button", started)

    async def on_poll_answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A vote in one of our quiz polls: timed on receipt, scored by the competition service."""
        started = time.perf_counter()
        answer = update.poll_answer
        if answer is None or answer.user is None or self.competition is None:
            return
        user = answer.user
        caller = Caller(
            identity=Identity(PLATFORM, str(user.id)),
            display_name=display_name(user),
            chat=Chat(PLATFORM, str(user.id)),
        )
        await self.competition.answer_poll(caller, answer.poll_id, list(answer.option_ids))
        self._log_handled(update, "poll answer", started)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        details: dict[str, Any] = {"platform": PLATFORM}
        if isinstance(update, Update):
            details["update"] = update.update_id
            details["chat"] = update.effective_chat.id if update.effective_chat else None
            details["user"] = update.effective_user.id if update.effective_user else None
        log.error("error while handling an update: %r", error, exc_info=error, extra=details)
        if isinstance(update, Update) and update.effective_chat is not None and update.callback_query is None:
            chat_id = update.effective_chat.id
            await self.sender.call(chat_of(chat_id), lambda: context.bot.send_message(chat_id=chat_id, text=SORRY))
