"""Telegram: python-telegram-bot 22 Application -> core Commands -> Telegram HTML.

The adapter only translates. An update becomes a Caller and one core call; the core's Reply
becomes HTML (every string escaped), an inline keyboard (callback_data is the core's compact
action) and, for button presses, an edit of the message in place.

Sending is wrapped once (TelegramSender): 429s are waited out and retried once by PTB's
AIORateLimiter; timeouts and 5xx are retried with backoff; a 403 marks the chat unreachable so
nothing more is sent there until it talks to the bot again.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    PollAnswerHandler,
    filters,
)

from bot.core.commands import Commands
from bot.core.competition import CompetitionService
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import ChatStore, Clock, Delivery, SendResult
from bot.core.views import (
    Block,
    Bullets,
    Code,
    Inline,
    Paragraph,
    Picture,
    Reply,
    Span,
    Title,
    render_plain,
    split_plain,
)

PLATFORM = "telegram"
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024  # a photo's caption
CHUNK_LIMIT = 3900  # HTML length budget per message, safely under the 4096 visible characters
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."

log = logging.getLogger("studybot.telegram")
T = TypeVar("T")


# --- rendering ------------------------------------------------------------------------------------


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def _inline(parts: tuple[Inline, ...]) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(escape(part))
        elif isinstance(part, Span):
            text = escape(part.text)
            tag = {"bold": "b", "italic": "i", "code": "code"}.get(part.style)
            out.append(f"<{tag}>{text}</{tag}>" if tag else text)
    return "".join(out)


def render_block(block: Block) -> str:
    if isinstance(block, Title):
        return f"<b>{escape(block.text)}</b>"
    if isinstance(block, Paragraph):
        return _inline(block.parts)
    if isinstance(block, Bullets):
        return "\n".join(f"• {_inline(item)}" for item in block.items)
    if isinstance(block, Code):
        return f"<pre>{escape(block.text)}</pre>"
    raise TypeError(f"unknown block {block!r}")


def render_html(reply: Reply, limit: int = CHUNK_LIMIT) -> list[str]:
    """The reply's blocks as one or more HTML messages, split between blocks where possible."""
    rendered: list[str] = []
    for block in reply.blocks:
        text = render_block(block)
        if len(text) <= limit:
            rendered.append(text)
        else:  # one huge block: fall back to escaped plain pieces
            rendered += [escape(piece) for piece in split_plain(render_plain((block,)), limit - 100)]
    chunks: list[str] = []
    current = ""
    for text in rendered:
        candidate = f"{current}\n\n{text}" if current else text
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = text
    if current:
        chunks.append(current)
    return chunks


def keyboard(reply: Reply, username: str | None = None) -> InlineKeyboardMarkup | None:
    """The reply's buttons; with `private_start` (and the bot's username), a button opening a private chat."""
    rows = [[InlineKeyboardButton(b.label[:64], callback_data=b.action) for b in row] for row in reply.buttons if row]
    if reply.private_start and username:
        link = f"https://t.me/{username}?start={reply.private_start}"
        rows.append([InlineKeyboardButton("Open a private chat with me", url=link)])
    return InlineKeyboardMarkup(rows) if rows else None


# --- sending --------------------------------------------------------------------------------------


class TelegramSender:
    """Every outgoing call goes through here: retries, backoff and unreachable chats."""

    def __init__(self, chats: ChatStore, clock: Clock, *, retries: int = 3, backoff: float = 0.5) -> None:
        self.chats = chats
        self.clock = clock
        self.retries = retries
        self.backoff = backoff

    async def call(self, chat: Chat | None, make: Callable[[], Awaitable[T]]) -> tuple[Delivery, T | None, str]:
        """Run one API call about `chat` (None: about no chat) with the retry policy; never raises a TelegramError."""
        chat_id = chat.chat_id if chat is not None else None
        for attempt in range(self.retries + 1):
            try:
                return Delivery.SENT, await make(), ""
            except Forbidden as exc:
                if chat is not None:
                    await self.chats.mark_unreachable(chat.key, self.clock.now(), str(exc))
                log.info("chat %s is unreachable: %s", chat_id, exc)
                return Delivery.UNREACHABLE, None, str(exc)
            except BadRequest as exc:
                return Delivery.REJECTED, None, str(exc)
            except RetryAfter as exc:  # AIORateLimiter already waited and retried once
                log.warning("rate limited by Telegram for chat %s: %s", chat_id, exc)
                return Delivery.FAILED, None, str(exc)
            except NetworkError as exc:  # timeouts and 5xx
                if attempt == self.retries:
                    log.warning("giving up on chat %s after %d attempts: %s", chat_id, attempt + 1, exc)
                    return Delivery.FAILED, None, str(exc)
                await asyncio.sleep(self.backoff * 2**attempt)
            except TelegramError as exc:
                log.warning("Telegram refused a call for chat %s: %s", chat_id, exc)
                return Delivery.FAILED, None, str(exc)
        return Delivery.FAILED, None, "retries exhausted"


def chat_of(chat_id: int | str) -> Chat:
    """The Telegram chat a Bot API chat id names (sending needs its key only, not its kind)."""
    return Chat(PLATFORM, str(chat_id))


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
                chat_of(chat_id),
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
                chat_of(chat_id),
                lambda: bot.send_document(
                    chat_id=chat_id,
                    document=InputFile(content, filename=name),
                    caption=caption[0] if caption and len(caption[0]) <= 1000 else None,
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
                chat_of(chat_id),
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
        chunks = render_html(reply)
        if not chunks:
            return SendResult(Delivery.SENT, message_id=str(message_id))
        markup = keyboard(reply) if len(chunks) == 1 else None
        delivery, _, detail = await self.sender.call(
            chat_of(chat_id),
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
                    chat_of(chat_id),
                    lambda text=text: bot.send_message(  # type: ignore[misc]
                        chat_id=chat_id, text=text, parse_mode=ParseMode.HTML
                    ),
                )
            await self.sender.call(
                chat_of(chat_id),
                lambda: bot.send_message(
                    chat_id=chat_id, text=chunks[-1], parse_mode=ParseMode.HTML, reply_markup=keyboard(rest)
                ),
            )
        if reply.picture is not None and delivery is Delivery.SENT:
            await self.send_picture(chat_id, reply.picture)
        return SendResult(delivery, message_id=str(message_id), detail=detail)


# --- the bot --------------------------------------------------------------------------------------


def caller_of(update: Update) -> Caller | None:
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return None
    name = user.full_name or (f"@{user.username}" if user.username else str(user.id))
    return Caller(
        identity=Identity(PLATFORM, str(user.id)),
        display_name=name,
        chat=Chat(PLATFORM, str(chat.id), is_group=chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)),
    )


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
        self._install_handlers()

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, polling: bool = True) -> None:
        """Initialise, publish the command list and (optionally) start long polling."""
        await self.application.initialize()
        await self.publish_commands()
        await self.application.start()
        if polling and self.application.updater is not None:
            await self.application.updater.start_polling(
                poll_interval=0.0,
                timeout=int(self.poll_timeout),
                allowed_updates=["message", "callback_query", "poll_answer", "my_chat_member"],
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
        specs = [BotCommand(spec.name, spec.description[:256]) for spec in self.commands.specs]
        delivery, _, detail = await self.sender.call(None, lambda: self.application.bot.set_my_commands(specs))
        if delivery is not Delivery.SENT:
            log.warning("could not publish the command list: %s", detail)

    async def process(self, data: dict[str, Any]) -> None:
        """Handle one update given as JSON (tests and webhooks)."""
        await self.application.process_update(Update.de_json(data, self.application.bot))

    # --- handlers --------------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        app = self.application
        app.add_handler(MessageHandler(filters.COMMAND, self._on_command))
        app.add_handler(CallbackQueryHandler(self._on_press))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._on_text))
        app.add_handler(PollAnswerHandler(self._on_poll_answer))
        app.add_error_handler(self._on_error)

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

    def _log_handled(self, update: Update, kind: str, started: float) -> None:
        log.info(
            "handled %s",
            kind,
            extra={
                "update": update.update_id,
                "chat": update.effective_chat.id if update.effective_chat else None,
                "user": update.effective_user.id if update.effective_user else None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "platform": PLATFORM,
            },
        )

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.perf_counter()
        message = update.effective_message
        caller = caller_of(update)
        if message is None or caller is None or message.text is None:
            return
        parsed = Commands.split_command(message.text, context.bot.username)
        if parsed is None:  # not a command, or one addressed to another bot
            return
        name, args = parsed
        if self.commands.spec(name) is None and caller.chat.is_group and "@" not in message.text.split()[0]:
            return  # in groups, a bare unknown command is probably meant for another bot
        await self._came_back(caller)
        caller = await self._with_admin(caller, name, context)
        reply = await self.commands.run(caller, name, args)
        await self._answer_message(update, caller, reply)
        await self._send_notice(caller)
        self._log_handled(update, f"/{name}", started)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
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
            reply = Reply(blocks=(Paragraph.of("No question is open. Send /question to get one, or /help."),))
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

    async def _on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.perf_counter()
        query = update.callback_query
        caller = caller_of(update)
        if query is None or caller is None:
            return
        answered = False
        try:
            await self._came_back(caller)
            reply = await self.commands.press(caller, query.data or "")
            await self.sender.call(caller.chat, lambda: query.answer(text=(reply.notice or "")[:200] or None))
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
                await self.sender.call(caller.chat, lambda: query.answer(text=SORRY[:200]))
        await self._send_notice(caller)
        self._log_handled(update, "button", started)

    async def _on_poll_answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A vote in one of our quiz polls: timed on receipt, scored by the competition service."""
        started = time.perf_counter()
        answer = update.poll_answer
        if answer is None or answer.user is None or self.competition is None:
            return
        user = answer.user
        caller = Caller(
            identity=Identity(PLATFORM, str(user.id)),
            display_name=user.full_name or (f"@{user.username}" if user.username else str(user.id)),
            chat=Chat(PLATFORM, str(user.id)),
        )
        await self.competition.answer_poll(caller, answer.poll_id, list(answer.option_ids))
        self._log_handled(update, "poll answer", started)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
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
