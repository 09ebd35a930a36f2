"""Discord: a discord.py 2.x Client + app_commands tree -> core Commands -> embeds and buttons.

The adapter only translates, like the Telegram one. Slash commands are generated from the core's
CommandSpecs (so commands added later appear with no Discord-specific code); every command is one
`Commands.run`, every button one `Commands.press`, and a typed answer (a modal, since reading
messages would need the privileged message-content intent) one `Commands.text`.

Buttons are persistent without any per-message state: a button's custom_id *is* the core's action
string, and every component interaction is routed generically in `on_interaction`. The views this
adapter sends are render-only (stopped before sending, so discord.py keeps nothing for them), which
means a press on a message sent before a restart is handled exactly like a fresh one, and the core
validates it (ownership, staleness, forgery) the same way.

Sending unprompted (daily pushes) goes through DiscordSender: discord.py waits out 429s itself;
5xx, timeouts and connection errors are retried with backoff; a 403 (DMs closed, code 50007) marks
the chat unreachable, and the user is told why the next time they use a command.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar, cast
from zoneinfo import available_timezones

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.utils import escape_markdown, escape_mentions

from bot.core.commands import Commands, CommandSpec, OptionSpec
from bot.core.model import Caller, Chat, Identity
from bot.core.ports import ChatStore, Clock, Delivery, SendResult
from bot.core.views import (
    ANSWER_BOX_LABEL,
    Block,
    Bullets,
    Button,
    Code,
    Inline,
    Paragraph,
    Picture,
    QuizPoll,
    Reply,
    Title,
    render_plain,
    split_plain,
)
from bot.logs import redact

PLATFORM = "discord"
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
NO_OPEN_QUESTION = "No question is open. Send /question to get one."
DMS_CLOSED = (
    "I couldn't send you a direct message (your DMs are closed to me), so pushes to you are paused. "
    "Allow direct messages from this server's members, then send /daily to resume."
)

# Discord's limits (https://discord.com/developers/docs/resources/message, .../interactions).
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
ROW_WIDTH = 5
MAX_ROWS = 5
CHOICES_LIMIT = 25
OPTIONS_LIMIT = 25
CHOICE_NAME_LIMIT = 100
COMMAND_DESCRIPTION_LIMIT = 100
MODAL_TITLE_LIMIT = 45
ANSWER_LIMIT = 4000
UNKNOWN_MESSAGE = 10008  # Discord's error code for a deleted (or never existing) message

# Discord reads no plain messages (that needs the privileged message-content intent), so a reply that
# takes a typed answer gets the core's answer-box button, which opens a modal.
TYPE_ANSWER_LABEL = ANSWER_BOX_LABEL
TYPE_ANSWER_ID = "studybot:type-answer"
ANSWER_MODAL_ID = "studybot:answer"
ANSWER_INPUT_ID = "answer"

COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)

log = logging.getLogger("studybot.discord")
T = TypeVar("T")
Interaction = discord.Interaction[discord.Client]


# --- rendering ------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Plain text -> Discord markdown that shows exactly that text and mentions nobody."""
    return escape_mentions(escape_markdown(text))


def _fit(text: str, limit: int) -> str:
    """`text` escaped, shortened (before escaping, so no escape is cut in half) to fit `limit`."""
    escaped = escape(text)
    raw = text
    while len(escaped) > limit and raw:
        raw = raw[: len(raw) - max(1, len(escape(raw)) + 1 - limit)]
        escaped = escape(raw) + "…"
    return escaped if len(escaped) <= limit else "…"


def _code_span(text: str) -> str:
    # Backslash escapes are shown literally inside code spans, so only the delimiter is replaced.
    body = escape_mentions(text.replace("`", "ˋ"))
    return f"`{body}`" if body else ""


def _inline(parts: Iterable[Inline]) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(escape(part))
        elif not part.text:
            continue
        elif part.style == "code":
            out.append(_code_span(part.text))
        else:
            text = escape(part.text)
            marker = {"bold": "**", "italic": "*"}.get(part.style, "")
            # Markdown markers must hug the text: keep outer spaces outside them.
            stripped = text.strip()
            if marker and stripped:
                lead = text[: len(text) - len(text.lstrip())]
                trail = text[len(text.rstrip()) :]
                out.append(f"{lead}{marker}{stripped}{marker}{trail}")
            else:
                out.append(text)
    return "".join(out)


def render_block(block: Block) -> str:
    if isinstance(block, Title):
        return f"**{escape(block.text)}**" if block.text.strip() else ""
    if isinstance(block, Paragraph):
        return _inline(block.parts)
    if isinstance(block, Bullets):
        return "\n".join(f"• {_inline(item)}" for item in block.items)
    if isinstance(block, Code):
        body = escape_mentions(block.text.replace("```", "ˋˋˋ"))
        return f"```\n{body}\n```"
    raise TypeError(f"unknown block {block!r}")


def _pack(texts: Iterable[str], limit: int) -> list[str]:
    """Join rendered pieces with blank lines into as few chunks of at most `limit` as possible."""
    chunks: list[str] = []
    current = ""
    for text in texts:
        if not text:
            continue
        candidate = f"{current}\n\n{text}" if current else text
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = text
    if current:
        chunks.append(current)
    return chunks


def _poll_text(poll: QuizPoll) -> list[str]:
    letters = "ABCDEFGHIJ"
    options = "\n".join(f"**{letters[n]})** {escape(option)}" for n, option in enumerate(poll.options[:10]))
    return [f"**{escape(poll.question)}**", options]


@dataclass(frozen=True, slots=True)
class MessagePart:
    """One Discord message to send or edit, as plain data (discord objects are built when sending)."""

    title: str | None = None
    description: str | None = None
    footer: str | None = None
    content: str | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachment: tuple[str, bytes] | None = None
    picture: Picture | None = None  # shown as the embed's image, its caption as the footer

    @property
    def has_embed(self) -> bool:
        return bool(self.title or self.description or self.footer or self.picture)

    def embed(self) -> discord.Embed | None:
        if not self.has_embed:
            return None
        embed = discord.Embed(title=self.title, description=self.description, colour=discord.Colour.blurple())
        footer = " · ".join(text for text in (self.footer, self.picture and self.picture.caption) if text)
        if footer:
            embed.set_footer(text=footer[:FOOTER_LIMIT])  # footers show text as it is
        if self.picture is not None:
            embed.set_image(url=f"attachment://{self.picture.name}")
        return embed

    def files(self) -> list[discord.File]:
        """The document attached, and the picture the embed shows."""
        files = []
        if self.attachment is not None:
            name, data = self.attachment
            files.append(discord.File(io.BytesIO(data), filename=name))
        if self.picture is not None:
            files.append(discord.File(io.BytesIO(self.picture.content), filename=self.picture.name))
        return files

    def view(self) -> discord.ui.View | None:
        return build_view(self.buttons)


def _with_type_answer(reply: Reply) -> tuple[tuple[Button, ...], ...]:
    """The reply's buttons plus ✍️ Type answer where the core placed it (first row, `answer_box_at`), room allowing."""
    rows = [list(row) for row in reply.buttons]
    extra = Button(TYPE_ANSWER_LABEL, TYPE_ANSWER_ID)
    if rows and len(rows[0]) < ROW_WIDTH:
        rows[0].insert(min(max(reply.answer_box_at, 0), len(rows[0])), extra)
    elif len(rows) < MAX_ROWS:
        rows.insert(0 if reply.answer_box_at <= 0 else 1, [extra])
    return tuple(tuple(row) for row in rows)


def render(reply: Reply, *, type_answer: bool = True) -> list[MessagePart]:
    """The reply as one or more Discord messages: embeds within Discord's limits, buttons on the last.

    The first Title block becomes the embed title; everything else is escaped markdown in the
    description, split between blocks (or, for one huge block, at line breaks) to fit 4096.
    """
    blocks = list(reply.blocks)
    title: str | None = None
    if blocks and isinstance(blocks[0], Title) and blocks[0].text.strip():
        title = _fit(blocks[0].text, TITLE_LIMIT)
        blocks = blocks[1:]
    box = type_answer and reply.answer_box
    pieces: list[str] = []
    for block in blocks:
        if box and isinstance(block, Paragraph) and block.with_box is not None:
            block = Paragraph(block.with_box)
        text = render_block(block)
        if len(text) <= DESCRIPTION_LIMIT:
            pieces.append(text)
        else:  # one huge block: escaped plain pieces (escaping at most doubles the length)
            pieces += [escape(p) for p in split_plain(render_plain((block,)), DESCRIPTION_LIMIT // 2 - 16)]
    footer: str | None = None
    if reply.poll is not None:
        pieces += _poll_text(reply.poll)
        if reply.poll.open_seconds:
            footer = f"⏱ {reply.poll.open_seconds} s to answer"
    chunks = _pack(pieces, DESCRIPTION_LIMIT)
    buttons = _with_type_answer(reply) if box else reply.buttons
    if not chunks and title is None:
        if reply.attachment is None and reply.picture is None and not any(buttons):
            return []
        return [MessagePart(buttons=buttons, attachment=reply.attachment, picture=reply.picture)]
    parts = [MessagePart(description=chunk) for chunk in chunks] or [MessagePart()]
    parts[0] = MessagePart(title=title, description=parts[0].description, attachment=reply.attachment)
    last = parts[-1]
    parts[-1] = MessagePart(
        title=last.title,
        description=last.description,
        footer=footer,
        buttons=buttons,
        attachment=last.attachment,
        picture=reply.picture,
    )
    return parts


def notice_part(text: str) -> MessagePart:
    return MessagePart(content=_fit(text, CONTENT_LIMIT))


def button_rows(rows: Sequence[Sequence[Button]]) -> list[list[Button]]:
    """Rows of at most 5 buttons, at most 5 rows, no duplicate or over-long custom_id."""
    out: list[list[Button]] = []
    seen: set[str] = set()
    for row in rows:
        usable = []
        for button in row:
            if not button.action or len(button.action) > CUSTOM_ID_LIMIT or button.action in seen:
                log.warning("dropping a button Discord would refuse: %r", button.label)
                continue
            seen.add(button.action)
            usable.append(button)
        out += [usable[i : i + ROW_WIDTH] for i in range(0, len(usable), ROW_WIDTH)]
    if len(out) > MAX_ROWS:
        log.warning("dropping %d button row(s) over Discord's limit of %d", len(out) - MAX_ROWS, MAX_ROWS)
    return out[:MAX_ROWS]


def build_view(rows: Sequence[Sequence[Button]]) -> discord.ui.View | None:
    """A render-only View: presses are routed in on_interaction, so discord.py must not track it."""
    usable = button_rows(rows)
    if not usable:
        return None
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(usable):
        for index, button in enumerate(row):
            primary = number == 0 and index == 0
            view.add_item(
                discord.ui.Button(
                    label=(button.label or "…")[:LABEL_LIMIT],
                    custom_id=button.action,
                    style=discord.ButtonStyle.primary if primary else discord.ButtonStyle.secondary,
                    row=number,
                )
            )
    # A stopped view is never stored in discord.py's view store: nothing accumulates per message,
    # and every press, old or new, reaches on_interaction.
    view.stop()
    return view


def answer_modal() -> discord.ui.Modal:
    modal = discord.ui.Modal(title="Your answer"[:MODAL_TITLE_LIMIT], custom_id=ANSWER_MODAL_ID, timeout=None)
    modal.add_item(
        discord.ui.TextInput(
            label="Answer in your own words",
            custom_id=ANSWER_INPUT_ID,
            style=discord.TextStyle.paragraph,
            placeholder="As you would say it in an interview: the key idea first, then the details.",
            max_length=ANSWER_LIMIT,
            required=True,
        )
    )
    modal.stop()  # the submission is handled in on_interaction, even after a restart
    return modal


def _send_kwargs(part: MessagePart) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions.none()}
    if part.content:
        kwargs["content"] = part.content
    embed = part.embed()
    if embed is not None:
        kwargs["embed"] = embed
    view = part.view()
    if view is not None:
        kwargs["view"] = view
    files = part.files()
    if files:
        kwargs["files"] = files
    return kwargs


def _edit_kwargs(part: MessagePart) -> dict[str, Any]:
    files = part.files()
    kwargs: dict[str, Any] = {
        "content": part.content,
        "embed": part.embed(),
        "view": part.view(),
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    if files:
        kwargs["attachments"] = files
    return kwargs


def _without_picture(part: MessagePart, why: str) -> MessagePart | None:
    """What to send instead of a part Discord refused because of its picture: the part without it
    (None when the part had no picture, or nothing else)."""
    if part.picture is None:
        return None
    log.warning("Discord refused a message with a picture (%s); sending it without", why, extra={"platform": PLATFORM})
    rest = replace(part, picture=None)
    return rest if rest.content or rest.has_embed or rest.buttons or rest.attachment else None


# --- sending --------------------------------------------------------------------------------------


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


class DiscordSender:
    """Every unprompted send goes through here: retries, backoff and unreachable chats."""

    def __init__(
        self,
        chats: ChatStore,
        clock: Clock,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        request_timeout: float = 15.0,
    ) -> None:
        self.chats = chats
        self.clock = clock
        self.retries = retries
        self.backoff = backoff
        self.request_timeout = request_timeout

    async def call(self, chat: Chat, make: Callable[[], Awaitable[T]]) -> tuple[Delivery, T | None, str]:
        """Run one API call about `chat` with the retry policy; never raises a discord.py or network error."""
        chat_id = chat.chat_id
        for attempt in range(self.retries + 1):
            try:
                return Delivery.SENT, await asyncio.wait_for(make(), self.request_timeout), ""
            except (discord.Forbidden, discord.NotFound) as exc:
                if exc.code == UNKNOWN_MESSAGE:  # the message is gone, not the chat
                    return Delivery.REJECTED, None, f"{exc.status} {exc.code}: {exc.text}"
                await self.chats.mark_unreachable(chat.key, self.clock.now(), f"{exc.status} {exc.code}")
                log.info("chat %s is unreachable: %s %s", chat_id, exc.status, exc.code)
                return Delivery.UNREACHABLE, None, f"{exc.status} {exc.code}: {exc.text}"
            except discord.RateLimited as exc:  # discord.py waits short limits out; this one was too long
                log.warning("rate limited by Discord for chat %s (retry after %.1f s)", chat_id, exc.retry_after)
                return Delivery.FAILED, None, f"rate limited for {exc.retry_after:.1f} s"
            except discord.HTTPException as exc:
                if exc.status < 500 and exc.status != 429:
                    return Delivery.REJECTED, None, f"{exc.status} {exc.code}: {exc.text}"
                detail = f"{exc.status} {exc.code}: {exc.text}"
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                detail = f"{type(exc).__name__}: {exc}"
            if attempt == self.retries:
                log.warning("giving up on chat %s after %d attempts: %s", chat_id, attempt + 1, detail)
                return Delivery.FAILED, None, detail
            await asyncio.sleep(self.backoff * 2**attempt)
        return Delivery.FAILED, None, "retries exhausted"


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
                    lambda part=part: target.send(**_send_kwargs(part)),  # type: ignore[misc]
                )
                if delivery is Delivery.REJECTED and (rest := _without_picture(part, detail)) is not None:
                    delivery, sent, detail = await self.sender.call(
                        chat,
                        lambda rest=rest: target.send(**_send_kwargs(rest)),  # type: ignore[misc]
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
        delivery, _, detail = await self.sender.call(chat, lambda: message.edit(**_edit_kwargs(first)))
        if delivery is not Delivery.SENT or len(parts) == 1:
            return SendResult(delivery, message_id=message_id, detail=detail)
        for part in parts[1:]:
            delivery, sent, detail = await self.sender.call(
                chat,
                lambda part=part: target.send(**_send_kwargs(part)),  # type: ignore[misc]
            )
            if delivery is not Delivery.SENT or sent is None:
                return SendResult(delivery, message_id=message_id, detail=detail)
        return SendResult(Delivery.SENT, message_id=message_id)


# --- commands from specs ----------------------------------------------------------------------------


def api_base(url: str) -> str:
    """DISCORD_API_URL as discord.py's REST base: "https://host", ".../api" and ".../api/v10" all work."""
    base = url.rstrip("/")
    if re.search(r"/api/v\d+$", base):
        return base
    if not base.endswith("/api"):
        base += "/api"
    return f"{base}/v{discord.http.INTERNAL_API_VERSION}"


def caller_of(interaction: Interaction) -> Caller:
    user = interaction.user
    name = user.display_name or user.name or str(user.id)
    if interaction.guild_id is not None:
        return Caller(
            identity=Identity(PLATFORM, str(user.id)),
            display_name=name,
            chat=channel_chat(interaction.channel_id),
            is_chat_admin=interaction.permissions.manage_guild,
        )
    return Caller(
        identity=Identity(PLATFORM, str(user.id)),
        display_name=name,
        chat=dm_chat(user.id),
    )


def _annotation(option: OptionSpec) -> Any:
    if option.kind == "integer":
        if option.min_value is not None or option.max_value is not None:
            return app_commands.Range[int, option.min_value, option.max_value]
        return int
    return str


def _matches(current: str, *names: str) -> tuple[bool, bool]:
    """(starts with, contains) of what was typed, ignoring case, spaces and underscores."""
    wanted = re.sub(r"[\s_-]+", " ", current.strip().casefold())
    keys = [re.sub(r"[\s_/-]+", " ", name.casefold()) for name in names]
    return any(k.startswith(wanted) for k in keys), any(wanted in k for k in keys)


@dataclass
class _Turn:
    """One interaction being answered, and how far the answer got."""

    interaction: Interaction
    caller: Caller
    what: str
    started: float = field(default_factory=time.perf_counter)
    deferred: bool = False
    thinking_ephemeral: bool | None = None  # a "thinking…" placeholder still to be replaced

    @property
    def in_guild(self) -> bool:
        return self.interaction.guild_id is not None


class _StudyClient(discord.Client):
    def __init__(self, bot: DiscordBot, **options: Any) -> None:
        super().__init__(**options)
        self._studybot = bot

    async def on_interaction(self, interaction: Interaction) -> None:
        await self._studybot.on_interaction(interaction)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before every re-IDENTIFY; the delay is configurable (0 in tests).
        if not initial and self._studybot.identify_delay:
            await asyncio.sleep(self._studybot.identify_delay)


class DiscordBot:
    """The StudyBot Discord front end on one discord.py Client.

    In a server, answers are ephemeral unless the command's audience is the whole chat (the core's
    CommandSpec.audience: /quiz, /stopquiz, /leaderboard, a group's /daily): personal practice stays
    between the learner and the bot. `Reply.private` always means ephemeral. In DMs, plain messages.
    """

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
    ) -> None:
        self.commands = commands
        self.chats = chats
        self.clock = clock
        self._token = token
        self.api_url = api_url
        self.gateway_url = gateway_url
        self.guild_id = guild_id
        self.defer_after = defer_after
        self.ready_timeout = ready_timeout
        self.identify_delay = identify_delay
        # Slash commands and buttons need no privileged intent; GUILDS keeps channels and roles known.
        intents = discord.Intents.none()
        intents.guilds = True
        # The bot never joins voice: skip discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        self.client = _StudyClient(self, intents=intents, guild_ready_timeout=guild_ready_timeout)
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(self.client)
        self.tree.error(self._on_tree_error)
        self.sender = DiscordSender(chats, clock, retries=retries, backoff=backoff, request_timeout=request_timeout)
        self.notifier = DiscordNotifier(self.client, self.sender)
        self._runner: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[Any]] = set()
        self._told_dms_closed: set[str] = set()
        self._zones: tuple[str, ...] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

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
        done, _ = await asyncio.wait({ready, self._runner}, timeout=self.ready_timeout, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            failure: BaseException = TimeoutError(f"Discord was not ready within {self.ready_timeout:.0f} s")
            if self._runner in done and not self._runner.cancelled() and self._runner.exception() is not None:
                failure = cast(BaseException, self._runner.exception())
            await self.stop()
            raise failure
        await self.sync_commands()
        user = self.client.user
        log.info("Discord bot %s started", user.name if user else "?", extra={"platform": PLATFORM})

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
        pending = {task for task in self._handling if task is not asyncio.current_task() and not task.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def install_commands(self) -> None:
        """(Re)build the slash commands from the core's specs, globally or for `guild_id`."""
        guild = discord.Object(id=self.guild_id) if self.guild_id else None
        self.tree.clear_commands(guild=guild)
        for spec in self.commands.specs:
            self.tree.add_command(self._slash_command(spec), guild=guild)

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        guild = discord.Object(id=self.guild_id) if self.guild_id else None
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            where = f"guild {self.guild_id} (is the bot in that server?)" if guild else "globally"
            log.error("could not sync the slash commands %s: %s %s", where, exc.status, exc.code)
            return []
        log.info("synced %d slash commands %s", len(synced), f"to guild {self.guild_id}" if guild else "globally")
        return synced

    # --- slash commands ----------------------------------------------------------------------------

    def _slash_command(self, spec: CommandSpec) -> app_commands.Command[Any, ..., None]:
        """A slash command for `spec`: typed options, choices, ranges and autocomplete from its OptionSpecs."""
        options = spec.options[:OPTIONS_LIMIT]
        params = {f"option_{n}": option for n, option in enumerate(options)}

        async def callback(interaction: Interaction, **values: Any) -> None:
            given = [values.get(name) for name in params]
            args = " ".join(str(value).strip() for value in given if value is not None and str(value).strip())
            await self.serve(
                interaction,
                f"/{spec.name}",
                lambda caller: self.commands.run(caller, spec.name, args),
                personal=spec.audience == "personal",
            )

        # discord.py reads a command's options from its callback's signature; build that signature.
        signature = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Interaction)]
        for name, option in params.items():
            signature.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=_annotation(option),
                    default=inspect.Parameter.empty if option.required else None,
                )
            )
        callback.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
        described: Any = callback
        if params:
            described = app_commands.rename(**{name: option.name for name, option in params.items()})(described)
            described = app_commands.describe(
                **{
                    name: (option.description or option.name)[:COMMAND_DESCRIPTION_LIMIT]
                    for name, option in params.items()
                }
            )(described)
        choices = {
            name: self._choices(option) for name, option in params.items() if option.choices and not option.autocomplete
        }
        if choices:
            described = app_commands.choices(**choices)(described)
        completers = {name: self._completer(option) for name, option in params.items() if option.autocomplete}
        if completers:
            described = app_commands.autocomplete(**completers)(described)
        contexts = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
        return app_commands.Command(
            name=spec.name,
            description=(spec.description or spec.usage or spec.name)[:COMMAND_DESCRIPTION_LIMIT],
            callback=described,
            allowed_contexts=contexts if spec.group_only else None,
        )

    @staticmethod
    def _choices(option: OptionSpec) -> list[app_commands.Choice[Any]]:
        out: list[app_commands.Choice[Any]] = []
        for choice in option.choices[:CHOICES_LIMIT]:
            if option.kind == "integer":
                out.append(app_commands.Choice(name=choice[:CHOICE_NAME_LIMIT], value=int(choice)))
            else:
                out.append(app_commands.Choice(name=choice[:CHOICE_NAME_LIMIT], value=choice[:CHOICE_NAME_LIMIT]))
        return out

    def _completer(
        self, option: OptionSpec
    ) -> Callable[[Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]:
        source = self.topic_choices if option.autocomplete == "topic" else self.zone_choices

        async def complete(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
            return source(current)

        return complete

    def topic_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """The bank's topics matching what was typed (slug or name), best matches first."""
        ranked: list[tuple[int, int, app_commands.Choice[str]]] = []
        for position, topic in enumerate(self.commands.study.bank.topics):
            starts, contains = _matches(current, topic.slug, topic.name)
            if current.strip() and not contains:
                continue
            name = f"{topic.name} ({topic.slug})" if topic.name.casefold() != topic.slug else topic.name
            ranked.append(
                (0 if starts else 1, position, app_commands.Choice(name=name[:CHOICE_NAME_LIMIT], value=topic.slug))
            )
        return [choice for _, _, choice in sorted(ranked, key=lambda r: (r[0], r[1]))][:CHOICES_LIMIT]

    def zone_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """IANA time zones matching what was typed ("berl" -> Europe/Berlin, "new york" -> America/New_York)."""
        if not current.strip():
            return [app_commands.Choice(name=zone, value=zone) for zone in COMMON_ZONES][:CHOICES_LIMIT]
        if self._zones is None:
            self._zones = tuple(sorted(z for z in available_timezones() if not z.startswith(("posix/", "right/"))))
        ranked: list[tuple[int, str]] = []
        for zone in self._zones:
            city = zone.rsplit("/", 1)[-1]
            city_starts, _ = _matches(current, city)
            starts, contains = _matches(current, zone)
            if contains:
                ranked.append((0 if city_starts else 1 if starts else 2, zone))
        ranked.sort()
        return [app_commands.Choice(name=zone, value=zone) for _, zone in ranked[:CHOICES_LIMIT]]

    # --- interactions --------------------------------------------------------------------------------

    async def on_interaction(self, interaction: Interaction) -> None:
        """Buttons and modal submissions (slash commands and autocomplete go through the tree)."""
        data = cast(dict[str, Any], interaction.data or {})
        custom_id = str(data.get("custom_id") or "")
        if interaction.type is discord.InteractionType.component:
            if custom_id == TYPE_ANSWER_ID:
                await self._open_answer_modal(interaction)
            else:
                await self.serve(interaction, f"button {custom_id[:CUSTOM_ID_LIMIT]}", self._press(custom_id))
        elif interaction.type is discord.InteractionType.modal_submit and custom_id == ANSWER_MODAL_ID:
            text = _modal_value(data.get("components") or [], ANSWER_INPUT_ID) or ""
            await self.serve(interaction, "typed answer", self._typed(text))

    def _press(self, custom_id: str) -> Callable[[Caller], Awaitable[Reply]]:
        def press(caller: Caller) -> Awaitable[Reply]:
            return self.commands.press(caller, custom_id)

        return press

    def _typed(self, text: str) -> Callable[[Caller], Awaitable[Reply]]:
        async def typed(caller: Caller) -> Reply:
            reply = await self.commands.text(caller, text)
            return reply if reply is not None else Reply(notice=NO_OPEN_QUESTION)

        return typed

    async def _open_answer_modal(self, interaction: Interaction) -> None:
        try:
            await interaction.response.send_modal(answer_modal())
        except Exception as exc:
            await self._fail(_Turn(interaction, caller_of(interaction), "type answer"), exc)

    async def serve(
        self,
        interaction: Interaction,
        what: str,
        work: Callable[[Caller], Awaitable[Reply]],
        *,
        personal: bool = True,
    ) -> None:
        """Answer one interaction with one core call, within Discord's 3-second window."""
        turn = _Turn(interaction, caller_of(interaction), what)
        current = asyncio.current_task()
        if current is not None:
            self._handling.add(current)
            current.add_done_callback(self._handling.discard)
        try:
            task = asyncio.ensure_future(self._call_core(turn.caller, work))
            done, _ = await asyncio.wait({task}, timeout=self.defer_after)
            if not done:
                task.add_done_callback(_consume)  # if answering fails, the core call still finishes
                await self._defer(turn, personal=personal)
            reply = await task
            if interaction.type is discord.InteractionType.application_command:
                await self._answer_command(turn, reply, personal=personal)
            else:
                await self._answer_component(turn, reply)
            await self._after(turn)
        except Exception as exc:
            await self._fail(turn, exc)
            return
        log.info(
            "handled %s",
            what,
            extra={
                "update": interaction.id,
                "chat": turn.caller.chat.chat_id,
                "user": interaction.user.id,
                "command": what,
                "duration_ms": round((time.perf_counter() - turn.started) * 1000, 1),
                "platform": PLATFORM,
            },
        )

    async def _call_core(self, caller: Caller, work: Callable[[Caller], Awaitable[Reply]]) -> Reply:
        # Someone talking to the bot in DMs can be DM'd again.
        if not caller.chat.is_group and await self.chats.mark_reachable(caller.chat.key):
            self._told_dms_closed.discard(caller.chat.key)
        return await work(caller)

    async def _defer(self, turn: _Turn, *, personal: bool) -> None:
        interaction = turn.interaction
        if interaction.type is discord.InteractionType.application_command:
            ephemeral = turn.in_guild and personal
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
            turn.thinking_ephemeral = ephemeral
        else:
            await interaction.response.defer()  # "deferred update": the pressed message may be edited later
        turn.deferred = True

    async def _send(self, turn: _Turn, part: MessagePart, *, ephemeral: bool) -> None:
        """A new message: the interaction's response if none was sent yet, else a followup. A message
        Discord refuses because of its picture goes again without it: the text matters more."""
        try:
            await self._send_part(turn, part, ephemeral=ephemeral)
        except discord.HTTPException as exc:
            rest = _without_picture(part, f"{exc.status} {exc.code}: {exc.text}")
            if rest is None:
                raise
            await self._send_part(turn, rest, ephemeral=ephemeral)

    async def _send_part(self, turn: _Turn, part: MessagePart, *, ephemeral: bool) -> None:
        interaction = turn.interaction
        kwargs = _send_kwargs(part)
        if not interaction.response.is_done():
            await interaction.response.send_message(ephemeral=ephemeral, **kwargs)
            return
        if turn.thinking_ephemeral is not None:
            # The first followup replaces "thinking…" and keeps its visibility; a private answer to
            # a public placeholder must not, so the placeholder goes.
            if ephemeral and not turn.thinking_ephemeral:
                await interaction.delete_original_response()
            turn.thinking_ephemeral = None
        await interaction.followup.send(ephemeral=ephemeral, **kwargs)

    async def _answer_command(self, turn: _Turn, reply: Reply, *, personal: bool) -> None:
        ephemeral = turn.in_guild and (personal or reply.private)
        if reply.is_notice_only:
            await self._send(turn, notice_part(reply.notice or "Done."), ephemeral=turn.in_guild)
        else:
            for part in render(reply):
                await self._send(turn, part, ephemeral=ephemeral)
        await self._send_extra(turn, reply, ephemeral=ephemeral)

    async def _answer_component(self, turn: _Turn, reply: Reply) -> None:
        interaction = turn.interaction
        message = interaction.message
        message_ephemeral = bool(message is not None and message.flags.ephemeral)
        if reply.is_notice_only:
            await self._send(turn, notice_part(reply.notice or "Done."), ephemeral=True)
            await self._send_extra(turn, reply, ephemeral=turn.in_guild)
            return
        parts = render(reply)
        if reply.edit and message is not None and parts:
            first, rest = parts[0], parts[1:]
            if rest:  # the buttons belong under the last part
                first = MessagePart(first.title, first.description, first.footer, first.content, (), first.attachment)
            if interaction.response.is_done():
                await interaction.edit_original_response(**_edit_kwargs(first))
            else:
                await interaction.response.edit_message(**_edit_kwargs(first))
            for part in rest:
                await self._send(turn, part, ephemeral=turn.in_guild and message_ephemeral)
            if reply.notice and turn.in_guild and not message_ephemeral:
                await self._send(turn, notice_part(reply.notice), ephemeral=True)
            ephemeral = turn.in_guild and (message_ephemeral or reply.private)
        else:
            ephemeral = turn.in_guild and (message is None or message_ephemeral or reply.private)
            for part in parts:
                await self._send(turn, part, ephemeral=ephemeral)
        await self._send_extra(turn, reply, ephemeral=ephemeral)

    async def _send_extra(self, turn: _Turn, reply: Reply, *, ephemeral: bool) -> None:
        for more in reply.extra:
            if more.is_notice_only:
                if more.notice:
                    await self._send(turn, notice_part(more.notice), ephemeral=True)
                continue
            for part in render(more):
                await self._send(turn, part, ephemeral=turn.in_guild and (ephemeral or more.private))

    async def _after(self, turn: _Turn) -> None:
        """One-off notes for the caller, each as an ephemeral followup."""
        notes: list[str] = []
        note = await self.commands.pending_notice(turn.caller)
        if note:
            notes.append(note)
        if turn.in_guild:
            key = dm_chat(turn.interaction.user.id).key
            if await self.chats.is_reachable(key):
                self._told_dms_closed.discard(key)
            elif key not in self._told_dms_closed:
                self._told_dms_closed.add(key)
                notes.append(DMS_CLOSED)
        for text in notes:
            await self._send(turn, notice_part(text), ephemeral=True)

    async def _fail(self, turn: _Turn, exc: BaseException) -> None:
        interaction = turn.interaction
        secrets = [self._token]
        details = redact("".join(traceback.format_exception(exc)), secrets)
        log.error(
            "interaction %s (%s) by user %s failed: %s\n%s",
            interaction.id,
            turn.what,
            interaction.user.id,
            redact(f"{type(exc).__name__}: {exc}", secrets),
            details,
            extra={
                "update": interaction.id,
                "chat": turn.caller.chat.chat_id,
                "user": interaction.user.id,
                "command": turn.what,
                "platform": PLATFORM,
            },
        )
        if interaction.type is discord.InteractionType.autocomplete:
            return
        try:
            if interaction.response.is_done():
                await interaction.followup.send(SORRY, ephemeral=True)
            else:
                await interaction.response.send_message(SORRY, ephemeral=True)
        except Exception as again:
            log.warning(
                "could not apologise for interaction %s: %s",
                interaction.id,
                redact(f"{type(again).__name__}: {again}", secrets),
            )

    async def _on_tree_error(self, interaction: Interaction, error: app_commands.AppCommandError) -> None:
        command = interaction.command.name if interaction.command else "?"
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await self._fail(_Turn(interaction, caller_of(interaction), f"/{command}"), cause)


def _modal_value(components: Sequence[Any], custom_id: str) -> str | None:
    """The value of the text input `custom_id`, wherever the modal nests it (rows or labels)."""
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") == custom_id and "value" in component:
            return str(component["value"])
        for key in ("components", "component"):
            nested = component.get(key)
            found = _modal_value(nested if isinstance(nested, list) else [nested], custom_id) if nested else None
            if found is not None:
                return found
    return None


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("a core call finished with an error after its interaction failed", exc_info=task.exception())
