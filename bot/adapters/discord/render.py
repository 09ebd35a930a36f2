"""A core Reply as Discord messages: embeds of escaped markdown within Discord's limits, and buttons.

A button's custom_id *is* the core's action string. The views built here are render-only (stopped
before sending, so discord.py keeps nothing for them): every press reaches on_interaction, old or new.
A reply that takes a typed answer gets the answer-box button where the core placed it, which opens a
modal (Discord reads no plain messages without the privileged message-content intent).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.adapters.common import pack, rendered_pieces
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
)

PLATFORM = "discord"

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
MODAL_TITLE_LIMIT = 45
ANSWER_LIMIT = 4000
PLAIN_PIECE_LIMIT = DESCRIPTION_LIMIT // 2 - 16  # a piece of an over-long block, before escaping

TYPE_ANSWER_LABEL = ANSWER_BOX_LABEL
TYPE_ANSWER_ID = "studybot:type-answer"
ANSWER_MODAL_ID = "studybot:answer"
ANSWER_INPUT_ID = "answer"

log = logging.getLogger("studybot.discord")


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


def render(reply: Reply) -> list[MessagePart]:
    """The reply as one or more Discord messages: embeds within Discord's limits, buttons on the last.

    The first Title block becomes the embed title; everything else is escaped markdown in the
    description, split between blocks (or, for one huge block, at line breaks) to fit 4096.
    """
    blocks = list(reply.blocks)
    title: str | None = None
    if blocks and isinstance(blocks[0], Title) and blocks[0].text.strip():
        title = _fit(blocks[0].text, TITLE_LIMIT)
        blocks = blocks[1:]
    if reply.answer_box:
        blocks = [_as_said_with_box(block) for block in blocks]
    # one huge block becomes escaped plain pieces (escaping at most doubles the length)
    pieces = rendered_pieces(blocks, render_block, escape, limit=DESCRIPTION_LIMIT, piece_limit=PLAIN_PIECE_LIMIT)
    footer: str | None = None
    if reply.poll is not None:
        pieces += _poll_text(reply.poll)
        if reply.poll.open_seconds:
            footer = f"⏱ {reply.poll.open_seconds} s to answer"
    chunks = pack(pieces, DESCRIPTION_LIMIT)
    buttons = _with_type_answer(reply) if reply.answer_box else reply.buttons
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


def _as_said_with_box(block: Block) -> Block:
    """A paragraph in the words the core gave it for where the answer box is shown."""
    if isinstance(block, Paragraph) and block.with_box is not None:
        return Paragraph(block.with_box)
    return block


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


def send_kwargs(part: MessagePart) -> dict[str, Any]:
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


def edit_kwargs(part: MessagePart) -> dict[str, Any]:
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


def without_picture(part: MessagePart, why: str) -> MessagePart | None:
    """What to send instead of a part Discord refused because of its picture: the part without it
    (None when the part had no picture, or nothing else)."""
    if part.picture is None:
        return None
    log.warning("Discord refused a message with a picture (%s); sending it without", why, extra={"platform": PLATFORM})
    rest = replace(part, picture=None)
    return rest if rest.content or rest.has_embed or rest.buttons or rest.attachment else None
