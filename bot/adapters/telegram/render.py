"""A core Reply as Telegram HTML (every string escaped) and an inline keyboard."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.adapters.common import pack, rendered_pieces
from bot.core.views import Block, Bullets, Code, Inline, Paragraph, Reply, Span, Title

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024  # a photo's caption
DOCUMENT_CAPTION_LIMIT = 1000  # a document's caption, kept a little under Telegram's 1024
CHUNK_LIMIT = 3900  # HTML length budget per message, safely under the 4096 visible characters
BUTTON_LABEL_LIMIT = 64
PRIVATE_CHAT_BUTTON = "Open a private chat with me"


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
    return pack(rendered_pieces(reply.blocks, render_block, escape, limit=limit, piece_limit=limit - 100), limit)


def keyboard(reply: Reply, username: str | None = None) -> InlineKeyboardMarkup | None:
    """The reply's buttons; with `private_start` (and the bot's username), a button opening a private chat."""
    rows = [
        [InlineKeyboardButton(b.label[:BUTTON_LABEL_LIMIT], callback_data=b.action) for b in row]
        for row in reply.buttons
        if row
    ]
    if reply.private_start and username:
        link = f"https://t.me/{username}?start={reply.private_start}"
        rows.append([InlineKeyboardButton(PRIVATE_CHAT_BUTTON, url=link)])
    return InlineKeyboardMarkup(rows) if rows else None
